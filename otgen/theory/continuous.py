r"""Continuous pieces of the theory: blur (Prop. E), VAE (Prop. V), GAN identities.

- :func:`posterior_mean_decoder`: :math:`G^*(z) = E[X | Z = z]` for a discrete
  :math:`P_X` and Gaussian encoders;
- :func:`vae_kl_terms`: the three terms of Prop. V2 by quadrature (1-D latent);
- :func:`gan_value`, :func:`js_divergence`, :func:`fgan_kl_bound`: the GAN and
  f-GAN (KL) objectives on finite spaces;
- :func:`wae_gan_losses`, :func:`aae_losses`: the two training losses of
  Prop. AAE, written independently (log-sigmoid against binary cross-entropy).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import integrate
from scipy.stats import norm

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _logpdf(z, mu, s):
    """Gaussian log-density (NumPy; much cheaper per call than scipy.stats)."""
    u = (z - mu) / s
    return -0.5 * u * u - np.log(s) - _LOG_SQRT_2PI


def _lse(v: np.ndarray, axis=None, keepdims=False):
    mx = np.max(v, axis=axis, keepdims=True)
    out = mx + np.log(np.exp(v - mx).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


__all__ = [
    "PartitionEncoders",
    "aae_losses",
    "encoder_prior_kl",
    "fgan_kl_bound",
    "gan_value",
    "gaussian_decoder_nll",
    "gaussian_decoder_sigma2",
    "js_divergence",
    "partition_encoders",
    "posterior_mean_decoder",
    "prior_trick_residual",
    "quad_line",
    "vae_kl_terms",
    "wae_gan_losses",
]


def posterior_mean_decoder(x, p, mu, s) -> tuple[Callable, Callable]:
    r"""The best decoder for a fixed encoder and squared cost (Prop. E).

    For :math:`P_X = \sum_i p_i \delta_{x_i}` and encoders
    :math:`Q(Z | x_i) = \mathcal N(\mu_i, \mathrm{diag}(s_i^2))`,

    .. math::
        G^*(z) = E[X | Z = z] = \frac{\sum_i p_i \mathcal N(z; \mu_i, s_i^2)
        x_i}{\sum_i p_i \mathcal N(z; \mu_i, s_i^2)},

    a strict convex combination of all :math:`x_i`.

    References: :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    x : array, shape (n, d)
        Data atoms.
    p : array, shape (n,)
        Their masses.
    mu : array, shape (n, d_z)
        Encoder means.
    s : array, shape (n,) or (n, d_z)
        Encoder standard deviations.

    Returns
    -------
    G : callable
        ``G(z)`` for codes of shape (k, d_z), returning (k, d).
    weights : callable
        ``weights(z)``, the posterior :math:`P(X = x_i | Z = z)`, shape (k, n).

    Examples
    --------
    >>> import numpy as np
    >>> G, w = posterior_mean_decoder(np.array([[0.0], [1.0]]), np.array([0.5, 0.5]),
    ...                               np.array([[-1.0], [1.0]]), np.ones(2))
    >>> G(np.zeros((1, 1))).round(12).tolist()
    [[0.5]]
    """
    x = np.atleast_2d(np.asarray(x, float))
    p = np.asarray(p, float)
    mu = np.asarray(mu, float).reshape(len(p), -1)
    s = np.broadcast_to(np.asarray(s, float).reshape(len(p), -1), mu.shape)
    with np.errstate(divide="ignore"):
        logp = np.log(p)

    def weights(z):
        z = np.asarray(z, float).reshape(-1, mu.shape[1])
        lg = _logpdf(z[:, None, :], mu[None], s[None]).sum(-1) + logp
        return np.exp(lg - _lse(lg, axis=1, keepdims=True))

    def G(z):
        return weights(z) @ x

    return G, weights


def quad_line(fn: Callable[[float], float], centers, scale: float) -> float:
    r"""Integrate ``fn`` over the real line with adaptive quadrature.

    The line is split at the points ``centers`` and :math:`\pm 12` ``scale``
    around them, each piece integrated by ``scipy.integrate.quad`` (relative
    tolerance 1e-11), the tails by its infinite-interval rule.

    Parameters
    ----------
    fn : callable
        Integrand of one float.
    centers : array
        Where the integrand has its mass.
    scale : float
        Width of that mass.

    Returns
    -------
    float
        :math:`\int_{\mathbb R} fn`.

    Examples
    --------
    >>> from scipy.stats import norm
    >>> round(quad_line(norm.pdf, [0.0], 1.0), 10)
    1.0
    """
    c = np.sort(np.asarray(centers, float).ravel())
    lo, hi = c[0] - 12 * scale, c[-1] + 12 * scale
    pts = np.unique(np.concatenate([[lo, hi], c]))
    kw = dict(epsabs=1e-14, epsrel=1e-11, limit=200)
    total = integrate.quad(fn, -np.inf, lo, **kw)[0]
    total += integrate.quad(fn, hi, np.inf, **kw)[0]
    for a, b in zip(pts[:-1], pts[1:]):
        total += integrate.quad(fn, a, b, **kw)[0]
    return float(total)


def vae_kl_terms(p, mu, s, *, prior_std: float = 1.0) -> dict[str, float]:
    r"""The terms of Prop. V2 by quadrature, for a 1-D latent.

    For :math:`P_X` with masses :math:`p_i`, encoders
    :math:`Q(Z|x_i) = \mathcal N(\mu_i, s_i^2)` and :math:`P_Z =
    \mathcal N(0, \sigma_z^2)`, with :math:`q_Z = \sum_i p_i q_i`:

    .. math::
        I_Q(X; Z) = \sum_i p_i \int q_i \log\frac{q_i}{q_Z}, \qquad
        \mathrm{KL}(Q_Z \| P_Z) = \int q_Z \log\frac{q_Z}{p_Z},

    and :math:`E_{P_X}\mathrm{KL}(Q(Z|X) \| P_Z) = \sum_i p_i \int q_i
    \log(q_i / p_Z)`, each computed by adaptive quadrature (log-densities via
    log-sum-exp).

    Parameters
    ----------
    p : array, shape (n,)
        Data masses.
    mu, s : array, shape (n,)
        Encoder means and standard deviations.
    prior_std : float, default=1.0
        :math:`\sigma_z`.

    Returns
    -------
    dict
        ``expected_kl``, ``mutual_information``, ``aggregate_kl``.

    Examples
    --------
    >>> import numpy as np
    >>> t = vae_kl_terms(np.ones(1), np.zeros(1), np.ones(1))
    >>> abs(t["expected_kl"]) < 1e-9, abs(t["mutual_information"]) < 1e-9
    (True, True)
    """
    p, mu, s = (np.asarray(v, float).ravel() for v in (p, mu, s))
    lp = np.log(p)

    def logq(z):
        return _logpdf(z, mu, s)

    def logqz(z):
        return float(_lse(lp + logq(z)))

    centers = np.concatenate([mu, [0.0]])
    scale = float(max(s.max(), prior_std))
    ekl = mi = 0.0
    for i in range(len(p)):

        def f_mi(z, i=i):
            lq = _logpdf(z, mu[i], s[i])
            return np.exp(lq) * (lq - logqz(z))

        ekl += p[i] * encoder_prior_kl(
            lambda z, i=i: _logpdf(z, mu[i], s[i]),
            prior_std=prior_std,
            centers=[mu[i]],
            scale=s[i],
        )
        mi += p[i] * quad_line(f_mi, centers, scale)

    agg = encoder_prior_kl(logqz, prior_std=prior_std, centers=centers, scale=scale)
    return {
        "expected_kl": float(ekl),
        "mutual_information": float(mi),
        "aggregate_kl": float(agg),
    }


# -- Prop. E: partition encoders -------------------------------------------------


def _check_masses(p) -> np.ndarray:
    p = np.asarray(p, float).ravel()
    if p.size == 0 or not np.isfinite(p).all() or (p <= 0).any():
        raise ValueError(
            f"p must be a non-empty vector of positive masses (got {p.size} entries, "
            f"smallest {p.min() if p.size else 'none'}); drop the atoms of mass 0."
        )
    if abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"p must sum to 1 (got {p.sum():.12g}); pass p / p.sum().")
    return p


def _check_std(prior_std) -> float:
    s = float(prior_std)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(
            f"prior_std must be a positive finite number (got {prior_std!r}); it is "
            "the standard deviation sigma_z of the prior N(0, sigma_z^2)."
        )
    return s


@dataclass(frozen=True)
class PartitionEncoders:
    r"""The partition encoders of Prop. E (WAE): the prior cut into cells.

    With :math:`P_Z = \mathcal N(0, \sigma_z^2)` on the line and masses
    :math:`p_i`, the cells are :math:`[c_{i-1}, c_i)` with
    :math:`c_i = \sigma_z \Phi^{-1}(p_1 + \dots + p_i)` (:math:`c_0 = -\infty`,
    :math:`c_n = +\infty`), and

    .. math::
        q_i(z) = \frac{p_Z(z)}{p_i}\, \mathbf 1[c_{i-1} \le z < c_i],

    the prior restricted to cell i (a truncated normal; for two atoms of mass
    1/2 the two half-normals). Then :math:`Q_Z = \sum_i p_i q_i = P_Z`
    exactly, and the decoder :math:`G(z) = x_{\text{cell}(z)}` reconstructs
    without error; yet each :math:`\mathrm{KL}(q_i \| p_Z) = -\log p_i`, so
    the VAE penalty :math:`E_X \mathrm{KL}` is the entropy
    :math:`H(p) = I(X; Z)` (Prop. V2 with :math:`\mathrm{KL}(Q_Z \| P_Z) = 0`).

    Attributes
    ----------
    p : ndarray, shape (n,)
        The masses :math:`p_i`.
    prior_std : float
        :math:`\sigma_z`.
    cuts : ndarray, shape (n + 1,)
        :math:`c_0 = -\infty < c_1 < \dots < c_n = +\infty`.
    """

    p: np.ndarray
    prior_std: float
    cuts: np.ndarray

    def _i(self, i) -> int:
        n = len(self.p)
        if (
            isinstance(i, bool)
            or not isinstance(i, (int, np.integer))
            or not 0 <= i < n
        ):
            raise ValueError(
                f"i must be an encoder index in [0, {n - 1}] (got {i!r}); one "
                "encoder per atom of P_X."
            )
        return int(i)

    def pdf(self, z, i: int):
        """Density :math:`q_i(z)` (scalar or array ``z``)."""
        i = self._i(i)
        z = np.asarray(z, float)
        inside = (self.cuts[i] <= z) & (z < self.cuts[i + 1])
        val = np.exp(_logpdf(z, 0.0, self.prior_std)) / self.p[i]
        return np.where(inside, val, 0.0)[()]

    def logpdf(self, z, i: int):
        r"""Log-density :math:`\log q_i(z)` (``-inf`` outside the cell)."""
        i = self._i(i)
        z = np.asarray(z, float)
        inside = (self.cuts[i] <= z) & (z < self.cuts[i + 1])
        val = _logpdf(z, 0.0, self.prior_std) - math.log(self.p[i])
        return np.where(inside, val, -np.inf)[()]

    def cell(self, z):
        """Index of the cell holding ``z``: the partition decoder's atom."""
        z = np.asarray(z, float)
        n = len(self.p)
        return np.clip(np.searchsorted(self.cuts, z, side="right") - 1, 0, n - 1)

    def kl_to_prior(self) -> np.ndarray:
        r"""Closed form :math:`\mathrm{KL}(q_i \| p_Z) = -\log p_i`, one per encoder."""
        return -np.log(self.p)

    def sample(self, i: int, size: int, seed: int | None = None) -> np.ndarray:
        r"""``size`` draws from :math:`q_i` (inverse CDF, seeded)."""
        i = self._i(i)
        rng = np.random.default_rng(seed)
        F = np.concatenate([[0.0], np.cumsum(self.p)])
        lo, hi = F[i], min(F[i + 1], 1.0)
        u = lo + rng.uniform(size=size) * (hi - lo)
        return self.prior_std * norm.ppf(u)


