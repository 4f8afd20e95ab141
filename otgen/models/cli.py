"""``otgen train``: fit a model, evaluate it, write a markdown report.

With no options it trains WAE-MMD on the ``ring8`` toy (8 Gaussians on a ring)
for the default step budget, then writes ``report.md`` (metrics table and
figures), ``metrics.json``, ``metrics.jsonl`` (training log) and a checkpoint
to ``--out`` and prints where the report is.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.models.data import TOYS, get_toy

__all__ = ["DEFAULT_STEPS", "register", "run"]

DEFAULT_STEPS = 2000
# Toy recipe of ``otgen train`` for WAE-MMD (overridden by --config): a random
# (implicit) encoder, since near-atomic data needs one to fill a continuous
# prior (PAPER.md Prop. A1), and IMQ scales finer than C to see the gaps
# between the codes of different modes. The preset itself keeps the paper's
# defaults (deterministic encoder, scales=(1,)).
TOY_RECIPES = {
    "wae_mmd": {"encoder": "implicit", "scales": [0.05, 0.2, 1.0], "lam": 100.0},
}
TOY_TRAINER = {"batch_size": 128}
N_TRAIN = 20_000  # toy training set size
N_EVAL = 1000  # held-out size for each of the two W2 samples
_HELD_OUT_SEED = 1_000_003  # offset: held-out toy samples never overlap training ones


def _presets() -> tuple[str, ...]:
    from otgen.models.presets import PRESETS

    return tuple(p.replace("_", "-") for p in PRESETS)


def positive_int(text: str) -> int:
    """Argument type: an integer >= 1 (``--steps``, ``--seeds``)."""
    try:
        v = int(text)
    except ValueError:
        msg = f"must be an integer >= 1 (got {text!r})"
        raise argparse.ArgumentTypeError(msg) from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {v})")
    return v


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand to the ``otgen`` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a generative model (WAE-MMD on ring8 by default) and report",
        description="Train a penalised-OT generative model on a toy distribution "
        "or a sample file, then write a markdown report with metrics and plots.",
    )
    p.add_argument(
        "--model", default="wae-mmd", choices=_presets(), help="preset (wae-mmd)"
    )
    p.add_argument(
        "--data",
        default="ring8",
        help=f"toy name ({', '.join(TOYS)}) or a .npy/.csv/.txt file (ring8)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help=f"training steps ({DEFAULT_STEPS})",
    )
    p.add_argument("--out", default=None, help="output directory (runs/MODEL-DATA)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything (0)")
    p.add_argument(
        "--config",
        default=None,
        help='JSON file: {"model": {preset options}, "trainer": {Trainer options}, '
        '"steps": N}',
    )
    p.add_argument("--float64", action="store_true", help="train in double precision")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    from otgen.models.compare import register as register_compare

    register_compare(subparsers)


def _read_config(path: str | None) -> dict:
    from otgen.cli import CLIError

    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--config {path}: no such file")
    try:
        conf = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CLIError(f"--config {path}: not valid JSON ({err})") from err
    if not isinstance(conf, dict) or set(conf) - {"model", "trainer", "steps"}:
        raise CLIError(
            f"--config {path}: expected an object with keys model, trainer, steps "
            f"(got {sorted(conf) if isinstance(conf, dict) else type(conf).__name__})"
        )
    for key in ("model", "trainer"):
        if not isinstance(conf.get(key, {}), dict):
            raise CLIError(f"--config {path}: {key!r} must be an object")
    return conf


def _load_data(name: str, seed: int):
    """Training set, two held-out sets, toy (or None)."""
    from otgen.cli import CLIError, load_samples

    if name in TOYS:
        toy = get_toy(name)
        train = toy.sample(N_TRAIN, seed=seed)
        held = toy.sample(2 * N_EVAL, seed=seed + _HELD_OUT_SEED, stratified=False)
        return train, held[:N_EVAL], held[N_EVAL:], toy
    if not Path(name).exists():
        raise CLIError(
            f"--data {name}: neither a toy ({', '.join(TOYS)}) nor an existing file"
        )
    arr = load_samples(name)
    if not np.isfinite(arr).all():
        raise CLIError(f"--data {name}: samples must be finite (found NaN or inf)")
    n = arr.shape[0]
    m = min(N_EVAL, n // 5)
    if m < 10:
        raise CLIError(
            f"--data {name}: need at least 50 points to hold out two test sets "
            f"(got {n})"
        )
    perm = np.random.default_rng(seed).permutation(n)
    x = torch.from_numpy(arr[perm]).float()
    return x[2 * m :], x[:m], x[m : 2 * m], None


def run(args: argparse.Namespace) -> int:
    """Run ``otgen train``; returns the exit status."""
    from otgen.cli import CLIError
    from otgen.models.metrics import evaluate
    from otgen.models.plots import (
        plot_codes,
        plot_curves,
        plot_reconstructions,
        plot_samples,
    )
    from otgen.models.presets import build
    from otgen.models.report import write_report
    from otgen.models.train import Trainer, TrainingError

    t_start = time.perf_counter()
    conf = _read_config(args.config)
    steps = args.steps or conf.get("steps", DEFAULT_STEPS)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise CLIError(f"--config: steps must be an integer >= 1 (got {steps!r})")
    train, held_a, held_b, toy = _load_data(args.data, args.seed)
    data_label = args.data if toy is not None else Path(args.data).stem
    out = Path(args.out or f"runs/{args.model}-{data_label}")
    key = args.model.replace("-", "_")
    recipe = TOY_RECIPES.get(key, {}) if toy is not None else {}
    model_opts = {"seed": args.seed, **recipe, **conf.get("model", {})}
    try:
        model = build(args.model, int(train.shape[1]), **model_opts)
        trainer_opts = {
            "seed": args.seed,
            "num_threads": 1,
            "batch_size": min(TOY_TRAINER["batch_size"], int(train.shape[0])),
            **conf.get("trainer", {}),
        }
        if args.float64:
            trainer_opts["dtype"] = torch.float64
        out.mkdir(parents=True, exist_ok=True)
        log = out / "metrics.jsonl"
        log.unlink(missing_ok=True)
        trainer = Trainer(
            model, train, log_path=log, progress=not args.quiet, **trainer_opts
        )
    except TypeError as err:
        raise CLIError(f"--config: {err}") from err
    except OSError as err:
        raise CLIError(f"--out {out}: {err}") from err
    t0 = time.perf_counter()
    try:
        trainer.fit(steps)
    except TrainingError as err:
        raise CLIError(str(err)) from err
    t_train = time.perf_counter() - t0
    trainer.save(out / "checkpoint")
    t0 = time.perf_counter()
    metrics = evaluate(
        model,
        held_a,
        held_b,
        seed=args.seed,
        lam=trainer.schedule(trainer.step),
        centers=None if toy is None else toy.centers,
        sigma=None if toy is None else toy.sigma,
    )
    t_eval = time.perf_counter() - t0
    figures = _figures(
        model,
        held_a,
        trainer,
        out,
        args.seed,
        plot_samples,
        plot_codes,
        plot_reconstructions,
        plot_curves,
    )
    settings = {
        "model": model.config,
        "trainer": trainer.options,
        "steps": steps,
        "data": args.data if toy is None else f"{toy.name}: {toy.definition}",
        "n_train": int(train.shape[0]),
        "n_held_out": int(held_a.shape[0]),
    }
    timings = {
        "training": t_train,
        "evaluation (exact W2)": t_eval,
        "total": time.perf_counter() - t_start,
    }
    report = write_report(
        out,
        title=f"otgen train: {args.model} on {data_label}",
        metrics=metrics,
        settings=settings,
        figures=figures,
        timings=timings,
    )
    ratio = metrics.get("w2_ratio")
    tail = f"; W2 ratio to the noise floor {ratio:.3f}" if ratio is not None else ""
    print(f"report written to {report}{tail}")  # noqa: T201
    return 0


def _figures(
    model,
    held,
    trainer,
    out,
    seed,
    plot_samples,
    plot_codes,
    plot_reconstructions,
    plot_curves,
):
    from otgen.models.autoencoder import PenalisedAutoEncoder

    g = torch.Generator(device=model.device).manual_seed(seed)
    figs = {}
    x = held.to(model.device, model.dtype)
    with torch.no_grad():
        gen = model.generate(x.shape[0], generator=g)
        figs["data vs generated"] = plot_samples(x, gen, out / "samples.png")
        if isinstance(model, PenalisedAutoEncoder):
            enc = model.encode(x, generator=g)
            zp = model.prior.sample(
                x.shape[0], generator=g, dtype=x.dtype, device=x.device
            )
            figs["codes vs prior"] = plot_codes(enc.z, zp, out / "codes.png")
            figs["reconstructions"] = plot_reconstructions(
                x, model.decode(enc.z), out / "reconstructions.png"
            )
    figs["training curves"] = plot_curves(trainer.history, out / "curves.png")
    return figs
