import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import wasserstein_distance

from otgen.models.nets import Encoding
from otgen.models.penalties import (
    AdversarialPenalty,
    ExactOTPenalty,
    KLPenalty,
    MMDPenalty,
    SinkhornPenalty,
    SlicedPenalty,
)
from otgen.models.presets import aae, wae_gan
from otgen.models.priors import GaussianPrior

F64 = dict(rtol=1e-10, atol=1e-12)


def _enc(z):
    return Encoding(z, z)


def _naive_imq_mmd2_all_pairs(q, p, c):
    """Algorithm 2 (all_pairs) by explicit double loops."""
    n = q.shape[0]

    def k(a, b):
        return c / (c + ((a - b) ** 2).sum())

    s_pp = sum(k(p[i], p[j]) for i in range(n) for j in range(n) if i != j)
    s_qq = sum(k(q[i], q[j]) for i in range(n) for j in range(n) if i != j)
    s_pq = sum(k(p[i], q[j]) for i in range(n) for j in range(n))
    return (s_pp + s_qq) / (n * (n - 1)) - 2 * s_pq / n**2


def test_mmd_penalty_matches_algorithm_2_brute_force():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(12, 3)), rng.normal(size=(12, 3)) + 0.5
    prior = GaussianPrior(3, std=1.5)
    got = MMDPenalty()(_enc(torch.from_numpy(q)), torch.from_numpy(p), prior)
    ref = _naive_imq_mmd2_all_pairs(q, p, 2 * 3 * 1.5**2)
    np.testing.assert_allclose(float(got), ref, **F64)
    multi = MMDPenalty(scales=(0.5, 2.0))(
        _enc(torch.from_numpy(q)), torch.from_numpy(p), prior
    )
    ref2 = sum(_naive_imq_mmd2_all_pairs(q, p, s * 13.5) for s in (0.5, 2.0))
    np.testing.assert_allclose(float(multi), ref2, **F64)


def test_mmd_penalty_is_zero_in_mean_for_prior_codes():
    prior = GaussianPrior(2)
    g = torch.Generator().manual_seed(0)
    vals = torch.stack(
        [
            MMDPenalty()(
                _enc(prior.sample(64, generator=g, dtype=torch.float64)),
                prior.sample(64, generator=g, dtype=torch.float64),
                prior,
            )
            for _ in range(200)
        ]
    )
    se = float(vals.std()) / math.sqrt(vals.numel())
    assert abs(float(vals.mean())) < 4 * se  # unbiased estimator of MMD^2 = 0


def test_kl_penalty_closed_form_against_torch():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(7, 3, generator=g, dtype=torch.float64)
    lv = torch.randn(7, 3, generator=g, dtype=torch.float64)
    prior = GaussianPrior(3, std=0.7)
    got = KLPenalty()(Encoding(mu, mu, lv), None, prior)
    q = torch.distributions.Normal(mu, (0.5 * lv).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), 0.7)
    ref = torch.distributions.kl_divergence(q, p).sum(1).mean()
    np.testing.assert_allclose(float(got), float(ref), **F64)
    assert not KLPenalty.is_divergence
    with pytest.raises(ValueError, match="needs a Gaussian encoder"):
        KLPenalty()(Encoding(mu, mu), None, prior)


def test_exact_penalty_against_assignment():
    rng = np.random.default_rng(2)
    q, p = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    C = np.sqrt(((q[:, None] - p[None]) ** 2).sum(-1))
    i, j = linear_sum_assignment(C)
    prior = GaussianPrior(2)
    zq = torch.from_numpy(q).requires_grad_(True)
    w1 = ExactOTPenalty(p=1)(_enc(zq), torch.from_numpy(p), prior)
    np.testing.assert_allclose(float(w1.detach()), C[i, j].mean(), **F64)
    w1.backward()  # differentiable through otgen.wasserstein
    assert torch.isfinite(zq.grad).all() and float(zq.grad.abs().sum()) > 0


def test_sliced_penalty_against_scipy_1d():
    rng = np.random.default_rng(3)
    q, p = rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) * 2
    g = torch.Generator().manual_seed(0)
    pen = SlicedPenalty(n_projections=5, p=1.0)
    got = pen(_enc(torch.from_numpy(q)), torch.from_numpy(p), GaussianPrior(3), g)
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(3, 5, generator=g, dtype=torch.float64).numpy()
    theta /= np.linalg.norm(theta, axis=0)
    ref = np.mean([wasserstein_distance(q @ t, p @ t) for t in theta.T])
    np.testing.assert_allclose(float(got), ref, **F64)


def test_adversarial_values():
    torch.manual_seed(0)
    pen = AdversarialPenalty(2, hidden=(8,)).double().requires_grad_(False)
    prior = GaussianPrior(2)
    zq = torch.randn(16, 2, dtype=torch.float64)
    zp = torch.randn(16, 2, dtype=torch.float64)
    logit_q = pen.critic(zq)[:, 0]
    ns = pen(_enc(zq), zp, prior)
    np.testing.assert_allclose(
        float(ns), float(-torch.log(torch.sigmoid(logit_q)).mean()), **F64
    )
    pen.generator_loss = "minimax"
    logit_p = pen.critic(zp)[:, 0]
    ref = (
        torch.log(torch.sigmoid(logit_p)).mean()
        + torch.log(1 - torch.sigmoid(logit_q)).mean()
        + math.log(4)
    )
    np.testing.assert_allclose(float(pen(_enc(zq), zp, prior)), float(ref), **F64)
    pen.prior_trick = True  # full log p_Z added to the logit (docs/paper.md 6.10)
    np.testing.assert_allclose(
        pen.logit(zq, prior).detach().numpy(),
        (logit_q + prior.log_prob(zq)).detach().numpy(),
        **F64,
    )


