"""Checks of docs/paper.md items 1-4: discrete W_c, Theorem A, Prop. A1, Theorem B.

Each ``item_k(seed, *, n, m, mc, ...)`` builds a seeded instance and returns
one :class:`~otgen.theory.check_result.CheckResult` per statement; extra
keywords build deliberately broken instances.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from otgen.ot.exact import emd, exact_ot
from otgen.theory import lp
from otgen.theory.check_result import (
    LP_RTOL,
    _res,
    _rtol,
)

# -- instances -------------------------------------------------------------------------


def _sqdist(x, y):
    return cdist(x, y, "sqeuclidean")


def _dist(x, y):
    return cdist(x, y, "euclidean")


@dataclass
class _Inst:
    x: np.ndarray  # (n, d) data atoms
    p: np.ndarray  # (n,)
    z: np.ndarray  # (m, dz) prior atoms
    r: np.ndarray  # (m,)
    y: np.ndarray  # (m, d) decoded atoms G(z_j)
    W: np.ndarray
    b: np.ndarray


def _decoder(z, W, b, even=False):
    zz = np.abs(z) if even else z
    return np.tanh(zz @ W) + b


def _instance(rng, n, m, *, d=2, dz=2, uniform=False, even=False) -> _Inst:
    x = rng.normal(size=(n, d))
    p = np.full(n, 1.0 / n) if uniform else rng.dirichlet(np.ones(n))
    if even:  # symmetric atoms +z, -z and an even decoder: G not injective
        half = rng.normal(size=((m + 1) // 2, dz))
        z = np.vstack([half, -half])[:m]
    else:
        z = rng.normal(size=(m, dz))
    r = np.full(m, 1.0 / m) if uniform else rng.dirichlet(np.ones(m))
    W = rng.normal(size=(dz, d))
    b = 0.5 * rng.normal(size=d)
    return _Inst(x, p, z, r, _decoder(z, W, b, even), W, b)


def _pushforward(y, r):
    """Atoms of G#P_Z with coincident images merged (weights summed)."""
    U, inv = np.unique(np.round(y, 12), axis=0, return_inverse=True)
    w = np.zeros(len(U))
    np.add.at(w, inv.ravel(), r)
    return U, w


def _wc(x, a, y, b, cost="sqeuclidean", **kw) -> float:
    return float(exact_ot(x, y, a, b, cost=cost, **kw).value)


# -- item 1: discrete W_c --------------------------------------------------------------


def item_1(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, descending=False):
    """Coupling LP = network simplex = assignment = sorted formulas on the line."""
    rng = np.random.default_rng(seed)
    out = []
    x, y = rng.normal(size=(n, 2)), rng.normal(1.0, 1.5, size=(m, 2))
    a, b = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    C = _sqdist(x, y)
    v_lp = lp.encoder_lp(C, a, b).value
    v_ns = _wc(x, a, y, b)
    out.append(
        _res(
            1,
            1,
            "coupling LP = exact OT",
            "HiGHS coupling LP equals otgen.exact_ot (network simplex), "
            "weighted atoms, c = |x-y|^2",
            v_lp,
            v_ns,
            "==",
            _rtol(LP_RTOL, v_ns),
        )
    )
    xs, ys = rng.normal(size=(n, 2)), rng.normal(1.0, 1.5, size=(n, 2))
    Cs = _sqdist(xs, ys)
    i, j = linear_sum_assignment(Cs)
    v_as = float(Cs[i, j].mean())
    v_eq = _wc(xs, None, ys, None)
    out.append(
        _res(
            1,
            2,
            "coupling LP = assignment",
            "equal uniform atoms: exact OT equals the optimal assignment "
            "(SciPy linear_sum_assignment)",
            v_eq,
            v_as,
            "==",
            _rtol(LP_RTOL, v_as),
        )
    )
    x1, y1 = rng.normal(size=n), rng.normal(0.5, 2.0, size=n)
    worst, vals = 0.0, {}
    for pw in (1.0, 2.0, 3.0):
        Cp = np.abs(x1[:, None] - y1[None]) ** pw
        v = float(emd(None, None, Cp, solver="network_simplex").value)
        ys_ = np.sort(y1)[::-1] if descending else np.sort(y1)
        srt = float(np.mean(np.abs(np.sort(x1) - ys_) ** pw))
        vals[pw] = (v, srt)
        worst = max(worst, abs(v - srt) / max(1.0, srt))
    out.append(
        _res(
            1,
            3,
            "1-D sorted formula",
            "on the line, W_p^p = mean |x_(i) - y_(i)|^p (p = 1, 2, 3): largest "
            "relative deviation from the LP",
            worst,
            0.0,
            "==",
            LP_RTOL,
            values=vals,
        )
    )
    x1, y1 = rng.normal(size=n), rng.normal(0.5, 2.0, size=m)
    a1, b1 = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m))
    v = float(emd(a1, b1, np.abs(x1[:, None] - y1[None])).value)
    grid = np.sort(np.concatenate([x1, y1]))
    Fa = np.array([a1[x1 <= t].sum() for t in grid[:-1]])
    Fb = np.array([b1[y1 <= t].sum() for t in grid[:-1]])
    cdf = float((np.abs(Fa - Fb) * np.diff(grid)).sum())
    out.append(
        _res(
            1,
            4,
            "W_1 = integral |F - G|",
            "on the line with weights, the W_1 LP equals the integral of the "
            "difference of the CDFs",
            v,
            cdf,
            "==",
            _rtol(LP_RTOL, cdf),
        )
    )
    return out


