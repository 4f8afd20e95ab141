r"""Closed forms between Gaussian measures (Bures-Wasserstein).

For :math:`\mu_k = \mathcal N(m_k, \Sigma_k)`,

.. math::
    W_2^2(\mu_1, \mu_2) = \|m_1 - m_2\|^2 + \operatorname{tr}\big(\Sigma_1
    + \Sigma_2 - 2 (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}\big),

attained by the linear Monge map :math:`T(x) = m_2 + A(x - m_1)` with
:math:`A = \Sigma_1^{-1/2} (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2}
\Sigma_1^{-1/2}` :cite:`dowson1982frechet,givens1984class`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from otgen._arrays import ArrayLike, is_torch, to_output, to_tensor
from otgen._validation import check_finite, common_dtype

__all__ = ["GaussianW2", "gaussian_w2", "sqrtm_psd"]


def _eigh_psd(S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w, V = torch.linalg.eigh(S)
    return w.clamp_min(0.0), V


def sqrtm_psd(S: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """Matrix power of symmetric PSD matrices (batched); pseudo-inverse if < 0."""
    w, V = _eigh_psd(S)
    if power < 0:
        tol = w.amax(-1, keepdim=True) * S.shape[-1] * torch.finfo(S.dtype).eps
        wp = torch.where(
            w > tol,
            w.clamp_min(torch.finfo(S.dtype).tiny) ** power,
            torch.zeros_like(w),
        )
    else:
        wp = w**power
    return (V * wp[..., None, :]) @ V.transpose(-1, -2)


@dataclass(frozen=True)
class GaussianW2:
    r"""Bures-Wasserstein solution between two (batches of) Gaussians.

    Attributes
    ----------
    value : float, array or Tensor, shape (...)
        The transport cost :math:`W_2^2` (squared distance).
    distance : float, array or Tensor, shape (...)
        :math:`W_2`.
    A : array or Tensor, shape (..., d, d)
        Linear part of the Monge map :math:`T(x) = m_2 + A (x - m_1)`
        (symmetric PSD; uses a pseudo-inverse when :math:`\Sigma_1` is singular,
        where the Monge map need not exist).
    m1, m2 : array or Tensor, shape (..., d)
        The means.
    """

    value: Any
    distance: Any
    A: Any
    m1: Any
    m2: Any

    def map(self, x: ArrayLike):
        """Apply the Monge map to points ``x`` of shape (n, d) (unbatched case)."""
        as_torch = isinstance(x, torch.Tensor)
        A, m1, m2 = (torch.as_tensor(v) for v in (self.A, self.m1, self.m2))
        tx = to_tensor(x, "x").to(A.dtype)
        out = m2 + (tx - m1) @ A.transpose(-1, -2)
        return to_output(out, as_torch)


def _check_cov(S: torch.Tensor, name: str, d: int) -> None:
    if S.shape[-2:] != (d, d):
        raise ValueError(
            f"{name} must have shape (..., {d}, {d}) to match the means (got "
            f"{tuple(S.shape)}); pass covariance matrices of the means' dimension."
        )
    check_finite(S, name)
    S = S.detach()  # checks only: no graph (float() of a graph tensor warns)
    asym = float((S - S.transpose(-1, -2)).abs().max())
    scale = max(float(S.abs().max()), 1e-300)
    if asym > 1e-6 * scale:
        raise ValueError(
            f"{name} must be symmetric (got max |S - S^T| = {asym:.3g}); "
            "pass (S + S^T) / 2."
        )
    wmin = float(torch.linalg.eigvalsh(0.5 * (S + S.transpose(-1, -2))).min())
    if wmin < -1e-8 * scale * d:
        raise ValueError(
            f"{name} must be positive semi-definite (got smallest eigenvalue "
            f"{wmin:.3g}); pass a covariance matrix."
        )


def gaussian_w2(
    m1: ArrayLike, S1: ArrayLike, m2: ArrayLike, S2: ArrayLike
) -> GaussianW2:
    r"""Squared 2-Wasserstein distance between Gaussians, and the Monge map.

    .. math::
        W_2^2 = \|m_1 - m_2\|^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}
        \Sigma_2 - 2 \operatorname{tr}(\Sigma_1^{1/2} \Sigma_2
        \Sigma_1^{1/2})^{1/2}

    References: :cite:`dowson1982frechet`.

    Parameters
    ----------
    m1, m2 : array or Tensor, shape (..., d)
        Means; leading dimensions are a batch (broadcast).
    S1, S2 : array or Tensor, shape (..., d, d)
        Symmetric positive semi-definite covariances.

    Returns
    -------
    GaussianW2
        ``value`` (:math:`W_2^2`), ``distance`` (:math:`W_2`), the Monge map's
        matrix ``A``; NumPy in gives NumPy out (Python floats when unbatched),
        torch in gives differentiable torch out, in the inputs' dtype. The
        computation runs in float64 on means and covariances divided by a
        power of two (exact), so float32 input and any scale cost no
        accuracy: :math:`\Sigma_1 = \Sigma_2` gives 0 up to float64 rounding
        of the traces, and ``distance`` is finite whenever :math:`W_2` is
        (``value`` is inf where :math:`W_2^2` exceeds the dtype's range).

    Examples
    --------
    >>> import numpy as np
    >>> r = gaussian_w2(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    >>> round(r.value, 12)  # |m1 - m2|^2 + 2 (1 - 2)^2
    4.0
    """
    as_torch = is_torch(m1, S1, m2, S2)
    t = [to_tensor(v, n) for v, n in ((m1, "m1"), (S1, "S1"), (m2, "m2"), (S2, "S2"))]
    dtype = common_dtype(*t)
    tm1, tS1, tm2, tS2 = (v.to(dtype) for v in t)
    for v, n in ((tm1, "m1"), (tm2, "m2")):
        if v.ndim < 1 or v.shape[-1] == 0:
            raise ValueError(
                f"{n} must have shape (..., d) with d >= 1 (got {tuple(v.shape)}); "
                "pass a mean vector."
            )
        check_finite(v, n)
    d = tm1.shape[-1]
    if tm2.shape[-1] != d:
        raise ValueError(
            f"m1 and m2 must have the same dimension (got {d} and "
            f"{tm2.shape[-1]}); both Gaussians must live in the same space."
        )
    _check_cov(tS1, "S1", d)
    _check_cov(tS2, "S2", d)
    # Working units: float64, means centred and divided by a power of two L
    # per problem, covariances by L^2 (exact): W_2^2 = L^2 W_2^2(working). The
    # trace formula cancels (S1 = S2 gives tr S1 + tr S2 - 2 tr S1), so its
    # rounding is that of the working traces, O(1), and no square or product
    # of matrices overflows or underflows at any scale.
    w64 = torch.float64
    m1w, m2w, S1w, S2w = (v.to(w64) for v in (tm1, tm2, tS1, tS2))
    c = (0.5 * (m1w + m2w)).detach()
    with torch.no_grad():
        mag = torch.maximum(
            torch.maximum((m1w - c).abs().amax(-1), (m2w - c).abs().amax(-1)),
            torch.maximum(S1w.abs().amax((-2, -1)), S2w.abs().amax((-2, -1))).sqrt(),
        )
        L = torch.ldexp(torch.ones_like(mag), torch.frexp(mag).exponent - 1)
    Lm, LS = L[..., None], L[..., None, None]
    m1w, m2w = (m1w - c) / Lm, (m2w - c) / Lm
    S1w, S2w = S1w / LS / LS, S2w / LS / LS
    r1 = sqrtm_psd(S1w)
    M = r1 @ S2w @ r1
    M = 0.5 * (M + M.transpose(-1, -2))
    w, V = _eigh_psd(M)
    cross = w.sqrt().sum(-1)
    tr = torch.diagonal(S1w, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(
        S2w, dim1=-2, dim2=-1
    ).sum(-1)
    value_w = (((m1w - m2w) ** 2).sum(-1) + tr - 2 * cross).clamp_min(0.0)
    rM = (V * w.sqrt()[..., None, :]) @ V.transpose(-1, -2)
    ir1 = sqrtm_psd(S1w, -0.5)
    A = (ir1 @ rM @ ir1).to(dtype)
    value = (value_w * L * L).to(dtype)
    distance = (value_w.sqrt() * L).to(dtype)
    if as_torch:
        return GaussianW2(value, distance, A, tm1, tm2)
    if value.ndim == 0:
        return GaussianW2(
            float(value), float(distance), A.numpy(), tm1.numpy(), tm2.numpy()
        )
    return GaussianW2(
        value.numpy(), distance.numpy(), A.numpy(), tm1.numpy(), tm2.numpy()
    )
