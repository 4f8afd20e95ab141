r"""Tables, figures and the markdown report of ``otgen verify``.

Figures are drawn with :class:`matplotlib.figure.Figure` (no pyplot, no global
state, no display needed) from the ``data`` of the checks that carry them:

- ``dpot.png``: :math:`D_{POT}(\lambda)` against :math:`\lambda` with the
  :math:`W_1` line: the :math:`W_1` penalty reaches it at :math:`\lambda = L`,
  the MMD² penalty never does (checks 6.1 and 7.1, one instance);
- ``critic.png``: the c-transform critic of Prop. W over the data (check 9.3);
- ``blur.png``: the posterior-mean decoder of overlapping Gaussian encoders
  against WAE's partition encoders (checks 11.4, 11.5);
- ``monge.png``: the Gaussian Monge map (check 10.4);
- ``smoke.png``: the trained toy WAE-MMD of item 16 (checks 16.1, 16.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from otgen.theory.checks import CheckResult

__all__ = ["format_table", "write_report"]


def _num(v: float) -> str:
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    return f"{v:.6g}" if 1e-3 <= abs(v) < 1e6 else f"{v:.3e}"


def format_table(results: Sequence[CheckResult], *, width: int = 44) -> str:
    """A plain-text table: check, statement, lhs, relation, rhs, tolerance, pass.

    Parameters
    ----------
    results : sequence of CheckResult
        The checks.
    width : int, default=44
        Width of the statement column (the short title; the report has the
        full statement).

    Returns
    -------
    str
        The table, one check per line.

    Examples
    --------
    >>> from otgen.theory.checks import run_checks
    >>> print(format_table(run_checks(0, items=[14])[:1]))  # doctest: +ELLIPSIS
    check  statement ... pass
    14.1   GAN value at D* ... yes
    """
    head = (
        f"{'check':<6} {'statement':<{width}} {'lhs':>12}    {'rhs':>12} "
        f"{'tolerance':>10}  pass"
    )
    lines = [head]
    for r in results:
        title = r.title if len(r.title) <= width else r.title[: width - 1] + "~"
        lines.append(
            f"{r.name:<6} {title:<{width}} {_num(r.lhs):>12} {r.relation:^3} "
            f"{_num(r.rhs):>12} {r.tolerance:>10.2g}  {'yes' if r.passed else 'NO'}"
        )
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _find(results: Sequence[CheckResult], name: str) -> CheckResult | None:
    return next((r for r in results if r.name == name), None)


def _fig_dpot(results, path: Path) -> bool:
    from matplotlib.figure import Figure

    r7, r6 = _find(results, "7.1"), _find(results, "6.1")
    if r7 is None:
        return False
    d7 = r7.data
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.semilogx(d7["lams"], d7["curve"], "o-", ms=3, label="W_1 penalty")
    if r6 is not None:
        d6 = r6.data
        ax.semilogx(d6["lams"], d6["values"], "s-", ms=3, label="MMD^2 penalty (IMQ)")
    ax.axhline(d7["w1"], color="k", lw=1, ls="--", label="W_1(P_X, G#P_Z)")
    ax.axvline(d7["L"], color="gray", lw=1, ls=":", label="lambda = L = Lip(G)")
    ax.set_xlabel("lambda")
    ax.set_ylabel("D_POT(lambda)")
    ax.set_title("Penalised OT: exact for W_1 at lambda >= L, never for MMD^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def _fig_critic(results, path: Path) -> bool:
    from matplotlib.figure import Figure

    from otgen.theory.duals import c_transform_critic

    r = _find(results, "9.3")
    if r is None:
        return False
    d = r.data
    f = c_transform_critic(d["h"], d["y"])
    pts = np.vstack([d["x"], d["y"]])
    lo, hi = pts.min(0) - 1.0, pts.max(0) + 1.0
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
    vals = f(np.column_stack([g0.ravel(), g1.ravel()])).reshape(g0.shape)
    fig = Figure(figsize=(5.6, 4.6))
    ax = fig.add_subplot()
    cs = ax.contourf(g0, g1, vals, levels=20, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="critic f(y) = min_j d(y, G(z_j)) + h_j")
    ax.scatter(*d["x"].T, s=400 * d["p"], c="w", edgecolors="k", label="data x_i")
    ax.scatter(*d["y"].T, s=400 * d["r"], c="r", marker="^", label="G(z_j)")
    ax.set_title(f"Prop. W: c-transform critic attains W_1 = {d['w1']:.4g}")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def _fig_blur(results, path: Path) -> bool:
    from matplotlib.figure import Figure
    from scipy.stats import norm

    r4, r5 = _find(results, "11.4"), _find(results, "11.5")
    if r4 is None:
        return False
    d = r4.data
    fig = Figure(figsize=(9.0, 3.8))
    ax, bx = fig.subplots(1, 2, sharey=True)
    z = d["z"]
    for xi in d["x"]:
        ax.axhline(xi, color="gray", lw=0.6, ls=":")
        bx.axhline(xi, color="gray", lw=0.6, ls=":")
    ax.plot(z, d["g"], "b", lw=2, label="posterior mean G*(z)")
    ax2 = ax.twinx()
    for m, s, p in zip(d["mu"], d["s"], d["p"]):
        ax2.fill_between(z, p * norm.pdf(z, m, s), alpha=0.25)
    ax2.set_yticks([])
    ax.set_title(f"Gaussian encoders (VAE): blur, error {d['err']:.3g}")
    ax.set_xlabel("z")
    ax.set_ylabel("decoded x (data levels dotted)")
    ax.legend(fontsize=8, loc="upper left")
    if r5 is not None:
        cuts = r5.data["cuts"]
        zz = np.linspace(z.min(), z.max(), 600)
        cell = np.clip(np.searchsorted(cuts, zz, side="right") - 1, 0, len(d["x"]) - 1)
        bx.plot(zz, d["x"][cell], "g", lw=2, label="decoder x_i on cell i")
        bx3 = bx.twinx()
        bx3.fill_between(zz, norm.pdf(zz), alpha=0.2, color="g")
        bx3.set_yticks([])
        for c in cuts[1:-1]:
            bx.axvline(c, color="g", lw=0.6)
        bx.set_title("partition encoders (WAE): Q_Z = P_Z, error 0")
        bx.set_xlabel("z")
        bx.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def _ellipse(ax, m, S, **kw):
    w, V = np.linalg.eigh(S)
    t = np.linspace(0, 2 * np.pi, 200)
    circ = np.column_stack([np.cos(t), np.sin(t)]) * 2 * np.sqrt(w)
    pts = m + circ @ V.T
    ax.plot(pts[:, 0], pts[:, 1], **kw)


def _fig_monge(results, path: Path) -> bool:
    from matplotlib.figure import Figure

    r = _find(results, "10.4")
    if r is None:
        return False
    d = r.data
    x, tx = d["x"][:150], d["tx"][:150]
    fig = Figure(figsize=(5.6, 4.8))
    ax = fig.add_subplot()
    ax.quiver(
        x[:, 0],
        x[:, 1],
        tx[:, 0] - x[:, 0],
        tx[:, 1] - x[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.002,
        alpha=0.4,
    )
    ax.scatter(*x.T, s=6, c="b", label="X ~ N(m1, S1)")
    ax.scatter(*tx.T, s=6, c="r", label="T(X)")
    _ellipse(ax, d["m1"], d["S1"], color="b", lw=1.5)
    _ellipse(ax, d["m2"], d["S2"], color="r", lw=1.5, label="2-sigma N(m2, S2)")
    ax.set_aspect("equal")
    ax.set_title("Gaussian Monge map T(x) = m2 + A (x - m1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def _fig_smoke(results, path: Path) -> bool:
    from matplotlib.figure import Figure

    r = _find(results, "16.2")
    if r is None:
        return False
    d, sm = r.data, r.data["samples"]
    fig = Figure(figsize=(9.6, 4.0))
    ax = fig.add_subplot(1, 2, 1)
    ax.scatter(*sm["x"].T, s=5, c="b", label="held-out x")
    ax.scatter(*sm["generated"].T, s=5, c="r", alpha=0.6, label="G(z), z ~ P_Z")
    ax.scatter(*sm["reconstruction"].T, s=8, c="g", marker="x", label="G(E(x))")
    ax.set_aspect("equal")
    ax.set_title(f"WAE-MMD on {d['toy']}, {d['steps']} steps")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    hist = d["history"]
    steps = [h["step"] for h in hist]
    for key, label in (
        ("model/reconstruction", "reconstruction"),
        ("model/penalty", "MMD^2 penalty"),
    ):  # the unbiased MMD^2 estimate can be negative: clipped at 1e-6
        ax.plot(steps, [max(h[key], 1e-6) for h in hist], label=f"{label} (batch)")
    ax.axhline(d["w22"], color="k", ls="--", lw=1, label="held-out W_2^2(P_X, G#P_Z)")
    ax.axhline(d["reconstruction"], color="g", ls=":", lw=1, label="held-out rec.")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    ax.set_title("Item 16: MMD^2 falls; reconstruction below W_2^2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


_FIGURES = (
    (
        "dpot.png",
        _fig_dpot,
        "D_POT(lambda) for the W_1 and MMD^2 latent penalties "
        "on one instance (c = d), against W_1(P_X, G#P_Z).",
    ),
    (
        "critic.png",
        _fig_critic,
        "The c-transform critic of Prop. W: optimal, "
        "1-Lipschitz, from the dual of the encoder LP.",
    ),
    (
        "blur.png",
        _fig_blur,
        "Prop. E: the best decoder for overlapping encoders "
        "averages training points; partition encoders reconstruct exactly.",
    ),
    ("monge.png", _fig_monge, "The linear Monge map between two Gaussians."),
    (
        "smoke.png",
        _fig_smoke,
        "Item 16: a seeded toy WAE-MMD fit; held-out data, generated samples and "
        "reconstructions, and the training terms against the exact W_2^2.",
    ),
)


def write_report(
    results: Sequence[CheckResult],
    out_dir: str | Path,
    *,
    seed: int,
    quick: bool,
    seconds: float,
    skipped: Sequence[str] = (),
) -> Path:
    """Write ``report.md`` and its figures to ``out_dir``; return the report path.

    Parameters
    ----------
    results : sequence of CheckResult
        The checks, in order.
    out_dir : str or Path
        Directory (created if needed).
    seed : int
        The seed of the run (recorded).
    quick : bool
        Whether the quick sizes were used (recorded).
    seconds : float
        Wall time of the run (recorded).
    skipped : sequence of str, optional
        Items not run, with the reason.

    Returns
    -------
    Path
        The report file.

    Examples
    --------
    >>> import tempfile
    >>> from otgen.theory.checks import run_checks
    >>> res = run_checks(0, quick=True, items=[14])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_report(res, d, seed=0, quick=True, seconds=1.0).name
    'report.md'
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_fail = sum(not r.passed for r in results)
    lines = [
        "# otgen verify: the results of docs/paper.md checked against exact OT",
        "",
        f"- seed {seed}, {'quick' if quick else 'full'} sizes, "
        f"wall time {seconds:.1f} s",
        f"- {len(results)} checks, {len(results) - n_fail} passed, {n_fail} failed",
        "- tolerances: LP 1e-8 relative, quadrature 1e-7, Monte Carlo 4 standard "
        "errors, numerical argmax 1e-6; the relation must hold within the tolerance "
        "(strict ones beyond it)",
    ]
    lines += [f"- not run: {s}" for s in skipped]
    lines += [
        "",
        "| check | result | statement | lhs | rel. | rhs | tolerance | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {_md_escape(r.title)} | {_md_escape(r.statement)} | "
            f"{_num(r.lhs)} | {_md_escape(r.relation)} | {_num(r.rhs)} | "
            f"{r.tolerance:.2g} | {'yes' if r.passed else '**NO**'} |"
        )
    lines += ["", "## Figures", ""]
    for name, fn, caption in _FIGURES:
        if fn(results, out / name):
            lines += [f"![{name}]({name})", "", f"*{_md_escape(caption)}*", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
