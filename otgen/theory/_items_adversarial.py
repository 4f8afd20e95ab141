"""Checks of docs/paper.md items 13-14: MMD estimators, GAN and f-GAN."""

from __future__ import annotations

import importlib
import math

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from otgen.theory import continuous as ct
from otgen.theory import gaussian as ga
from otgen.theory.check_result import (
    EXACT_TOL,
    MC_SE,
    OPT_TOL,
    _res,
    _rtol,
)

# -- item 13: MMD ----------------------------------------------------------------------


def item_13(seed: int, *, n: int = 20, m: int = 0, mc: int = 400, estimator=None):
    """MMD estimators: unbiased, zero for P = Q, IMQ scale, PSD, multi-scale."""
    mmd_mod = importlib.import_module("otgen.ot.mmd")
    kernels = importlib.import_module("otgen.ot.kernels")
    mmd = mmd_mod.mmd
    rng = np.random.default_rng(seed)
    n = max(n, 4)
    d, h = 2, 1.0
    m1, m2 = np.zeros(d), np.array([0.8, -0.3])
    S1, S2 = np.eye(d), np.diag([1.5, 0.6])
    truth = ga.rbf_mmd2_gaussian(m1, S1, m2, S2, bandwidth=h)
    out = []
    reps = max(mc // 10, 20)
    for k, est in ((1, "all_pairs"), (2, "off_diagonal")):
        vals = np.array(
            [
                mmd(
                    rng.multivariate_normal(m1, S1, size=n),
                    rng.multivariate_normal(m2, S2, size=n),
                    kernel="gaussian",
                    scale=h,
                    estimator=estimator or est,
                )
                for _ in range(reps)
            ]
        )
        se = float(vals.std(ddof=1) / math.sqrt(reps))
        out.append(
            _res(
                13,
                k,
                f"MMD^2 {est} unbiased",
                f"mean of the {est} estimator over {reps} pairs of samples "
                f"(n = {n}) = closed-form Gaussian-RBF MMD^2 (4 standard errors)",
                float(vals.mean()),
                truth,
                "==",
                MC_SE * se,
            )
        )
    vals = np.array(
        [
            mmd(
                rng.multivariate_normal(m1, S1, size=n),
                rng.multivariate_normal(m1, S1, size=n),
                kernel="gaussian",
                scale=h,
                estimator=estimator or "all_pairs",
            )
            for _ in range(reps)
        ]
    )
    se = float(vals.std(ddof=1) / math.sqrt(reps))
    out.append(
        _res(
            13,
            3,
            "MMD^2 = 0 for P = Q",
            f"mean estimate for two samples of the same law ({reps} repeats) "
            "= 0 (4 standard errors)",
            float(vals.mean()),
            0.0,
            "==",
            MC_SE * se,
        )
    )
    dz, sz = 3, float(rng.uniform(0.5, 2.0))
    Z1 = rng.normal(scale=sz, size=(mc, dz))
    Z2 = rng.normal(scale=sz, size=(mc, dz))
    sq = ((Z1 - Z2) ** 2).sum(1)
    C = kernels.wae_imq_scale(dz, sz)
    out.append(
        _res(
            13,
            4,
            "IMQ scale C = E|Z - Z'|^2",
            f"Monte Carlo E|Z - Z'|^2 ({mc} pairs) = 2 d_z sigma_z^2 = "
            "otgen.ot.kernels.wae_imq_scale",
            float(sq.mean()),
            C,
            "==",
            MC_SE * float(sq.std(ddof=1) / math.sqrt(mc)),
        )
    )
    Zg = rng.normal(scale=sz, size=(max(n, 30), dz))
    Kg = np.asarray(kernels.kernel_matrix(Zg, kernel="imq", scale=C), float)
    lmin = float(np.linalg.eigvalsh(0.5 * (Kg + Kg.T)).min())
    out.append(
        _res(
            13,
            5,
            "IMQ Gram PSD",
            f"smallest eigenvalue of the IMQ Gram matrix of {len(Zg)} points >= 0",
            lmin,
            0.0,
            ">=",
            EXACT_TOL * len(Zg),
        )
    )
    X, Y = rng.normal(size=(n, dz)), rng.normal(0.3, 1.0, size=(n, dz))
    scales = kernels.wae_imq_scale(dz, sz, multiscale=True)
    multi = mmd(X, Y, kernel="imq", scale=list(scales))
    single = float(sum(mmd(X, Y, kernel="imq", scale=sc) for sc in scales))
    out.append(
        _res(
            13,
            6,
            "multi-scale = sum of single-scale",
            "MMD^2 with the 7 IMQ scales s C = sum of the 7 single-scale values",
            multi,
            single,
            "==",
            _rtol(EXACT_TOL, single),
        )
    )
    return out


# -- item 14: GAN, f-GAN ---------------------------------------------------------------


def item_14(seed: int, *, n: int = 6, m: int = 0, mc: int = 0, logit_shift=0.0):
    """GAN value at D*, optimal logits, prior trick; f-GAN KL bound."""
    rng = np.random.default_rng(seed)
    k = max(n, 2)
    # Masses bounded away from 0 keep the objective curved in every logit.
    P, Q = rng.dirichlet(3 * np.ones(k)), rng.dirichlet(3 * np.ones(k))
    t_star = np.log(P) - np.log(Q) + logit_shift
    v = ct.gan_value(P, Q, t_star)
    js = float(jensenshannon(P, Q) ** 2)  # SciPy returns the square root (nats)
    out = [
        _res(
            14,
            1,
            "GAN value at D*",
            "E_P log D* + E_Q log(1 - D*) = 2 JS(P, Q) - log 4 (SciPy JS)",
            v,
            2 * js - math.log(4),
            "==",
            _rtol(EXACT_TOL, v),
        )
    ]

    def maximise(P, Q, off):
        """Trust-region Newton ascent of V over the logits t + off."""

        def neg(t):
            return -ct.gan_value(P, Q, t + off)

        def grad(t):
            s = 1.0 / (1.0 + np.exp(-(t + off)))
            return -(P * (1 - s) - Q * s)

        def hess(t):
            s = 1.0 / (1.0 + np.exp(-(t + off)))
            return np.diag((P + Q) * s * (1 - s))

        t = minimize(
            neg, np.zeros(len(P)), jac=grad, hess=hess, method="trust-exact",
            options={"gtol": 1e-14, "maxiter": 500},
        ).x  # fmt: skip
        for _ in range(3):  # Newton polish: the stopping rule is on the gradient
            t = t - grad(t) / np.diag(hess(t))
        return t

    opt = maximise(P, Q, 0.0)
    out.append(
        _res(
            14,
            2,
            "optimal logit",
            "numerical maximiser of the GAN objective over logits = "
            "log p - log q (largest deviation)",
            float(np.abs(opt - t_star).max()),
            0.0,
            "==",
            OPT_TOL,
        )
    )
    pz, qz = rng.dirichlet(3 * np.ones(k)), rng.dirichlet(3 * np.ones(k))
    logpz = np.log(pz)
    opt2 = maximise(pz, qz, logpz)
    out.append(
        _res(
            14,
            3,
            "prior trick residual",
            "latent discriminator logit = residual + log p_Z: the optimal "
            "residual is -log q_Z (largest deviation)",
            float(np.abs(opt2 - ct.prior_trick_residual(qz)).max()),
            0.0,
            "==",
            OPT_TOL,
        )
    )
    kl = float(entropy(P, Q))
    Ts = rng.normal(scale=2.0, size=(50, k))
    gap = max(ct.fgan_kl_bound(P, Q, T) - kl for T in Ts)
    out.append(
        _res(
            14,
            4,
            "f-GAN bound",
            "E_P T - E_Q exp(T - 1) <= KL(P || Q) for 50 random T: largest bound - KL",
            gap,
            0.0,
            "<=",
            _rtol(EXACT_TOL, kl),
        )
    )
    tb = ct.fgan_kl_bound(P, Q, 1 + np.log(P / Q) + logit_shift)
    out.append(
        _res(
            14,
            5,
            "f-GAN bound tight",
            "equality at T* = 1 + log(p / q) (SciPy KL)",
            tb,
            kl,
            "==",
            _rtol(EXACT_TOL, kl),
        )
    )
    return out
