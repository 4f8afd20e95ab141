"""otgen.nn losses: each equals its function, gradients pass gradcheck in
float64, a batch equals a loop, and they run under torch.compile and autocast."""

import inspect

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from otgen import (
    exact_ot,
    max_sliced_wasserstein,
    mmd,
    sinkhorn_divergence,
    sliced_wasserstein,
    wasserstein,
)
from otgen.nn import MMDLoss, SinkhornLoss, SlicedWassersteinLoss, WassersteinLoss
from otgen.ot.sliced import random_projections


def pts(rng, n=10, m=8, d=2, B=None, dtype=torch.float64, grad=False):
    shape = (n, d) if B is None else (B, n, d)
    x = torch.tensor(rng.normal(size=shape), dtype=dtype, requires_grad=grad)
    ys = (m, d) if B is None else (B, m, d)
    y = torch.tensor(1.3 * rng.normal(size=ys) + 0.4, dtype=dtype)
    return x, y


TH = random_projections(2, 6, seed=3)
SK = dict(eps=0.5, tol=1e-9, max_iter=5000)  # converged: gradcheck-tight
LOSSES = [SinkhornLoss(eps=0.1), MMDLoss(), WassersteinLoss(), SlicedWassersteinLoss()]

# (module, the same computation by the function)
CASES = [
    (
        SinkhornLoss(**SK),
        lambda x, y, a, b: sinkhorn_divergence(x, y, a, b, **SK),
    ),
    (
        SinkhornLoss(reach=1.0, **SK),
        lambda x, y, a, b: sinkhorn_divergence(x, y, a, b, reach=1.0, **SK),
    ),
    (MMDLoss(), lambda x, y, a, b: mmd(x, y, a, b)),
    (
        MMDLoss(kernel="gaussian", scale=0.7, estimator="biased", squared=False),
        lambda x, y, a, b: mmd(
            x, y, a, b, kernel="gaussian", scale=0.7, estimator="biased", squared=False
        ),
    ),
    (WassersteinLoss(p=2), lambda x, y, a, b: wasserstein(x, y, 2, a, b)),
    (WassersteinLoss(p=1.5), lambda x, y, a, b: wasserstein(x, y, 1.5, a, b)),
    (
        SlicedWassersteinLoss(p=2, projections=TH),
        lambda x, y, a, b: sliced_wasserstein(x, y, 2, a=a, b=b, projections=TH).value,
    ),
]
IDS = ["sinkhorn", "sinkhorn-unbalanced", "mmd", "mmd-gauss", "w2", "w1.5", "sliced"]


@pytest.mark.parametrize("loss, fn", CASES, ids=IDS)
def test_module_equals_function_and_batch_equals_loop(rng, loss, fn):
    x, y = pts(rng)
    a = torch.tensor(rng.random(10) + 0.1)
    a = a / a.sum()
    assert_allclose(float(loss(x, y, a)), float(fn(x, y, a, None)), rtol=1e-12)
    xb, yb = pts(rng, B=3)
    v = loss(xb, yb)
    assert v.shape == (3,)
    want = [float(fn(xb[i], yb[i], None, None)) for i in range(3)]
    assert_allclose(v.detach().numpy(), want, rtol=1e-12)
    # Planted: pairing each x with another y changes the values.
    other = [float(fn(xb[i], yb[(i + 1) % 3], None, None)) for i in range(3)]
    assert np.abs(np.array(other) - want).max() > 1e-4


@pytest.mark.parametrize("loss, fn", CASES, ids=IDS)
def test_gradcheck_float64(rng, loss, fn):
    x, y = pts(rng, n=6, m=5, grad=True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, y: loss(x, y), (x, y), atol=1e-6)


def test_batched_gradient_equals_loop(rng):
    x, y = pts(rng, B=2, grad=True)
    for loss in (SinkhornLoss(eps=0.1), MMDLoss(), WassersteinLoss()):
        (g,) = torch.autograd.grad(loss(x, y).sum(), x)
        for i in range(2):
            xi = x[i].detach().clone().requires_grad_(True)
            (gi,) = torch.autograd.grad(loss(xi, y[i]), xi)
            assert_allclose(g[i].numpy(), gi.numpy(), rtol=1e-9, atol=1e-12)


def test_sliced_loss_draws_new_reproducible_directions(rng):
    x, y = pts(rng, d=3)
    l1, l2 = SlicedWassersteinLoss(seed=5), SlicedWassersteinLoss(seed=5)
    v1 = [float(l1(x, y)) for _ in range(2)]
    v2 = [float(l2(x, y)) for _ in range(2)]
    assert v1 == v2  # same seed, same sequence
    assert v1[0] != v1[1]  # a new draw at each call
    # The first call uses the directions of seed 5.
    assert_allclose(v1[0], sliced_wasserstein(x, y, seed=5).value.item(), rtol=1e-12)
    th = random_projections(3, 9, 1)
    lm = SlicedWassersteinLoss(max=True, projections=th)
    ref = max_sliced_wasserstein(x, y, projections=th).value
    assert_allclose(float(lm(x, y)), float(ref), rtol=1e-12)
    # Planted: max=True must not give the mean (a max >= mean check could not
    # tell them apart).
    assert float(ref) > float(sliced_wasserstein(x, y, projections=th).value) + 1e-6