def partition_encoders(p, *, prior_std: float = 1.0) -> PartitionEncoders:
    r"""The partition encoders of Prop. E: the prior N(0, sigma_z^2) cut into cells.

    Cuts the line at :math:`c_i = \sigma_z \Phi^{-1}(p_1 + \dots + p_i)`
    and restricts the prior to each cell (see :class:`PartitionEncoders`):
    encoders with disjoint supports whose aggregate is exactly the prior,
    which WAE accepts at zero reconstruction error while a VAE pays
    :math:`\mathrm{KL}(q_i \| p_Z) = -\log p_i` each :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    p : array, shape (n,)
        Positive masses of the data atoms, summing to 1.
    prior_std : float, default=1.0
        :math:`\sigma_z`.

    Returns
    -------
    PartitionEncoders
        ``cuts``, ``pdf(z, i)``, ``logpdf(z, i)``, ``cell(z)``,
        ``kl_to_prior()``, ``sample(i, size, seed)``.

    Raises
    ------
    ValueError
        If ``p`` has a non-positive entry or does not sum to 1, or
        ``prior_std`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> enc = partition_encoders(np.array([0.5, 0.5]))  # two half-normals
    >>> enc.cuts.tolist()
    [-inf, 0.0, inf]
    >>> round(float(enc.pdf(1.0, 1)), 6), float(enc.pdf(1.0, 0))  # 2 N(1; 0, 1)
    (0.483941, 0.0)
    """
    p = _check_masses(p)
    s = _check_std(prior_std)
    cuts = s * norm.ppf(np.concatenate([[0.0], np.cumsum(p)]))
    cuts[-1] = np.inf  # cumsum may end at 1 - 1e-16: the last cell is unbounded
    return PartitionEncoders(p=p, prior_std=s, cuts=cuts)


