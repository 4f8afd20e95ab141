"""Batched W_p and Sinkhorn divergence: x, y of shape (B, n, d) give B values,
equal to a loop over the pairs (NumPy and torch, weights per pair or shared,
gradients to every pair), and clear errors on mismatched batches."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from otgen import sinkhorn_divergence, wasserstein


def batch(rng, B=3, n=12, m=9, d=2):
    return rng.normal(size=(B, n, d)), 1.5 * rng.normal(size=(B, m, d)) + 0.3


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_exact_batch_equals_loop(rng, p):
    x, y = batch(rng)
    a = rng.random((3, 12)) + 0.1
    a /= a.sum(1, keepdims=True)
    got = wasserstein(x, y, p, a=a)
    want = [wasserstein(x[i], y[i], p, a=a[i]) for i in range(3)]
    assert got.shape == (3,) and got.dtype == np.float64
    assert_allclose(got, want, rtol=1e-12)
    # Planted: the pairs are not interchangeable (a shuffled loop differs).
    assert np.abs(got - np.roll(want, 1)).max() > 1e-3


def test_line_batch_and_shared_weights(rng):
    x, y = rng.normal(size=(4, 20, 1)), rng.normal(size=(4, 30, 1))
    b = rng.random(30) + 0.1
    b /= b.sum()
    got = wasserstein(x, y, 2, b=b)
    assert_allclose(got, [wasserstein(x[i], y[i], 2, b=b) for i in range(4)])


def test_entropic_batch_equals_loop(rng):
    x, y = batch(rng)
    got = wasserstein(x, y, method="sinkhorn", eps=0.05)
    want = [wasserstein(x[i], y[i], method="sinkhorn", eps=0.05) for i in range(3)]
    assert_allclose(got, want, rtol=1e-12)
    s = sinkhorn_divergence(x, y, eps=0.05, reach=2.0)
    want = [sinkhorn_divergence(x[i], y[i], eps=0.05, reach=2.0) for i in range(3)]
    assert_allclose(s, want, rtol=1e-12)


def test_torch_batch_gradients_reach_every_pair(rng):
    x, y = batch(rng)
    xt = torch.tensor(x, requires_grad=True)
    for fn in (
        lambda u: wasserstein(u, torch.tensor(y)),
        lambda u: sinkhorn_divergence(u, torch.tensor(y), eps=0.1),
    ):
        v = fn(xt)
        assert v.shape == (3,)
        (g,) = torch.autograd.grad(v.sum(), xt)
        assert torch.isfinite(g).all() and (g.abs().sum((1, 2)) > 0).all()


def test_torch_batch_gradient_equals_loop_gradient(rng):
    x, y = batch(rng)
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(wasserstein(xt, torch.tensor(y)).sum(), xt)
    for i in range(3):
        xi = torch.tensor(x[i], requires_grad=True)
        (gi,) = torch.autograd.grad(wasserstein(xi, torch.tensor(y[i])), xi)
        assert_allclose(g[i].numpy(), gi.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((3, 5, 2)), np.zeros((5, 2))), r"shape \(B, n, d\)"),
        ((np.zeros((3, 5, 2)), np.zeros((2, 5, 2))), "same number B"),
    ],
)
def test_mismatched_batches_raise(args, match):
    with pytest.raises(ValueError, match=match):
        wasserstein(*args)


def test_bad_batched_weights_raise(rng):
    x, y = batch(rng)
    with pytest.raises(ValueError, match=r"a must have shape \(3, 12\)"):
        wasserstein(x, y, a=np.ones((2, 12)) / 12)
