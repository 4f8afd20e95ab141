r"""Gaussian closed forms used by the checks: KL, Monge maps, RBF-MMD.

For :math:`\mathcal N(m_1, \Sigma_1)` and :math:`\mathcal N(m_2, \Sigma_2)`
these are the textbook formulas; the squared 2-Wasserstein distance itself is
:func:`otgen.gaussian_w2`. All functions take and return NumPy float64.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.stats import norm

from otgen.ot.gaussian import gaussian_w2

__all__ = [
    "affine_decoder_encoder",
    "gaussian_kl",
    "monge_map",
    "rbf_mmd2_gaussian",
    "w2_quantile_1d",
]


def gaussian_kl(m1, S1, m2, S2) -> float:
    r"""KL divergence between two Gaussians.

    .. math::
        \mathrm{KL}(\mathcal N_1 \| \mathcal N_2) = \tfrac12 \big[
        \operatorname{tr}(\Sigma_2^{-1}\Sigma_1) + (m_2 - m_1)^\top
        \Sigma_2^{-1} (m_2 - m_1) - d + \log\det\Sigma_2 - \log\det\Sigma_1\big]

    Parameters
    ----------
    m1, m2 : array, shape (d,)
        Means.
    S1, S2 : array, shape (d, d)
        Positive definite covariances.

    Returns
    -------
    float
        The divergence (nats).

    Examples
    --------
    >>> import numpy as np
    >>> gaussian_kl(np.zeros(1), np.eye(1), np.ones(1), np.eye(1))
    0.5
    """
    m1, m2 = np.atleast_1d(m1).astype(float), np.atleast_1d(m2).astype(float)
    S1, S2 = np.atleast_2d(S1).astype(float), np.atleast_2d(S2).astype(float)
    d = m1.shape[0]
    L2 = np.linalg.cholesky(S2)
    dm = np.linalg.solve(L2, m2 - m1)
    M = np.linalg.solve(L2, np.linalg.solve(L2, S1).T)
    logdet = 2 * np.log(np.diag(L2)).sum() - np.linalg.slogdet(S1)[1]
    return float(0.5 * (np.trace(M) + dm @ dm - d + logdet))


def monge_map(m1, S1, m2, S2):
    r"""The linear Monge map between two Gaussians, :math:`T(x) = m_2 + A(x - m_1)`.

    :math:`A = \Sigma_1^{-1/2}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}
    \Sigma_1^{-1/2}` (from :func:`otgen.gaussian_w2`): symmetric, so
    :math:`T` is the gradient of a convex function, and
    :math:`A\Sigma_1 A = \Sigma_2`.

    Parameters
    ----------
    m1, m2 : array, shape (d,)
        Means.
    S1, S2 : array, shape (d, d)
        Covariances (:math:`\Sigma_1` positive definite).

    Returns
    -------
    A : ndarray, shape (d, d)
        The linear part.
    T : callable
        ``T(x)`` for points of shape (n, d).

    Examples
    --------
    >>> import numpy as np
    >>> A, T = monge_map(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1))
    >>> T(np.array([[1.0]])).tolist()
    [[3.0]]
    """
    res = gaussian_w2(
        np.asarray(m1, float),
        np.asarray(S1, float),
        np.asarray(m2, float),
        np.asarray(S2, float),
    )
    A = np.asarray(res.A, dtype=np.float64)
    m1, m2 = np.asarray(m1, float), np.asarray(m2, float)

    def T(x):
        return m2 + (np.atleast_2d(x) - m1) @ A.T

    return A, T


def affine_decoder_encoder(m, S, B, b):
    r"""Encoder attaining Theorem A for an affine decoder and Gaussian data.

    For :math:`P_X = \mathcal N(m, \Sigma)`, :math:`P_Z = \mathcal N(0, I)` and
    :math:`G(z) = Bz + b` (:math:`B` invertible), :math:`G\#P_Z =
    \mathcal N(b, BB^\top)`; with :math:`T` the Monge map from :math:`P_X` to
    it, the deterministic encoder :math:`E(x) = B^{-1}(T(x) - b)` has
    :math:`Q_Z = P_Z` and cost :math:`E\|X - G(E(X))\|^2 = W_2^2`.

    Parameters
    ----------
    m : array, shape (d,)
        Data mean.
    S : array, shape (d, d)
        Data covariance (positive definite).
    B : array, shape (d, d)
        Invertible linear part of the decoder.
    b : array, shape (d,)
        Offset of the decoder.

    Returns
    -------
    M : ndarray, shape (d, d)
        :math:`E(x) = M x + c`.
    c : ndarray, shape (d,)
        The offset.

    Examples
    --------
    >>> import numpy as np
    >>> M, c = affine_decoder_encoder(np.ones(1), np.eye(1), 2 * np.eye(1), np.ones(1))
    >>> M.tolist(), c.tolist()
    ([[1.0]], [-1.0])
    """
    B, b = np.asarray(B, float), np.asarray(b, float)
    A, _ = monge_map(m, S, b, B @ B.T)
    Binv = np.linalg.inv(B)
    M = Binv @ A
    c = -M @ np.asarray(m, float)
    return M, c


def w2_quantile_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    r"""1-D :math:`W_2^2` by quadrature of the quantile formula.

    .. math::
        W_2^2(\mu_1, \mu_2) = \int_0^1 (F_1^{-1}(t) - F_2^{-1}(t))^2\, dt,

    computed with adaptive quadrature (``scipy.integrate.quad``) on the
    Gaussian quantile functions; the closed form is
    :math:`(m_1 - m_2)^2 + (s_1 - s_2)^2`.

    Parameters
    ----------
    m1, m2 : float
        Means.
    s1, s2 : float
        Standard deviations (> 0).

    Returns
    -------
    float
        :math:`W_2^2`.

    Examples
    --------
    >>> round(w2_quantile_1d(0.0, 1.0, 1.0, 2.0), 7)
    2.0
    """

    def g(t):
        return (norm.ppf(t, m1, s1) - norm.ppf(t, m2, s2)) ** 2

    val = 0.0
    for lo, hi in ((0.0, 1e-6), (1e-6, 0.5), (0.5, 1 - 1e-6), (1 - 1e-6, 1.0)):
        val += integrate.quad(g, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return float(val)


def rbf_mmd2_gaussian(m1, S1, m2, S2, *, bandwidth: float) -> float:
    r"""Closed-form MMD squared between Gaussians for the Gaussian RBF kernel.

    With :math:`k(x, y) = \exp(-\|x - y\|^2 / (2h^2))` and independent
    :math:`X \sim \mathcal N(m_a, \Sigma_a)`, :math:`Y \sim \mathcal N(m_b,
    \Sigma_b)`,

    .. math::
        E\,k(X, Y) = \det(I + (\Sigma_a + \Sigma_b)/h^2)^{-1/2}
        \exp\big(-\tfrac12 \delta^\top (\Sigma_a + \Sigma_b + h^2 I)^{-1}
        \delta\big),\quad \delta = m_a - m_b,

    and :math:`\mathrm{MMD}^2 = E k(X, X') + E k(Y, Y') - 2 E k(X, Y)`.

    Parameters
    ----------
    m1, m2 : array, shape (d,)
        Means.
    S1, S2 : array, shape (d, d)
        Covariances.
    bandwidth : float
        :math:`h > 0`.

    Returns
    -------
    float
        :math:`\mathrm{MMD}_k^2`.

    Examples
    --------
    >>> import numpy as np
    >>> rbf_mmd2_gaussian(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2),
    ...                   bandwidth=1.0)
    0.0
    """
    m1, m2 = np.atleast_1d(m1).astype(float), np.atleast_1d(m2).astype(float)
    S1, S2 = np.atleast_2d(S1).astype(float), np.atleast_2d(S2).astype(float)
    h2 = float(bandwidth) ** 2
    eye = np.eye(m1.shape[0])

    def ek(ma, Sa, mb, Sb):
        S = Sa + Sb
        dlt = ma - mb
        quad = dlt @ np.linalg.solve(S + h2 * eye, dlt)
        return np.linalg.det(eye + S / h2) ** -0.5 * np.exp(-0.5 * quad)

    return float(ek(m1, S1, m1, S1) + ek(m2, S2, m2, S2) - 2 * ek(m1, S1, m2, S2))