# -- Prop. V: KL against the prior, Gaussian decoder -----------------------------


def _quad_on(fn: Callable[[float], float], centers, scale: float, support) -> float:
    """``quad_line`` restricted to ``support = (lo, hi)`` (ends may be infinite)."""
    lo, hi = (float(v) for v in support)
    if not lo < hi:
        raise ValueError(
            f"support must be an interval (lo, hi) with lo < hi (got {support!r}); "
            "pass the encoder's support, e.g. (0, inf) for a half-normal."
        )
    c = np.sort(np.asarray(centers, float).ravel())
    marks = np.concatenate([c, c - 12 * scale, c + 12 * scale])
    pts = np.unique(np.concatenate([[lo, hi], marks[(marks > lo) & (marks < hi)]]))
    kw = dict(epsabs=1e-14, epsrel=1e-11, limit=200)
    return float(sum(integrate.quad(fn, a, b, **kw)[0] for a, b in zip(pts, pts[1:])))


def encoder_prior_kl(
    logq: Callable[[float], float],
    *,
    prior_std: float = 1.0,
    centers=(0.0,),
    scale: float = 1.0,
    support: tuple[float, float] | None = None,
) -> float:
    r"""KL divergence of any 1-D encoder from the Gaussian prior, by quadrature.

    .. math::
        \mathrm{KL}(q \,\|\, p_Z) = \int q(z)\,\big[\log q(z) - \log p_Z(z)\big]
        \, dz, \qquad p_Z = \mathcal N(0, \sigma_z^2),

    for an encoder density :math:`q` given by its log-density: Gaussian or
    not (a truncated normal such as the partition encoders, a Laplace, the
    mixture :math:`q_Z` of Prop. V2). Adaptive quadrature split at
    ``centers`` and 12 ``scale`` around them (:func:`quad_line`), or over
    ``support`` only.

    Parameters
    ----------
    logq : callable
        :math:`z \mapsto \log q(z)` for a float :math:`z`.
    prior_std : float, default=1.0
        :math:`\sigma_z`.
    centers : sequence of float, default=(0,)
        Where :math:`q` has its mass (modes, jumps).
    scale : float, default=1.0
        The width of that mass.
    support : (lo, hi), optional
        The interval where :math:`q > 0` (ends may be infinite); None: the
        line. A density with jumps at its ends needs it.

    Returns
    -------
    float
        :math:`\mathrm{KL}(q \| p_Z)` in nats.

    Raises
    ------
    ValueError
        If ``prior_std`` or ``scale`` is not positive, or ``support`` is empty.

    Examples
    --------
    >>> import math
    >>> half = lambda z: math.log(2) - 0.5 * z * z - 0.5 * math.log(2 * math.pi)
    >>> round(encoder_prior_kl(half, support=(0.0, math.inf)), 12)  # = log 2
    0.69314718056
    """
    s = _check_std(prior_std)
    sc = float(scale)
    if not (math.isfinite(sc) and sc > 0):
        raise ValueError(
            f"scale must be a positive finite number (got {scale!r}); the width of "
            "the encoder's mass, e.g. its standard deviation."
        )

    def integrand(z):
        lq = logq(z)
        q = np.exp(lq)
        if q == 0:  # far tails (quad's infinite-interval rule reaches |z| ~ 1e300)
            return 0.0
        return q * (lq - float(_logpdf(z, 0.0, s)))

    if support is None:
        return quad_line(integrand, centers, sc)
    return _quad_on(integrand, centers, sc, support)


