r"""Discrete solvers for the theory: encoder LPs, POT values, Kantorovich duals.

Every problem here is finite: the data law is :math:`P_X = \sum_i p_i
\delta_{x_i}`, the prior :math:`P_Z = \sum_j r_j \delta_{z_j}`, and an encoder
may only use the prior atoms as codes, so a random encoder is a plan
:math:`\pi_{ij} = p_i Q(z_j | x_i)` with row sums :math:`p`. With the cost
matrix :math:`C_{ij} = c(x_i, G(z_j))` (a deterministic decoder) or
:math:`C_{ij} = E_{P_G(Y|z_j)} c(x_i, Y)` (a random one):

- :func:`encoder_lp`: :math:`\min \{\langle C, \pi\rangle : \pi 1 = p,\
  \pi^\top 1 = r\}`, the constrained problem of Theorem A (and :math:`W_c^\dagger`
  of Theorem B), with its dual :math:`\max p^\top u - r^\top h`,
  :math:`u_i - h_j \le C_{ij}`;
- :func:`deterministic_encoder`: the same over deterministic encoders (a MILP;
  :math:`+\infty` when none is feasible, Prop. A1);
- :func:`pot_w1`, :func:`pot_tv`, :func:`pot_mmd2`: the penalised value
  :math:`D_{POT}(\lambda) = \min_{\pi 1 = p} \langle C, \pi\rangle + \lambda
  D_Z(\pi^\top 1, r)`;
- :func:`kr_dual`: the Kantorovich-Rubinstein dual of :math:`W_1`;
- :func:`encoder_dual_lp`, :func:`pot_w1_dual`, :func:`c_transform_critic`: the
  Lagrange duals of Prop. W and the WGAN critic they give.

LPs are solved by HiGHS (``scipy.optimize.linprog``) with sparse constraint
matrices; the MMD QP by SLSQP with a Frank-Wolfe duality-gap certificate.
These solvers are independent of :mod:`otgen.ot` on purpose: the checks
compare them with its exact OT.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp, minimize

from otgen._validation import check_cost_matrix, check_positive, check_weights

__all__ = [
    "EncoderLP",
    "POTResult",
    "c_transform_critic",
    "deterministic_encoder",
    "encoder_dual_lp",
    "encoder_lp",
    "kr_dual",
    "pot_mmd2",
    "pot_tv",
    "pot_w1",
    "pot_w1_dual",
]

_LP_TOL = 1e-10  # HiGHS feasibility / optimality tolerance


@dataclass(frozen=True)
class EncoderLP:
    r"""An optimal (possibly random) encoder on the prior atoms.

    Attributes
    ----------
    value : float
        :math:`\sum_{ij} \pi_{ij} C_{ij}` at the optimum (:math:`+\infty` if
        infeasible).
    plan : ndarray, shape (n, m)
        :math:`\pi_{ij} = p_i Q(z_j | x_i)`.
    encoder : ndarray, shape (n, m)
        :math:`Q(z_j | x_i)`, rows summing to 1.
    u, h : ndarray, shape (n,) and (m,)
        Dual variables: :math:`u_i - h_j \le C_{ij}` and
        :math:`p^\top u - r^\top h` = ``value`` (None where not computed).
    """

    value: float
    plan: np.ndarray | None
    encoder: np.ndarray | None
    u: np.ndarray | None = None
    h: np.ndarray | None = None


@dataclass(frozen=True)
class POTResult:
    r"""The penalised value :math:`D_{POT}(\lambda)` of a finite problem.

    Attributes
    ----------
    value : float
        :math:`D_{POT}(\lambda)` (for :func:`pot_mmd2`: the objective at the
        returned plan, an upper bound within ``certificate`` of the optimum).
    reconstruction : float
        :math:`\langle C, \pi\rangle`.
    penalty : float
        :math:`D_Z(Q_Z, P_Z)` at the optimum (not multiplied by lambda).
    plan : ndarray, shape (n, m)
        The encoder plan :math:`\pi`.
    q : ndarray, shape (m,)
        The aggregated posterior :math:`Q_Z = \pi^\top 1`.
    latent_plan : ndarray, shape (m, m) or None
        The coupling of :math:`Q_Z` and :math:`P_Z` (``pot_w1`` only).
    certificate : float
        An upper bound on ``value`` minus the true optimum (0 for the LPs,
        solved to HiGHS tolerance; the Frank-Wolfe gap for the QP).
    """

    value: float
    reconstruction: float
    penalty: float
    plan: np.ndarray
    q: np.ndarray
    latent_plan: np.ndarray | None
    certificate: float


def _setup(C, p, r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Ct = check_cost_matrix(C)
    n, m = Ct.shape
    pt = check_weights(p, n, "p", Ct.double())
    rt = check_weights(r, m, "r", Ct.double())
    pn = pt.numpy().astype(np.float64)
    rn = rt.numpy().astype(np.float64)
    pn, rn = pn / pn.sum(), rn / rn.sum()
    return Ct.double().numpy(), pn, rn


def _row_sum(n: int, m: int) -> sp.csr_matrix:
    """(n, n m) matrix A with (A vec(pi))_i = sum_j pi_ij (row-major vec)."""
    return sp.kron(sp.eye(n), np.ones((1, m)), format="csr")


def _col_sum(n: int, m: int) -> sp.csr_matrix:
    """(m, n m) matrix B with (B vec(pi))_j = sum_i pi_ij."""
    return sp.kron(np.ones((1, n)), sp.eye(m), format="csr")


def _linprog(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=(0, None)):
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
        options={
            "primal_feasibility_tolerance": _LP_TOL,
            "dual_feasibility_tolerance": _LP_TOL,
        },
    )
    if res.status not in (0, 2):
        warnings.warn(f"HiGHS stopped: {res.message}", UserWarning, stacklevel=3)
    return res


def encoder_lp(C, p=None, r=None) -> EncoderLP:
    r"""The constrained encoder problem of Theorem A as a linear program.

    .. math::
        \min_{\pi \ge 0} \sum_{ij} \pi_{ij} C_{ij} \quad\text{s.t.}\quad
        \sum_j \pi_{ij} = p_i,\ \sum_i \pi_{ij} = r_j,

    i.e. :math:`\inf_{Q: Q_Z = P_Z} E_{P_X} E_{Q(Z|X)} C(X, Z)` over random
    encoders using the prior atoms :math:`z_j` as codes, with
    :math:`Q(z_j | x_i) = \pi_{ij} / p_i`.

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

    References
    ----------
    .. [1] O. Bousquet, S. Gelly, I. Tolstikhin, C.-J. Simon-Gabriel,
       B. Schölkopf. From optimal transport to generative modeling: the VEGAN
       cookbook. 2017.

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


