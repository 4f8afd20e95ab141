"""Kernels: formulas against SciPy distances, PSD Gram matrices, scales."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.spatial.distance import cdist, pdist

from otgen import Kernel, kernel_matrix, median_heuristic, wae_imq_scale
from otgen.ot.kernels import WAE_IMQ_MULTISCALE, resolve_kernel
from tests.conftest import TOL


def reference_gram(u, v, name, s, beta=1.0):
    """Independent NumPy formulas on SciPy's Euclidean distances."""
    D = cdist(u, v)
    if name == "gaussian":
        return np.exp(-(D**2) / (2 * s * s))
    if name == "laplacian":
        return np.exp(-D / s)
    if name == "imq":
        return s / (s + D**2)
    return -((D / s) ** beta)


@pytest.mark.parametrize("name", ["gaussian", "laplacian", "imq", "energy"])
def test_gram_matches_reference(name, rng):
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(6, 4)) + 3.0
    got = kernel_matrix(x, y, kernel=name, scale=1.7)
    assert isinstance(got, np.ndarray)
    assert_allclose(got, reference_gram(x, y, name, 1.7), **TOL[torch.float64])


def test_energy_beta_and_multiscale(rng):
    x = rng.normal(size=(7, 2))
    got = kernel_matrix(x, kernel=Kernel("energy", beta=1.5), scale=[0.5, 2.0])
    want = reference_gram(x, x, "energy", 0.5, 1.5) + reference_gram(
        x, x, "energy", 2.0, 1.5
    )
    assert_allclose(got, want, **TOL[torch.float64])


def test_self_gram_has_exact_diagonal():
    # Far from the origin: the expanded |x|^2 + |y|^2 - 2<x, y> would cancel.
    x = torch.randn(50, 3, dtype=torch.float32) + 1e4
    K = kernel_matrix(x, kernel="laplacian", scale=1.0)
    assert torch.equal(K.diagonal(), torch.ones(50))
    assert K.dtype == torch.float32


@pytest.mark.parametrize("scales", [1.0, [0.1, 1.0, 10.0]])
def test_imq_gram_is_psd(scales):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 5))
    K = kernel_matrix(x, kernel="imq", scale=scales)
    assert_allclose(K, K.T, **TOL[torch.float64])
    assert np.linalg.eigvalsh(K).min() > -1e-10


def test_callable_kernel_and_torch_output():
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)

    def lin(u, v):
        return u @ v.T

    K = kernel_matrix(x, kernel=lin)
    assert torch.allclose(K, x @ x.T)
    K.sum().backward()
    assert x.grad is not None


def test_median_heuristic_matches_pdist(rng):
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    z = np.vstack([x, y])
    assert_allclose(median_heuristic(x, y), np.median(pdist(z)), rtol=1e-12)
    assert_allclose(
        median_heuristic(x, y, squared=True), np.median(pdist(z) ** 2), rtol=1e-12
    )
    # IMQ's "median" scale is in squared units.
    k = resolve_kernel("imq", "median", torch.from_numpy(x), torch.from_numpy(y))
    assert_allclose(k.scales[0], np.median(pdist(z) ** 2), rtol=1e-12)


def test_median_heuristic_subsamples_deterministically():
    x = np.random.default_rng(1).normal(size=(3000, 2))
    assert median_heuristic(x) == median_heuristic(x)


def test_wae_scale_is_mean_squared_distance():
    # docs/paper.md check 13: E||Z - Z'||^2 = 2 d_z sigma_z^2 (Monte Carlo, 4 SE).
    rng = np.random.default_rng(0)
    d_z, sigma = 8, 2.0
    z1 = rng.normal(scale=sigma, size=(200_000, d_z))
    z2 = rng.normal(scale=sigma, size=(200_000, d_z))
    sq = ((z1 - z2) ** 2).sum(1)
    assert abs(sq.mean() - wae_imq_scale(d_z, sigma)) < 4 * sq.std() / np.sqrt(sq.size)
    multi = wae_imq_scale(d_z, sigma, multiscale=True)
    assert_allclose(multi, [s * 2 * d_z * sigma**2 for s in WAE_IMQ_MULTISCALE])


def test_default_scales():
    x = torch.zeros(3, 5)
    assert resolve_kernel("imq", None, x).scales == (10.0,)
    assert resolve_kernel("gaussian", None, x).scales == (1.0,)
    assert resolve_kernel(Kernel("laplacian", scales=(3.0,)), None, x).scales == (3.0,)


def test_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernel_matrix(x, kernel="rbf")
    with pytest.raises(
        ValueError, match="kernel must be one of .*, a Kernel or a callable .got int"
    ):
        kernel_matrix(x, kernel=3)
    with pytest.raises(ValueError, match=r"beta must be in \(0, 2\]"):
        Kernel("energy", beta=2.5)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        kernel_matrix(x, kernel="imq", scale=-1.0)
    with pytest.raises(ValueError, match="scale must be a number"):
        kernel_matrix(x, kernel="imq", scale=[1.0, "a"])
    with pytest.raises(ValueError, match="scale must not be an empty sequence"):
        kernel_matrix(x, kernel="imq", scale=[])
    with pytest.raises(ValueError, match="scale must be a positive number, a seq"):
        kernel_matrix(x, kernel="imq", scale="mean")
    with pytest.raises(ValueError, match="scale has no effect for a callable"):
        kernel_matrix(x, kernel=lambda u, v: u @ v.T, scale=1.0)
    with pytest.raises(ValueError, match=r"Gram block of shape \(3, 3\)"):
        kernel_matrix(x, kernel=lambda u, v: u.sum(1))
    with pytest.raises(ValueError, match="the Gram matrix returned by kernel must"):
        kernel_matrix(x, kernel=lambda u, v: u @ v.T / 0.0)
    with pytest.raises(ValueError, match="median heuristic gave scale 0"):
        median_heuristic(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="median heuristic needs at least 2"):
        median_heuristic(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="d_z must be a positive integer"):
        wae_imq_scale(0)
    with pytest.raises(ValueError, match="prior_std must be finite and > 0"):
        wae_imq_scale(4, 0.0)
    with pytest.raises(ValueError, match="cannot compile a Python callable"):
        Kernel(fn=lambda u, v: u @ v.T).lazy(None, None)
