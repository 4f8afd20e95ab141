"""Checks of docs/paper.md items 5-9: POT properties (P1-P3, P5, P6), KR, Prop. W."""

from __future__ import annotations

import importlib
import math

import numpy as np

from otgen.theory import lp
from otgen.theory._items_coupling import (
    _dist,
    _instance,
    _pushforward,
    _sqdist,
    _wc,
)
from otgen.theory.check_result import (
    LP_RTOL,
    _res,
    _rtol,
)

# -- items 5-7: POT --------------------------------------------------------------------


def _latent_gram(z, prior_std=1.0):
    """IMQ Gram matrix C / (C + |z - z'|^2), C = 2 d_z sigma_z^2 (WAE)."""
    kernels = importlib.import_module("otgen.ot.kernels")
    c = kernels.wae_imq_scale(z.shape[1], prior_std)
    return np.asarray(kernels.kernel_matrix(z, kernel="imq", scale=c), float)


LAM_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def item_5(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, wc_scale=1.0):
    """Prop. P1-P3 for W_1, TV and MMD^2 penalties."""
    rng = np.random.default_rng(seed)
    inst = _instance(rng, n, m)
    C = _sqdist(inst.x, inst.y)
    Dz = _dist(inst.z, inst.z)
    K = _latent_gram(inst.z)
    wc = wc_scale * lp.encoder_lp(C, inst.p, inst.r).value
    curves = {"w1": [], "tv": [], "mmd2": []}
    cert = 0.0
    for lam in LAM_GRID:
        curves["w1"].append(lp.pot_w1(C, Dz, inst.p, inst.r, lam=lam).value)
        curves["tv"].append(lp.pot_tv(C, inst.p, inst.r, lam=lam).value)
        res = lp.pot_mmd2(C, K, inst.p, inst.r, lam=lam)
        curves["mmd2"].append(res.value)
        cert = max(cert, res.certificate)
    arr = {k: np.array(v) for k, v in curves.items()}
    tol = _rtol(LP_RTOL, wc) + cert
    over = max(float((v - wc).max()) for v in arr.values())
    lams = np.array(LAM_GRID)
    out = [
        _res(
            5,
            1,
            "P1 lower bound",
            "D_POT(lambda) <= W_c for W_1, TV and MMD^2 penalties, lambda in "
            f"[0, {LAM_GRID[-1]:g}]: largest D_POT - W_c",
            over,
            0.0,
            "<=",
            tol,
            lams=lams,
            curves=arr,
            wc=wc,
        )
    ]
    incr = min(float(np.diff(v).min()) for v in arr.values())
    out.append(
        _res(
            5,
            2,
            "P2 monotone",
            "D_POT is non-decreasing in lambda: smallest increment",
            incr,
            0.0,
            ">=",
            tol,
        )
    )
    dl = np.diff(lams)
    conc = max(float(np.diff(np.diff(v) / dl).max()) for v in arr.values())
    out.append(
        _res(
            5,
            3,
            "P2 concave",
            "D_POT is concave in lambda: largest increase of the slope",
            conc,
            0.0,
            "<=",
            2 * tol / dl.min(),
        )
    )
    dist_range = float(inst.p @ C.min(1))
    dev = {k: float(v[0]) for k, v in arr.items()}
    worst = max(dev.values(), key=lambda v: abs(v - dist_range))
    out.append(
        _res(
            5,
            4,
            "P3 lambda = 0",
            "D_POT(0) = E_X min_j c(X, G(z_j)), the distance to the range "
            "(worst of the three penalties)",
            worst,
            dist_range,
            "==",
            _rtol(LP_RTOL, dist_range) + cert,
            values=dev,
        )
    )
    return out


def _penalty_instance(seed, n, m):
    """Instance with c = d and D_POT(0) < W_1 (the premise of P5; generic).

    The premise fails only when the nearest-code encoder already has
    Q_Z = P_Z (always for m = 1); such draws are redrawn.
    """
    rng = np.random.default_rng(seed)
    m = max(m, 2)
    for _ in range(100):
        inst = _instance(rng, n, m)
        C = _dist(inst.x, inst.y)
        U, w = _pushforward(inst.y, inst.r)
        w1 = _wc(inst.x, inst.p, U, w, cost="euclidean")
        if w1 - inst.p @ C.min(1) > 1e-6 * w1:
            break
    Dz = _dist(inst.z, inst.z)
    off = ~np.eye(m, dtype=bool)
    L = float((_dist(inst.y, inst.y)[off] / Dz[off]).max())
    return inst, C, Dz, L, w1


