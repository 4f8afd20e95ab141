"""A short markdown report of a training run: settings, metrics table, figures."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["metrics_table", "write_report"]

_ROWS = (
    ("w2_generated", "W2(generated, held-out)", "exact W_2 (not W_2^2), m vs m points"),
    ("w2_noise_floor", "W2 noise floor", "exact W_2 between two held-out samples"),
    ("w2_ratio", "ratio to the floor", "about 1 for a perfect model"),
    ("reconstruction", "held-out reconstruction", "mean cost c(x, G(z~)), unscaled"),
    ("latent_penalty", "latent penalty D_Z", "the model's penalty on held-out codes"),
    ("mmd_to_prior", "MMD^2 to the prior", "reference: unbiased, IMQ at C of prior"),
    ("relaxed_cost", "relaxed cost", "recon_scale*rec + lam*D_Z: a lower bound"),
    ("modes_covered", "modes covered", "mass >= 0.2/K within 3 sigma"),
    ("high_quality", "high-quality fraction", "samples within 3 sigma of a centre"),
    ("max_mode_mass_error", "max per-mode mass error", "max_k |mass_k - 1/K|"),
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """The metrics as a markdown table (rows present in ``metrics`` only).

    Examples
    --------
    >>> print(metrics_table({"w2_ratio": 1.04}).splitlines()[2])
    | ratio to the floor | 1.04 | about 1 for a perfect model |
    """
    lines = ["| metric | value | meaning |", "|---|---|---|"]
    for key, label, meaning in _ROWS:
        if key in metrics:
            v = metrics[key]
            if key == "modes_covered":
                v = f"{v} / {metrics.get('n_modes', '?')}"
            lines.append(f"| {label} | {_fmt(v)} | {meaning} |")
    if "mode_mass" in metrics:
        mass = ", ".join(f"{m:.3f}" for m in metrics["mode_mass"])
        lines.append(f"| per-mode mass | {mass} | target 1/K each |")
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    *,
    title: str,
    metrics: Mapping[str, Any],
    settings: Mapping[str, Any],
    figures: Mapping[str, str | Path],
    timings: Mapping[str, float],
) -> Path:
    """Write ``out_dir/report.md`` and ``out_dir/metrics.json``; return the report."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text(json.dumps(dict(metrics), indent=1) + "\n")
    lines = [f"# {title}", ""]
    lines += ["## Metrics", "", metrics_table(metrics), ""]
    lines += [
        "The training loss estimates the penalised (relaxed) transport cost, a lower "
        "bound on W_c (PAPER.md Prop. P1), not W_2 itself; W2 above is computed "
        "exactly between samples.",
        "",
        "## Time",
        "",
    ]
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
    path = d / "report.md"
    path.write_text("\n".join(lines))
    return path