# -- item 2: Theorem A -----------------------------------------------------------------


def item_2(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, decoder_noise=0.0):
    """Theorem A: coupling LP = constrained encoder LP; permutations suffice."""
    rng = np.random.default_rng(seed)
    out = []
    inst = _instance(rng, n, m)
    C = _sqdist(inst.x, inst.y)
    enc = lp.encoder_lp(C, inst.p, inst.r)
    if decoder_noise > 0:
        # Broken instance: the coupling side uses a noisy decoder's law while
        # the encoder side keeps the deterministic G (Theorem A does not apply).
        xi = decoder_noise * np.array([[1.0, 1.0], [-1.0, -1.0]])
        yn = (inst.y[:, None, :] + xi[None]).reshape(-1, 2)
        wc = _wc(inst.x, inst.p, yn, np.repeat(inst.r, 2) / 2)
    else:
        U, w = _pushforward(inst.y, inst.r)
        wc = _wc(inst.x, inst.p, U, w)
    out.append(
        _res(
            2,
            1,
            "Theorem A",
            "W_c(P_X, G#P_Z) (exact OT) = min over random encoders with "
            "Q_Z = P_Z of E c(X, G(Z)) (encoder LP), c = |x-y|^2",
            wc,
            enc.value,
            "==",
            _rtol(LP_RTOL, wc),
            encoder=enc.encoder,
        )
    )
    J = _instance(rng, n, max(m, 2), even=True)
    C1 = cdist(J.x, J.y, "cityblock")
    U, w = _pushforward(J.y, J.r)
    wc1 = _wc(J.x, J.p, U, w, cost="minkowski", p=1, q=1)
    v1 = lp.encoder_lp(C1, J.p, J.r).value
    out.append(
        _res(
            2,
            2,
            "Theorem A, G not injective",
            f"same with an even decoder ({len(J.y)} prior atoms, {len(U)} images) "
            "and c = |x-y|_1",
            wc1,
            v1,
            "==",
            _rtol(LP_RTOL, wc1),
        )
    )
    K = _instance(rng, n, n, uniform=True)
    Ck = _sqdist(K.x, K.y)
    i, j = linear_sum_assignment(Ck)
    perm = float(Ck[i, j].mean())
    wck = _wc(K.x, None, K.y, None)
    out.append(
        _res(
            2,
            3,
            "permutation encoder",
            "n = m uniform atoms: the best permutation encoder attains W_c "
            "(Birkhoff-von Neumann)",
            perm,
            wck,
            "==",
            _rtol(LP_RTOL, wck),
        )
    )
    Q = enc.encoder
    err = max(
        float(np.abs(inst.p @ Q - inst.r).sum()), float(np.abs(Q.sum(1) - 1).max())
    )
    out.append(
        _res(
            2,
            4,
            "encoder is feasible",
            "the LP encoder is a Markov kernel with Q_Z = P_Z: "
            "max(|Q_Z - P_Z|_1, |row sums - 1|)",
            err,
            0.0,
            "==",
            1e-9,
        )
    )
    return out


# -- item 3: Prop. A1 ------------------------------------------------------------------


def _brute_deterministic(C, p, r) -> float:
    n, m = C.shape
    best = math.inf
    for e in itertools.product(range(m), repeat=n):
        q = np.bincount(e, weights=p, minlength=m)
        if np.abs(q - r).max() <= 1e-9:
            best = min(best, float((p * C[np.arange(n), e]).sum()))
    return best


def item_3(seed: int, *, n: int = 6, m: int = 4, mc: int = 0, reachable=False):
    """Prop. A1: deterministic encoders can be infeasible; random ones attain W_c."""
    rng = np.random.default_rng(seed)
    n, m = min(n, 7), min(max(m, 2), 4)  # brute force enumerates m^n encoders
    inst = _instance(rng, n, m, uniform=True)
    if reachable:  # broken: prior masses obtained by merging data atoms
        r = np.bincount(np.arange(n) % m, minlength=m) / n
    else:
        r = rng.dirichlet(np.ones(m))
    C = _sqdist(inst.x, inst.y)
    det = lp.deterministic_encoder(C, inst.p, r).value
    brute = _brute_deterministic(C, inst.p, r)
    out = [
        _res(
            3,
            1,
            "A1: deterministic infeasible",
            "P_Z not an image of P_X: the best deterministic encoder (MILP) is "
            "+inf, as a brute-force enumeration of all m^n encoders confirms",
            det,
            math.inf if not math.isinf(brute) else brute,
            "==",
            0.0,
            brute_force=brute,
        )
    ]
    wc = _wc(inst.x, inst.p, inst.y, r)
    v = lp.encoder_lp(C, inst.p, r).value
    out.append(
        _res(
            3,
            2,
            "A1: random encoders attain W_c",
            "on the same instance the randomised encoder LP equals W_c",
            v,
            wc,
            "==",
            _rtol(LP_RTOL, wc),
        )
    )
    rr = np.bincount(rng.integers(0, m, size=n), minlength=m) / n
    keep = rr > 0
    det2 = lp.deterministic_encoder(C[:, keep], inst.p, rr[keep]).value
    brute2 = _brute_deterministic(C[:, keep], inst.p, rr[keep])
    out.append(
        _res(
            3,
            3,
            "A1: reachable prior",
            "P_Z an image of P_X (masses merged from data atoms): the MILP "
            "finds the best deterministic encoder (brute force)",
            det2,
            brute2,
            "==",
            _rtol(LP_RTOL, brute2),
        )
    )
    K = _instance(rng, n, n, uniform=True)
    Ck = _sqdist(K.x, K.y)
    det3 = lp.deterministic_encoder(Ck).value
    wc3 = _wc(K.x, None, K.y, None)
    out.append(
        _res(
            3,
            4,
            "A1: permutations suffice",
            "n = m uniform atoms: the best deterministic encoder attains W_c",
            det3,
            wc3,
            "==",
            _rtol(LP_RTOL, wc3),
        )
    )
    return out


