"""A short markdown report of a training run, and safe writes to its directory.

Every file of a run directory is written atomically (:func:`atomic_write`: a
temporary file in the same directory, flushed to disk, then renamed over the
target with :func:`os.replace`), so a reader or a crash sees the old file or
the new one, never half of one. :class:`RunLock` keeps a second process out of
a directory in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "RunDirectoryError",
    "RunLock",
    "atomic_write",
    "atomic_write_text",
    "check_section",
    "image_section",
    "diagnosis",
    "metrics_table",
    "objective_sentence",
    "remove_temporary_files",
    "write_report",
]

_TMP_TAG = ".otgen-tmp"


class RunDirectoryError(RuntimeError):
    """A run directory is in use by another process, or cannot be locked."""


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb+") as f:
        os.fsync(f.fileno())


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` on a temporary file, then rename.

    The temporary file lives in the same directory (a rename there is atomic)
    and keeps the suffix of ``path`` (writers such as matplotlib choose the
    format from it). On any failure, or an interrupt, it is removed and
    ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = atomic_write(Path(d) / "a.txt", lambda t: t.write_text("hi"))
    ...     p.read_text(), sorted(q.name for q in Path(d).iterdir())
    ('hi', ['a.txt'])
    """
    path = Path(path)
    while True:  # mode 0o666 less the umask, as for a file written directly
        tmp = (
            path.parent / f".{path.name}.{secrets.token_hex(4)}{_TMP_TAG}{path.suffix}"
        )
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda t: t.write_text(text))