def gaussian_decoder_nll(x, g, sigma2: float):
    r"""Negative log-likelihood of a Gaussian decoder (Prop. V1).

    .. math::
        -\log \mathcal N(x;\, G(z), \sigma^2 I_d) =
        \frac{\|x - G(z)\|^2}{2\sigma^2} + \frac d2 \log(2\pi\sigma^2),

    over the last axis, so that :math:`2\sigma^2 \cdot` VAE is the squared
    reconstruction cost plus :math:`2\sigma^2` times the KL penalty, up to a
    constant.

    Parameters
    ----------
    x, g : array, shape (..., d)
        Data and decoder means :math:`G(z)` (broadcast together).
    sigma2 : float
        The decoder variance :math:`\sigma^2 > 0`.

    Returns
    -------
    ndarray or float, shape (...)
        One value per sample (a float for a single sample).

    Raises
    ------
    ValueError
        If ``sigma2`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> v = gaussian_decoder_nll(np.zeros(2), np.zeros(2), 1 / (2 * np.pi))
    >>> float(v)  # (d/2) log(2 pi sigma^2) = 0
    0.0
    """
    s2 = float(sigma2)
    if not (math.isfinite(s2) and s2 > 0):
        raise ValueError(
            f"sigma2 must be a positive finite variance (got {sigma2!r}); pass "
            "e.g. gaussian_decoder_sigma2(...) for the optimal one."
        )
    x, g = np.asarray(x, float), np.asarray(g, float)
    d = np.broadcast_shapes(x.shape, g.shape)[-1]
    return ((x - g) ** 2).sum(-1) / (2 * s2) + 0.5 * d * np.log(2 * np.pi * s2)