# -- item 4: Theorem B, Prop. B1 -------------------------------------------------------


def _random_decoder_cost(x, Y, w, cost=_sqdist):
    """C_ij = sum_k w_k c(x_i, Y_jk) for decoder atoms Y (m, k, d)."""
    m, k, d = Y.shape
    return (cost(x, Y.reshape(-1, d)).reshape(len(x), m, k) * w).sum(-1)


def item_4(seed: int, *, n: int = 6, m: int = 5, mc: int = 0, noise_mean=0.0):
    """Theorem B: W_c <= W_c-dagger, equality for Dirac decoders; Prop. B1."""
    n = max(n, 2)  # strictness needs a non-degenerate P_X
    rng = np.random.default_rng(seed)
    out = []
    inst = _instance(rng, n, m)
    k = 3
    xi = 0.7 * rng.normal(size=(k, 2))
    wk = rng.dirichlet(np.ones(k))
    Y = inst.y[:, None, :] + xi[None]
    dag = lp.encoder_lp(_random_decoder_cost(inst.x, Y, wk), inst.p, inst.r).value
    wc = _wc(inst.x, inst.p, Y.reshape(-1, 2), (inst.r[:, None] * wk).ravel())
    out.append(
        _res(
            4,
            1,
            "Theorem B",
            "random decoder (3 noise atoms per code): W_c(P_X, P_G) <= W_c-dagger",
            wc,
            dag,
            "<=",
            _rtol(LP_RTOL, dag),
            gap=dag - wc,
        )
    )
    dag0 = lp.encoder_lp(
        _random_decoder_cost(inst.x, inst.y[:, None], np.ones(1)), inst.p, inst.r
    ).value
    U, w = _pushforward(inst.y, inst.r)
    wc0 = _wc(inst.x, inst.p, U, w)
    out.append(
        _res(
            4,
            2,
            "Theorem B, Dirac decoder",
            "for a deterministic decoder W_c-dagger = W_c (Theorem A)",
            dag0,
            wc0,
            "==",
            _rtol(LP_RTOL, wc0),
        )
    )
    # Noise-only decoder: P_Z = delta_{z0}, P_G(.|z0) = P_X.
    dagn = lp.encoder_lp(
        _random_decoder_cost(inst.x, inst.x[None], inst.p), inst.p, np.ones(1)
    ).value
    wcn = _wc(inst.x, inst.p, inst.x, inst.p)
    out.append(
        _res(
            4,
            3,
            "Theorem B strict",
            "P_Z = delta, P_G(.|z0) = P_X: W_c = 0 < W_c-dagger",
            wcn,
            dagn,
            "<",
            _rtol(LP_RTOL, dagn),
        )
    )
    exx = float(inst.p @ _sqdist(inst.x, inst.x) @ inst.p)
    out.append(
        _res(
            4,
            4,
            "Theorem B strict, value",
            "in that case W_c-dagger = E c(X, X'), X, X' iid P_X",
            dagn,
            exx,
            "==",
            _rtol(LP_RTOL, exx),
        )
    )
    sigma, d = 0.3, 2
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=d)))
    xi = sigma * signs + noise_mean  # mean 0 (unless broken), |xi|^2 = d sigma^2
    Yb = inst.y[:, None, :] + xi[None]
    wb = np.full(len(xi), 1.0 / len(xi))
    dagb = lp.encoder_lp(_random_decoder_cost(inst.x, Yb, wb), inst.p, inst.r).value
    out.append(
        _res(
            4,
            5,
            "Prop. B1",
            "Y = G(Z) + xi, E xi = 0, E|xi|^2 = d sigma^2, c = |x-y|^2: "
            "W_c-dagger = W_c(P_X, G#P_Z) + d sigma^2",
            dagb,
            wc0 + d * sigma**2,
            "==",
            _rtol(LP_RTOL, dagb),
        )
    )
    return out
