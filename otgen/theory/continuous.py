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

import numpy as np
import torch
import torch.nn.functional as F
from scipy import integrate

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
    "aae_losses",
    "fgan_kl_bound",
    "gan_value",
    "js_divergence",
    "posterior_mean_decoder",
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

    def logpz(z):
        return float(_logpdf(z, 0.0, prior_std))

    centers = np.concatenate([mu, [0.0]])
    scale = float(max(s.max(), prior_std))
    ekl = mi = 0.0
    for i in range(len(p)):

        def f_kl(z, i=i):
            lq = _logpdf(z, mu[i], s[i])
            return np.exp(lq) * (lq - logpz(z))

        def f_mi(z, i=i):
            lq = _logpdf(z, mu[i], s[i])
            return np.exp(lq) * (lq - logqz(z))

        ekl += p[i] * quad_line(f_kl, [mu[i]], s[i])
        mi += p[i] * quad_line(f_mi, centers, scale)

    def f_agg(z):
        lqz = logqz(z)
        return np.exp(lqz) * (lqz - logpz(z))

    agg = quad_line(f_agg, centers, scale)
    return {
        "expected_kl": float(ekl),
        "mutual_information": float(mi),
        "aggregate_kl": float(agg),
    }


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