@pytest.mark.parametrize("loss", LOSSES)
def test_autocast_reduces_in_float32(rng, loss):
    x, y = pts(rng, n=30, m=25, d=3, dtype=torch.float32)
    ref = loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = loss(x, y)
        vh = loss(x.bfloat16(), y.bfloat16())
    assert v.dtype == torch.float32 and vh.dtype == torch.float32
    if not isinstance(loss, SlicedWassersteinLoss):  # new directions per call
        assert float(v) == float(ref)
        ref_h = loss(x.bfloat16().float(), y.bfloat16().float())
        assert float(vh) == float(ref_h)


def test_autocast_would_change_the_kernel_sums(rng):
    # Planted: the function itself under autocast computes in bfloat16 (so the
    # module's guard is what keeps the reductions in float32).
    x, y = pts(rng, n=200, m=200, d=8, dtype=torch.float32)
    ref = float(mmd(x, y, backend="dense"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        raw = float(mmd(x, y, backend="dense"))
        guarded = float(MMDLoss(backend="dense")(x, y))
    assert guarded == ref
    assert raw != ref


def test_low_precision_gradient_reaches_inputs(rng):
    x, y = pts(rng, dtype=torch.float32)
    xh = x.detach().bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = SinkhornLoss(eps=0.1)(xh, y.bfloat16())
    v.backward()
    assert xh.grad.dtype == torch.bfloat16 and torch.isfinite(xh.grad.float()).all()


@pytest.mark.parametrize("loss", LOSSES)
def test_under_torch_compile_eager_backend(rng, loss):
    # Dynamo's tracing (graph break at the solve) without Inductor's C++ build.
    net = torch.nn.Linear(2, 2).double()
    x, y = pts(rng)

    def step(x, y):
        return loss(net(x), y)

    if isinstance(loss, SlicedWassersteinLoss):
        loss.projections = TH
    v = torch.compile(step, backend="eager")(x, y)
    v.backward()
    assert_allclose(float(v.detach()), float(step(x, y).detach()), rtol=1e-12)
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.slow
def test_under_torch_compile_inductor(rng):
    net = torch.nn.Linear(2, 2).double()
    x, y = pts(rng, B=2)
    for loss in (SinkhornLoss(eps=0.1), MMDLoss(), WassersteinLoss()):

        def step(x, y, loss=loss):
            return loss(net(x), y).sum()

        v = torch.compile(step)(x, y)
        v.backward()
        assert_allclose(float(v.detach()), float(step(x, y).detach()), rtol=1e-12)


# Each loss and the functions whose keyword options it copies (in its typed
# signature); the first function holding an option gives its default.
FUNCTIONS = [
    (SinkhornLoss, [sinkhorn_divergence]),
    (MMDLoss, [mmd]),
    (WassersteinLoss, [wasserstein, exact_ot]),
    (SlicedWassersteinLoss, [sliced_wasserstein]),
]
OWN = {"max"}  # options of a loss itself (max picks max_sliced_wasserstein)


def _default_mismatches(cls, fns) -> dict:
    """``{option: (loss default, function default)}`` where they differ."""
    out = {}
    for name, par in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in OWN:
            continue
        held = [f for f in fns if name in inspect.signature(f).parameters]
        if not held:
            out[name] = (par.default, "not an option of the functions")
            continue
        want = inspect.signature(held[0]).parameters[name].default
        if par.default != want:
            out[name] = (par.default, want)
    return out


@pytest.mark.parametrize("cls, fns", FUNCTIONS, ids=[c.__name__ for c, _ in FUNCTIONS])
def test_loss_defaults_are_the_functions(cls, fns):
    # The losses repeat their functions' keyword options; the copy must not drift.
    assert _default_mismatches(cls, fns) == {}


def test_loss_defaults_check_sees_a_drift():
    # Planted: a function whose tol default differs, and one lacking an option.
    def drifted(x, y, *, eps=None, cost="sqeuclidean", p=None, q=2.0, reach=None,
                scaling=0.8, tol=1e-3, rtol=None, max_iter=1000,
                backend="auto"):  # fmt: skip
        pass

    def fewer(x, y, *, eps=None):
        pass

    assert _default_mismatches(SinkhornLoss, [drifted]) == {"tol": (None, 1e-3)}
    assert "cost" in _default_mismatches(SinkhornLoss, [fewer])


def test_bad_options_raise_at_call(rng):
    x, y = pts(rng)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        SinkhornLoss(eps=-1.0)(x, y)
    with pytest.raises(ValueError, match="estimator must be one of"):
        MMDLoss(estimator="nope")(x, y)
    with pytest.raises(ValueError, match="seed must be"):
        SlicedWassersteinLoss(seed=-3)
    with pytest.raises(ValueError, match="same number B"):
        WassersteinLoss()(torch.zeros(2, 4, 2), torch.zeros(3, 4, 2))


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "imq", "energy"])
@pytest.mark.parametrize(
    "estimator", ["unbiased", "biased", "all_pairs", "off_diagonal", "linear"]
)
def test_mmd_loss_every_kernel_and_estimator(rng, kernel, estimator):
    x, y = pts(rng, n=12, m=12)
    kw = dict(kernel=kernel, scale=1.3, estimator=estimator)
    assert_allclose(float(MMDLoss(**kw)(x, y)), float(mmd(x, y, **kw)), rtol=1e-12)
