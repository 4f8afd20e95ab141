"""Gradients of exact OT (envelope theorem) against finite differences and
``torch.autograd.gradcheck`` in float64, on non-degenerate problems: continuous
random points and weights, so the optimal plan is unique and locally constant.
"""

import pytest
import torch
from numpy.testing import assert_allclose

from otgen import emd, exact_ot, wasserstein

F64 = torch.float64
# Central differences with h = 1e-6 on O(1) values: truncation ~h^2, rounding
# ~1e-16 / h = 1e-10.
FD_H = 1e-6
FD_TOL = dict(rtol=1e-6, atol=1e-7)


def tensors(seed, n, m, d):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, dtype=F64, generator=g)
    y = torch.randn(m, d, dtype=F64, generator=g) * 1.5 + 1
    wa = torch.rand(n, dtype=F64, generator=g) + 0.1
    wb = torch.rand(m, dtype=F64, generator=g) + 0.1
    return x, y, wa, wb


def finite_difference(fn, t):
    """Central differences of a scalar function of one tensor."""
    grad = torch.zeros_like(t)
    flat, gflat = t.view(-1), grad.view(-1)
    for k in range(flat.numel()):
        old = float(flat[k])
        flat[k] = old + FD_H
        up = float(fn(t))
        flat[k] = old - FD_H
        down = float(fn(t))
        flat[k] = old
        gflat[k] = (up - down) / (2 * FD_H)
    return grad


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize(
    "cost,kw",
    [
        ("sqeuclidean", {}),
        ("minkowski", dict(p=1.5)),
        ("minkowski", dict(p=3.0, q=1.0)),
    ],
)
def test_gradients_match_finite_differences(d, cost, kw):
    x, y, wa, wb = tensors(0, 7, 5, d)
    if d == 1 and kw.get("q") == 1.0:
        kw = dict(p=3.0)

    def value(x=x, y=y, wa=wa, wb=wb):
        return exact_ot(x, y, wa / wa.sum(), wb / wb.sum(), cost=cost, **kw).value

    leaves = [t.clone().requires_grad_(True) for t in (x, y, wa, wb)]
    v = value(*leaves)
    v.backward()
    with torch.no_grad():
        for k, name in enumerate(("x", "y", "wa", "wb")):

            def fk(t, k=k):
                args = [x, y, wa, wb]
                args[k] = t
                return value(*args)

            fd = finite_difference(fk, [x, y, wa, wb][k].clone())
            assert_allclose(leaves[k].grad.numpy(), fd.numpy(), **FD_TOL, err_msg=name)


def test_envelope_gradient_in_x_is_the_plan_weighted_displacement():
    x, y, wa, wb = tensors(1, 8, 6, 3)
    x.requires_grad_(True)
    res = exact_ot(x, y, wa / wa.sum(), wb / wb.sum())
    res.value.backward()
    P = res.plan.dense().detach()
    ref = 2 * (P.sum(1)[:, None] * x.detach() - P @ y)
    assert_allclose(x.grad.numpy(), ref.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("solver", ["network_simplex", "sorted_1d", "assignment"])
def test_gradcheck_points_and_weights(solver):
    d = 1 if solver == "sorted_1d" else 2
    n, m = (6, 6) if solver == "assignment" else (6, 4)
    x, y, wa, wb = tensors(2, n, m, d)
    if solver == "assignment":

        def fn(x, y):
            return exact_ot(x, y, solver=solver).value

        assert torch.autograd.gradcheck(fn, (x.requires_grad_(), y.requires_grad_()))
        return

    def fn(x, y, wa, wb):
        return exact_ot(x, y, wa / wa.sum(), wb / wb.sum(), solver=solver).value

    inputs = tuple(t.requires_grad_(True) for t in (x, y, wa, wb))
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("d", [1, 2])
def test_gradcheck_wasserstein_every_p(p, d):
    x, y, wa, wb = tensors(3, 5, 7, d)

    def fn(x, y, wa, wb):
        return wasserstein(x, y, p, wa / wa.sum(), wb / wb.sum())

    inputs = tuple(t.requires_grad_(True) for t in (x, y, wa, wb))
    assert torch.autograd.gradcheck(fn, inputs)


def test_emd_gradient_in_the_cost_is_the_plan():
    g = torch.Generator().manual_seed(4)
    C = torch.rand(5, 7, dtype=F64, generator=g)
    wa = torch.rand(5, dtype=F64, generator=g) + 0.1
    wb = torch.rand(7, dtype=F64, generator=g) + 0.1

    def fn(C, wa, wb):
        return emd(wa / wa.sum(), wb / wb.sum(), C).value

    inputs = tuple(t.clone().requires_grad_(True) for t in (C, wa, wb))
    assert torch.autograd.gradcheck(fn, inputs)
    Cg = C.clone().requires_grad_(True)
    res = emd(wa / wa.sum(), wb / wb.sum(), Cg)
    res.value.backward()
    assert_allclose(Cg.grad.numpy(), res.plan.dense().numpy(), rtol=0, atol=0)
    fd = finite_difference(
        lambda t: emd(wa / wa.sum(), wb / wb.sum(), t).value, C.clone()
    )
    assert_allclose(Cg.grad.numpy(), fd.numpy(), **FD_TOL)


def test_gradcheck_callable_cost():
    def l1_squared(x, y):
        return (x[:, None] - y[None]).abs().sum(-1) ** 2

    x, y, wa, wb = tensors(5, 5, 6, 2)

    def fn(x, y, wa):
        return exact_ot(x, y, wa / wa.sum(), wb / wb.sum(), cost=l1_squared).value

    inputs = tuple(t.requires_grad_(True) for t in (x, y, wa))
    assert torch.autograd.gradcheck(fn, inputs)


def test_float32_gradients_keep_dtype_and_agree_with_float64():
    x, y, wa, wb = tensors(6, 9, 7, 2)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        xt = x.to(dtype).requires_grad_(True)
        a = (wa / wa.sum()).to(dtype).requires_grad_(True)
        v = exact_ot(xt, y.to(dtype), a, (wb / wb.sum()).to(dtype)).value
        assert v.dtype == dtype
        v.backward()
        assert xt.grad.dtype == dtype and a.grad.dtype == dtype
        grads[dtype] = (xt.grad.double(), a.grad.double())
    for g32, g64 in zip(grads[torch.float32], grads[torch.float64]):
        assert_allclose(g32.numpy(), g64.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("error")  # no warning for inputs that require grad
def test_weight_gradient_is_the_centred_potential():
    x, y, wa, wb = tensors(7, 6, 5, 2)
    a = (wa / wa.sum()).requires_grad_(True)
    b = (wb / wb.sum()).requires_grad_(True)
    res = exact_ot(x, y, a, b)
    res.value.backward()
    f, g = res.f.detach(), res.g.detach()
    assert_allclose(a.grad.numpy(), (f - f.mean()).numpy(), rtol=1e-12, atol=1e-14)
    assert_allclose(b.grad.numpy(), (g - g.mean()).numpy(), rtol=1e-12, atol=1e-14)


def test_no_global_autograd_side_effects():
    x, y, _, _ = tensors(8, 5, 5, 2)
    assert torch.is_grad_enabled()
    v = exact_ot(x, y).value
    assert torch.is_grad_enabled() and not v.requires_grad
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        v = exact_ot(xg, y).value
        w = wasserstein(xg, y)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert not v.requires_grad and not w.requires_grad
    assert exact_ot(xg, y).value.requires_grad
    assert xg.grad is None