def test_aae_and_wae_gan_identical_losses_and_gradients():
    """docs/paper.md check 15: squared cost, same lambda: same loss and gradients."""
    lam = 3.0
    a = aae(2, lam=lam, seed=7).double()
    w = wae_gan(2, lam=lam, cost="squared", seed=7).double()
    x = torch.randn(
        32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    results = []
    for m in (a, w):
        g = torch.Generator().manual_seed(5)
        loss, terms = m.group_loss("model", x, lam=lam, generator=g)
        grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)
        g = torch.Generator().manual_seed(5)
        closs, _ = m.group_loss("critic", x, lam=lam, generator=g)
        cgrads = torch.autograd.grad(closs, list(m.penalty.parameters()))
        results.append((loss.detach(), grads, closs.detach(), cgrads))
    (la, ga, ca, cga), (lw, gw, cw, cgw) = results
    assert float(la) == float(lw)
    for u, v in zip(ga, gw):
        assert (u is None and v is None) or torch.equal(u, v)
    # the critic objective differs only by its scale: 1 (AAE) vs lambda (Alg. 1)
    np.testing.assert_allclose(float(cw), lam * float(ca), **F64)
    for u, v in zip(cga, cgw):
        np.testing.assert_allclose(v.numpy(), lam * u.numpy(), **F64)


def test_penalty_option_errors():
    with pytest.raises(ValueError, match="penalty must be 'mmd2' or 'mmd'"):
        MMDPenalty(penalty="mmd3")
    with pytest.raises(ValueError, match="scales must be positive"):
        MMDPenalty(scales=(0.0,))
    with pytest.raises(ValueError, match="generator_loss must be"):
        AdversarialPenalty(2, generator_loss="wasserstein")
    with pytest.raises(ValueError, match="p must be >= 1"):
        ExactOTPenalty(p=0.5)
    with pytest.raises(ValueError, match="n_projections must be >= 1"):
        SlicedPenalty(n_projections=0)


def test_sinkhorn_penalty_calls_the_library_divergence():
    divergence = pytest.importorskip("otgen.ot.divergence")
    sinkhorn_divergence = divergence.sinkhorn_divergence

    rng = np.random.default_rng(4)
    q, p = (
        torch.from_numpy(rng.normal(size=(20, 2))),
        torch.from_numpy(rng.normal(size=(20, 2)) + 1),
    )
    prior = GaussianPrior(2)
    pen = SinkhornPenalty(rel_eps=0.05)
    got = pen(_enc(q), p, prior)
    ref = sinkhorn_divergence(q, p, eps=0.05 * prior.imq_scale, p=2)
    np.testing.assert_allclose(float(got), float(ref), **F64)
    assert float(got) > 0.5  # mean shift of 1 in 2-D: W_2^2 about 2


def test_vae_loss_is_negative_elbo_and_v1_identity():
    """Prop. V1: 2 sigma^2 * VAE = squared cost + 2 sigma^2 KL + const."""
    from otgen.models.presets import vae

    m = vae(2, decoder_sigma=0.3, seed=0).double()
    sigma = float(m.decoder.log_sigma.exp())  # 0.3 rounded to float32 at build
    x = torch.randn(
        16, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    with torch.no_grad():
        loss, terms = m.group_loss(
            "model", x, lam=1.0, generator=torch.Generator().manual_seed(3)
        )
        enc = m.encode(x, generator=torch.Generator().manual_seed(3))
        mean = m.decoder(enc.z)
        nll = -torch.distributions.Normal(mean, sigma).log_prob(x).sum(1).mean()
        q = torch.distributions.Normal(enc.mean, (0.5 * enc.logvar).exp())
        kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
        np.testing.assert_allclose(float(loss), float(nll + kl.sum(1).mean()), **F64)
        sq = ((x - mean) ** 2).sum(1).mean()
        const = 2 * sigma**2 * (2 / 2) * math.log(2 * math.pi * sigma**2)  # d = 2
        np.testing.assert_allclose(
            float(2 * sigma**2 * loss),
            float(sq + 2 * sigma**2 * terms["penalty"] + const),
            **F64,
        )


def test_gradient_penalty_of_a_linear_critic():
    from otgen.models.penalties import gradient_penalty

    lin = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))  # |grad f| = 5 everywhere
    x, y = (
        torch.randn(10, 3, dtype=torch.float64),
        torch.randn(10, 3, dtype=torch.float64),
    )
    gp = gradient_penalty(lin, x, y, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(float(gp.detach()), 16.0, **F64)
    gp0 = gradient_penalty(lin, x, y, center=0.0)
    np.testing.assert_allclose(float(gp0.detach()), 25.0, **F64)
