"""Shared test settings: tolerances per dtype, seeded generators."""

import numpy as np
import pytest
import torch

from otgen.ot import _native

# Named tolerances (STYLE.md). float32 is looser by its machine epsilon.
TOL = {
    torch.float64: dict(rtol=1e-9, atol=1e-11),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
}

# The native backend when this machine can build it (a C++ compiler): tests
# that loop over backends add it, tests/ot/test_native.py covers it alone.
NATIVE = ["native"] if _native.available() else []

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


@pytest.fixture
def rng():
    return np.random.default_rng(0)