def gaussian_decoder_sigma2(sq_err, d: int, weights=None) -> float:
    r"""The decoder variance that minimises the Gaussian NLL (Prop. V1).

    For fixed :math:`G` and :math:`Q`,
    :math:`E\,[\|X - G(Z)\|^2/(2\sigma^2)] + \frac d2 \log(2\pi\sigma^2)` is
    minimal at

    .. math::
        \sigma^{2*} = \frac{E\,\|X - G(Z)\|^2}{d},

    the mean squared error per coordinate (set the derivative in
    :math:`\sigma^2`, :math:`-\mathrm{MSE}/(2\sigma^4) + d/(2\sigma^2)`, to 0).

    Parameters
    ----------
    sq_err : float or array, shape (k,)
        The squared errors :math:`\|x_k - G(z_k)\|^2` of samples, or their
        expectation.
    d : int
        The data dimension.
    weights : array, shape (k,), optional
        Weights of the samples (uniform when None).

    Returns
    -------
    float
        :math:`\sigma^{2*}`.

    Raises
    ------
    ValueError
        If ``d < 1``, a squared error is negative, or the weights do not match.

    Examples
    --------
    >>> gaussian_decoder_sigma2([1.0, 3.0], d=2)
    1.0
    """
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be a positive integer dimension (got {d!r}).")
    e = np.asarray(sq_err, float).ravel()
    if e.size == 0 or not np.isfinite(e).all() or (e < 0).any():
        raise ValueError(
            "sq_err must hold finite non-negative squared errors |x - G(z)|^2 (got "
            f"{e.size} values, smallest {e.min() if e.size else 'none'})."
        )
    if weights is None:
        return float(e.mean()) / d
    w = np.asarray(weights, float).ravel()
    if w.shape != e.shape or (w < 0).any() or not w.sum() > 0:
        raise ValueError(
            f"weights must be {e.size} non-negative numbers with a positive sum "
            f"(got shape {w.shape}); one weight per squared error."
        )
    return float((w * e).sum() / w.sum()) / d


