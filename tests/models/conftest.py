"""One torch thread for the model tests: small networks on a shared 2-core CPU
run tens of times slower with 2 threads when another process holds a core."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _small_model_check(request, monkeypatch):
    """The model check of otgen train / compare at m = 500, not 10000.

    A report then takes seconds (20 exact solves at m = 500); tests marked
    ``slow`` keep the default m.
    """
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setattr("otgen.models.check.DEFAULT_M", 500)
