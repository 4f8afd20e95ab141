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