# -- the prior trick (WAE-GAN, AVB) ----------------------------------------------


def prior_trick_residual(q_z):
    r"""The optimal residual of a latent discriminator with the prior trick.

    WAE-GAN on CelebA (after AVB) writes the discriminator's logit as
    :math:`t(z) = r(z) + \log p_Z(z)` (the full log-density, docs/paper.md
    ambiguity 10). The GAN objective
    :math:`E_{P_Z} \log \sigma(t) + E_{Q_Z} \log(1 - \sigma(t))` is maximised
    pointwise at :math:`t^* = \log p_Z - \log q_Z`, so the residual the network
    must learn is

    .. math::
        r^*(z) = -\log q_Z(z),

    independent of the prior: the trick removes :math:`\log p_Z` from what is
    learned.

    Parameters
    ----------
    q_z : float or array
        :math:`q_Z` at the codes: probabilities on a finite latent space, or
        density values (e.g. :math:`\sum_i p_i \mathcal N(z; \mu_i, s_i^2)`).

    Returns
    -------
    ndarray or float
        :math:`-\log q_Z`, same shape.

    Raises
    ------
    ValueError
        If a value is not positive and finite (where :math:`q_Z = 0` the
        optimum is :math:`+\infty`).

    Examples
    --------
    >>> import numpy as np
    >>> prior_trick_residual(np.array([0.5, 0.25])).round(6).tolist()
    [0.693147, 1.386294]
    """
    q = np.asarray(q_z, float)
    if not np.isfinite(q).all() or (q <= 0).any():
        raise ValueError(
            "q_z must be positive and finite (got "
            f"{int((~np.isfinite(q)).sum() + (q <= 0).sum())} bad values); where "
            "q_Z = 0 the optimal residual is +inf: restrict to codes Q_Z can reach."
        )
    return -np.log(q)


def js_divergence(P, Q) -> float:
    r"""Jensen-Shannon divergence (nats) of two finite distributions.

    .. math::
        \mathrm{JS}(P, Q) = \tfrac12 \mathrm{KL}(P \| M) + \tfrac12
        \mathrm{KL}(Q \| M), \quad M = (P + Q)/2.

    Parameters
    ----------
    P, Q : array, shape (k,)
        Probability vectors.

    Returns
    -------
    float
        :math:`\mathrm{JS} \in [0, \log 2]`.

    Examples
    --------
    >>> import numpy as np
    >>> round(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])), 9)
    0.693147181
    """
    P, Q = np.asarray(P, float), np.asarray(Q, float)
    M = 0.5 * (P + Q)

    def kl(A):
        pos = A > 0
        return float((A[pos] * np.log(A[pos] / M[pos])).sum())

    return 0.5 * kl(P) + 0.5 * kl(Q)


def gan_value(P, Q, logits) -> float:
    r"""The GAN objective on a finite space for discriminator logits :math:`t`.

    .. math::
        V(D) = E_P \log D + E_Q \log(1 - D), \quad D = \sigma(t);

    at :math:`D^* = P / (P + Q)` it equals :math:`2\,\mathrm{JS}(P, Q) - \log 4`
    :cite:`goodfellow2014gan`.

    Parameters
    ----------
    P, Q : array, shape (k,)
        Data and model probabilities.
    logits : array, shape (k,)
        Discriminator logits.

    Returns
    -------
    float
        :math:`V(D)`.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([0.5, 0.5])
    >>> bool(abs(gan_value(P, P, np.zeros(2)) + np.log(4)) < 1e-12)
    True
    """
    P, Q, t = (np.asarray(v, float) for v in (P, Q, logits))
    # log sigma(t) = -softplus(-t), log(1 - sigma(t)) = -softplus(t)
    return float(-(P * np.logaddexp(0, -t)).sum() - (Q * np.logaddexp(0, t)).sum())


