"""``otgen train``: fit a model, evaluate it, write a markdown report.

Images (``--data digits``, a folder of PNG/JPEG files, an (N, H, W) or
(N, C, H, W) array file) train with the convolutional nets and the image
recipe (``d_z = 8``, batch 100, 4000 steps), and the report leads with the
image checks of :mod:`otgen.models.image_metrics` (held-out reconstruction
against PCA, MMD test, Frechet distance) and image grids.
``otgen sample RUN_DIR -n N --out samples.npy`` draws from a trained model.

Also ``otgen check SAMPLES --data TOY``: samples of any generator scored
against a toy law by the model check of :mod:`otgen.models.check` (exit
status 0 when indistinguishable from the law, 1 when not).

With no options it trains WAE-MMD on the ``ring8`` toy (8 Gaussians on a ring)
for the default step budget, then writes ``report.md`` (metrics table and
figures), ``metrics.json``, ``metrics.jsonl`` (training log) and a checkpoint
to ``--out`` and prints where the report is.

The run directory (``--out``) is handled so that no work is lost and no two
runs mix:

- ``run.json`` records the settings of the run (model, data, seed, steps,
  config) and its status: ``running``, ``interrupted``, ``failed`` or
  ``finished``.
- One process at a time: a lock file (``.otgen.lock``) keeps a second
  ``otgen train`` out of a directory in use.
- Before training, ``--out`` is created and checked: writable, and no file or
  directory in the way of the run's files. A directory that holds a previous
  run is refused unless ``--overwrite`` (its run files are deleted first;
  other files are left alone) or ``--resume`` (training continues from
  ``checkpoint/`` up to ``--steps`` in all, with the settings in
  ``run.json``).
- A checkpoint is written every ``--checkpoint-every`` steps and at the end;
  Ctrl-C (SIGINT) or SIGTERM stops between two steps, writes a checkpoint and
  exits with status 130 (143 for SIGTERM) after one line naming the step.
- Every file is written atomically (a temporary file, then a rename); the
  report files (``report.md``, ``metrics.json``, figures) exist only once a
  run has finished, and describe its checkpoint.

``--nproc N`` runs the same command in N data-parallel processes under
torchrun (:mod:`otgen.models.launch`, :mod:`otgen.models.distributed`); rank 0
alone then owns ``--out`` (lock, run files, log, checkpoint, report) and every
rank resumes from the checkpoint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.models.data import TOYS, get_toy

__all__ = [
    "CHECKPOINT_EVERY",
    "DEFAULT_STEPS",
    "RUN_FILES",
    "register",
    "run",
]

DEFAULT_STEPS = 2000
CHECKPOINT_EVERY = 500
# Toy recipe of ``otgen train`` for WAE-MMD (overridden by --config): a random
# (implicit) encoder, since near-atomic data needs one to fill a continuous
# prior (docs/paper.md Prop. A1), and IMQ scales finer than C to see the gaps
# between the codes of different modes. The preset itself keeps the paper's
# defaults (deterministic encoder, scales=(1,)).
TOY_RECIPES = {
    "wae_mmd": {"encoder": "implicit", "scales": [0.05, 0.2, 1.0], "lam": 100.0},
}
TOY_TRAINER = {"batch_size": 128}
# Image recipe (every preset): the WAE paper's MNIST settings where they
# apply (d_z = 8, batch 100; lambda = 10 and Adam 1e-3 are the wae_mmd
# defaults), with the convolutional nets chosen by nets="auto".
IMAGE_RECIPE = {"d_z": 8}
IMAGE_TRAINER = {"batch_size": 100}
IMAGE_STEPS = 4000
N_TRAIN = 20_000  # toy training set size
N_EVAL = 1000  # held-out size for each of the two W2 samples
_HELD_OUT_SEED = 1_000_003  # offset: held-out toy samples never overlap training ones
DEFAULTS = {"model": "wae-mmd", "data": "ring8", "seed": 0}
FIGURES = (
    "samples.png",
    "codes.png",
    "reconstructions.png",
    "curves.png",
    "check.png",
    "interpolations.png",
)
REPORT_FILES = ("report.md", "metrics.json", *FIGURES)
# Every file a run writes to --out; "checkpoint" is a directory.
RUN_FILES = ("run.json", "metrics.jsonl", "checkpoint", *REPORT_FILES)
_CHECKPOINT_FILES = {"state.pt", "config.json"}


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


def _int_in(lo: int, hi: int | None, what: str):
    """An argparse type: an integer in [lo, hi), else ``must be WHAT``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = lo - 1
        if v < lo or (hi is not None and v >= hi):
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return v

    return parse


