"""Checks of docs/paper.md items 10-12: Gaussians, Prop. E (blur), Prop. V (VAE)."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from scipy import integrate
from scipy.optimize import minimize_scalar
from scipy.stats import multivariate_normal, norm

from otgen.ot.gaussian import gaussian_w2
from otgen.theory import continuous as ct
from otgen.theory import gaussian as ga
from otgen.theory.check_result import (
    EXACT_TOL,
    LP_RTOL,
    MC_SE,
    OPT_TOL,
    QUAD_RTOL,
    _res,
    _rtol,
)

# -- item 10: Gaussians ----------------------------------------------------------------


def _spd(rng, d):
    A = rng.normal(size=(d, d))
    return A @ A.T + 0.2 * np.eye(d)


def item_10(seed: int, *, n: int = 0, m: int = 0, mc: int = 4000, map_scale=1.0):
    """Gaussian W_2^2, Monge map, affine-decoder encoder, 1-D quantile formula."""
    rng = np.random.default_rng(seed)
    d = 2
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    S1, S2 = _spd(rng, d), _spd(rng, d)
    w2 = gaussian_w2(m1, S1, m2, S2).value
    r1 = scipy.linalg.sqrtm(S1).real
    ref = float(
        ((m1 - m2) ** 2).sum()
        + np.trace(S1 + S2)
        - 2 * np.trace(scipy.linalg.sqrtm(r1 @ S2 @ r1).real)
    )
    out = [
        _res(
            10,
            1,
            "Gaussian W_2^2",
            "Bures-Wasserstein formula (otgen.gaussian_w2) = the same formula "
            "with SciPy's sqrtm",
            w2,
            ref,
            "==",
            _rtol(LP_RTOL, ref),
        )
    ]
    A, _ = ga.monge_map(m1, S1, m2, S2)
    A = map_scale * A

    def T(v):
        return m2 + (v - m1) @ A.T

    push = float(np.abs(A @ S1 @ A.T - S2).max() / np.abs(S2).max())
    out.append(
        _res(
            10,
            2,
            "Monge map pushes forward",
            "T(x) = m2 + A(x - m1): A S1 A^T = S2 (largest relative entry error)",
            push,
            0.0,
            "==",
            LP_RTOL,
        )
    )
    IA = np.eye(d) - A
    cost = float(((m1 - m2) ** 2).sum() + np.trace(IA @ S1 @ IA.T))
    out.append(
        _res(
            10,
            3,
            "Monge map attains W_2^2",
            "E|X - T(X)|^2 (closed form) = W_2^2",
            cost,
            w2,
            "==",
            _rtol(LP_RTOL, w2),
        )
    )
    X = rng.multivariate_normal(m1, S1, size=mc)
    sq = ((X - T(X)) ** 2).sum(1)
    se = float(sq.std(ddof=1) / math.sqrt(mc))
    sub = X[:300]
    out.append(
        _res(
            10,
            4,
            "Monge map, Monte Carlo",
            f"mean of |X - T(X)|^2 over {mc} samples = W_2^2 (4 standard errors)",
            float(sq.mean()),
            w2,
            "==",
            MC_SE * se,
            x=sub,
            tx=T(sub),
            m1=m1,
            S1=S1,
            m2=m2,
            S2=S2,
        )
    )
    B = rng.normal(size=(d, d)) + 2 * np.eye(d)
    bb = rng.normal(size=d)
    M, c = ga.affine_decoder_encoder(m1, S1, B, bb)
    M = map_scale * M
    qerr = max(
        float(np.abs(M @ m1 + c).max()), float(np.abs(M @ S1 @ M.T - np.eye(d)).max())
    )
    out.append(
        _res(
            10,
            5,
            "affine decoder: encoder Q_Z = P_Z",
            "G(z) = Bz + b, E(x) = B^-1 (T(x) - b): Q_Z = N(0, I) (largest error "
            "in mean and covariance)",
            qerr,
            0.0,
            "==",
            LP_RTOL,
        )
    )
    R, t = B @ M, B @ c + bb  # G(E(x)) = R x + t
    IR = np.eye(d) - R
    rec = float(((m1 - R @ m1 - t) ** 2).sum() + np.trace(IR @ S1 @ IR.T))
    w2g = gaussian_w2(m1, S1, bb, B @ B.T).value
    out.append(
        _res(
            10,
            6,
            "affine decoder: cost W_2^2",
            "E|X - G(E(X))|^2 = W_2^2(P_X, G#P_Z) (Theorem A attained by a "
            "deterministic encoder)",
            rec,
            w2g,
            "==",
            _rtol(LP_RTOL, w2g),
        )
    )
    a1, s1, s2 = rng.normal(), rng.uniform(0.5, 2), rng.uniform(0.5, 2)
    a2 = a1 + rng.uniform(0.5, 1.5)  # keep W_2^2 of order 1
    q = ga.w2_quantile_1d(a1, s1, a2, s2)
    g1 = gaussian_w2(
        np.array([a1]), np.array([[s1**2]]), np.array([a2]), np.array([[s2**2]])
    ).value
    out.append(
        _res(
            10,
            7,
            "1-D quantile formula",
            "int_0^1 (F1^-1 - F2^-1)^2 (quadrature) = W_2^2 (Bures, d = 1)",
            q,
            g1,
            "==",
            _rtol(QUAD_RTOL, g1),
        )
    )
    return out


# -- item 11: Prop. E (blur) -----------------------------------------------------------


def _blur_instance(rng, n):
    x = np.sort(rng.normal(scale=2.0, size=n))[:, None]  # 1-D data, d = 1
    p = rng.dirichlet(2 * np.ones(n))
    mu = np.linspace(-1.5, 1.5, n) + 0.2 * rng.normal(size=n)
    s = rng.uniform(0.4, 0.8, size=n)
    return x, p, mu, s


def item_11(seed: int, *, n: int = 4, m: int = 0, mc: int = 4000, decoder_shift=0.0):
    """Prop. E: the posterior-mean decoder, its error, blur, partition encoders."""
    rng = np.random.default_rng(seed)
    n = max(n, 2)
    x, p, mu, s = _blur_instance(rng, n)
    G, wts = ct.posterior_mean_decoder(x, p, mu[:, None], s)

    def Gs(z):
        return G(z) + decoder_shift

    i = rng.choice(n, size=mc, p=p)
    Z = rng.normal(mu[i], s[i])
    R = x[i, 0] - Gs(Z[:, None])[:, 0]
    phis = {
        "1": lambda z: np.ones_like(z),
        "z": lambda z: z,
        "z^2": lambda z: z**2,
        "sin 2z": lambda z: np.sin(2 * z),
        "tanh z": np.tanh,
    }
    worst, wse = 0.0, 1.0
    for phi in phis.values():
        v = R * phi(Z)
        mean, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(mc))
        if abs(mean) / se > worst / wse:
            worst, wse = abs(mean), se
    out = [
        _res(
            11,
            1,
            "Prop. E orthogonality",
            f"E[(X - G*(Z)) phi(Z)] = 0 for phi in {{{', '.join(phis)}}} "
            f"({mc} samples of (X, Z); the worst in standard errors)",
            worst,
            0.0,
            "==",
            MC_SE * wse,
        )
    ]
    sc = float(s.max())

    def qz(z):
        return float(p @ np.exp(ct._logpdf(z, mu, s)))

    def err_of(dec):
        tot = 0.0
        for k in range(n):
            tot += p[k] * ct.quad_line(
                lambda z, k=k: (
                    math.exp(ct._logpdf(z, mu[k], s[k]))
                    * (x[k, 0] - dec(np.array([[z]]))[0, 0]) ** 2
                ),
                [mu[k]],
                s[k],
            )
        return tot

    err = err_of(Gs)

    def cond_var(z):
        w = wts(np.array([[z]]))[0]
        g = w @ x[:, 0]
        return qz(z) * float(w @ (x[:, 0] - g) ** 2)

    ecov = ct.quad_line(cond_var, mu, sc)
    out.append(
        _res(
            11,
            2,
            "Prop. E error",
            "E|X - G*(Z)|^2 = E_{Q_Z} tr Cov(X|Z) (two quadratures)",
            err,
            ecov,
            "==",
            _rtol(QUAD_RTOL, ecov),
        )
    )
    amp, fr, ph = rng.normal(), rng.uniform(0.5, 2), rng.uniform(0, 6)

    def psi(z):
        return amp * np.sin(fr * z + ph)

    err2 = err_of(lambda z: Gs(z) + psi(z))
    epsi = ct.quad_line(lambda z: qz(z) * psi(z) ** 2, mu, sc)
    out.append(
        _res(
            11,
            3,
            "Prop. E minimality",
            "E|X - (G* + psi)(Z)|^2 - E|X - G*(Z)|^2 = E psi(Z)^2 > 0 for a "
            "random psi (Pythagoras: G* is the minimiser)",
            err2 - err,
            epsi,
            "==",
            _rtol(QUAD_RTOL, err2),
        )
    )
    zg = np.linspace(mu.min() - 1, mu.max() + 1, 201)[:, None]
    minw = float(wts(zg).min())
    out.append(
        _res(
            11,
            4,
            "Prop. E blur",
            "G*(z) is a strict convex combination of all x_i: smallest "
            "posterior weight over z in the codes' range",
            minw,
            0.0,
            ">",
            0.0,
            z=zg[:, 0],
            g=G(zg)[:, 0],
            x=x[:, 0],
            p=p,
            mu=mu,
            s=s,
            err=err,
        )
    )
    enc = ct.partition_encoders(p)  # Q(Z|x_k): N(0, 1) restricted to cell k
    cuts, part_pdf = enc.cuts, enc.pdf

    tgrid = np.linspace(-3, 3, 13)
    dev = 0.0
    for t in tgrid:
        F = 0.0
        for k in range(n):
            lo, hi = cuts[k], min(cuts[k + 1], t)
            if hi > lo:
                F += (
                    p[k]
                    * integrate.quad(
                        lambda z, k=k: part_pdf(z, k),
                        max(lo, -40.0),
                        hi,
                        epsabs=1e-14,
                        epsrel=1e-12,
                    )[0]
                )
        dev = max(dev, abs(F - norm.cdf(t)))
    out.append(
        _res(
            11,
            5,
            "partition encoders: Q_Z = P_Z",
            "Q(Z|x_i) = P_Z restricted to the i-th cell of a partition with "
            "masses p_i: sup_t |F_QZ(t) - Phi(t)| (quadrature)",
            dev,
            0.0,
            "==",
            QUAD_RTOL,
            cuts=cuts,
        )
    )

    def part_dec(z):  # G(z) = x_i on cell i
        return x[enc.cell(z), 0]

    rec = 0.0
    for k in range(n):
        lo, hi = max(cuts[k], -40.0), min(cuts[k + 1], 40.0)
        rec += (
            p[k]
            * integrate.quad(
                lambda z, k=k: part_pdf(z, k) * (x[k, 0] - part_dec(z)) ** 2,
                lo,
                hi,
                epsabs=1e-14,
                epsrel=1e-12,
            )[0]
        )
    out.append(
        _res(
            11,
            6,
            "partition encoders: zero error",
            "with G(z) = x_i on cell i the reconstruction error is 0, while the "
            f"Gaussian encoders' best decoder errs by {err:.3g}",
            rec,
            0.0,
            "==",
            0.0,
        )
    )
    return out


# -- item 12: Prop. V ------------------------------------------------------------------


def item_12(seed: int, *, n: int = 4, m: int = 0, mc: int = 0, kl_prior_std=None):
    """Prop. V: V2 decomposition, V1 likelihood identity, optimal sigma^2."""
    rng = np.random.default_rng(seed)
    n = max(n, 1)
    p = rng.dirichlet(np.ones(n))
    mu = rng.normal(size=n)
    s = rng.uniform(0.3, 1.2, size=n)
    sz = float(rng.uniform(0.7, 1.5))
    t = ct.vae_kl_terms(p, mu, s, prior_std=sz)
    szk = sz if kl_prior_std is None else kl_prior_std
    ekl = float(
        sum(p[i] * ga.gaussian_kl(mu[i], s[i] ** 2, 0.0, szk**2) for i in range(n))
    )
    rhs = t["mutual_information"] + t["aggregate_kl"]
    out = [
        _res(
            12,
            1,
            "Prop. V2",
            "E_X KL(Q(Z|X) || P_Z) (closed-form Gaussian KLs) = I(X; Z) + "
            "KL(Q_Z || P_Z) (quadrature)",
            ekl,
            rhs,
            "==",
            _rtol(QUAD_RTOL, ekl),
            terms=t,
        )
    ]
    d = 3
    xs, gs = rng.normal(size=(5, d)), rng.normal(size=(5, d))
    s2 = float(rng.uniform(0.2, 2.0))
    ref = np.array(
        [-multivariate_normal(g, s2 * np.eye(d)).logpdf(xx) for xx, g in zip(xs, gs)]
    )
    form = ct.gaussian_decoder_nll(xs, gs, s2)
    out.append(
        _res(
            12,
            2,
            "Prop. V1 likelihood",
            "-log N(x; G(z), s^2 I) = |x - G(z)|^2 / (2 s^2) + (d/2) log(2 pi s^2)"
            " (SciPy logpdf; largest deviation)",
            float(np.abs(ref - form).max()),
            0.0,
            "==",
            _rtol(EXACT_TOL, *ref),
        )
    )
    # VAE objective with an affine decoder G(z) = w z + c, 1-D latent.
    d = 2
    x = rng.normal(size=(n, d))
    w, c = rng.normal(size=d), rng.normal(size=d)

    def vae_quad(sig2):
        tot = 0.0
        for i in range(n):

            def f(z, i=i):
                nll = ct.gaussian_decoder_nll(x[i], w * z + c, sig2)
                return math.exp(ct._logpdf(z, mu[i], s[i])) * nll

            tot += p[i] * ct.quad_line(f, [mu[i]], s[i])
        return tot + ekl

    mse = float(
        sum(
            p[i] * (((x[i] - w * mu[i] - c) ** 2).sum() + (w**2).sum() * s[i] ** 2)
            for i in range(n)
        )
    )
    lhs = 2 * s2 * vae_quad(s2)
    rhs = mse + 2 * s2 * ekl + d * s2 * np.log(2 * np.pi * s2)
    out.append(
        _res(
            12,
            3,
            "Prop. V1 decomposition",
            "2 s^2 VAE = E|X - G(Z)|^2 + 2 s^2 E KL(Q(Z|X) || P_Z) + d s^2 "
            "log(2 pi s^2) (VAE by quadrature)",
            lhs,
            rhs,
            "==",
            _rtol(QUAD_RTOL, rhs),
        )
    )

    def vae_closed(logs2):
        s2_ = math.exp(logs2)
        return mse / (2 * s2_) + 0.5 * d * math.log(2 * math.pi * s2_)

    opt = minimize_scalar(vae_closed, bracket=(-5.0, 5.0), tol=1e-12)
    s2opt = math.exp(opt.x)
    out.append(
        _res(
            12,
            4,
            "Prop. V1 optimal sigma^2",
            "argmin over s^2 of the Gaussian VAE (numerical) = E|X - G(Z)|^2 / d",
            s2opt,
            ct.gaussian_decoder_sigma2(mse, d),
            "==",
            _rtol(OPT_TOL, mse / d),
        )
    )
    return out