def _encoder(plan: np.ndarray, p: np.ndarray) -> np.ndarray:
    Q = np.zeros_like(plan)
    pos = p > 0
    Q[pos] = plan[pos] / p[pos, None]
    Q[~pos] = 1.0 / plan.shape[1]
    return Q


def encoder_dual_lp(C, p=None, r=None) -> EncoderLP:
    r"""The Lagrange dual of the encoder LP, solved as its own LP (Prop. W).

    .. math::
        \max_{u, h}\ \sum_i p_i u_i - \sum_j r_j h_j \quad\text{s.t.}\quad
        u_i - h_j \le C_{ij},

    :math:`h` dualising :math:`Q_Z = P_Z`. At the optimum
    :math:`u_i = \min_j [C_{ij} + h_j] = h^c(x_i)`, the c-transform of
    :math:`h` through :math:`G`.

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


def deterministic_encoder(C, p=None, r=None) -> EncoderLP:
    r"""The best deterministic encoder with :math:`Q_Z = P_Z` (Prop. A1).

    Over maps :math:`x_i \mapsto z_{e(i)}`; :math:`+\infty` if none exists:

    .. math::
        \min_{e: [n] \to [m]} \sum_i p_i C_{i e(i)} \quad\text{s.t.}\quad
        \sum_{i: e(i) = j} p_i = r_j \ \forall j,

    solved as a mixed-integer LP (HiGHS branch and bound). A deterministic
    encoder merges data atoms, so it is feasible only when the prior masses
    are sums of data masses.

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