_non_negative_int = _int_in(0, None, "an integer >= 0")
_seed = _int_in(0, 2**32, "an integer in [0, 2**32)")


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand to the ``otgen`` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a generative model (WAE-MMD on ring8 by default) and report",
        description="Train a penalised-OT generative model on a toy distribution "
        "or a sample file, then write a markdown report with metrics and plots.",
    )
    p.add_argument("--model", default=None, choices=_presets(), help="preset (wae-mmd)")
    p.add_argument(
        "--data",
        default=None,
        help=f"toy name ({', '.join(TOYS)}), 'digits' (scikit-learn's 8 x 8 "
        "digits), a folder of PNG/JPEG images, or a .npy/.npz/.csv/.txt file of "
        "shape (N, d), (N, H, W) or (N, C, H, W) (ring8)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="training steps in all, resumed ones included "
        f"({DEFAULT_STEPS}; {IMAGE_STEPS} for images)",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to train: a CUDA GPU when available (auto), cpu or cuda",
    )
    p.add_argument(
        "--amp",
        action="store_true",
        help="bfloat16 mixed precision for the networks (CUDA only)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log the training terms to OUT/tensorboard (pip install tensorboard)",
    )
    p.add_argument("--out", default=None, help="output directory (runs/MODEL-DATA)")
    p.add_argument("--seed", type=_seed, default=None, help="seed of everything (0)")
    p.add_argument(
        "--config",
        default=None,
        help='JSON file: {"model": {preset options}, "trainer": {Trainer options}, '
        '"steps": N}',
    )
    p.add_argument("--float64", action="store_true", help="train in double precision")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        help="data-parallel processes on this machine, started with torchrun "
        "(gloo on the CPU, NCCL with one GPU each); batch size per process (1)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_non_negative_int,
        default=CHECKPOINT_EVERY,
        help=f"steps between checkpoints, 0 for none but the last ({CHECKPOINT_EVERY})",
    )
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, up to --steps",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the previous run's files in --out, then train anew",
    )
    from otgen.models.config_cli import add_config_options

    add_config_options(p)
    p.set_defaults(func=run, parser=p)
    _register_sample(subparsers)
    from otgen.models.compare import register as register_compare

    register_compare(subparsers)
    _register_check(subparsers)


def _register_sample(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sample",
        help="draw samples from a trained model (a run directory of otgen train)",
        description="Load the model of RUN_DIR (or of RUN_DIR/checkpoint) and "
        "write N samples to a .npy file, of shape (N, d) or (N, C, H, W).",
    )
    p.add_argument("run_dir", help="a run directory of otgen train, or a checkpoint")
    p.add_argument("-n", type=positive_int, default=1000, help="samples (1000)")
    p.add_argument("--out", default="samples.npy", help="a .npy file (samples.npy)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the samples (0)")
    p.add_argument(
        "--device",
        default="cpu",
        choices=("auto", "cpu", "cuda"),
        help="where the model runs (cpu)",
    )
    p.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    """Run ``otgen sample``: N samples of a trained model to a .npy file."""
    from otgen._cli_common import CLIError, one_line
    from otgen.models.report import atomic_write
    from otgen.models.runs import load, sample

    out = Path(args.out)
    if out.suffix.lower() != ".npy":
        raise CLIError(f"--out {args.out}: must end in .npy")
    if out.is_dir():
        raise CLIError(f"--out {args.out}: is a directory; pass a .npy file name")
    try:
        model = load(args.run_dir, device=args.device)
    except ValueError as err:
        raise CLIError(f"{args.run_dir}: {one_line(err)}") from err
    x = sample(model, args.n, seed=args.seed).numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda t: np.save(t, x))
    print(f"{args.n} samples of shape {x.shape[1:]} written to {out}")  # noqa: T201
    return 0


def _level(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1) (got {text!r})")
    return v