def remove_temporary_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left behind."""
    gone = []
    for tmp in Path(directory).glob(f".*{_TMP_TAG}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


class RunLock:
    """An exclusive lock on a run directory while one process writes to it.

    The lock is ``directory/.otgen.lock``, locked with ``fcntl.flock`` where
    available (released by the system if the process dies) and holding the
    owner's process id; elsewhere the file's existence is the lock.

    Raises
    ------
    RunDirectoryError
        From :meth:`acquire` when another process holds the lock.
    """

    NAME = ".otgen.lock"

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.NAME
        self._fd: int | None = None

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid else "another process"

    def _busy(self) -> RunDirectoryError:
        return RunDirectoryError(
            f"{self.path.parent} is in use by {self._holder()} (lock file "
            f"{self.path}); wait for that run to finish, or pass another directory"
        )

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirectoryError naming its holder."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the file's existence is the lock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise self._busy() from None
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # The holder may have removed the file between our open and flock.
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except OSError:
                same = False
            if not same:
                os.close(fd)
                raise self._busy()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# The model check and the mode statistics: the report's lead.
_CHECK_ROWS = (
    ("w2_generated", "W2(generated, held-out)", "exact W_2 (not W_2^2), m vs m points"),
    ("w2_noise_floor", "W2 noise floor", "mean ± sd of the R replicates"),
    ("check_z", "z-score", "(W2 - floor mean) / floor sd"),
    ("check_p_value", "p-value", "(1 + #{replicates >= W2}) / (R + 1)"),
    ("modes_covered", "modes covered", "mass >= 0.2/K within 3 sigma"),
    ("high_quality", "high-quality fraction", "samples within 3 sigma of a centre"),
    ("max_mode_mass_error", "max per-mode mass error", "max_k |mass_k - 1/K|"),
)
_ROWS = (
    ("w2_generated", "W2(generated, held-out)", "exact W_2 (not W_2^2), m vs m points"),
    ("w2_noise_floor", "W2 noise floor", "exact W_2 between two held-out samples"),
    ("w2_ratio", "ratio to the floor", "secondary: cannot fail at small m"),
    ("reconstruction", "held-out reconstruction", "mean cost c(x, G(z~)), unscaled"),
    ("latent_penalty", "latent penalty D_Z", "the model's penalty on held-out codes"),
    ("mmd_to_prior", "MMD^2 to the prior", "reference: unbiased, IMQ at C of prior"),
    ("relaxed_cost", "relaxed cost", "recon_scale*rec + lam*D_Z: a lower bound"),
    ("modes_covered", "modes covered", "mass >= 0.2/K within 3 sigma"),
    ("high_quality", "high-quality fraction", "samples within 3 sigma of a centre"),
    ("max_mode_mass_error", "max per-mode mass error", "max_k |mass_k - 1/K|"),
)


# What each preset's training loss is, in words: labels and meanings of the
# loss rows, and the sentence on the loss. The sentence on the relaxed
# transport cost (docs/paper.md Prop. P1) is only for WAEs whose latent penalty
# estimates a divergence.
_WAE = {
    "relaxed_cost": (
        "relaxed cost",
        "recon_scale*rec + lam*D_Z; its inf over encoders is <= W_c",
    ),
    "sentence": "The training loss estimates the penalised (relaxed) transport "
    "cost D_POT(lambda) with cost c = {cost}, a lower bound on W_c (docs/paper.md "
    "Prop. P1), not W_2 itself; W2 above is computed exactly between samples.",
}
_ADV = {
    "latent_penalty": ("encoder's adversarial loss", "its GAN loss on held-out codes"),
    "relaxed_cost": ("training objective", "rec + lam * adversarial loss"),
    "sentence": "The training loss is the reconstruction cost (c = {cost}) plus "
    "lambda times the encoder's adversarial (latent GAN) loss, which is not a "
    "divergence value: the loss is not the relaxed transport cost of a "
    "divergence penalty; W2 above is computed exactly between samples.",
}
_ELBO = {
    "reconstruction": (
        "held-out negative log-likelihood",
        "-log p_G(x|z~), nats per point ({likelihood})",
    ),
    "latent_penalty": ("KL term", "{kl}"),
    "relaxed_cost": ("negative ELBO", "NLL + beta * KL term, nats per point"),
    "sentence": "The training loss is the negative ELBO, the {likelihood} "
    "negative log-likelihood plus beta times {kl}, in nats per point: not a "
    "transport cost (with a fixed sigma, 2 sigma^2 times it is POT-like, "
    "docs/paper.md Prop. V1); W2 above is computed exactly between samples.",
}
_GAN = {
    "sentence": "The training losses are those of the critic and the generator "
    "of the {what}: not a transport cost; W2 above is computed exactly between "
    "samples.",
}
_OBJECTIVES = {
    "wae_mmd": _WAE,
    "wae_sinkhorn": _WAE,
    "wae_exact": _WAE,
    "wae_gan": _ADV,
    "aae": _ADV,
    "vae": _ELBO,
    "beta_vae": _ELBO,
    "avb": _ELBO,
    "gan": _GAN,
    "fgan": _GAN,
    "wgan_gp": _GAN,
}


def _objective(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The preset's loss rows and sentence, in words (None: not a preset)."""
    if not isinstance(config, Mapping):
        return None
    preset = config.get("preset")
    if preset not in _OBJECTIVES:
        return None
    opts = config.get("options") or {}
    gaussian = opts.get("likelihood", "gaussian") == "gaussian"
    words = {
        "cost": opts.get("cost", "squared"),
        "likelihood": "Gaussian" if gaussian else "Bernoulli",
        "kl": "the discriminator's estimate of KL(Q(Z|x) || P_Z)"
        if preset == "avb"
        else "KL(Q(Z|x) || P_Z) per point",
        "what": {
            "gan": "GAN (the critic's optimal value is 2 JS - log 4)",
            "fgan": f"f-GAN (a variational bound on the {opts.get('f', 'js')} "
            "f-divergence)",
            "wgan_gp": "WGAN-GP (the critic's gap E V(X) - E V(G(Z)) estimates "
            "W_1, not W_2, only as far as the critic is optimal and 1-Lipschitz)",
        }.get(preset, ""),
    }

    def fill(v: Any) -> Any:
        return v.format(**words) if isinstance(v, str) else tuple(map(fill, v))

    return {k: fill(v) for k, v in _OBJECTIVES[preset].items()}


def objective_sentence(config: Mapping[str, Any] | None) -> str:
    """What the training loss of the model built from ``config`` estimates.

    The sentence on the relaxed transport cost (a lower bound on W_c, docs/paper.md
    Prop. P1) is for WAEs with a divergence penalty only; a VAE's loss is a
    negative ELBO, a GAN's is its own. Empty for a model that is not a preset.

    Examples
    --------
    >>> objective_sentence({"preset": "vae", "options": {}})[:38]
    'The training loss is the negative ELBO'
    >>> "relaxed" in objective_sentence({"preset": "gan", "options": {}})
    False
    """
    obj = _objective(config)
    return "" if obj is None else obj["sentence"]


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(metrics: Mapping[str, Any], key: str) -> str:
    v = metrics[key]
    if key == "modes_covered":
        return f"{v} / {metrics.get('n_modes', '?')}"
    if key == "w2_noise_floor" and "w2_noise_floor_std" in metrics:
        return f"{_fmt(v)} ± {_fmt(metrics['w2_noise_floor_std'])}"
    if key == "w2_ratio" and v is None:
        return "n/a (noise floor 0: constant data)"
    return _fmt(v)


