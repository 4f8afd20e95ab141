"""A trained model back from its run directory: :func:`load` and :func:`sample`.

A run directory (``otgen train --out``, or any directory passed to
:meth:`~otgen.models.train.Trainer.save`) holds, in ``checkpoint/`` or at
its top level:

- ``config.json``: the model's preset and options (``model.config``: the
  point shape ``d_x`` among them), the Trainer options and the step;
- ``state.pt``: state dicts only (model weights, optimisers, generators),
  read with ``torch.load(weights_only=True)``: nothing is unpickled.

A preset model is rebuilt from ``config.json`` alone; :func:`load_config`
reads its preset config (:mod:`otgen.models.configs`), the same for run
directories written before the configs were dataclasses. A **hand-built** model
(its own ``nn.Module`` encoder, decoder or critic) has no recipe in
``config.json``: build the same model again (same classes and sizes; the
weights need not match) and pass it as ``model=``; its state is loaded into
it and a ValueError names any parameter that does not fit.
"""

from __future__ import annotations

from pathlib import Path

import torch

from otgen.models.base import GenerativeModel
from otgen.models.configs import PresetConfig
from otgen.models.devices import resolve_device

__all__ = ["checkpoint_dir", "load", "load_config", "sample"]


def checkpoint_dir(directory: str | Path) -> Path:
    """The checkpoint of a run directory (``RUN/checkpoint``), or ``directory``."""
    d = Path(directory)
    if (d / "checkpoint" / "config.json").is_file():
        return d / "checkpoint"
    return d


def load(
    directory: str | Path,
    *,
    model: GenerativeModel | None = None,
    device: str | torch.device | None = "cpu",
) -> GenerativeModel:
    """The trained model of a run directory, in eval mode, ready to generate.

    Parameters
    ----------
    directory : str or Path
        A run directory of ``otgen train`` or a directory written by
        :meth:`Trainer.save <otgen.models.train.Trainer.save>`.
    model : GenerativeModel, optional
        For a hand-built model: the same model built again (module
        docstring). None rebuilds a preset from ``config.json``.
    device : str or torch.device, default="cpu"
        Where the model goes: ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Returns
    -------
    GenerativeModel
        ``.generate(n)``; auto-encoders also ``.encode(x).z`` and
        ``.decode(z)``.

    Examples
    --------
    >>> import tempfile
    >>> from otgen.models import Trainer, wae_mmd
    >>> tr = Trainer(wae_mmd(2), torch.randn(64, 2), batch_size=32, progress=False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = load(tr.save(d))
    >>> tuple(m.generate(5).shape)
    (5, 2)
    """
    from otgen.models.train import _read_checkpoint, load_model

    ckpt = checkpoint_dir(directory)
    if model is None:
        out = load_model(ckpt)
    else:
        config, state = _read_checkpoint(ckpt)
        saved = config.get("model") or {}
        if saved.get("preset") and model.config.get("preset") != saved["preset"]:
            raise ValueError(
                f"{ckpt} holds a {saved['preset']!r} model, but model= is "
                f"{model.config.get('preset') or 'a hand-built model'}; pass "
                "model=None to rebuild the preset."
            )
        model.to(getattr(torch, config["trainer"]["dtype"]))
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            msg = " ".join(str(err).split())[:400]
            raise ValueError(
                f"the state in {ckpt} does not fit model= ({msg}); build the model "
                "exactly as for training (same classes, sizes and d_z)."
            ) from err
        out = model
    return out.to(resolve_device(device)).eval()


def load_config(directory: str | Path) -> PresetConfig:
    """The preset config of the model of a run directory (or checkpoint).

    ``build(load_config(run))`` is the untrained model of the run; options
    added to a preset after the run was written take their defaults.

    Examples
    --------
    >>> import tempfile
    >>> from otgen.models import Trainer, WAEMMDConfig, build
    >>> config = WAEMMDConfig(2, lam=5.0)
    >>> tr = Trainer(build(config), torch.randn(64, 2), batch_size=32, progress=False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     load_config(tr.save(d)) == config
    True
    """
    from otgen.models.train import _read_checkpoint

    ckpt = checkpoint_dir(directory)
    config, _ = _read_checkpoint(ckpt)
    saved = config.get("model") or {}
    if not saved.get("preset"):
        raise ValueError(
            f"{ckpt} holds a hand-built model: it has no preset config; build the "
            "model again and pass it to load(directory, model=model)."
        )
    return PresetConfig.from_dict(saved)


@torch.no_grad()
def sample(
    model: GenerativeModel, n: int, *, seed: int = 0, batch_size: int = 4096
) -> torch.Tensor:
    """``n`` samples of ``model`` on the CPU, reproducible from ``seed``.

    Drawn in batches of ``batch_size`` from one generator on the model's
    device; shape (n,) + the point shape.

    Examples
    --------
    >>> from otgen.models import wae_mmd
    >>> m = wae_mmd((8, 8), d_z=2, conv_width=4)
    >>> tuple(sample(m, 3).shape), torch.equal(sample(m, 3), sample(m, 3))
    ((3, 1, 8, 8), True)
    """
    from otgen.models.base import check_int

    n = check_int(n, name="n", minimum=1, fix="; pass e.g. 1000")
    g = torch.Generator(device=model.device).manual_seed(seed)
    parts = []
    for i in range(0, n, batch_size):
        parts.append(model.generate(min(batch_size, n - i), generator=g).cpu())
    return torch.cat(parts)