def fgan_kl_bound(P, Q, T) -> float:
    r"""The f-GAN lower bound for the KL divergence :cite:`nowozin2016fgan`.

    With :math:`f(u) = u \log u`, :math:`f^*(t) = e^{t - 1}`:

    .. math::
        E_P T - E_Q e^{T - 1} \le \mathrm{KL}(P \| Q),

    with equality at :math:`T^* = f'(P/Q) = 1 + \log(P/Q)`.

    Parameters
    ----------
    P, Q : array, shape (k,)
        Probability vectors (:math:`Q > 0`).
    T : array, shape (k,)
        Critic values.

    Returns
    -------
    float
        The bound.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([0.5, 0.5])
    >>> round(fgan_kl_bound(P, P, np.ones(2)), 12)
    0.0
    """
    P, Q, T = (np.asarray(v, float) for v in (P, Q, T))
    return float((P * T).sum() - (Q * np.exp(T - 1.0)).sum())


def wae_gan_losses(x, z_prior, z_tilde, decoder, discriminator, *, lam: float):
    r"""WAE-GAN losses of Algorithm 1 (squared cost, non-saturating).

    .. math::
        L_D = -\tfrac{\lambda}{n} \sum_i [\log D(z_i) + \log(1 - D(\tilde z_i))],
        \quad
        L_{Q,G} = \tfrac1n \sum_i \|x_i - G(\tilde z_i)\|^2
        - \lambda \log D(\tilde z_i),

    written with log-sigmoids of the logits.

    Parameters
    ----------
    x : Tensor, shape (n, d)
        Data batch.
    z_prior, z_tilde : Tensor, shape (n, d_z)
        Prior samples and codes :math:`\tilde z_i \sim Q(Z|x_i)`.
    decoder, discriminator : callable
        :math:`G` and the logit of :math:`D`.
    lam : float
        :math:`\lambda`.

    Returns
    -------
    tuple of Tensor
        ``(loss_discriminator, loss_encoder_decoder)``.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(2, 1); z = torch.zeros(2, 1)
    >>> ld, lg = wae_gan_losses(x, z, z, lambda v: v, lambda v: v[:, 0], lam=1.0)
    >>> round(float(ld), 6), round(float(lg), 6)
    (1.386294, 0.693147)
    """
    d_real = discriminator(z_prior)
    d_fake = discriminator(z_tilde)
    loss_d = -lam * (F.logsigmoid(d_real) + F.logsigmoid(-d_fake)).mean()
    rec = ((x - decoder(z_tilde)) ** 2).sum(-1)
    loss_g = (rec - lam * F.logsigmoid(d_fake)).mean()
    return loss_d, loss_g


def aae_losses(x, z_prior, z_tilde, decoder, discriminator, *, lam: float):
    r"""Adversarial auto-encoder losses :cite:`makhzani2016aae`, weight lambda.

    Reconstruction phase :math:`\frac1n\sum_i \|x_i - G(\tilde z_i)\|^2`,
    regularisation phase as binary classification of prior samples (label 1)
    against codes (label 0) with binary cross-entropy; the encoder is trained
    to have its codes labelled 1, with weight :math:`\lambda`. The
    discriminator's loss is not weighted (Algorithm 1 of WAE-GAN multiplies it
    by :math:`\lambda`, which only rescales its step).

    Parameters
    ----------
    x : Tensor, shape (n, d)
        Data batch.
    z_prior, z_tilde : Tensor, shape (n, d_z)
        Prior samples and codes.
    decoder, discriminator : callable
        :math:`G` and the logit of :math:`D`.
    lam : float
        :math:`\lambda`.

    Returns
    -------
    tuple of Tensor
        ``(loss_discriminator, loss_encoder_decoder)``.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(2, 1); z = torch.zeros(2, 1)
    >>> ld, lg = aae_losses(x, z, z, lambda v: v, lambda v: v[:, 0], lam=1.0)
    >>> round(float(ld), 6), round(float(lg), 6)
    (1.386294, 0.693147)
    """
    d_real = discriminator(z_prior)
    d_fake = discriminator(z_tilde)
    bce = F.binary_cross_entropy_with_logits
    # Mean over the 2n labelled points, times 2: the sum of the two batch means.
    loss_d = 2.0 * bce(
        torch.cat([d_real, d_fake]),
        torch.cat([torch.ones_like(d_real), torch.zeros_like(d_fake)]),
    )
    rec = F.mse_loss(decoder(z_tilde), x, reduction="sum") / x.shape[0]
    loss_g = rec + lam * bce(d_fake, torch.ones_like(d_fake))
    return loss_d, loss_g
