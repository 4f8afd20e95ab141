import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from otgen.models.costs import reconstruction_cost
from otgen.models.data import TOYS, get_toy, to_data_tensor
from otgen.models.priors import GaussianPrior, SpherePrior, UniformPrior, make_prior

# Monte Carlo checks: 4 standard errors (docs/paper.md section 5).
MC_SE = 4.0


@pytest.mark.parametrize("name", list(TOYS))
def test_toy_sample_is_reproducible_and_seeded(name):
    toy = get_toy(name)
    a = toy.sample(300, seed=3)
    assert a.shape == (300, toy.dim) and a.dtype == torch.float32
    assert torch.equal(a, toy.sample(300, seed=3))
    assert not torch.equal(a, toy.sample(300, seed=4))


def test_ring8_definition_and_stratified_counts():
    toy = get_toy("ring8")
    x = toy.sample(800, seed=0, stratified=True).double().numpy()
    d2 = ((x[:, None] - toy.centers[None]) ** 2).sum(-1)
    counts = np.bincount(d2.argmin(1), minlength=8)
    assert counts.tolist() == [100] * 8  # exactly n/K per component
    np.testing.assert_allclose(np.linalg.norm(toy.centers, axis=1), 2.0)
    resid = x - toy.centers[d2.argmin(1)]
    se = toy.sigma**2 * math.sqrt(2 / resid.size)
    assert abs(resid.var() - toy.sigma**2) < MC_SE * se


def test_mixture_log_prob_matches_scipy():
    toy = get_toy("grid25")
    x = np.random.default_rng(0).normal(size=(50, 2)) * 3
    comps = [
        stats.multivariate_normal(c, toy.sigma**2 * np.eye(2)).logpdf(x)
        for c in toy.centers
    ]
    ref = logsumexp(np.stack(comps), axis=0) - math.log(25)
    np.testing.assert_allclose(toy.log_prob(x).numpy(), ref, rtol=1e-10)


def test_gaussian_toy_log_prob_and_moments():
    toy = get_toy("gaussian")
    x = np.random.default_rng(1).normal(size=(20, 2))
    ref = stats.multivariate_normal([1, -1], [[1, 0.8], [0.8, 1]]).logpdf(x)
    np.testing.assert_allclose(toy.log_prob(x).numpy(), ref, rtol=1e-10)
    s = toy.sample(20000, seed=0, stratified=True, dtype=torch.float64).numpy()
    assert abs(np.corrcoef(s.T)[0, 1] - 0.8) < 0.02  # SE about 0.0025


def test_checkerboard_density_integrates_to_one():
    toy = get_toy("checkerboard")
    g = np.linspace(-2.5, 2.5, 501)[:-1] + 0.005  # cell midpoints, h = 0.01
    xx = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    total = np.exp(toy.log_prob(xx).numpy()).sum() * 0.01**2
    assert abs(total - 1) < 1e-9
    s = toy.sample(2000, seed=0).numpy()
    assert np.isfinite(toy.log_prob(s).numpy()).all()  # samples lie in the support


def test_no_density_raises():
    with pytest.raises(ValueError, match="no Lebesgue density"):
        get_toy("curve2d").log_prob(np.zeros((1, 2)))


def test_bad_names_and_data():
    with pytest.raises(ValueError, match="data must be one of"):
        get_toy("ring9")
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        get_toy("ring8").sample(0)
    with pytest.raises(ValueError, match="finite"):
        to_data_tensor(np.array([[0.0], [np.nan]]))


@pytest.mark.parametrize(
    "prior",
    [
        GaussianPrior(3, std=2.0),
        UniformPrior(2, half_width=1.5),
        SpherePrior(4, radius=2),
    ],
)
def test_imq_scale_is_mean_squared_distance(prior):
    g = torch.Generator().manual_seed(0)
    z = prior.sample(40000, generator=g, dtype=torch.float64)
    d2 = ((z[:20000] - z[20000:]) ** 2).sum(1)
    se = float(d2.std()) / math.sqrt(d2.numel())
    assert abs(float(d2.mean()) - prior.imq_scale) < MC_SE * se


def test_prior_log_probs():
    z = torch.randn(10, 3, dtype=torch.float64)
    ref = stats.multivariate_normal(np.zeros(3), 4 * np.eye(3)).logpdf(z.numpy())
    got = GaussianPrior(3, std=2.0).log_prob(z).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    u = UniformPrior(2, half_width=0.5)
    np.testing.assert_allclose(u.log_prob(torch.zeros(1, 2)).item(), 0.0)
    assert u.log_prob(torch.ones(1, 2)).item() == -math.inf
    # circle of radius 2: density 1 / (4 pi) on the curve
    np.testing.assert_allclose(
        SpherePrior(2, radius=2.0).log_prob(torch.zeros(1, 2)).item(),
        -math.log(4 * math.pi),
    )
    s = SpherePrior(5, radius=3.0).sample(100, dtype=torch.float64)
    np.testing.assert_allclose(s.norm(dim=1).numpy(), 3.0, rtol=1e-12)


def test_prior_errors():
    with pytest.raises(ValueError, match="prior must be one of"):
        make_prior("cauchy", d_z=2)
    with pytest.raises(ValueError, match="prior_std must be finite and > 0"):
        make_prior("gaussian", d_z=2, std=-1.0)
    with pytest.raises(ValueError, match="d_z must be >= 2 for a sphere"):
        SpherePrior(1)


def test_costs_against_references():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 4, generator=g, dtype=torch.float64)
    y = torch.randn(6, 4, generator=g, dtype=torch.float64)
    xn, yn = x.numpy(), y.numpy()
    np.testing.assert_allclose(
        reconstruction_cost(x, y, cost="squared").numpy(), ((xn - yn) ** 2).sum(1)
    )
    np.testing.assert_allclose(
        reconstruction_cost(x, y, cost="euclidean").numpy(),
        np.linalg.norm(xn - yn, axis=1),
    )
    np.testing.assert_allclose(
        reconstruction_cost(x, y, cost="l1").numpy(), np.abs(xn - yn).sum(1)
    )
    p = 1 / (1 + np.exp(-yn))  # cross-entropy with soft targets in [0, 1]
    bern = -(xn * np.log(p) + (1 - xn) * np.log(1 - p)).sum(1)
    np.testing.assert_allclose(
        reconstruction_cost(x, y, cost="bernoulli").numpy(), bern, rtol=1e-10
    )
    ls = torch.tensor(math.log(0.3), dtype=torch.float64)
    gauss = -torch.distributions.Normal(y, 0.3).log_prob(x).sum(1)
    np.testing.assert_allclose(
        reconstruction_cost(x, y, cost="gaussian", log_sigma=ls).numpy(),
        gauss.numpy(),
        rtol=1e-12,
    )


def test_cost_errors():
    with pytest.raises(ValueError, match="cost must be one of"):
        reconstruction_cost(torch.zeros(1, 2), torch.zeros(1, 2), cost="huber")
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_cost(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="needs the decoder's log_sigma"):
        reconstruction_cost(torch.zeros(1, 2), torch.zeros(1, 2), cost="gaussian")


def test_prior_accepts_numpy_integers():
    prior = make_prior("gaussian", d_z=np.int64(3))
    assert prior.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 3)
    with pytest.raises(ValueError, match="d_z must be an integer >= 1"):
        make_prior("gaussian", d_z=np.float64(3.0))