def _pot_finish(C, plan, q, pen, lam, latent=None, cert=0.0) -> POTResult:
    rec = float((C * plan).sum())
    return POTResult(rec + lam * pen, rec, float(pen), plan, q, latent, cert)


def pot_w1(C, D, p=None, r=None, *, lam: float) -> POTResult:
    r"""POT with a Wasserstein-1 latent penalty, as one LP (Prop. P6).

    .. math::
        D_{POT}(\lambda) = \min_{\pi, \gamma \ge 0} \langle C, \pi\rangle
        + \lambda \langle D, \gamma\rangle \quad\text{s.t.}\quad \pi 1 = p,\
        \gamma 1 = \pi^\top 1,\ \gamma^\top 1 = r,

    :math:`\pi` the encoder plan, :math:`\gamma` a coupling of
    :math:`Q_Z = \pi^\top 1` and :math:`P_Z`, :math:`D_{jk} = d_Z(z_j, z_k)`.

    Parameters
    ----------
    C : array, shape (n, m)
        Reconstruction cost :math:`c(x_i, G(z_j))`.
    D : array, shape (m, m)
        Latent metric between prior atoms.
    p, r : array, optional
        Masses (uniform if None).
    lam : float
        Penalty weight :math:`\lambda \ge 0`.

    Returns
    -------
    POTResult
        Value, reconstruction, penalty :math:`W_1(Q_Z, P_Z)`, both plans.

    References
    ----------
    .. [1] I. Tolstikhin, O. Bousquet, S. Gelly, B. Schölkopf. Wasserstein
       auto-encoders. ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 2.0], [0.0, 2.0]])  # both points decode best at z_0
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> [round(pot_w1(C, D, lam=lam).value, 9) for lam in (0.0, 1.0, 3.0)]
    [0.0, 0.5, 1.0]
    """
    C, p, r = _setup(C, p, r)
    lam = check_positive(lam, "lam", allow_zero=True)
    n, m = C.shape
    D = check_cost_matrix(D, m, m).double().numpy()
    A_pi = sp.vstack([_row_sum(n, m), _col_sum(n, m), sp.csr_matrix((m, n * m))])
    A_g = sp.vstack([sp.csr_matrix((n, m * m)), -_row_sum(m, m), _col_sum(m, m)])
    A = sp.hstack([A_pi, A_g], format="csr")
    b = np.concatenate([p, np.zeros(m), r])
    res = _linprog(np.concatenate([C.ravel(), lam * D.ravel()]), A_eq=A, b_eq=b)
    plan = res.x[: n * m].reshape(n, m).clip(min=0.0)
    gamma = res.x[n * m :].reshape(m, m).clip(min=0.0)
    return _pot_finish(C, plan, plan.sum(0), float((D * gamma).sum()), lam, gamma)


