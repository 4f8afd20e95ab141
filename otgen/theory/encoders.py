r"""The constrained encoder problem of Theorem A and its deterministic variant.

- :func:`encoder_lp`: :math:`\min \{\langle C, \pi\rangle : \pi 1 = p,\
  \pi^\top 1 = r\}` over random encoders on the prior atoms (Theorem A; with
  :math:`C_{ij} = E_{P_G(Y|z_j)} c(x_i, Y)` it is :math:`W_c^\dagger` of
  Theorem B), with its LP multipliers;
- :func:`deterministic_encoder`: the same over deterministic encoders, a MILP,
  :math:`+\infty` when none is feasible (Prop. A1).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from otgen.theory._lp_core import (
    EncoderLP,
    _col_sum,
    _encoder,
    _linprog,
    _row_sum,
    _setup,
)

__all__ = ["deterministic_encoder", "encoder_lp"]


def encoder_lp(C, p=None, r=None) -> EncoderLP:
    r"""The constrained encoder problem of Theorem A as a linear program.

    .. math::
        \min_{\pi \ge 0} \sum_{ij} \pi_{ij} C_{ij} \quad\text{s.t.}\quad
        \sum_j \pi_{ij} = p_i,\ \sum_i \pi_{ij} = r_j,

    i.e. :math:`\inf_{Q: Q_Z = P_Z} E_{P_X} E_{Q(Z|X)} C(X, Z)` over random
    encoders using the prior atoms :math:`z_j` as codes, with
    :math:`Q(z_j | x_i) = \pi_{ij} / p_i`.

    References: :cite:`bousquet2017vegan`.

    Parameters
    ----------
    C : array, shape (n, m)
        :math:`C_{ij} = c(x_i, G(z_j))`, or :math:`E_{P_G(Y|z_j)} c(x_i, Y)` for
        a random decoder (then the value is :math:`W_c^\dagger`, Theorem B).
    p, r : array, shape (n,) and (m,), optional
        Masses of the data and prior atoms (normalised to 1); uniform if None.

    Returns
    -------
    EncoderLP
        Value, plan, encoder and the LP multipliers ``u``, ``h`` (see
        :func:`encoder_dual_lp`).

    Examples
    --------
    >>> import numpy as np
    >>> res = encoder_lp(np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> round(res.value, 12), res.encoder.round(6).tolist()
    (0.0, [[1.0, 0.0], [0.0, 1.0]])
    """
    C, p, r = _setup(C, p, r)
    n, m = C.shape
    A = sp.vstack([_row_sum(n, m), _col_sum(n, m)], format="csr")
    res = _linprog(C.ravel(), A_eq=A, b_eq=np.concatenate([p, r]))
    plan = res.x.reshape(n, m).clip(min=0.0)
    marg = res.eqlin.marginals
    u, h = marg[:n], -marg[n:]
    shift = h.min()
    return EncoderLP(float(res.fun), plan, _encoder(plan, p), u - shift, h - shift)


def deterministic_encoder(C, p=None, r=None) -> EncoderLP:
    r"""The best deterministic encoder with :math:`Q_Z = P_Z` (Prop. A1).

    Over maps :math:`x_i \mapsto z_{e(i)}`; :math:`+\infty` if none exists:

    .. math::
        \min_{e: [n] \to [m]} \sum_i p_i C_{i e(i)} \quad\text{s.t.}\quad
        \sum_{i: e(i) = j} p_i = r_j \ \forall j,

    solved as a mixed-integer LP (HiGHS branch and bound). A deterministic
    encoder merges data atoms, so it is feasible only when the prior masses
    are sums of data masses.

    References: :cite:`bousquet2017vegan`, :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    C : array, shape (n, m)
        Cost matrix.
    p, r : array, shape (n,) and (m,), optional
        Masses (uniform if None).

    Returns
    -------
    EncoderLP
        ``value`` (:math:`+\infty` when infeasible) and the 0/1 ``encoder``
        (None when infeasible).

    Examples
    --------
    >>> import numpy as np
    >>> C = np.zeros((2, 2))
    >>> deterministic_encoder(C, r=np.array([0.3, 0.7])).value
    inf
    """
    C, p, r = _setup(C, p, r)
    n, m = C.shape
    A = sp.vstack([_row_sum(n, m), _col_sum(n, m) @ sp.diags(np.repeat(p, m))])
    cons = LinearConstraint(
        A,
        np.concatenate([np.ones(n), r - 1e-9]),
        np.concatenate([np.ones(n), r + 1e-9]),
    )
    res = milp(
        (p[:, None] * C).ravel(),
        constraints=cons,
        integrality=np.ones(n * m),
        bounds=Bounds(0, 1),
    )
    if res.status == 2 or res.x is None:  # infeasible
        return EncoderLP(float("inf"), None, None)
    E = res.x.reshape(n, m).round()
    return EncoderLP(float(res.fun), p[:, None] * E, E)