def item_6(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, penalty="mmd2"):
    """Prop. P5: the MMD^2 penalty is never exact; gap = Theta(1/lambda)."""
    inst, C, Dz, L, w1 = _penalty_instance(seed, n, m)
    K = _latent_gram(inst.z)
    lams = np.array([0.1, 1.0, 10.0, 100.0, 1e3, 1e4])
    enc = lp.encoder_lp(C, inst.p, inst.r)
    vals, certs = [], []
    for lam in lams:
        if penalty == "mmd2":
            res = lp.pot_mmd2(C, K, inst.p, inst.r, lam=lam)
        else:  # broken instance: an exact penalty
            res = lp.pot_w1(C, Dz, inst.p, inst.r, lam=lam)
        vals.append(res.value)
        certs.append(res.certificate)
    vals, certs = np.array(vals), np.array(certs)
    gap_lo = enc.value - vals  # value is an upper bound on D_POT
    gap_hi = gap_lo + certs
    d0 = lp.pot_mmd2(C, K, inst.p, inst.r, lam=0.0)
    a = enc.value - d0.value
    e0 = d0.q - inst.r
    b = float(e0 @ K @ e0)
    Ki = np.linalg.inv(K)
    h = enc.h
    one = np.ones(len(h))
    c = -(one @ Ki @ h) / (one @ Ki @ one)
    upper = float((h + c) @ Ki @ (h + c)) / 4.0
    lower = a * a / (4.0 * b) if b > 0 else math.inf
    lp_err = _rtol(LP_RTOL, enc.value) * 1e-2  # exact OT is far below 1e-8
    out = [
        _res(
            6,
            1,
            "P5 gap > 0",
            "MMD^2 penalty: W_c - D_POT(lambda) > 0 for lambda up to 1e4 "
            "(certified: D_POT bounded above by a feasible encoder)",
            float(gap_lo.min()),
            0.0,
            ">",
            lp_err,
            lams=lams,
            gaps=gap_lo,
            values=vals,
            wc=enc.value,
        )
    ]
    use = lams >= a / (2 * b) if b > 0 else lams > 0
    tol = float((lams * (lp_err + certs)).max())
    out.append(
        _res(
            6,
            2,
            "P5 lambda*gap bounded below",
            "lambda (W_c - D_POT) >= a^2 / (4b) (mixture with the lambda = 0 "
            "encoder: a its reconstruction advantage, b its MMD^2)",
            float((lams * gap_lo)[use].min()) if use.any() else math.inf,
            lower,
            ">=",
            tol,
            a=a,
            b=b,
        )
    )
    out.append(
        _res(
            6,
            3,
            "P5 lambda*gap bounded above",
            "lambda (W_c - D_POT) <= mu^T K^-1 mu / 4 (mu: LP multiplier of "
            "Q_Z = P_Z, best shift)",
            float((lams * gap_hi).max()),
            upper,
            "<=",
            tol,
        )
    )
    return out


def item_7(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, lam_factor=1.0):
    """Prop. P6: the W_1 penalty is exact for lambda >= Lip(G)."""
    inst, C, Dz, L, w1 = _penalty_instance(seed, n, m)
    lam = lam_factor * L
    v = lp.pot_w1(C, Dz, inst.p, inst.r, lam=lam).value
    grid = np.sort(np.concatenate([np.geomspace(L / 30, 10 * L, 15), [L]]))
    curve = np.array([lp.pot_w1(C, Dz, inst.p, inst.r, lam=g).value for g in grid])
    return [
        _res(
            7,
            1,
            "P6 exact W_1 penalty",
            f"c = d, D_Z = W_1, G L-Lipschitz on the atoms (L = {L:.3g}): "
            f"D_POT(lambda) = W_1(P_X, G#P_Z) at lambda = {lam_factor:g} L "
            "(one LP: encoder plan + latent plan)",
            v,
            w1,
            "==",
            _rtol(LP_RTOL, w1),
            lams=grid,
            curve=curve,
            L=L,
            w1=w1,
            seed=seed,
            n=n,
            m=m,
        )
    ]