def pot_tv(C, p=None, r=None, *, lam: float) -> POTResult:
    r"""POT with a total-variation latent penalty, as an LP.

    .. math::
        D_{POT}(\lambda) = \min_{\pi \ge 0,\, \pi 1 = p,\, s \ge |\pi^\top 1 - r|}
        \langle C, \pi\rangle + \tfrac{\lambda}{2} \sum_j s_j,

    :math:`\mathrm{TV}(Q_Z, P_Z) = \tfrac12 \|Q_Z - P_Z\|_1`.

    Parameters
    ----------
    C : array, shape (n, m)
        Reconstruction cost.
    p, r : array, optional
        Masses (uniform if None).
    lam : float
        Penalty weight :math:`\lambda \ge 0`.

    Returns
    -------
    POTResult
        Value, reconstruction, penalty TV, plan.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 2.0], [0.0, 2.0]])
    >>> [round(pot_tv(C, lam=lam).value, 9) for lam in (0.0, 1.0, 5.0)]
    [0.0, 0.5, 1.0]
    """
    C, p, r = _setup(C, p, r)
    lam = check_positive(lam, "lam", allow_zero=True)
    n, m = C.shape
    B = _col_sum(n, m)
    eye = sp.eye(m)
    A_ub = sp.vstack([sp.hstack([B, -eye]), sp.hstack([-B, -eye])], format="csr")
    b_ub = np.concatenate([r, -r])
    A_eq = sp.hstack([_row_sum(n, m), sp.csr_matrix((n, m))], format="csr")
    cvec = np.concatenate([C.ravel(), np.full(m, lam / 2)])
    res = _linprog(cvec, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=p)
    plan = res.x[: n * m].reshape(n, m).clip(min=0.0)
    q = plan.sum(0)
    return _pot_finish(C, plan, q, 0.5 * float(np.abs(q - r).sum()), lam)


def pot_mmd2(
    C, K, p=None, r=None, *, lam: float, tol: float = 1e-10, max_iter: int = 2000
) -> POTResult:
    r"""POT with an MMD-squared latent penalty: a convex quadratic program.

    .. math::
        D_{POT}(\lambda) = \min_{\pi \ge 0,\, \pi 1 = p} \langle C, \pi\rangle
        + \lambda (q - r)^\top K (q - r), \quad q = \pi^\top 1,

    :math:`(q - r)^\top K (q - r) = \mathrm{MMD}_k^2(Q_Z, P_Z)` for the Gram
    matrix :math:`K_{jk} = k(z_j, z_k)` of the prior atoms. Solved by a primal
    active-set method from the nearest-code encoder (the :math:`\lambda = 0`
    optimum), with SLSQP (``scipy.optimize.minimize``) as a fallback;
    optimality is certified by the Frank-Wolfe gap
    :math:`g(\pi) = \max_{\sigma \in \Pi_p} \langle \nabla f(\pi), \pi - \sigma
    \rangle \ge f(\pi) - f^*` (the minimum over the product of simplices is
    attained row by row at the smallest gradient entry).

    Parameters
    ----------
    C : array, shape (n, m)
        Reconstruction cost.
    K : array, shape (m, m)
        Positive semi-definite Gram matrix of the prior atoms.
    p, r : array, optional
        Masses (uniform if None).
    lam : float
        Penalty weight :math:`\lambda \ge 0`.
    tol : float, default=1e-10
        Target for the certificate, relative to ``max |C|``.
    max_iter : int, default=2000
        Iteration cap of the SLSQP fallback.

    Returns
    -------
    POTResult
        ``value`` at the returned plan (an upper bound on the optimum) and
        ``certificate`` (the Frank-Wolfe gap, a bound on the excess). A
        certificate above ``tol`` gives a ``UserWarning``.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 2.0], [0.0, 2.0]])
    >>> res = pot_mmd2(C, np.eye(2), lam=1.0)  # min 2t + 2 (1/2 - t)^2: t = 0
    >>> round(res.value, 8), res.certificate < 1e-9
    (0.5, True)
    """
    C, p, r = _setup(C, p, r)
    lam = check_positive(lam, "lam", allow_zero=True)
    n, m = C.shape
    K = check_cost_matrix(K, m, m).double().numpy()
    K = 0.5 * (K + K.T)
    scale = max(float(np.abs(C).max()), 1e-300)

    def f(v):
        P = v.reshape(n, m)
        e = P.sum(0) - r
        return float((C * P).sum() + lam * e @ K @ e) / scale

    def grad(v):
        e = v.reshape(n, m).sum(0) - r
        return (C + 2.0 * lam * (K @ e)[None, :]).ravel() / scale

    x0 = np.zeros((n, m))
    x0[np.arange(n), C.argmin(1)] = p  # the lambda = 0 optimum
    if lam == 0:
        plan, gap = x0, _fw_gap(x0, C, K, p, r, lam)
    else:
        # Active set from the nearest-code plan (fast); SLSQP only as fallback.
        plan, gap = _polish(x0, C, K, p, r, lam, rounds=20 * (n + m))
    if gap > tol * scale:
        A = _row_sum(n, m).toarray()
        res = minimize(
            f,
            x0.ravel(),
            jac=grad,
            method="SLSQP",
            bounds=[(0.0, None)] * (n * m),
            constraints=[
                {"type": "eq", "fun": lambda v: A @ v - p, "jac": lambda v: A}
            ],
            options={"ftol": 1e-11, "maxiter": max_iter},
        )
        plan2, gap2 = _polish(_project_rows(res.x.reshape(n, m), p), C, K, p, r, lam)
        if gap2 < gap:
            plan, gap = plan2, gap2
    q = plan.sum(0)
    e = q - r
    out = _pot_finish(C, plan, q, float(e @ K @ e), lam, None, gap)
    if gap > tol * scale:
        warnings.warn(
            f"pot_mmd2: Frank-Wolfe gap {gap:.3g} above tol * max|C| = "
            f"{tol * scale:.3g}; the value is an upper bound within that gap.",
            UserWarning,
            stacklevel=2,
        )
    return out


