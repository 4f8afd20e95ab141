r"""Kantorovich duals and critics: Prop. W and the Kantorovich-Rubinstein LP.

- :func:`encoder_dual_lp`: the Lagrange dual of the encoder LP,
  :math:`\max p^\top u - r^\top h` with :math:`u_i - h_j \le C_{ij}`;
- :func:`pot_w1_dual`: the penalised form, :math:`h` :math:`\lambda`-Lipschitz;
- :func:`kr_dual`: the Kantorovich-Rubinstein dual of :math:`W_1`;
- :func:`c_transform_critic`: the WGAN critic :math:`f = h^d` they give.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from otgen._validation import check_cost_matrix, check_positive
from otgen.theory._lp_core import EncoderLP, _col_sum, _linprog, _row_sum, _setup

__all__ = ["c_transform_critic", "encoder_dual_lp", "kr_dual", "pot_w1_dual"]


def encoder_dual_lp(C, p=None, r=None) -> EncoderLP:
    r"""The Lagrange dual of the encoder LP, solved as its own LP (Prop. W).

    .. math::
        \max_{u, h}\ \sum_i p_i u_i - \sum_j r_j h_j \quad\text{s.t.}\quad
        u_i - h_j \le C_{ij},

    :math:`h` dualising :math:`Q_Z = P_Z`. At the optimum
    :math:`u_i = \min_j [C_{ij} + h_j] = h^c(x_i)`, the c-transform of
    :math:`h` through :math:`G`.

    References: :cite:`bousquet2017vegan`, :cite:`arjovsky2017wgan`.

    Parameters
    ----------
    C : array, shape (n, m)
        Cost matrix :math:`C_{ij} = c(x_i, G(z_j))`.
    p, r : array, shape (n,) and (m,), optional
        Masses (uniform if None).

    Returns
    -------
    EncoderLP
        ``value`` is the dual optimum; ``u``, ``h`` the potentials (``h``
        shifted to have minimum 0); no plan.

    Examples
    --------
    >>> import numpy as np
    >>> abs(encoder_dual_lp(np.array([[0.0, 1.0], [1.0, 0.0]])).value) < 1e-12
    True
    """
    C, p, r = _setup(C, p, r)
    n, m = C.shape
    # Variables (u, h); u_i - h_j <= C_ij.
    A = sp.hstack([_row_sum(n, m).T, -_col_sum(n, m).T], format="csr")
    bounds = [(None, None)] * (n + m)
    bounds[n] = (0.0, 0.0)  # fix the shift u + t, h + t
    res = _linprog(-np.concatenate([p, -r]), A_ub=A, b_ub=C.ravel(), bounds=bounds)
    u, h = res.x[:n], res.x[n:]
    shift = h.min()
    return EncoderLP(-float(res.fun), None, None, u - shift, h - shift)


def pot_w1_dual(C, D, p=None, r=None, *, lam: float) -> EncoderLP:
    r"""Penalised form of Prop. W: the dual of :func:`pot_w1`, as its own LP.

    .. math::
        D_{POT}(\lambda) = \max_{h \in \lambda \mathrm{Lip}(d_Z)}
        \sum_i p_i h^c(x_i) - \sum_j r_j h_j, \qquad
        h^c(x_i) = \min_j [C_{ij} + h_j],

    written as :math:`\max p^\top u - r^\top h` with :math:`u_i - h_j \le C_{ij}`
    and :math:`h_j - h_k \le \lambda D_{jk}`.

    References: :cite:`bousquet2017vegan`, :cite:`arjovsky2017wgan`.

    Parameters
    ----------
    C : array, shape (n, m)
        Reconstruction cost.
    D : array, shape (m, m)
        Latent metric.
    p, r : array, optional
        Masses (uniform if None).
    lam : float
        Penalty weight.

    Returns
    -------
    EncoderLP
        ``value`` (the dual optimum) and the potentials ``u``, ``h``.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 2.0], [0.0, 2.0]])
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> round(pot_w1_dual(C, D, lam=1.0).value, 9)
    0.5
    """
    C, p, r = _setup(C, p, r)
    lam = check_positive(lam, "lam", allow_zero=True)
    n, m = C.shape
    D = check_cost_matrix(D, m, m).double().numpy()
    A1 = sp.hstack([_row_sum(n, m).T, -_col_sum(n, m).T])
    jj, kk = np.where(~np.eye(m, dtype=bool))
    rows = np.arange(len(jj))
    Lh = sp.csr_matrix(
        (
            np.concatenate([np.ones(len(jj)), -np.ones(len(jj))]),
            (np.concatenate([rows, rows]), np.concatenate([jj, kk])),
        ),
        shape=(len(jj), m),
    )
    A2 = sp.hstack([sp.csr_matrix((len(jj), n)), Lh])
    A = sp.vstack([A1, A2], format="csr")
    b = np.concatenate([C.ravel(), lam * D[jj, kk]])
    bounds = [(None, None)] * (n + m)
    bounds[n] = (0.0, 0.0)
    res = _linprog(-np.concatenate([p, -r]), A_ub=A, b_ub=b, bounds=bounds)
    return EncoderLP(-float(res.fun), None, None, res.x[:n], res.x[n:])


def kr_dual(x, y, a=None, b=None, *, metric: Callable | None = None) -> tuple:
    r"""Kantorovich-Rubinstein dual of :math:`W_1` as an LP on the supports.

    .. math::
        W_1(\alpha, \beta) = \max_{f} \sum_i a_i f(x_i) - \sum_j b_j f(y_j)
        \quad\text{s.t.}\quad f(u) - f(v) \le d(u, v)\ \ \forall u, v \in U,

    :math:`U` the union of the supports (coincident points merged). A
    1-Lipschitz function on :math:`U` extends to the whole space (McShane), so
    this equals the supremum over :math:`F_1`.

    References: :cite:`kantorovich1958space`.

    Parameters
    ----------
    x, y : array, shape (n, d) and (m, d)
        Supports.
    a, b : array, optional
        Weights (uniform if None).
    metric : callable, optional
        ``metric(U, V)`` returning the (k, l) distance matrix; Euclidean if None.

    Returns
    -------
    value : float
        The dual optimum.
    points : ndarray, shape (k, d)
        The merged support :math:`U`.
    f : ndarray, shape (k,)
        The optimal potential on :math:`U`.

    Examples
    --------
    >>> import numpy as np
    >>> v, U, f = kr_dual(np.array([[0.0]]), np.array([[3.0]]))
    >>> round(v, 9)
    3.0
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    n, m = len(x), len(y)
    a = np.full(n, 1.0 / n) if a is None else np.asarray(a, dtype=np.float64)
    b = np.full(m, 1.0 / m) if b is None else np.asarray(b, dtype=np.float64)
    U, inv = np.unique(np.vstack([x, y]), axis=0, return_inverse=True)
    inv = inv.ravel()
    k = len(U)
    w = np.zeros(k)
    np.add.at(w, inv[:n], a / a.sum())
    np.add.at(w, inv[n:], -b / b.sum())
    if metric is None:
        Dm = np.sqrt(((U[:, None] - U[None]) ** 2).sum(-1))
    else:
        Dm = np.asarray(metric(U, U), dtype=np.float64)
    if k == 1:
        return 0.0, U, np.zeros(1)
    uu, vv = np.where(~np.eye(k, dtype=bool))
    rows = np.arange(len(uu))
    A = sp.csr_matrix(
        (
            np.concatenate([np.ones(len(uu)), -np.ones(len(uu))]),
            (np.concatenate([rows, rows]), np.concatenate([uu, vv])),
        ),
        shape=(len(uu), k),
    )
    bounds = [(None, None)] * k
    bounds[0] = (0.0, 0.0)
    res = _linprog(-w, A_ub=A, b_ub=Dm[uu, vv], bounds=bounds)
    return -float(res.fun), U, res.x


