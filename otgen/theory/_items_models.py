r"""Checks of docs/paper.md items 15 and 16 on the real models of :mod:`otgen.models`.

- Item 15 (Prop. AAE): the presets ``aae`` and ``wae_gan`` built from one seed
  have the same weights; on fixed tensors their encoder/decoder losses agree in
  value and gradient (squared cost, same :math:`\lambda`), their critic losses
  differ by exactly the factor :math:`\lambda` of Algorithm 1, and both equal
  the formulas written independently in :mod:`otgen.theory.continuous`.
- Item 16 (smoke test): a seeded toy WAE-MMD fit (:class:`otgen.models.train.
  Trainer`) lowers :math:`\mathrm{MMD}^2(Q_Z, P_Z)`, and its held-out
  reconstruction cost stays below the empirical :math:`W_2^2(P_X, G\#P_Z)`,
  computed by :func:`otgen.exact_ot`.

The models layer is imported inside the functions: layer 3 may import layer 2,
and the other items do not need it.
"""

from __future__ import annotations

import math

import numpy as np

from otgen.theory import continuous as ct
from otgen.theory.check_result import EXACT_TOL, MC_SE, _res, _rtol

# -- item 15: AAE = WAE-GAN ------------------------------------------------------------


def _losses(model, x, seed: int):
    """Model and critic losses of a preset on ``x``, and their gradients.

    The prior batch comes from a generator seeded with ``seed`` (the same for
    both presets: the deterministic encoder draws no noise), exactly as the
    trainer calls :meth:`group_loss`.
    """
    import torch

    out = {}
    for group in ("critic", "model"):
        g = torch.Generator().manual_seed(seed)
        loss, _ = model.group_loss(group, x, lam=model.lam, generator=g)
        params = next(u.params for u in model.update_groups() if u.name == group)
        out[group] = (loss.detach(), torch.autograd.grad(loss, params))
    return out


def _reference(model, x, seed: int, formula):
    """The same two losses from an independent formula on the model's networks."""
    import torch

    g = torch.Generator().manual_seed(seed)
    zp = model.prior.sample(x.shape[0], generator=g, dtype=x.dtype)
    with torch.no_grad():
        zt = model.encode(x).z
        ld, lg = formula(
            x,
            zp,
            zt,
            model.decode,
            lambda z: model.penalty.logit(z, model.prior),
            lam=model.lam,
        )
    return ld, lg


