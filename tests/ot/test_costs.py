"""Ground costs against SciPy's cdist, float32 without cancellation, I/O kinds."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist

from otgen import Cost, cost_matrix
from otgen.ot.costs import resolve_cost, sqeuclidean
from tests.conftest import TOL

F64 = TOL[torch.float64]

CASES = [
    ("sqeuclidean", {}, lambda x, y: cdist(x, y, "sqeuclidean")),
    ("euclidean", {}, lambda x, y: cdist(x, y, "euclidean")),
    ("minkowski", dict(q=1.0, p=1.5), lambda x, y: cdist(x, y, "cityblock") ** 1.5),
    ("minkowski", dict(q=3.0, p=1.0), lambda x, y: cdist(x, y, "minkowski", p=3)),
    ("minkowski", dict(q=2.0, p=3.0), lambda x, y: cdist(x, y, "euclidean") ** 3),
    ("minkowski", dict(q=np.inf, p=2.0), lambda x, y: cdist(x, y, "chebyshev") ** 2),
]


@pytest.mark.parametrize("cost,kw,ref", CASES)
def test_matches_scipy_cdist(cost, kw, ref):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(13, 4)), rng.normal(size=(9, 4)) * 3
    C = cost_matrix(x, y, cost, **kw)
    assert isinstance(C, np.ndarray) and C.shape == (13, 9) and C.dtype == np.float64
    assert_allclose(C, ref(x, y), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cost,kw,ref", CASES)
def test_paired_is_the_diagonal_of_pairwise(cost, kw, ref):
    g = torch.Generator().manual_seed(1)
    x, y = (
        torch.randn(7, 3, dtype=torch.float64, generator=g),
        torch.randn(7, 3, dtype=torch.float64, generator=g),
    )
    c = resolve_cost(cost, **kw)
    assert_allclose(
        c.paired(x, y).numpy(),
        np.diag(ref(x.numpy(), y.numpy())),
        rtol=1e-9,
        atol=1e-12,
    )


def test_points_on_the_line():
    C = cost_matrix(np.array([0.0, 1.0]), np.array([3.0]))
    assert_allclose(C, [[9.0], [4.0]], **F64)


@pytest.mark.parametrize("offset", [1e3, 1e4, 1e5])
def test_float32_sqeuclidean_without_cancellation(offset):
    # Spread 1 around `offset`: |x|^2 ~ offset^2 and a float32 expansion
    # |x|^2 + |y|^2 - 2<x, y> would be wrong by ~ offset^2 * 6e-8 (6 at 1e4).
    rng = np.random.default_rng(2)
    x = (offset + rng.normal(size=(50, 3))).astype(np.float32)
    y = (offset + rng.normal(size=(40, 3))).astype(np.float32)
    ref = cdist(x.astype(np.float64), y.astype(np.float64), "sqeuclidean")
    for C in (
        cost_matrix(x, y),
        cost_matrix(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
    ):
        assert C.dtype == np.float32
        # One float32 rounding per entry, relative to the entry itself.
        assert_allclose(C, ref, rtol=3e-7, atol=1e-6)
    naive = (x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2 * x @ y.T
    if offset >= 1e4:
        assert np.abs(naive - ref).max() > 0.1  # the test can tell the difference
    for cost in ("euclidean",):
        C = cost_matrix(x, y, cost)
        assert_allclose(C, np.sqrt(ref), rtol=3e-7, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out_and_differentiable(dtype):
    x = torch.randn(5, 2, dtype=dtype, requires_grad=True)
    y = torch.randn(4, 2, dtype=dtype)
    C = cost_matrix(x, y)
    assert isinstance(C, torch.Tensor) and C.dtype == dtype and C.requires_grad
    C.sum().backward()
    ref = 2 * (x.detach()[:, None] - y[None]).sum(1)
    assert_allclose(x.grad.numpy(), ref.numpy(), **TOL[dtype])


def test_sqeuclidean_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(sqeuclidean, (x, y))


def test_euclidean_gradient_is_zero_not_nan_at_zero_distance():
    x = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    C = cost_matrix(x, x.detach(), "euclidean")
    C.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad == 0).all()
    c = resolve_cost("euclidean")
    z = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    c.paired(z, z.detach()).sum().backward()
    assert (z.grad == 0).all()


def test_callable_cost_is_used_as_is():
    def l1(x, y):
        return (x[:, None] - y[None]).abs().sum(-1)

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    C = cost_matrix(x, y, l1)
    assert_allclose(C, cdist(x, y, "cityblock"), **F64)
    assert resolve_cost(l1).name == "l1"
    assert not resolve_cost(l1).is_sqeuclidean


def test_callable_returning_numpy_is_accepted():
    def f(x, y):
        return np.ones((x.shape[0], y.shape[0]))

    assert_allclose(cost_matrix(np.zeros((2, 1)), np.zeros((3, 1)), f), np.ones((2, 3)))


def test_names_and_resolution():
    assert resolve_cost("sqeuclidean") == Cost(q=2.0, p=2.0)
    assert resolve_cost("euclidean") == Cost(q=2.0, p=1.0)
    assert resolve_cost("minkowski") == Cost(q=2.0, p=1.0)  # default p = 1
    assert resolve_cost("minkowski", p=3, q=1) == Cost(q=1.0, p=3.0)
    c = Cost(q=1.0, p=2.0)
    assert resolve_cost(c) is c
    assert Cost().name == "sqeuclidean" and Cost().is_sqeuclidean
    assert Cost(p=1.0).name == "euclidean"
    assert Cost(q=1.0, p=2.0).name == "||x-y||_1^2"