def _table(metrics: Mapping[str, Any], rows: tuple) -> list[str]:
    lines = ["| metric | value | meaning |", "|---|---|---|"]
    for key, label, meaning in rows:
        if key in metrics:
            lines.append(f"| {label} | {_cell(metrics, key)} | {meaning} |")
    if "mode_mass" in metrics:
        mass = ", ".join(f"{m:.3f}" for m in metrics["mode_mass"])
        lines.append(f"| per-mode mass | {mass} | target 1/K each |")
    return lines


def diagnosis(metrics: Mapping[str, Any]) -> str:
    """How samples that fail the model check differ from the law, in words.

    Empty when the check passed or was not run. Read from the mode statistics
    where the law is a mixture: most samples off the modes (more than
    3 sigma from every centre), modes missed (mode collapse when
    half or more), some mass between the modes (smeared), unequal masses;
    else the z-score alone.

    Examples
    --------
    >>> diagnosis({"check_indistinguishable": False, "check_z": 9.0,
    ...            "modes_covered": 1, "n_modes": 8, "high_quality": 0.9,
    ...            "max_mode_mass_error": 0.8})
    'mode collapse: 1 of 8 modes covered'
    >>> diagnosis({"check_indistinguishable": True})
    ''
    """
    if metrics.get("check_indistinguishable", True):
        return ""
    k, covered = metrics.get("n_modes"), metrics.get("modes_covered")
    hq = metrics.get("high_quality")
    off = "" if hq is None else f"{100 * (1 - hq):.0f}% lie more than 3 sigma from"
    if hq is not None and hq < 0.5:
        of = "" if covered is None else f"; {covered} of {k} modes covered"
        return f"most samples off the modes: {off} every centre{of}"
    if k is not None and covered is not None and covered < k:
        what = "mode collapse" if covered <= k // 2 else "modes dropped"
        return f"{what}: {covered} of {k} modes covered"
    if hq is not None and hq < 0.9:
        return f"samples smeared between the modes: {off} every centre"
    err = metrics.get("max_mode_mass_error")
    if k is not None and err is not None and err > 0.25 / k:
        return f"unequal mode masses: one is off by {err:.3f} (target 1/{k} each)"
    z = metrics.get("check_z")
    size = "" if z is None else f" ({z:.1f} floor sds)"
    return f"W2 above the floor's spread{size}"


def check_section(metrics: Mapping[str, Any]) -> str:
    """The model check: verdict, statistic against its floor, mode statistics.

    Empty when ``metrics`` holds no check (data without a law).

    Examples
    --------
    >>> m = {"check_verdict": "indistinguishable from ring8 at m = 10",
    ...      "check_m": 10, "check_replicates": 19, "check_level": 0.05,
    ...      "w2_generated": 0.5, "w2_noise_floor": 0.5, "w2_noise_floor_std": 0.1}
    >>> print(check_section(m).splitlines()[0])
    **Verdict: indistinguishable from ring8 at m = 10.**
    """
    if "check_verdict" not in metrics:
        return ""
    m, r, level = (
        metrics["check_m"],
        metrics["check_replicates"],
        metrics["check_level"],
    )
    lines = [f"**Verdict: {metrics['check_verdict']}.**", ""]
    why = diagnosis(metrics)
    if why:
        steps = metrics.get("steps")
        at = f" after {steps} training steps" if steps else ""
        lines += [f"**The model fails its check{at}: {why}.**", ""]
    lines += _table(metrics, _CHECK_ROWS)
    lines += [
        "",
        f"The check is a Monte Carlo test at level {level:g}: W2 between m = {m} "
        f"generated samples and m held-out points of the law, against R = {r} "
        "replicates of the same W2 for fresh samples of the law (the noise "
        "floor), with the same held-out points and the same m. It fails when "
        f"the p-value is at most {level:g}, i.e. when W2 exceeds every replicate "
        f"(p = 1/(R + 1)): a model that samples the law exactly fails it with "
        f"probability {level:g} (the false-alarm rate), whatever the law of W2. "
        "The z-score says by how much.",
    ]
    ratio = metrics.get("w2_ratio")
    if ratio is not None:
        lines += [
            "",
            f"Secondary: W2 / floor mean = {ratio:.3g}. A ratio alone cannot fail: "
            "it depends on m, and at m = 1000 the floor is dominated by the "
            "counts per mode.",
        ]
    return "\n".join(lines)