def _register_check(subparsers: Any) -> None:
    from otgen.models.check import DEFAULT_M, DEFAULT_REPLICATES, LEVEL

    p = subparsers.add_parser(
        "check",
        help="test whether samples are indistinguishable from a toy law",
        description="Score samples of any generator against a toy law: exact W2 "
        "between m samples and m held-out points of the law, against R replicates "
        "of the same W2 for fresh samples of the law (the noise floor). Prints the "
        "z-score, the Monte Carlo p-value and the verdict at the level; exit "
        "status 0 when the samples are indistinguishable from the law, 1 when "
        "not, 2 for a usage error.",
    )
    p.add_argument("samples", help="a .npy/.csv/.txt file of points, one per row")
    p.add_argument("--data", required=True, help=f"the toy law ({', '.join(TOYS)})")
    p.add_argument(
        "--m",
        type=positive_int,
        default=None,
        help=f"points per sample, drawn from SAMPLES (min(n, {DEFAULT_M}))",
    )
    p.add_argument(
        "--replicates",
        type=positive_int,
        default=DEFAULT_REPLICATES,
        help=f"floor replicates R, at least 1/level - 1 ({DEFAULT_REPLICATES})",
    )
    p.add_argument(
        "--level",
        type=_level,
        default=LEVEL,
        help=f"false-alarm rate of the verdict ({LEVEL:g})",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of everything (0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Run ``otgen check``; 0 when indistinguishable from the law, 1 when not."""
    from otgen._cli_common import CLIError, load_samples, one_line
    from otgen.models.check import DEFAULT_M, min_replicates, model_check

    if args.data not in TOYS:
        raise CLIError(f"--data {args.data}: not a toy; choose from {', '.join(TOYS)}")
    toy = get_toy(args.data)
    x = load_samples(args.samples)
    if x.shape[1] != toy.dim:
        raise CLIError(
            f"{args.samples}: points of dimension {x.shape[1]}, but {toy.name} is "
            f"a law in dimension {toy.dim}; pass points with {toy.dim} columns"
        )
    m = min(x.shape[0], DEFAULT_M) if args.m is None else args.m
    if m > x.shape[0]:
        raise CLIError(
            f"--m {m}: {args.samples} holds {x.shape[0]} points; pass --m "
            f"{x.shape[0]} or fewer, or more samples"
        )
    r_min = min_replicates(args.level)
    if args.replicates < r_min:
        raise CLIError(
            f"--replicates {args.replicates}: a test at level {args.level:g} needs "
            f"at least {r_min} (its smallest p-value is 1/(R + 1): with fewer the "
            f"check could never fail); pass --replicates {r_min} or more"
        )
    try:
        result = model_check(
            x,
            toy,
            m=m,
            replicates=args.replicates,
            level=args.level,
            seed=args.seed,
            progress=not (args.quiet or args.json),
        )
    except ValueError as err:
        raise CLIError(f"{args.samples}: {one_line(err)}") from err
    if args.json:
        out = {"samples": str(args.samples), "n": int(x.shape[0]), **result.to_dict()}
        print(json.dumps(out, indent=1))  # noqa: T201
    else:
        f = np.asarray(result.floor)
        z = "n/a" if result.z is None else f"{result.z:+.2f}"
        lines = [
            f"otgen check: {args.samples} ({x.shape[0]} points) against "
            f"{toy.name} at m = {result.m}, R = {result.replicates}, level "
            f"{result.level:g}",
            f"W2(samples, held-out)  {result.statistic:.4g}",
            f"noise floor            {result.floor_mean:.4g} ± "
            f"{result.floor_std:.2g} (min {f.min():.4g}, max {f.max():.4g})",
            f"z-score                {z}",
            f"p-value                {result.p_value:.3g} = (1 + #{{replicates >= "
            f"W2}}) / (R + 1), at least {1 / (result.replicates + 1):.3g}",
            f"verdict: {result.verdict}",
        ]
        if result.m < DEFAULT_M:
            lines.append(
                f"note: m = {result.m} < {DEFAULT_M}: a weak check (the floor "
                "shrinks slowly with m; errors below its spread go unseen)"
            )
        print("\n".join(lines))  # noqa: T201
    return 0 if result.indistinguishable else 1


def _read_config(path: str | None) -> dict:
    from otgen._cli_common import CLIError

    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--config {path}: no such file")
    try:
        conf = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CLIError(f"--config {path}: not valid JSON ({err})") from err
    except OSError as err:
        raise CLIError(f"--config {path}: cannot read it ({err.strerror})") from err
    if not isinstance(conf, dict) or set(conf) - {"model", "trainer", "steps"}:
        raise CLIError(
            f"--config {path}: expected an object with keys model, trainer, steps "
            f"(got {sorted(conf) if isinstance(conf, dict) else type(conf).__name__})"
        )
    for key in ("model", "trainer"):
        if not isinstance(conf.get(key, {}), dict):
            raise CLIError(f"--config {path}: {key!r} must be an object")
    return conf


def _load_data(name: str, seed: int, dtype: torch.dtype = torch.float32):
    """Training set, two held-out sets, toy (or None).

    A file must hold at least 50 finite, real points that are not all equal.
    """
    from otgen._cli_common import CLIError, load_samples, one_line

    if name in TOYS:
        toy = get_toy(name)
        train = toy.sample(N_TRAIN, seed=seed)
        held = toy.sample(2 * N_EVAL, seed=seed + _HELD_OUT_SEED, stratified=False)
        return train, held[:N_EVAL], held[N_EVAL:], toy
    base = Path(name.rsplit(":", 1)[0]) if ".npz:" in name else Path(name)
    if name != "digits" and not base.exists():
        raise CLIError(
            f"--data {name}: neither a toy ({', '.join(TOYS)}), 'digits', nor an "
            "existing file or folder"
        )
    if _is_shaped(name, base):
        from otgen.models.datasets import load_data

        try:
            arr = load_data(name).double().numpy()
        except (ValueError, OSError) as err:
            raise CLIError(f"--data {name}: {one_line(err)}") from err
    else:
        arr = load_samples(name)  # finite, real, 2-D, float64
    n = arr.shape[0]
    m = min(N_EVAL, n // 5)
    if m < 10:
        raise CLIError(
            f"--data {name}: need at least 50 points to hold out two test sets "
            f"(got {n})"
        )
    perm = np.random.default_rng(seed).permutation(n)
    x = torch.from_numpy(arr[perm]).to(dtype)
    if not bool(torch.isfinite(x).all()):
        raise CLIError(
            f"--data {name}: values overflow {str(dtype).replace('torch.', '')} "
            "(beyond 3e38); rescale the data, or pass --float64"
        )
    if bool((x == x[0]).all()):
        raise CLIError(
            f"--data {name}: every point is the same (zero variance in "
            f"{str(dtype).replace('torch.', '')}); a generative model, and its W2 "
            "noise floor, mean nothing on constant data: check the file"
        )
    return x[2 * m :], x[:m], x[m : 2 * m], None


def _is_shaped(name: str, path: Path) -> bool:
    """Data read by :func:`otgen.models.datasets.load_data` (images, .npz, N-D)."""
    if name == "digits" or path.is_dir() or path.suffix.lower() == ".npz":
        return True
    if path.suffix.lower() != ".npy":
        return False
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).ndim > 2
    except (ValueError, OSError, EOFError):
        return False  # load_samples says what is wrong with the file


def is_image_data(x: torch.Tensor) -> bool:
    """Points of shape (C, H, W): the image checks and figures apply."""
    return x.ndim == 4


def _atomic_json(path: Path, obj: Any) -> None:
    from otgen.models.report import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def _read_run(out: Path) -> dict | None:
    from otgen._cli_common import CLIError

    path = out / "run.json"
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CLIError(f"--resume: {path} cannot be read ({err})") from err
    if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
        raise CLIError(f"--resume: {path} is not the run.json of otgen train")
    return saved


def _settings(args: argparse.Namespace) -> tuple[dict, Path]:
    """The run's settings (model, data, seed, config, float64, steps) and --out.

    A new run takes the options, with their defaults. ``--resume`` takes the
    settings recorded in ``run.json``; options given again must agree.
    """
    from otgen._cli_common import CLIError
    from otgen.models.config_cli import config_options

    given = {
        "model": args.model,
        "data": args.data,
        "seed": args.seed,
        "config": _read_config(args.config) if args.config is not None else None,
        "float64": True if args.float64 else None,
    }
    fields = config_options(args)  # --lam 5 etc., over --config's model options
    if fields:
        conf = given["config"] or {}
        given["config"] = {**conf, "model": {**conf.get("model", {}), **fields}}
    fresh = {k: DEFAULTS.get(k) if v is None else v for k, v in given.items()}
    fresh["config"] = fresh["config"] or {}
    fresh["float64"] = bool(fresh["float64"])
    label = fresh["data"] if fresh["data"] in TOYS else Path(fresh["data"]).stem
    out = Path(args.out or f"runs/{fresh['model']}-{label}")
    settings = fresh
    if args.resume:
        saved = _read_run(out)
        if saved is not None:
            settings = dict(saved["settings"])
            differ = [
                f"--{k} {v!r} (the run has {settings.get(k)!r})"
                for k, v in given.items()
                if v is not None and v != settings.get(k)
            ]
            if differ:
                raise CLIError(
                    f"--resume: options differ from the run in {out}/run.json: "
                    f"{', '.join(differ)}; drop them to resume that run, or start a "
                    "new run with another --out (or --overwrite)"
                )
    conf_steps = settings["config"].get("steps")
    steps = args.steps or (settings.get("steps") if args.resume else None)
    name = str(settings["data"])
    base = Path(name.rsplit(":", 1)[0]) if ".npz:" in name else Path(name)
    default = IMAGE_STEPS if name not in TOYS and _is_shaped(name, base) else None
    steps = steps or conf_steps or default or DEFAULT_STEPS
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CLIError(f"--config: steps must be an integer >= 1 (got {steps!r})")
    settings["steps"] = steps
    return settings, out


def _prepare_out(out: Path, *, resume: bool, overwrite: bool):
    """Lock ``out`` and make it ready for the run; returns the held lock.

    Raises CLIError, before any training, when ``out`` is not a writable
    directory, is in use, has something in the way of a run file, or holds a
    previous run (without ``--overwrite`` or ``--resume``).
    """
    from otgen._cli_common import CLIError, writable_dir
    from otgen.models.report import RunDirectoryError, RunLock, remove_temporary_files

    writable_dir(out)
    try:
        lock = RunLock(out).acquire()
    except RunDirectoryError as err:
        raise CLIError(f"--out {err}") from err
    except OSError as err:
        raise CLIError(f"--out {out}: cannot lock it ({err.strerror})") from err
    try:
        remove_temporary_files(out)
        remove_temporary_files(out / "checkpoint")
        ckpt = out / "checkpoint"
        if ckpt.exists() and not ckpt.is_dir():
            raise CLIError(
                f"--out {out}: {ckpt} is a file, in the way of the checkpoint "
                "directory; move it away or pass another --out"
            )
        for name in RUN_FILES:
            if name != "checkpoint" and (out / name).is_dir():
                raise CLIError(
                    f"--out {out}: {out / name} is a directory, in the way of a "
                    "file of the run; move it away or pass another --out"
                )
        old = [name for name in RUN_FILES if (out / name).exists()]
        if resume:
            if not (ckpt / "config.json").is_file():
                raise CLIError(
                    f"--resume: {out} has no checkpoint to resume ({ckpt} is "
                    "missing); start a new run without --resume"
                )
        elif old and not overwrite:
            raise CLIError(
                f"--out {out} holds a previous run ({', '.join(old)}); pass "
                "--overwrite to replace it, --resume to continue it, or another --out"
            )
        elif old:
            extra = sorted(
                p.name for p in ckpt.glob("*") if p.name not in _CHECKPOINT_FILES
            )
            if extra:
                raise CLIError(
                    f"--overwrite: {ckpt} holds files otgen did not write "
                    f"({', '.join(extra)}); move them away first"
                )
            if ckpt.exists():
                shutil.rmtree(ckpt)
            for name in old:
                if name != "checkpoint":
                    (out / name).unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    return lock


def _truncate_log(log: Path, step: int) -> None:
    """Keep the lines of the training log up to ``step`` (a resumed checkpoint)."""
    if not log.is_file():
        return
    kept = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if isinstance(entry, dict) and entry.get("step", step + 1) <= step:
            kept.append(line)
    _atomic_json_lines(log, kept)


def _atomic_json_lines(path: Path, lines: list[str]) -> None:
    from otgen.models.report import atomic_write_text

    atomic_write_text(path, "".join(line + "\n" for line in lines))


class _Stop:
    """SIGINT / SIGTERM handlers that ask training to stop between two steps.

    A second signal raises KeyboardInterrupt at once.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> _Stop:
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers
                break
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace) -> int:
    """Run ``otgen train``; returns the exit status."""
    from otgen._cli_common import CLIError, one_line
    from otgen.models.distributed import agree
    from otgen.models.presets import build
    from otgen.models.train import Trainer

    if args.nproc > 1:
        return _launch(args)
    t_start = time.perf_counter()
    settings, out = _settings(args)
    dtype = torch.float64 if settings["float64"] else torch.float32
    train, held_a, held_b, toy = _load_data(settings["data"], settings["seed"], dtype)
    conf = settings["config"]
    key = settings["model"].replace("-", "_")
    recipe = TOY_RECIPES.get(key, {}) if toy is not None else {}
    images = is_image_data(train)
    if images:
        recipe = IMAGE_RECIPE
    model_opts = {"seed": settings["seed"], **recipe, **conf.get("model", {})}
    ckpt, log = out / "checkpoint", out / "metrics.jsonl"
    try:
        shape = tuple(train.shape[1:]) if images else int(train.shape[1])
        model = build(settings["model"], shape, **model_opts)
        batch = (IMAGE_TRAINER if images else TOY_TRAINER)["batch_size"]
        trainer_opts = {
            "seed": settings["seed"],
            "num_threads": 1,
            "batch_size": min(batch, int(train.shape[0])),
            "device": args.device,
            **conf.get("trainer", {}),
        }
        if args.amp:
            trainer_opts["amp"] = True
        if args.tensorboard:
            trainer_opts["tensorboard"] = out / "tensorboard"
        if settings["float64"]:
            trainer_opts["dtype"] = torch.float64
        trainer = Trainer(
            model, train, log_path=log, progress=not args.quiet, **trainer_opts
        )
    except TypeError as err:
        raise CLIError(f"--config: {one_line(err)}") from err
    except ValueError as err:
        if "tensorboard" in str(err):
            raise CLIError(f"--tensorboard: {one_line(err)}") from err
        if "device" in str(err) or "amp" in str(err):
            raise CLIError(f"--device {args.device}: {one_line(err)}") from err
        raise
    except (MemoryError, RuntimeError) as err:
        raise CLIError(
            f"--config: cannot build the model ({one_line(err)}); use smaller "
            "hidden widths or dimensions"
        ) from err
    # On several processes (torchrun) rank 0 alone owns --out: the lock, the
    # run files, the log, the checkpoint and the report; every rank resumes.
    lock, failure, rank0 = None, None, trainer.rank == 0
    if rank0:
        try:
            lock = _prepare_out(out, resume=args.resume, overwrite=args.overwrite)
        except CLIError as err:
            failure = err
    if agree(None if failure is None else str(failure), trainer.world_size):
        if failure is not None:
            raise failure
        return 2  # rank 0 says why
    status = {"status": "not started"}  # run.json is written once training starts
    try:
        if args.resume:
            try:
                trainer.load(ckpt)
            except ValueError as err:
                raise CLIError(f"--resume: {one_line(err)}") from err
            if settings["steps"] < trainer.step:
                raise CLIError(
                    f"--steps {settings['steps']}: the checkpoint in {ckpt} is "
                    f"already at step {trainer.step}; pass --steps {trainer.step} "
                    "or more (the total number of steps)"
                )
            if rank0:
                _truncate_log(log, trainer.step)
                for name in REPORT_FILES:  # they describe an earlier step
                    (out / name).unlink(missing_ok=True)
        status["status"] = "running"
        data = (train, held_a, held_b)
        return _train_and_report(
            args, settings, out, trainer, status, t_start, toy, data
        )
    except BaseException as err:
        if status["status"] in ("running", "evaluating"):
            status["status"] = f"stopped: {type(err).__name__}"
        raise
    finally:
        if status["status"] != "not started" and rank0:
            _write_run(out, settings, status)
        if lock is not None:
            lock.release()


def _launch(args: argparse.Namespace) -> int:
    """``otgen train --nproc N``: the same command in N processes under torchrun."""
    import os

    from otgen._cli_common import CLIError
    from otgen.models.launch import forwarded_options, launch

    if "WORLD_SIZE" in os.environ:
        raise CLIError(
            f"--nproc {args.nproc}: this process was already started by torchrun "
            f"(WORLD_SIZE={os.environ['WORLD_SIZE']}); drop --nproc"
        )
    return launch(args.nproc, ["train", *forwarded_options(args.parser, args)])


def _write_run(out: Path, settings: dict, status: dict) -> None:
    record = {
        "settings": settings,
        **status,
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    _atomic_json(out / "run.json", record)


def _train_and_report(args, settings, out, trainer, status, t_start, toy, data):
    from otgen._cli_common import CLIError
    from otgen.models.metrics import evaluate
    from otgen.models.report import write_report
    from otgen.models.train import TrainingError

    train, held_a, held_b = data
    steps, ckpt, every = settings["steps"], out / "checkpoint", args.checkpoint_every
    rank0 = trainer.rank == 0
    if rank0:
        _write_run(out, settings, status)
    todo = max(steps - trainer.step, 0)

    def callback(tr) -> bool:
        if every and tr.step % every == 0 and tr.step < steps:
            tr.save(ckpt)
        return stop.signum is not None

    t0 = time.perf_counter()
    with _Stop() as stop:
        try:
            trainer.fit(todo, callback=callback)
        except TrainingError as err:
            status["status"] = f"failed: {err}"
            if not rank0:
                return 2  # every rank stops at the same step; rank 0 says why
            last = f" (the last checkpoint is in {ckpt})" if ckpt.is_dir() else ""
            raise CLIError(f"{err}{last}") from err
        except KeyboardInterrupt:
            status["status"] = "interrupted (no checkpoint of the last steps)"
            raise
    t_train = time.perf_counter() - t0
    trainer.save(ckpt)
    if stop.signum is not None:
        status.update(status="interrupted", step=trainer.step)
        if rank0:
            print(  # noqa: T201
                f"otgen: interrupted at step {trainer.step} of {steps}; checkpoint "
                f"saved to {ckpt}; continue with: otgen train --out {out} --resume",
                file=sys.stderr,
            )
        return 128 + stop.signum
    if not rank0:  # rank 0 evaluates and reports
        return 0
    status.update(status="evaluating", step=trainer.step)
    model = trainer.model
    t0 = time.perf_counter()
    metrics = evaluate(
        model,
        held_a,
        held_b,
        seed=settings["seed"],
        lam=trainer.schedule(trainer.step),
        law=toy,
        progress=not args.quiet,
    )
    if is_image_data(held_a):
        from otgen.models.image_metrics import image_metrics

        metrics.update(
            image_metrics(model, train, held_a, held_b, seed=settings["seed"])
        )
    t_eval = time.perf_counter() - t0
    if is_image_data(held_a):
        figures = _image_figures(model, held_a, trainer, out, settings["seed"])
    else:
        figures = _figures(model, held_a, trainer, out, settings["seed"], metrics)
    data_label = settings["data"] if toy is not None else Path(settings["data"]).stem
    report_settings = {
        "model": model.config,
        "trainer": trainer.options,
        "steps": steps,
        "data": settings["data"] if toy is None else f"{toy.name}: {toy.definition}",
        "n_train": int(train.shape[0]),
        "n_held_out": int(held_a.shape[0]),
    }
    what = "exact W2"
    if "check_m" in metrics:
        what = (
            f"model check: {metrics['check_replicates'] + 1} exact W2 at m = "
            f"{metrics['check_m']}"
        )
    timings = {
        "training": t_train,
        f"evaluation ({what})": t_eval,
        "total": time.perf_counter() - t_start,
    }
    report = write_report(
        out,
        title=f"otgen train: {settings['model']} on {data_label}",
        metrics=metrics,
        settings=report_settings,
        figures=figures,
        timings=timings,
    )
    status.update(status="finished", step=trainer.step)
    ratio = metrics.get("w2_ratio")
    if "beats_pca" in metrics:
        from otgen.models.image_metrics import pca_sentence

        tail = f"; {pca_sentence(metrics)}"
    elif "check_verdict" in metrics:
        tail = f"; model check: {metrics['check_verdict']}"
    elif ratio is not None:
        tail = f"; W2 ratio to the noise floor {ratio:.3f} (no model check: no law)"
    else:
        tail = ""
    print(f"report written to {report}{tail}")  # noqa: T201
    return 0


def _image_figures(model, held, trainer, out: Path, seed: int) -> dict[str, Path]:
    """Sample grid, reconstructions, interpolations and curves for images."""
    from otgen.models.image_plots import plot_image_grid, plot_image_rows
    from otgen.models.plots import plot_curves
    from otgen.models.report import atomic_write

    g = torch.Generator(device=model.device).manual_seed(seed)
    x = held.to(model.device, model.dtype)
    lim = (float(x.min()), float(x.max()))
    figs = {}
    with torch.no_grad():
        gen = model.generate(64, generator=g)
        figs["generated samples"] = atomic_write(
            out / "samples.png",
            lambda t: plot_image_grid(
                gen, t, title="64 generated samples", value_range=lim
            ),
        )
        if hasattr(model, "encode"):
            xs = x[:12]
            codes = model.encode(xs).mean
            rec = model.decode(codes)
            figs["reconstructions"] = atomic_write(
                out / "reconstructions.png",
                lambda t: plot_image_rows(
                    [xs, rec],
                    ["held-out", "reconstructed"],
                    t,
                    title="held-out images and their reconstructions",
                    value_range=lim,
                ),
            )
            w = torch.linspace(0, 1, 10, dtype=codes.dtype, device=codes.device)
            rows = [
                model.decode((1 - w[:, None]) * codes[i] + w[:, None] * codes[i + 1])
                for i in range(0, 8, 2)
            ]
            figs["latent interpolations"] = atomic_write(
                out / "interpolations.png",
                lambda t: plot_image_rows(
                    rows,
                    [f"{i} to {i + 1}" for i in range(0, 8, 2)],
                    t,
                    title="decoded codes on segments between two held-out codes",
                    value_range=lim,
                ),
            )
    figs["training curves"] = atomic_write(
        out / "curves.png", lambda t: plot_curves(trainer.history, t)
    )
    return figs


def _figures(model, held, trainer, out: Path, seed: int, metrics) -> dict[str, Path]:
    """The run's figures, each written atomically; name -> path."""
    from otgen.models.autoencoder import PenalisedAutoEncoder
    from otgen.models.plots import (
        plot_check,
        plot_codes,
        plot_curves,
        plot_reconstructions,
        plot_samples,
    )
    from otgen.models.report import atomic_write

    def save(name, plot, *tensors) -> Path:
        return atomic_write(out / name, lambda tmp: plot(*tensors, tmp))

    g = torch.Generator(device=model.device).manual_seed(seed)
    figs = {}
    x = held.to(model.device, model.dtype)
    with torch.no_grad():
        gen = model.generate(x.shape[0], generator=g)
        figs["data vs generated"] = save("samples.png", plot_samples, x, gen)
        if isinstance(model, PenalisedAutoEncoder):
            enc = model.encode(x, generator=g)
            zp = model.prior.sample(
                x.shape[0], generator=g, dtype=x.dtype, device=x.device
            )
            figs["codes vs prior"] = save("codes.png", plot_codes, enc.z, zp)
            figs["reconstructions"] = save(
                "reconstructions.png", plot_reconstructions, x, model.decode(enc.z)
            )
    figs["training curves"] = save("curves.png", plot_curves, trainer.history)
    if "w2_floor_replicates" in metrics:
        floor, w2 = metrics["w2_floor_replicates"], metrics["w2_generated"]
        title = metrics["check_verdict"].split(":")[0]
        z, p = metrics["check_z"], metrics["check_p_value"]
        title += f" (z = {z:+.1f}, p = {p:.2g})" if z is not None else f" (p = {p:.2g})"
        figs["model check"] = atomic_write(
            out / "check.png", lambda tmp: plot_check(floor, w2, tmp, title=title)
        )
    return figs