def item_15(
    seed: int,
    *,
    n: int = 16,
    m: int = 0,
    mc: int = 0,
    lam_aae: float | None = None,
    seed_aae: int | None = None,
):
    r"""Prop. AAE on the presets: equal losses and gradients (critic up to lambda).

    ``lam_aae`` (a different weight) and ``seed_aae`` (different weights) build
    broken instances.
    """
    import torch

    from otgen.models.presets import aae, wae_gan

    d, dz, hidden, lam = 5, 3, (8, 8), 2.5
    kw = dict(d_z=dz, hidden=hidden, critic_hidden=hidden, seed=seed)
    wg = wae_gan(d, lam=lam, **kw).double()
    if seed_aae is not None:
        kw["seed"] = seed_aae
    aa = aae(d, lam=lam if lam_aae is None else lam_aae, **kw).double()
    sw, sa = wg.state_dict(), aa.state_dict()
    same_w = float(
        math.inf
        if sw.keys() != sa.keys()
        else max(float((sw[k] - sa[k]).abs().max()) for k in sw)
    )
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(max(n, 2), d, generator=gen, dtype=torch.float64)
    s = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    a, b = _losses(wg, x, s), _losses(aa, x, s)
    # Algorithm 1 weights the critic loss by lambda, AAE does not: the critic
    # losses and gradients agree after multiplying AAE's by WAE-GAN's lambda.
    c = wg.lam
    vals = [
        (a["model"][0], b["model"][0]),
        (a["critic"][0], c * b["critic"][0]),
    ]
    grads = list(zip(a["model"][1], b["model"][1])) + [
        (u, c * v) for u, v in zip(a["critic"][1], b["critic"][1])
    ]
    dv = max(abs(float(u - v)) for u, v in vals)
    vscale = max(abs(float(u)) for u, _ in vals)
    dg = max(float((u - v).abs().max()) for u, v in grads)
    gscale = max(float(u.abs().max()) for u, _ in grads)
    ref = [
        (ct.wae_gan_losses, wg, a),
        (ct.aae_losses, aa, b),
    ]
    dr, rscale = 0.0, 0.0
    for formula, model, got in ref:
        ld, lg = _reference(model, x, s, formula)
        dr = max(
            dr,
            abs(float(ld - got["critic"][0])),
            abs(float(lg - got["model"][0])),
        )
        rscale = max(rscale, abs(float(ld)), abs(float(lg)))
    data = dict(lam_wae_gan=wg.lam, lam_aae=aa.lam, n=int(x.shape[0]))
    return [
        _res(
            15,
            1,
            "AAE = WAE-GAN values",
            "presets aae and wae_gan (same seed, squared cost, same lambda) on "
            "fixed tensors: encoder-decoder losses agree, critic losses agree "
            "after multiplying AAE's by lambda (largest |difference|)",
            dv,
            0.0,
            "==",
            _rtol(EXACT_TOL, vscale),
            **data,
        ),
        _res(
            15,
            2,
            "AAE = WAE-GAN gradients",
            "their gradients in every encoder, decoder and critic parameter "
            "agree (critic: up to the same factor lambda; largest |difference|)",
            dg,
            0.0,
            "==",
            _rtol(EXACT_TOL, gscale),
            **data,
        ),
        _res(
            15,
            3,
            "presets = Algorithm 1 / AAE formulas",
            "each preset's two losses equal the formulas written independently "
            "(log-sigmoid Algorithm 1; binary cross-entropy AAE) on its own "
            "networks (largest |difference|)",
            dr,
            0.0,
            "==",
            _rtol(EXACT_TOL, rscale),
            **data,
        ),
        _res(
            15,
            4,
            "same seed, same weights",
            "the two presets built from one seed have identical parameters "
            "(largest |difference|), so 15.1-15.2 compare the objectives alone",
            same_w,
            0.0,
            "==",
            0.0,
            **data,
        ),
    ]


# -- item 16: a trained toy WAE-MMD ----------------------------------------------------

_HELD_OUT = 1_000_003  # seed offset: held-out points never repeat training ones


def _evaluate(model, xh, seed: int, chunks: int, independent: bool):
    """Per-chunk MMD² to the prior, reconstruction and exact W_2^2 (held out)."""
    import torch

    from otgen.ot.exact import exact_ot
    from otgen.ot.mmd import mmd

    model.eval()
    k = xh.shape[0] // chunks
    rows = []
    with torch.no_grad():
        for c in range(chunks):
            g = torch.Generator().manual_seed(seed * 7919 + c)
            xc = xh[c * k : (c + 1) * k]
            enc = model.encode(xc, generator=g)
            zp = model.prior.sample(k, generator=g, dtype=xc.dtype)
            mmd2 = float(
                mmd(
                    enc.z,
                    zp,
                    kernel="imq",
                    scale=model.prior.imq_scale,
                    estimator="unbiased",
                    backend="dense",
                )
            )
            if independent:  # broken: codes drawn from P_Z, ignoring x
                enc = enc._replace(z=model.prior.sample(k, generator=g, dtype=xc.dtype))
            rec = float(model.reconstruction_cost(xc, enc).mean())
            y = model.generate(k, generator=g)
            w22 = float(exact_ot(xc.double(), y.double()).value)  # W_2^2
            rows.append((mmd2, rec, w22))
    return np.array(rows)