def image_section(metrics: Mapping[str, Any]) -> str:
    """Reconstruction against PCA, the MMD test and the Fréchet distance."""
    lines = []
    if "beats_pca" in metrics:
        from otgen.models.image_metrics import pca_sentence

        lines += [f"**{pca_sentence(dict(metrics))}**", ""]
    if "w2_pixels_verdict" in metrics:
        lines += [f"**Exact W2 in pixel space: {metrics['w2_pixels_verdict']}.**", ""]
    lines += ["| metric | value | meaning |", "|---|---|---|"]
    rows = (
        ("recon_model", "held-out reconstruction", "mean squared error, code = mean"),
        ("recon_pca", "PCA reconstruction", "same, PCA with d_z components"),
        ("mmd_p_value", "MMD test p-value", "generated vs held-out; small: told apart"),
        ("mmd_statistic", "MMD^2 statistic", "unbiased, Gaussian kernel, median scale"),
        ("frechet", "Fréchet distance", "W2^2 of Gaussians fitted to pixels"),
        ("frechet_floor", "Fréchet floor", "same, between the two held-out sets"),
        ("w2_pixels", "exact W2, pixels", "generated vs held-out images"),
        ("w2_pixels_floor", "W2 floor (mean)", "re-splits of the pooled images"),
        ("w2_pixels_floor_std", "W2 floor (spread)", "standard deviation"),
        ("w2_pixels_z", "W2 z-score", "(W2 - floor mean) / spread"),
        ("w2_pixels_p_value", "W2 test p-value", "permutation; small: told apart"),
    )
    lines += [
        f"| {label} | {_fmt(metrics[key])} | {meaning} |"
        for key, label, meaning in rows
        if key in metrics
    ]
    return "\n".join(lines)


def metrics_table(
    metrics: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> str:
    """The metrics as a markdown table (rows present in ``metrics`` only).

    With a model check (``check_verdict`` in ``metrics``), its rows are left
    to :func:`check_section`. ``config`` (``model.config``) names the rows of
    the loss by what they are for that preset: a VAE's reconstruction is a
    negative log-likelihood and its objective a negative ELBO, not a cost.

    Examples
    --------
    >>> print(metrics_table({"w2_ratio": 1.04}).splitlines()[2])
    | ratio to the floor | 1.04 | secondary: cannot fail at small m |
    """
    rows = _ROWS
    if "check_verdict" in metrics:
        lead = {k for k, _, _ in _CHECK_ROWS} | {"w2_ratio"}
        rows = tuple(row for row in _ROWS if row[0] not in lead)
        metrics = {k: v for k, v in metrics.items() if k != "mode_mass"}
    obj = _objective(config) or {}
    rows = tuple((k, *obj.get(k, (label, meaning))) for k, label, meaning in rows)
    return "\n".join(_table(metrics, rows))


def write_report(
    out_dir: str | Path,
    *,
    title: str,
    metrics: Mapping[str, Any],
    settings: Mapping[str, Any],
    figures: Mapping[str, str | Path],
    timings: Mapping[str, float],
) -> Path:
    """Write ``out_dir/report.md`` and ``out_dir/metrics.json``; return the report.

    The report leads with the model check (:func:`check_section`) when
    ``metrics`` has one.

    Both files are written atomically (:func:`atomic_write`).
    """
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_text(d / "metrics.json", json.dumps(dict(metrics), indent=1) + "\n")
    lines = [f"# {title}", ""]
    check = check_section({"steps": settings.get("steps"), **metrics})
    if check:
        lines += ["## Model check", "", check, "", "## Other metrics", ""]
    else:
        why = (
            "the data have no known law to draw fresh samples from (a data "
            "file, a folder or digits)"
        )
        if "w2_pixels_verdict" in metrics:
            note = (
                f"The toys' model check does not apply: {why}. The exact W2 "
                "test under Images calibrates its floor by re-splitting the "
                "pooled generated and held-out images instead, and gives the "
                "verdict."
            )
        else:
            note = (
                f"No model check: {why}; W2 is compared with the floor between "
                "the two held-out samples, without a verdict."
            )
        lines += ["## Metrics", "", note, ""]
    if "frechet" in metrics:
        lines += ["## Images", "", image_section(metrics), ""]
    config = settings.get("model")
    lines += [metrics_table(metrics, config), ""]
    sentence = objective_sentence(config)
    lines += [sentence, ""] if sentence else []
    lines += ["## Time", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in timings.items()]
    lines += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(dict(settings), indent=1),
        "```",
        "",
        "## Figures",
        "",
    ]
    for name, path in figures.items():
        rel = Path(os.path.relpath(Path(path).resolve(), d.resolve()))
        lines += [f"### {name}", "", f"![{name}]({rel.as_posix()})", ""]
    return atomic_write_text(d / "report.md", "\n".join(lines))