def _project_rows(P: np.ndarray, p: np.ndarray) -> np.ndarray:
    P = P.clip(min=0.0)
    s = P.sum(1)
    P = np.where(s[:, None] > 0, P / np.where(s > 0, s, 1.0)[:, None], 1.0 / P.shape[1])
    return P * p[:, None]


def _fw_gap(P, C, K, p, r, lam) -> float:
    Gr = C + 2.0 * lam * (K @ (P.sum(0) - r))[None, :]
    return float(max(0.0, (Gr * P).sum() - p @ Gr.min(1)))


def _kkt_on(S: np.ndarray, C, K, p, r, lam, base: np.ndarray):
    """Minimiser of the QP restricted to the support mask S, with multipliers.

    Unknowns: pi on S and the row multipliers alpha. Stationarity on S:
    C_ij + 2 lam (K (q - r))_j - alpha_i = 0 (lam > 0); primal: row sums = p. The
    Hessian is singular (it sees pi only through q), so the minimum-norm
    least-squares solution is taken.
    """
    n, m = S.shape
    idx = np.argwhere(S)
    k = len(idx)
    Msel = np.zeros((m, k))
    Msel[idx[:, 1], np.arange(k)] = 1.0  # q = Msel pi_S
    # Divided by 2 lam (multipliers beta = alpha / (2 lam)): at large lam the
    # unscaled system is too badly conditioned to resolve the gradient.
    top = np.hstack([(K @ Msel)[idx[:, 1]], -np.eye(n)[idx[:, 0]]])
    rhs_top = (K @ r)[idx[:, 1]] - C[idx[:, 0], idx[:, 1]] / (2 * lam)
    Rsel = np.zeros((n, k))
    Rsel[idx[:, 0], np.arange(k)] = 1.0
    bot = np.hstack([Rsel, np.zeros((n, n))])
    A = np.vstack([top, bot])
    rhs = np.concatenate([rhs_top, p])
    # The solution set is affine when the Hessian is singular: take the one
    # nearest to the current plan (minimum-norm displacement), which keeps
    # degenerate active-set steps from cycling.
    x0 = np.concatenate([base[idx[:, 0], idx[:, 1]], np.zeros(n)])
    sol = x0 + np.linalg.lstsq(A, rhs - A @ x0, rcond=None)[0]
    cand = np.zeros((n, m))
    cand[idx[:, 0], idx[:, 1]] = sol[:k]
    return cand