# -- items 8-9: Kantorovich-Rubinstein, Prop. W ----------------------------------------


def item_8(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, metric_scale=1.0):
    """KR: primal W_1 LP = dual LP over 1-Lipschitz potentials."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(1.0, 1.0, size=(m, 2))
    a, b = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    w1 = _wc(x, a, y, b, cost="euclidean")
    val, U, f = lp.kr_dual(x, y, a, b, metric=lambda s, t: metric_scale * _dist(s, t))
    D = _dist(U, U)
    lip = float((f[:, None] - f[None, :] - D).max())
    return [
        _res(
            8,
            1,
            "Kantorovich-Rubinstein",
            "primal W_1 (exact OT) = max sum a f(x) - sum b f(y) over f with "
            "f_u - f_v <= d(u, v) on the union of supports",
            val,
            w1,
            "==",
            _rtol(LP_RTOL, w1),
        ),
        _res(
            8,
            2,
            "KR potential is 1-Lipschitz",
            "max over pairs of f_u - f_v - d(u, v)",
            lip,
            0.0,
            "<=",
            _rtol(LP_RTOL, w1),
        ),
    ]


def item_9(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, h_perturb=0.0):
    """Prop. W: the encoder LP's dual is the WGAN critic problem."""
    inst, C, Dz, L, w1 = _penalty_instance(seed, n, m)
    rng = np.random.default_rng(seed + 1)
    dual = lp.encoder_dual_lp(C, inst.p, inst.r)
    h = dual.h + h_perturb * rng.normal(size=len(dual.h))
    f = lp.c_transform_critic(h, inst.y)
    pts = np.vstack([inst.x, inst.y, rng.normal(scale=2.0, size=(40, 2))])
    fv = f(pts)
    lip = float((np.abs(fv[:, None] - fv[None]) - _dist(pts, pts)).max())
    crit = float(inst.p @ f(inst.x) - inst.r @ f(inst.y))
    out = [
        _res(
            9,
            1,
            "Prop. W duality",
            "dual of the encoder LP, max sum p u - sum r h s.t. "
            "u_i - h_j <= d(x_i, G(z_j)), equals W_1(P_X, G#P_Z)",
            dual.value,
            w1,
            "==",
            _rtol(LP_RTOL, w1),
        ),
        _res(
            9,
            2,
            "c-transform critic 1-Lipschitz",
            "f(y) = min_j d(y, G(z_j)) + h_j: max over data, decoded atoms and "
            "40 random points of |f(s) - f(t)| - d(s, t)",
            lip,
            0.0,
            "<=",
            _rtol(LP_RTOL, w1),
        ),
        _res(
            9,
            3,
            "critic attains W_1",
            "WGAN objective E_PX f - E_PZ f(G(Z)) of the c-transform critic equals W_1",
            crit,
            w1,
            "==",
            _rtol(LP_RTOL, w1),
            x=inst.x,
            p=inst.p,
            y=inst.y,
            r=inst.r,
            h=h,
            w1=w1,
        ),
    ]
    worst, vals = 0.0, []
    for lam in (0.25 * L, 0.5 * L, L, 2 * L):
        prim = lp.pot_w1(C, Dz, inst.p, inst.r, lam=lam).value
        du = lp.pot_w1_dual(C, Dz, inst.p, inst.r, lam=lam).value
        vals.append((lam, prim, du))
        worst = max(worst, abs(prim - du))
    out.append(
        _res(
            9,
            4,
            "Prop. W penalised form",
            "D_POT(lambda) with W_1 penalty = max over lambda-Lipschitz h of "
            "E h^c(X) - E h(Z), lambda in {L/4, L/2, L, 2L}: largest |difference|",
            worst,
            0.0,
            "==",
            _rtol(LP_RTOL, w1),
            values=vals,
        )
    )
    return out
