r"""``otgen compare``: the cookbook's models side by side on one data set.

Each model (a preset of :mod:`otgen.models.presets`) is trained by the same
:class:`~otgen.models.train.Trainer` for the same number of steps, batch size
and seeds, on the same training sample per seed, then evaluated by
:func:`~otgen.models.metrics.evaluate` on the same held-out samples. The
report ``DIR/report.md`` holds one table (mean and standard deviation over
seeds) and one figure with a panel of generated samples per model; the raw
numbers of every run go to ``DIR/metrics.json``.

A training step is one update of each group of the model (``n_critic`` critic
updates for WGAN-GP), so "the same budget" means the same number of generator
(or encoder/decoder) updates, not the same compute.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.models.cli import positive_int

__all__ = [
    "CHECK_M",
    "DEFAULT_MODELS",
    "DEFAULT_SEEDS",
    "DEFAULT_STEPS",
    "register",
    "run",
]

DEFAULT_MODELS = "wae-mmd,wae-gan,vae,avb,gan,wgan-gp"
DEFAULT_SEEDS = 3
# Budget of the default run, chosen so that it finishes in under 3 minutes on
# the shared 2-core development machine (timings in benchmarks/README.md):
# 1000 steps per run (a quarter or less of the 4000-6000 at which WAE-MMD
# passed on some seeds of ring8, docs/guide/training.rst: at this budget most
# presets fail the check, and the report says so), and a model check at
# m = 5000 with one floor shared by every run (``otgen train``: m = 10000).
DEFAULT_STEPS = 1000
CHECK_M = 5000
BATCH_SIZE = 128
EVAL_SEED = 0  # seed of the model check (its held-out sample and floor)

# (metrics key, column header); mean ± sd over seeds, "-" where not applicable.
# The model check leads: seeds whose samples pass it, then its z-score.
_CHECK_COLUMNS = (
    ("check_indistinguishable", "check passed"),
    ("check_z", "z (floor sds)"),
)
_COLUMNS = (
    ("w2_generated", "W2 to held-out"),
    ("w2_noise_floor", "W2 noise floor"),
    ("modes_covered", "modes covered"),
    ("max_mode_mass_error", "max mode-mass error"),
    ("high_quality", "high-quality fraction"),
    ("reconstruction_squared", "squared recon. cost"),
    ("mmd_to_prior", "MMD^2(Q_Z, P_Z)"),
)


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand to the ``otgen`` parser."""
    p = subparsers.add_parser(
        "compare",
        help="train several generative models with one budget and compare them",
        description="Train each model under the same steps, batch size and seeds, "
        "evaluate them on the same held-out data (the model check: exact W2 at "
        "m = 10000 against its noise floor, with a verdict; mode coverage, "
        "per-mode mass, reconstruction, latent MMD) and write a markdown report "
        "with one table and one figure.",
    )
    p.add_argument(
        "--data",
        default="ring8",
        help="toy name, digits, an image folder or a sample file (ring8)",
    )
    p.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"comma-separated presets ({DEFAULT_MODELS})",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=DEFAULT_SEEDS,
        help=f"number of seeds 0..N-1 ({DEFAULT_SEEDS})",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=DEFAULT_STEPS,
        help=f"training steps per run ({DEFAULT_STEPS})",
    )
    p.add_argument(
        "--check-m",
        type=positive_int,
        default=None,
        help=f"points per sample of the model check ({CHECK_M}; otgen train: 10000)",
    )
    p.add_argument("--out", default=None, help="output directory (runs/compare-DATA)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_models(text: str) -> list[str]:
    from otgen._cli_common import CLIError
    from otgen.models.presets import PRESETS

    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise CLIError(f"--models: expected comma-separated presets (got {text!r})")
    known = [p.replace("_", "-") for p in PRESETS]
    out: list[str] = []
    for n in names:
        key = n.replace("_", "-")
        if key not in known:
            raise CLIError(
                f"--models: unknown model {n!r}; choose from {', '.join(known)}"
            )
        if key not in out:
            out.append(key)
    return out


def _summary(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    sd = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return float(a.mean()), sd


def _cell(values: list, key: str) -> str:
    if key == "check_indistinguishable":
        return f"{sum(bool(v) for v in values)}/{len(values)}" if values else "-"
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean, sd = _summary(values)
    if key == "modes_covered":
        return f"{mean:.1f} ± {sd:.1f}"
    return f"{mean:.3g} ± {sd:.2g}"


def comparison_table(results: dict[str, list[dict]], n_modes: int | None) -> str:
    """Markdown table: one row per model, mean ± sd over its finished seeds.

    The model check's columns lead when the runs have one: the seeds whose
    samples pass it (``k/n``) and the mean z-score.

    Examples
    --------
    >>> r = {"gan": [{"w2_generated": 1.0}, {"w2_generated": 3.0}]}
    >>> comparison_table(r, None).splitlines()[2].split("|")[2].strip()
    '2 ± 1.4'
    """
    checked = any("check_indistinguishable" in r for rs in results.values() for r in rs)
    cols = [*(_CHECK_COLUMNS if checked else ()), *_COLUMNS]
    cols = [(k, h) for k, h in cols if n_modes is not None or "mode" not in k]
    if n_modes is None:
        cols = [(k, h) for k, h in cols if k != "high_quality"]
    header = "| model | " + " | ".join(h for _, h in cols) + " | seeds |"
    lines = [header, "|" + "---|" * (len(cols) + 2)]
    for model, runs in results.items():
        ok = [r for r in runs if "failed" not in r]
        cells = [_cell([r[k] for r in ok if k in r], k) for k, _ in cols]
        seeds = f"{len(ok)}/{len(runs)}"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {seeds} |")
    return "\n".join(lines)


def _plot_image_panels(data, samples: dict[str, torch.Tensor], path: Path) -> Path:
    """One row of 16 images per model, below 16 held-out images."""
    from otgen.models.image_plots import plot_image_rows

    names = ["held-out data", *samples]
    rows = [data[:16], *(samples[k][:16] for k in samples)]
    lim = (float(data.min()), float(data.max()))
    return plot_image_rows(
        rows, names, path, title="samples per model (seed 0)", value_range=lim
    )


def _plot_panels(data, samples: dict[str, torch.Tensor], path: Path) -> Path:
    if data.ndim == 4:
        return _plot_image_panels(data, samples, path)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = [("held-out data", data), *samples.items()]
    ncol = min(4, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3 * ncol, 3 * nrow), squeeze=False, sharex=True
    )
    d = data.detach().double().cpu().numpy()
    lo, hi = d.min(0) - 0.5, d.max(0) + 0.5
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (name, pts) in zip(axes.flat, panels):
        a = pts.detach().double().cpu().flatten(1).numpy()
        y = a[:, 1] if a.shape[1] > 1 else 0 * a[:, 0]
        color = "tab:blue" if name == "held-out data" else "tab:orange"
        ax.scatter(a[:, 0], y, s=2, alpha=0.5, color=color)
        ax.set_xlim(lo[0], hi[0])
        if d.shape[1] > 1:
            ax.set_ylim(lo[1], hi[1])
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal", adjustable="box")
    fig.suptitle("samples per model (seed 0; first two coordinates)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _train_one(key, seed, steps, train, held_a, held_b, toy, bar, chunk, check_m):
    from otgen.models.autoencoder import PenalisedAutoEncoder
    from otgen.models.cli import IMAGE_RECIPE, TOY_RECIPES, is_image_data
    from otgen.models.costs import reconstruction_cost
    from otgen.models.metrics import evaluate
    from otgen.models.presets import build
    from otgen.models.train import Trainer, TrainingError

    preset = key.replace("-", "_")
    recipe = TOY_RECIPES.get(preset, {}) if toy is not None else {}
    images = is_image_data(train)
    if images:
        recipe = IMAGE_RECIPE
    shape = tuple(train.shape[1:]) if images else int(train.shape[1])
    model = build(preset, shape, seed=seed, **recipe)
    trainer = Trainer(
        model,
        train,
        batch_size=min(BATCH_SIZE, int(train.shape[0])),
        seed=seed,
        progress=False,
        num_threads=1,
    )
    t0 = time.perf_counter()
    done = 0
    try:
        while done < steps:
            k = min(chunk, steps - done)
            trainer.fit(k)
            done += k
            bar.update(k)
    except TrainingError as err:
        bar.update(steps - done)
        return {"failed": str(err), "seed": seed}, None
    t_train = time.perf_counter() - t0
    # Evaluation seed 0 for every training seed: one held-out sample and one
    # noise floor of the model check for all runs (computed once), so the
    # seeds differ by their training sample, weights, data order and noise.
    metrics = evaluate(model, held_a, held_b, seed=EVAL_SEED, law=toy, check_m=check_m)
    if images:
        from otgen.models.image_metrics import image_metrics

        metrics.update(image_metrics(model, train, held_a, held_b, seed=EVAL_SEED))
    if isinstance(model, PenalisedAutoEncoder):
        g = torch.Generator(device=model.device).manual_seed(seed)
        with torch.no_grad():
            x = held_a.to(model.device, model.dtype)
            rec = model.reconstruct(x, generator=g)
            sq = reconstruction_cost(x, rec, cost="squared").mean()
        metrics["reconstruction_squared"] = float(sq)
    metrics.update(seed=seed, seconds_training=t_train, config=model.config)
    g = torch.Generator(device=model.device).manual_seed(seed)
    with torch.no_grad():
        samples = model.generate(held_a.shape[0], generator=g)
    return metrics, samples


def run(args: argparse.Namespace) -> int:
    """Run ``otgen compare``; returns the exit status."""
    from tqdm.auto import tqdm

    from otgen._cli_common import CLIError
    from otgen.models.cli import _load_data
    from otgen.models.report import atomic_write_text

    t_start = time.perf_counter()
    models = _parse_models(args.models)
    seeds = list(range(args.seeds))
    data_sets = {s: _load_data(args.data, s) for s in seeds}
    toy = data_sets[0][3]
    label = args.data if toy is not None else Path(args.data).stem
    out = Path(args.out or f"runs/compare-{label}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"--out {out}: {err}") from err
    results: dict[str, list[dict]] = {m: [] for m in models}
    samples: dict[str, torch.Tensor] = {}
    bar = tqdm(
        total=len(models) * len(seeds) * args.steps,
        file=sys.stderr,
        disable=args.quiet,
        desc="compare",
        unit="step",
        dynamic_ncols=True,
    )
    chunk = max(1, args.steps // 20)
    from otgen.models import check

    m = args.check_m or min(CHECK_M, check.DEFAULT_M)  # tests lower DEFAULT_M
    try:
        for key in models:
            for s in seeds:
                bar.set_postfix_str(f"{key} seed {s}", refresh=True)
                train, held_a, held_b, _ = data_sets[s]
                metrics, gen = _train_one(
                    key, s, args.steps, train, held_a, held_b, toy, bar, chunk, m
                )
                results[key].append(metrics)
                if gen is not None and key not in samples:
                    samples[key] = gen
    finally:
        bar.close()
    fig = _plot_panels(data_sets[0][1], samples, out / "samples.png")
    n_modes = None if toy is None else int(toy.centers.shape[0])
    atomic_write_text(out / "metrics.json", json.dumps(results, indent=1) + "\n")
    report = _write_report(
        out, args, models, seeds, results, n_modes, toy, data_sets, fig, t_start
    )
    print(f"report written to {report}")  # noqa: T201
    return 0


def _mean_run(runs: list[dict]) -> dict:
    """The failing runs' check and mode statistics, averaged (for the words)."""
    out: dict = {"check_indistinguishable": False}
    for key in ("check_z", "modes_covered", "high_quality", "max_mode_mass_error"):
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            out[key] = float(np.mean(vals))
    if "modes_covered" in out:
        v = out["modes_covered"]
        out["modes_covered"] = int(v) if v == int(v) else round(v, 1)
        out["n_modes"] = runs[0].get("n_modes")
    return out


def _verdicts(results: dict[str, list[dict]], steps: int) -> list[str]:
    """One line per model: on how many seeds it passes its check, and why not.

    Examples
    --------
    >>> r = {"gan": [{"check_indistinguishable": False, "modes_covered": 1,
    ...               "n_modes": 8, "check_z": 30.0}]}
    >>> print(_verdicts(r, 500)[2])  # doctest: +NORMALIZE_WHITESPACE
    - gan: **fails** the check on 1 of 1 seeds at 500 steps (mode collapse: 1 of
      8 modes covered)
    """
    from otgen.models.report import diagnosis

    lines = []
    for model, runs in results.items():
        ok = [r for r in runs if "check_indistinguishable" in r]
        if not ok:
            continue
        bad = [r for r in ok if not r["check_indistinguishable"]]
        if not bad:
            lines.append(
                f"- {model}: passes the check on all {len(ok)} seeds at {steps} steps"
            )
            continue
        why = diagnosis(_mean_run(bad))
        mean = " on average" if len(bad) > 1 else ""
        lines.append(
            f"- {model}: **fails** the check on {len(bad)} of {len(ok)} seeds at "
            f"{steps} steps ({why}{mean})"
        )
    if not lines:
        return []
    return ["## Verdicts", "", *lines, ""]


def _write_report(out, args, models, seeds, results, n_modes, toy, data_sets, fig, t0):
    from otgen.models.report import atomic_write_text

    train, held_a, _, _ = data_sets[0]
    data = args.data if toy is None else f"{toy.name}: {toy.definition}"
    lines = [f"# otgen compare on {args.data}", ""]
    lines += [
        f"Data: {data}. Each model was trained for {args.steps} steps (a step "
        "updates each group of the model, critics n_critic times: 5 for WGAN-GP, "
        "1 otherwise) with one torch thread, "
        f"batch size {min(BATCH_SIZE, int(train.shape[0]))} on {train.shape[0]} "
        f"training points, for seeds {', '.join(map(str, seeds))} (seed s fixes "
        "the training sample, the weights, the data order and the model noise). "
        f"Reconstruction and latent metrics use {held_a.shape[0]} held-out points "
        "per seed. A model that fails its check at this budget may pass with "
        "more steps (--steps); the verdicts below say which fail, and how.",
        "",
        "## Table",
        "",
        comparison_table(results, n_modes),
        "",
        "Mean ± standard deviation over the seeds that finished ('seeds' column). "
        "Columns:",
        "",
    ]
    checked = [r for rs in results.values() for r in rs if "check_m" in r]
    if checked:
        c = checked[0]
        level, m, r = c["check_level"], c["check_m"], c["check_replicates"]
        lines += [
            f"- check passed: the seeds whose samples are indistinguishable from "
            f"the law at m = {m} by the model check, a Monte Carlo test at level "
            f"{level:g}: exact W_2 (not W_2^2) between m generated samples and m "
            f"held-out points of the law, against R = {r} replicates of the same "
            "W_2 for fresh samples of the law and the same held-out points (the "
            "noise floor); it fails when the p-value (1 + #{replicates >= W_2}) / "
            f"(R + 1) is at most {level:g}. A model that samples the law exactly "
            f"passes with probability {1 - level:g} per seed (false-alarm rate "
            f"{level:g}); the held-out points and the floor are the same for "
            "every model and seed (evaluation seed 0), so the seeds differ only "
            "by their training;",
            "- z (floor sds): (W2 - floor mean) / floor standard deviation, how "
            "far outside the floor's spread the model lies;",
            "- W2 to held-out, W2 noise floor: that W_2, and the mean of the "
            "replicates;",
        ]
    else:
        lines += [
            "- W2 to held-out: exact W_2 (not W_2^2) between as many generated "
            "samples and held-out points; W2 noise floor: exact W_2 between two "
            "independent held-out samples of that size (no model check: the data "
            "have no known law to draw fresh samples from);",
        ]
    if n_modes is not None:
        lines += [
            f"- modes covered (of {n_modes}): modes holding at least 0.2/K of the "
            "samples within 3 sigma of their centre; max mode-mass error: "
            "max_k |mass_k - 1/K|; high-quality fraction: samples within 3 sigma "
            "of a centre;",
        ]
    lines += [
        "- squared recon. cost: held-out mean of ||x - G(z~)||^2, z~ ~ Q(Z|x), "
        "G the decoder mean "
        "(models with an encoder only; the same squared cost for all, whatever "
        "the training likelihood);",
        "- MMD^2(Q_Z, P_Z): unbiased IMQ MMD^2 between held-out codes and as many "
        "prior samples (models with an encoder only).",
        "",
    ]
    lines += _verdicts(results, args.steps)
    failed = [
        f"{m} seed {r['seed']}: {r['failed']}"
        for m in models
        for r in results[m]
        if "failed" in r
    ]
    if failed:
        lines += ["Runs that stopped (non-finite loss):", ""]
        lines += [f"- {f}" for f in failed] + [""]
    if n_modes is not None:
        lines += ["## Per-mode mass (mean over seeds; target 1/K each)", ""]
        for m in models:
            ok = [r for r in results[m] if "mode_mass" in r]
            if ok:
                mass = np.mean([r["mode_mass"] for r in ok], axis=0)
                lines.append(f"- {m}: " + ", ".join(f"{v:.3f}" for v in mass))
        lines.append("")
    lines += [
        "## Figure",
        "",
        "![samples per model](samples.png)",
        "",
        "## Settings",
        "",
    ]
    for m in models:
        ok = [r for r in results[m] if "config" in r]
        if ok:
            opts = dict(ok[0]["config"]["options"])
            opts.pop("seed", None)
            lines.append(f"- {m}: `{json.dumps(opts)}`")
        secs = [r["seconds_training"] for r in ok]
        if secs:
            lines[-1] += f" ({np.mean(secs):.1f} s training per seed)"
    lines += ["", f"Total time: {time.perf_counter() - t0:.1f} s.", ""]
    return atomic_write_text(out / "report.md", "\n".join(lines))