def _ratio_step(cur, S, d):
    """Move from ``cur`` along ``d`` (on S) until the first entry hits zero."""
    dec = S & (d < 0)
    t = float(np.min(cur[dec] / -d[dec])) if dec.any() else 1.0
    nxt = np.where(S, cur + t * d, 0.0).clip(min=0.0)
    if dec.any():
        nxt[dec & (cur + t * d <= 1e-15)] = 0.0
    return nxt


def _polish(P, C, K, p, r, lam, rounds: int = 60):
    """Primal active-set method for the QP, from the plan ``P``.

    On the current support S the objective is linear along the plans that
    change neither the row sums nor :math:`q` (cycles of the support's
    bipartite graph; the Hessian only sees :math:`q`): if the gradient has a
    component there, step along it until an entry hits zero (ratio test).
    Otherwise solve the KKT system on S; if its solution has negative entries,
    step towards it until the first one hits zero; else add the entry with
    the most negative reduced cost. The Frank-Wolfe gap certifies every
    candidate; the best is kept.
    """
    from scipy.linalg import null_space

    n, m = P.shape
    scale = max(float(np.abs(C).max()), 1e-300)
    cur = P.copy()
    best, best_gap = cur, _fw_gap(cur, C, K, p, r, lam)
    S = cur > 1e-9 * p[:, None]
    cur = np.where(S, cur, 0.0)
    for _ in range(rounds):
        idx = np.argwhere(S)
        k = len(idx)
        E = np.zeros((n + m, k))  # row sums and column sums of pi_S
        E[idx[:, 0], np.arange(k)] = 1.0
        E[n + idx[:, 1], np.arange(k)] = 1.0
        N = null_space(E)
        grad = C + 2.0 * lam * (K @ (cur.sum(0) - r))[None, :]
        if N.size:
            dn = -N @ (N.T @ grad[S])
            if np.abs(dn).max() > 1e-13 * scale:
                d = np.zeros((n, m))
                d[S] = dn
                cur = _ratio_step(cur, S, d)
                S = S & (cur > 0)
                continue
        cand = _kkt_on(S, C, K, p, r, lam, cur)
        neg = S & (cand < -1e-14)
        if neg.any():
            cur = _ratio_step(cur, S, cand - cur)
            S = S & (cur > 0)
            continue
        cur = _project_rows(cand, p)
        gap = _fw_gap(cur, C, K, p, r, lam)
        if gap < best_gap:
            best, best_gap = cur, gap
        if gap <= 1e-15 * scale:
            break
        grad = C + 2.0 * lam * (K @ (cur.sum(0) - r))[None, :]
        red = grad - np.where(S, grad, np.inf).min(1, keepdims=True)
        red[S] = np.inf
        i, j = np.unravel_index(np.argmin(red), red.shape)
        if not red[i, j] < 0:
            break
        S[i, j] = True
    return best, best_gap


def pot_w1_dual(C, D, p=None, r=None, *, lam: float) -> EncoderLP:
    r"""Penalised form of Prop. W: the dual of :func:`pot_w1`, as its own LP.

    .. math::
        D_{POT}(\lambda) = \max_{h \in \lambda \mathrm{Lip}(d_Z)}
        \sum_i p_i h^c(x_i) - \sum_j r_j h_j, \qquad
        h^c(x_i) = \min_j [C_{ij} + h_j],

    written as :math:`\max p^\top u - r^\top h` with :math:`u_i - h_j \le C_{ij}`
    and :math:`h_j - h_k \le \lambda D_{jk}`.

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

    References
    ----------
    .. [1] L. V. Kantorovich, G. S. Rubinstein. On a space of completely
       additive functions. Vestnik Leningrad Univ. 1958.

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