def c_transform_critic(h, anchors, *, metric: Callable | None = None) -> Callable:
    r"""The critic :math:`f(y) = \min_j [d(y, G(z_j)) + h_j]` of Prop. W.

    For any :math:`h`, :math:`f = h^d` is 1-Lipschitz (a minimum of
    1-Lipschitz functions) and :math:`f(G(z_j)) \le h_j`; with the optimal
    :math:`h` of :func:`encoder_dual_lp` it is an optimal WGAN critic.

    References: :cite:`bousquet2017vegan`, :cite:`arjovsky2017wgan`.

    Parameters
    ----------
    h : array, shape (m,)
        Latent potential on the prior atoms.
    anchors : array, shape (m, d)
        The decoded atoms :math:`G(z_j)`.
    metric : callable, optional
        ``metric(Y, A)`` giving the distance matrix; Euclidean if None.

    Returns
    -------
    callable
        ``f(y)`` for points ``y`` of shape (k, d), returning shape (k,).

    Examples
    --------
    >>> import numpy as np
    >>> f = c_transform_critic(np.array([0.0, 0.5]), np.array([[0.0], [1.0]]))
    >>> f(np.array([[0.0], [2.0]])).tolist()
    [0.0, 1.5]
    """
    h = np.asarray(h, dtype=np.float64)
    anchors = np.atleast_2d(np.asarray(anchors, dtype=np.float64))

    def f(y):
        y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        if metric is None:
            Dm = np.sqrt(((y[:, None] - anchors[None]) ** 2).sum(-1))
        else:
            Dm = np.asarray(metric(y, anchors), dtype=np.float64)
        return (Dm + h[None, :]).min(1)

    return f