def _mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def item_16(
    seed: int,
    *,
    n: int = 512,
    m: int = 512,
    mc: int = 0,
    steps: int = 150,
    batch_size: int = 128,
    lam: float = 10.0,
    chunks: int = 4,
    independent_encoder: bool = False,
):
    r"""Smoke test: a toy WAE-MMD fit lowers MMD², reconstruction <~ W_2^2.

    ``steps=0`` (no training) and ``independent_encoder=True`` (held-out codes
    drawn from :math:`P_Z` independently of :math:`x`: a feasible encoder of
    Theorem A whose cost is that of the independent coupling, above
    :math:`W_2^2`) build broken instances.
    """
    import torch

    from otgen.models.data import get_toy
    from otgen.models.presets import wae_mmd
    from otgen.models.train import Trainer

    toy = get_toy("ring8")
    n, chunks = max(int(n), 64), max(int(chunks), 2)
    m = max(int(m), 16 * chunks)
    x = toy.sample(n, seed=seed)
    xh = toy.sample(m, seed=seed + _HELD_OUT)
    model = wae_mmd(2, d_z=2, hidden=(32, 32), lam=lam, lr=3e-3, seed=seed)
    # One thread for training and evaluation alike: tiny networks run many
    # times faster on one thread than on two contended ones.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        before = _evaluate(model, xh, seed, chunks, independent_encoder)
        trainer = Trainer(
            model,
            x,
            batch_size=min(batch_size, n),
            seed=seed,
            progress=False,
            num_threads=1,
        )
        trainer.fit(int(steps))
        after = _evaluate(model, xh, seed, chunks, independent_encoder)
        with torch.no_grad():  # one chunk of samples for the report's figure
            xs = xh[: m // chunks]
            gen = torch.Generator().manual_seed(seed)
            samples = dict(
                x=xs.double().numpy(),
                reconstruction=model.reconstruct(xs).double().numpy(),
                generated=model.generate(len(xs), generator=gen).double().numpy(),
            )
    finally:
        torch.set_num_threads(threads)
    mb, sb = _mean_se(before[:, 0])
    ma, sa = _mean_se(after[:, 0])
    rec, srec = _mean_se(after[:, 1])
    w22, sw = _mean_se(after[:, 2])
    k = m // chunks
    data = dict(
        toy="ring8",
        n_train=n,
        n_held_out=k * chunks,
        chunks=chunks,
        steps=int(steps),
        batch_size=min(batch_size, n),
        lam=lam,
        mmd2_before=mb,
        mmd2_after=ma,
        reconstruction_before=float(before[:, 1].mean()),
        reconstruction=rec,
        w22_before=float(before[:, 2].mean()),
        w22=w22,
        history=trainer.history,
        samples=samples,
    )
    return [
        _res(
            16,
            1,
            "WAE-MMD fit lowers MMD^2",
            f"toy WAE-MMD (ring8, lambda = {lam:g}, {steps} seeded steps): "
            "unbiased IMQ MMD^2(Q_Z, P_Z) of held-out codes after training < "
            f"before (mean of {chunks} chunks of {k}; strict beyond 4 standard "
            "errors of the difference)",
            ma,
            mb,
            "<",
            MC_SE * math.hypot(sa, sb),
            **data,
        ),
        _res(
            16,
            2,
            "reconstruction <~ W_2^2(P_X, G#P_Z)",
            "held-out E|X - G(E(X))|^2 <= exact empirical W_2^2 between "
            f"{k} held-out and {k} generated points (mean of {chunks} chunks), "
            "within 4 standard errors. A smoke test, not a theorem: P1 bounds "
            "rec + lambda MMD^2 by W_2^2 only for the optimal encoder; the "
            "empirical W_2^2 is biased upwards (Jensen)",
            rec,
            w22,
            "<=",
            MC_SE * math.hypot(srec, sw),
            **data,
        ),
    ]
