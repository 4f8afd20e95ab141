"""The public theory quantities (issue 19, item 5) against independent
references: SciPy's distributions and quadrature, closed forms derived here,
Monte Carlo (4 standard errors) and numerical optimisation."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import halfnorm, laplace, multivariate_normal, norm, truncnorm

from otgen.theory import (
    PartitionEncoders,
    encoder_prior_kl,
    gaussian_decoder_nll,
    gaussian_decoder_sigma2,
    partition_encoders,
    prior_trick_residual,
)

MC_SE = 4.0  # Monte Carlo tolerance: 4 standard errors (docs/paper.md section 5)


# -- partition encoders ----------------------------------------------------------


def test_two_equal_cells_are_the_half_normals():
    enc = partition_encoders(np.array([0.5, 0.5]), prior_std=1.7)
    assert isinstance(enc, PartitionEncoders)
    assert enc.cuts.tolist() == [-np.inf, 0.0, np.inf]
    z = np.linspace(-5, 5, 41)
    ref = halfnorm(scale=1.7)
    np.testing.assert_allclose(enc.pdf(z, 1), ref.pdf(z), rtol=1e-13, atol=0)
    neg = z < 0  # cells are [c_{i-1}, c_i): z = 0 belongs to the second
    np.testing.assert_allclose(enc.pdf(z[neg], 0), ref.pdf(-z[neg]), rtol=1e-13)
    assert enc.pdf(0.0, 0) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_partition_encoders_are_truncated_normals(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(5))
    s = float(rng.uniform(0.5, 2.0))
    enc = partition_encoders(p, prior_std=s)
    np.testing.assert_allclose(enc.cuts[1:-1], s * norm.ppf(np.cumsum(p)[:-1]))
    z = np.linspace(-4 * s, 4 * s, 201)
    for i in range(5):
        lo, hi = enc.cuts[i] / s, enc.cuts[i + 1] / s
        ref = truncnorm(lo, hi, scale=s)
        inside = (z > enc.cuts[i]) & (z < enc.cuts[i + 1])
        np.testing.assert_allclose(enc.pdf(z, i)[inside], ref.pdf(z[inside]), rtol=1e-9)
        assert (enc.pdf(z, i)[~inside & (z != enc.cuts[i])] == 0).all()
        np.testing.assert_allclose(
            np.exp(enc.logpdf(z, i)), enc.pdf(z, i), rtol=1e-13, atol=0
        )
        mass = integrate.quad(lambda t, i=i: enc.pdf(t, i), *enc.cuts[i : i + 2])[0]
        assert mass == pytest.approx(1.0, abs=1e-9)


def test_partition_mixture_is_the_prior_and_the_decoder_is_exact():
    p = np.array([0.1, 0.3, 0.2, 0.4])
    enc = partition_encoders(p, prior_std=0.8)
    z = np.linspace(-4, 4, 301)
    mix = sum(p[i] * enc.pdf(z, i) for i in range(4))
    np.testing.assert_allclose(mix, norm(scale=0.8).pdf(z), rtol=1e-13)
    # Every code decodes to the atom whose cell holds it: zero error.
    for i in range(4):
        zs = enc.sample(i, 2000, seed=i)
        assert (enc.cell(zs) == i).all()
        assert (enc.pdf(zs, i) > 0).all()


def test_partition_samples_follow_the_truncated_normal():
    p = np.array([0.25, 0.5, 0.25])
    enc = partition_encoders(p, prior_std=1.3)
    n = 20000
    for i in range(3):
        zs = enc.sample(i, n, seed=10 + i)
        ref = truncnorm(enc.cuts[i] / 1.3, enc.cuts[i + 1] / 1.3, scale=1.3)
        se = zs.std(ddof=1) / math.sqrt(n)
        assert abs(zs.mean() - ref.mean()) <= MC_SE * se
    # Reproducible, and planted: a sample of another cell is rejected.
    np.testing.assert_array_equal(enc.sample(1, 5, seed=3), enc.sample(1, 5, seed=3))
    assert (enc.cell(enc.sample(0, 100, seed=0)) != 1).all()


def test_partition_errors():
    with pytest.raises(ValueError, match="p must sum to 1"):
        partition_encoders(np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="positive masses"):
        partition_encoders(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="prior_std must be a positive"):
        partition_encoders(np.array([1.0]), prior_std=0.0)
    with pytest.raises(ValueError, match=r"i must be an encoder index in \[0, 1\]"):
        partition_encoders(np.array([0.5, 0.5])).pdf(0.0, 2)


# -- KL of an encoder against the prior ------------------------------------------


def gauss_kl(mu, s, sz):
    """KL(N(mu, s^2) || N(0, sz^2)), derived by hand."""
    return math.log(sz / s) + (s * s + mu * mu) / (2 * sz * sz) - 0.5


def laplace_kl(mu, b, sz):
    """KL(Laplace(mu, b) || N(0, sz^2)) = -H + E[z^2] / (2 sz^2) + log(2 pi sz^2)/2."""
    entropy = 1 + math.log(2 * b)
    return (
        -entropy
        + (mu * mu + 2 * b * b) / (2 * sz * sz)
        + 0.5 * math.log(2 * math.pi * sz * sz)
    )


def test_kl_of_a_gaussian_encoder_is_the_closed_form():
    for mu, s, sz in [(0.3, 0.5, 1.0), (-1.2, 1.4, 0.7), (2.0, 0.1, 2.5)]:
        got = encoder_prior_kl(
            lambda z, mu=mu, s=s: norm.logpdf(z, mu, s),
            prior_std=sz,
            centers=[mu],
            scale=s,
        )
        assert got == pytest.approx(gauss_kl(mu, s, sz), rel=1e-9, abs=1e-12)


def test_kl_of_a_laplace_encoder_closed_form_and_monte_carlo():
    mu, b, sz = 0.4, 0.6, 1.2
    got = encoder_prior_kl(
        lambda z: laplace.logpdf(z, mu, b), prior_std=sz, centers=[mu], scale=b
    )
    assert got == pytest.approx(laplace_kl(mu, b, sz), rel=1e-9)
    rng = np.random.default_rng(0)
    z = rng.laplace(mu, b, size=200_000)
    v = laplace.logpdf(z, mu, b) - norm.logpdf(z, 0, sz)
    assert abs(v.mean() - got) <= MC_SE * v.std(ddof=1) / math.sqrt(z.size)
    # Planted: the KL against a prior of another width differs.
    other = encoder_prior_kl(
        lambda z: laplace.logpdf(z, mu, b), prior_std=1.0, centers=[mu], scale=b
    )
    assert abs(other - got) > 1e-2


def test_kl_of_the_partition_encoders_is_minus_log_p():
    p = np.array([0.1, 0.3, 0.2, 0.4])
    enc = partition_encoders(p, prior_std=1.5)
    np.testing.assert_allclose(enc.kl_to_prior(), -np.log(p), rtol=1e-15)
    for i in range(4):
        got = encoder_prior_kl(
            lambda z, i=i: float(enc.logpdf(z, i)),
            prior_std=1.5,
            centers=[c for c in enc.cuts[i : i + 2] if np.isfinite(c)],
            scale=1.5,
            support=(enc.cuts[i], enc.cuts[i + 1]),
        )
        assert got == pytest.approx(-math.log(p[i]), rel=1e-9)
    # So the VAE penalty E_X KL is the entropy of p (= I(X; Z), KL(Q_Z||P_Z) = 0).
    assert p @ enc.kl_to_prior() == pytest.approx(-(p * np.log(p)).sum(), rel=1e-14)


def test_kl_of_a_mixture_agrees_with_monte_carlo():
    p, mu, s = np.array([0.3, 0.7]), np.array([-1.0, 1.5]), np.array([0.5, 0.8])

    def logq(z):
        return float(np.logaddexp(*(np.log(p) + norm.logpdf(z, mu, s))))

    got = encoder_prior_kl(logq, prior_std=1.0, centers=mu, scale=0.8)
    rng = np.random.default_rng(1)
    k = rng.choice(2, p=p, size=100_000)
    z = rng.normal(mu[k], s[k])
    lq = np.logaddexp(
        *(np.log(p)[:, None] + norm.logpdf(z[None], mu[:, None], s[:, None]))
    )
    v = lq - norm.logpdf(z)
    assert abs(v.mean() - got) <= MC_SE * v.std(ddof=1) / math.sqrt(z.size)


def test_kl_errors():
    with pytest.raises(ValueError, match="support must be an interval"):
        encoder_prior_kl(norm.logpdf, support=(1.0, 0.0))
    with pytest.raises(ValueError, match="scale must be a positive"):
        encoder_prior_kl(norm.logpdf, scale=-1.0)
    with pytest.raises(ValueError, match="prior_std must be a positive"):
        encoder_prior_kl(norm.logpdf, prior_std=math.nan)


# -- Gaussian decoder ------------------------------------------------------------


def test_nll_is_minus_scipys_logpdf():
    rng = np.random.default_rng(2)
    for d in (1, 3, 7):
        x, g = rng.normal(size=(6, d)), rng.normal(size=(6, d))
        s2 = float(rng.uniform(0.1, 3.0))
        ref = [
            -multivariate_normal(gg, s2 * np.eye(d)).logpdf(xx) for xx, gg in zip(x, g)
        ]
        np.testing.assert_allclose(gaussian_decoder_nll(x, g, s2), ref, rtol=1e-12)
    one = gaussian_decoder_nll(np.ones(2), np.zeros(2), 0.5)
    assert one == pytest.approx(2 / (2 * 0.5) + math.log(2 * math.pi * 0.5))


def test_optimal_sigma2_minimises_the_mean_nll():
    rng = np.random.default_rng(3)
    d = 4
    x, g = rng.normal(size=(50, d)), rng.normal(size=(50, d)) * 0.5
    w = rng.uniform(0.1, 1.0, size=50)
    sq = ((x - g) ** 2).sum(1)
    for weights in (None, w):
        ww = np.ones(50) if weights is None else weights

        def mean_nll(logs2, ww=ww):
            return float(ww @ gaussian_decoder_nll(x, g, math.exp(logs2)) / ww.sum())

        opt = minimize_scalar(mean_nll, bracket=(-3.0, 3.0), tol=1e-12)
        best = gaussian_decoder_sigma2(sq, d, weights)
        assert best == pytest.approx(math.exp(opt.x), rel=1e-6)
        # The minimum value is (d/2)(1 + log(2 pi sigma2*)).
        assert mean_nll(math.log(best)) == pytest.approx(
            0.5 * d * (1 + math.log(2 * math.pi * best)), rel=1e-12
        )
        # Planted: the MSE without the division by d is not the minimiser.
        assert mean_nll(math.log(best * d)) > mean_nll(math.log(best)) + 0.1
    assert gaussian_decoder_sigma2(6.0, 3) == 2.0  # an expectation given directly


def test_decoder_errors():
    with pytest.raises(ValueError, match="sigma2 must be a positive"):
        gaussian_decoder_nll(np.zeros(2), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="d must be a positive integer"):
        gaussian_decoder_sigma2([1.0], 0)
    with pytest.raises(ValueError, match="non-negative squared errors"):
        gaussian_decoder_sigma2([-1.0], 2)
    with pytest.raises(ValueError, match="weights must be 2 non-negative"):
        gaussian_decoder_sigma2([1.0, 2.0], 2, weights=[1.0])


# -- prior-trick residual --------------------------------------------------------


def gan_objective(r, pz, qz):
    """E_P log sigma(t) + E_Q log(1 - sigma(t)), t = r + log p_Z (finite space)."""
    t = r + np.log(pz)
    return float(-(pz * np.logaddexp(0, -t)).sum() - (qz * np.logaddexp(0, t)).sum())


def test_residual_maximises_the_gan_objective_finite():
    rng = np.random.default_rng(4)
    qz = rng.dirichlet(3 * np.ones(6))
    res = prior_trick_residual(qz)
    for _ in range(2):  # two different priors: the same optimal residual
        pz = rng.dirichlet(3 * np.ones(6))
        opt = minimize(
            lambda r, pz=pz: -gan_objective(r, pz, qz),
            np.zeros(6),
            method="BFGS",
            options={"gtol": 1e-11},
        ).x
        np.testing.assert_allclose(opt, res, atol=1e-5)
        # Planted: -log p_Z (the residual without the trick's shift) is worse.
        assert gan_objective(-np.log(pz), pz, qz) < gan_objective(res, pz, qz) - 1e-3


def test_residual_maximises_the_gan_objective_pointwise_continuous():
    # Q_Z a Gaussian mixture, P_Z = N(0, 1): at each z the integrand
    # p(z) log sigma(t) + q(z) log(1 - sigma(t)) is maximised at t = r* + log p.
    p, mu, s = np.array([0.4, 0.6]), np.array([-1.0, 1.0]), np.array([0.6, 0.9])
    for z in (-2.0, -0.3, 0.0, 1.2, 2.5):
        pz = norm.pdf(z)
        qz = float(p @ norm.pdf(z, mu, s))
        opt = minimize_scalar(
            lambda t, pz=pz, qz=qz: pz * np.logaddexp(0, -t) + qz * np.logaddexp(0, t),
            bracket=(-5, 5),
            tol=1e-12,
        )
        assert opt.x - math.log(pz) == pytest.approx(prior_trick_residual(qz), abs=1e-6)


def test_residual_errors():
    with pytest.raises(ValueError, match="q_z must be positive and finite"):
        prior_trick_residual(np.array([0.5, 0.0]))
