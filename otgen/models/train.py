r"""One trainer for every model: update groups, lambda schedules, checkpoints.

Per step, with alternating updates (default) each update group of the model
(e.g. ``"critic"`` then ``"model"``, PAPER.md Algorithm 1) takes its
``n_updates`` Adam steps, each on a fresh batch; with simultaneous updates all
groups compute their gradients at the same parameters on one batch, then step.

Every random choice is seeded: data order (a NumPy generator), model noise
(prior samples, reparametrisation, critic interpolates: one torch generator),
weight initialisation (the preset's ``seed``). Checkpoints hold state dicts
(model, optimisers, generators, schedule, data position, step, history) saved
with :func:`torch.save` and read back with ``torch.load(weights_only=True)``,
plus a JSON config; nothing is unpickled, and :meth:`Trainer.load` continues
bit-for-bit.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.models.base import GenerativeModel
from otgen.models.data import batches, to_data_tensor

__all__ = ["LambdaSchedule", "Trainer", "TrainingError", "load_model"]

CHECKPOINT_FORMAT = "otgen-checkpoint-1"


class TrainingError(RuntimeError):
    """Training stopped: a loss term became NaN or infinite."""


class LambdaSchedule:
    r"""The penalty weight :math:`\lambda_t` over training steps.

    Parameters
    ----------
    kind : {"constant", "warmup", "adaptive"}
        ``"constant"``: :math:`\lambda_t = \lambda`. ``"warmup"``: linear from 0
        to :math:`\lambda` over ``warmup_steps``. ``"adaptive"``: dual ascent on
        :math:`\log\lambda` towards the constraint :math:`D_Z \le` ``target``,
        :math:`\log\lambda \mathrel{+}= \text{rate}\cdot\mathrm{clip}((\bar D_Z -
        \text{target})/\text{target}, -1, 1)` with :math:`\bar D_Z` an
        exponential average (weight 0.9) of the observed penalty.
    value : float
        :math:`\lambda` (the initial value for ``"adaptive"``).
    """

    KINDS = ("constant", "warmup", "adaptive")

    def __init__(
        self,
        kind: str = "constant",
        *,
        value: float,
        warmup_steps: int = 0,
        target: float | None = None,
        rate: float = 0.01,
    ) -> None:
        if kind not in self.KINDS:
            raise ValueError(
                f"schedule must be one of {', '.join(self.KINDS)} (got {kind!r})."
            )
        if not value >= 0:
            raise ValueError(f"lam must be >= 0 (got {value!r}); pass e.g. 10.")
        if kind == "warmup" and warmup_steps < 1:
            raise ValueError(
                f"warmup_steps must be >= 1 for schedule='warmup' (got {warmup_steps})."
            )
        if kind == "adaptive" and not (target is not None and target > 0 and value > 0):
            raise ValueError(
                "schedule='adaptive' needs target > 0 (the penalty level to reach) "
                f"and an initial lam > 0 (got target={target!r}, lam={value!r})."
            )
        self.kind, self.value = kind, float(value)
        self.warmup_steps, self.target, self.rate = int(warmup_steps), target, rate
        self.log_lam = math.log(value) if value > 0 else -math.inf
        self.avg: float | None = None

    def __call__(self, step: int) -> float:
        r""":math:`\lambda` at ``step`` (0-based)."""
        if self.kind == "warmup":
            return self.value * min(1.0, step / self.warmup_steps)
        if self.kind == "adaptive":
            return math.exp(self.log_lam)
        return self.value

    def observe(self, penalty: float) -> None:
        """Feed the latest penalty value (used by ``"adaptive"``)."""
        if self.kind != "adaptive":
            return
        self.avg = penalty if self.avg is None else 0.9 * self.avg + 0.1 * penalty
        target = float(self.target)  # > 0, checked in __init__
        err = max(-1.0, min(1.0, (self.avg - target) / target))
        self.log_lam += self.rate * err

    def state_dict(self) -> dict:
        """Mutable state."""
        return {"log_lam": self.log_lam, "avg": self.avg}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`."""
        self.log_lam, self.avg = float(state["log_lam"]), state["avg"]


def _finite_or_raise(terms: Mapping[str, torch.Tensor], step: int, group: str):
    out = {}
    for name, t in terms.items():
        v = float(t.detach())
        if not math.isfinite(v):
            raise TrainingError(
                f"training stopped at step {step}: loss term {name!r} of update "
                f"group {group!r} is {v}; lower the learning rate or lambda, check "
                "the data for extreme values, or train in float64."
            )
        out[name] = v
    return out


class Trainer:
    r"""Train any :class:`~otgen.models.base.GenerativeModel` by SGD.

    Parameters
    ----------
    model : GenerativeModel
        A preset (:mod:`otgen.models.presets`) or a hand-built model.
    data : Tensor, array or DataLoader
        Training data, rows are points; a DataLoader is cycled (its own order;
        bit-for-bit resume then needs a seeded loader).
    batch_size : int, default=256
        Batch size for tensor data.
    seed : int, default=0
        Seeds data order and model noise.
    update : {"alternating", "simultaneous"}, default="alternating"
        How the update groups take turns (see the module docstring).
    n_critic : int, optional
        Updates of the ``"critic"`` group per step (default: the model's).
    optim : dict, optional
        Per-group Adam overrides, e.g. ``{"critic": {"lr": 1e-4}}``.
    lam : float, optional
        Penalty weight; default the model's ``lam``.
    schedule : {"constant", "warmup", "adaptive"}, default="constant"
        :class:`LambdaSchedule` kind, with ``warmup_steps``, ``lam_target``,
        ``lam_rate``.
    dtype : torch.dtype or {"float32", "float64"}, optional
        ``torch.float64`` trains in double precision (the model is converted).
    log_path : str or Path, optional
        JSON-lines file receiving the logged terms every ``log_every`` steps.
    progress : bool, default=True
        Show a tqdm progress bar on standard error.
    num_threads : int, optional
        Torch CPU threads during :meth:`fit` (restored afterwards). Small models
        on a loaded CPU train much faster with 1 (40 times faster measured with
        one other busy process on 2 cores); None keeps torch's setting.

    Examples
    --------
    >>> from otgen.models.presets import wae_mmd
    >>> x = torch.randn(512, 2)
    >>> tr = Trainer(wae_mmd(2, seed=0), x, batch_size=64, progress=False)
    >>> tr.fit(3).step
    3
    """

    def __init__(
        self,
        model: GenerativeModel,
        data: Any,
        *,
        batch_size: int = 256,
        seed: int = 0,
        update: str = "alternating",
        n_critic: int | None = None,
        optim: Mapping[str, Mapping[str, Any]] | None = None,
        lam: float | None = None,
        schedule: str = "constant",
        warmup_steps: int = 0,
        lam_target: float | None = None,
        lam_rate: float = 0.01,
        dtype: torch.dtype | None = None,
        log_path: str | Path | None = None,
        log_every: int = 10,
        progress: bool = True,
        num_threads: int | None = None,
    ) -> None:
        if update not in ("alternating", "simultaneous"):
            raise ValueError(
                f"update must be 'alternating' or 'simultaneous' (got {update!r})."
            )
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(
                f"batch_size must be an integer >= 2 (got {batch_size!r})."
            )
        if isinstance(dtype, str):
            names = {"float32": torch.float32, "float64": torch.float64}
            if dtype not in names:
                raise ValueError(
                    f"dtype must be 'float32' or 'float64' (got {dtype!r})."
                )
            dtype = names[dtype]
        if dtype is not None:
            model.to(dtype)
        self.model, self.seed, self.update = model, int(seed), update
        self.batch_size = batch_size
        self.dtype = model.dtype
        self.device = model.device
        if isinstance(data, (torch.Tensor, np.ndarray)):
            self.data = to_data_tensor(data, dtype=self.dtype).to(self.device)
            if self.data.shape[0] < batch_size:
                raise ValueError(
                    f"batch_size must be at most the number of points (got "
                    f"batch_size={batch_size} for {self.data.shape[0]} points)."
                )
            self._stream = None
        else:
            self.data, self._stream = None, batches(data)
        self.groups = model.update_groups()
        optim = dict(optim or {})
        for g in self.groups:
            if g.name == "critic" and n_critic is not None:
                if n_critic < 1:
                    raise ValueError(f"n_critic must be >= 1 (got {n_critic}).")
                g.n_updates = int(n_critic)
            over = dict(optim.pop(g.name, {}))
            g.lr = float(over.pop("lr", g.lr))
            g.betas = tuple(over.pop("betas", g.betas))
            if over:
                raise ValueError(
                    f"optim[{g.name!r}] accepts lr and betas (got {sorted(over)})."
                )
        if optim:
            raise ValueError(
                f"optim has unknown group(s) {sorted(optim)}; the model's groups are "
                f"{[g.name for g in self.groups]}."
            )
        if update == "simultaneous" and any(g.n_updates > 1 for g in self.groups):
            raise ValueError(
                "update='simultaneous' takes one update per group and step; pass "
                "n_critic=1 or use update='alternating'."
            )
        self.optimizers = {
            g.name: torch.optim.Adam(g.params, lr=g.lr, betas=g.betas)
            for g in self.groups
        }
        base = model.lam if lam is None else float(lam)
        self.schedule = LambdaSchedule(
            schedule,
            value=base,
            warmup_steps=warmup_steps,
            target=lam_target,
            rate=lam_rate,
        )
        self.options = {
            "batch_size": batch_size,
            "seed": self.seed,
            "update": update,
            "n_critic": n_critic,
            "optim": {
                g.name: {"lr": g.lr, "betas": list(g.betas)} for g in self.groups
            },
            "lam": base,
            "schedule": schedule,
            "warmup_steps": warmup_steps,
            "lam_target": lam_target,
            "lam_rate": lam_rate,
            "dtype": str(self.dtype).replace("torch.", ""),
            "log_every": log_every,
        }
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self._rng = np.random.default_rng((self.seed, 1))
        self._perm: np.ndarray | None = None
        self._pos = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.log_path = Path(log_path) if log_path is not None else None
        self.log_every, self.progress = max(1, int(log_every)), progress
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 (got {num_threads}).")
        self.num_threads = num_threads

    # -- data -------------------------------------------------------------------
    def _next_batch(self) -> torch.Tensor:
        if self._stream is not None:
            return next(self._stream).to(self.device, self.dtype)
        n = self.data.shape[0]
        if self._perm is None or self._pos + self.batch_size > n:
            self._perm, self._pos = self._rng.permutation(n), 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.data[torch.from_numpy(idx).to(self.device)]

    # -- one step -----------------------------------------------------------------
    def _update(self, group, lam: float) -> dict[str, float]:
        x = self._next_batch()
        loss, terms = self.model.group_loss(
            group.name, x, lam=lam, generator=self.generator
        )
        vals = _finite_or_raise(terms, self.step, group.name)
        opt = self.optimizers[group.name]
        opt.zero_grad(set_to_none=True)
        loss.backward(inputs=group.params)
        opt.step()
        return vals

    def train_step(self) -> dict[str, float]:
        """One training step; returns the terms of its last update per group."""
        self.model.train()
        lam = self.schedule(self.step)
        out: dict[str, float] = {"step": self.step + 1, "lam": lam}
        if self.update == "alternating":
            for g in self.groups:
                for _ in range(g.n_updates):
                    vals = self._update(g, lam)
                out.update({f"{g.name}/{k}": v for k, v in vals.items()})
        else:
            x = self._next_batch()
            for g in self.groups:
                loss, terms = self.model.group_loss(
                    g.name, x, lam=lam, generator=self.generator
                )
                vals = _finite_or_raise(terms, self.step, g.name)
                grads = torch.autograd.grad(loss, g.params, allow_unused=True)
                for p, gr in zip(g.params, grads):
                    p.grad = gr
                out.update({f"{g.name}/{k}": v for k, v in vals.items()})
            for g in self.groups:
                self.optimizers[g.name].step()
                self.optimizers[g.name].zero_grad(set_to_none=True)
        if "model/penalty" in out:
            self.schedule.observe(out["model/penalty"])
        self.step += 1
        return out

    def fit(self, steps: int) -> Trainer:
        """Train ``steps`` more steps (progress bar on stderr, JSON-lines log)."""
        from tqdm.auto import tqdm

        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0 (got {steps!r}).")
        log = self.log_path.open("a") if self.log_path is not None else None
        bar = tqdm(
            total=steps,
            file=sys.stderr,
            disable=not self.progress,
            desc="train",
            leave=False,
            dynamic_ncols=True,
        )
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            for _ in range(steps):
                out = self.train_step()
                bar.update(1)
                if self.step % self.log_every == 0 or self.step == 1:
                    out["seconds"] = time.perf_counter() - t0
                    self.history.append(out)
                    if log is not None:
                        log.write(json.dumps(out) + "\n")
                    short = {
                        k.split("/")[-1]: f"{v:.4g}"
                        for k, v in out.items()
                        if k.startswith("model/")
                    }
                    bar.set_postfix(short, refresh=False)
        finally:
            torch.set_num_threads(threads)
            bar.close()
            if log is not None:
                log.close()
        self.model.eval()
        return self

    # -- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training (tensors and plain values)."""
        perm = None if self._perm is None else torch.from_numpy(self._perm.copy())
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "schedule": self.schedule.state_dict(),
            "data_perm": perm,
            "data_pos": self._pos,
            "step": self.step,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.generator.set_state(state["generator"])
        self.schedule.load_state_dict(state["schedule"])
        perm = state["data_perm"]
        self._perm = None if perm is None else perm.numpy()
        self._pos, self.step = int(state["data_pos"]), int(state["step"])
        self.history = [dict(h) for h in state["history"]]

    def save(self, directory: str | Path) -> Path:
        """Write ``state.pt`` (state dicts) and ``config.json`` to ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), d / "state.pt")
        config = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.config,
            "trainer": self.options,
            "numpy_rng": self._rng.bit_generator.state,
            "step": self.step,
        }
        (d / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        return d

    def load(self, directory: str | Path) -> Trainer:
        """Restore a checkpoint written by :meth:`save` into this trainer."""
        config, state = _read_checkpoint(directory)
        self.load_state_dict(state)
        self._rng.bit_generator.state = config["numpy_rng"]
        return self

    @classmethod
    def from_checkpoint(
        cls, directory: str | Path, data: Any, **overrides: Any
    ) -> Trainer:
        """Rebuild model and trainer from a checkpoint of a preset, ready to resume."""
        config, _ = _read_checkpoint(directory)
        model = _build_from_config(config["model"])
        opts = dict(config["trainer"])
        opts["dtype"] = getattr(torch, opts["dtype"])
        opts.update(overrides)
        return cls(model, data, **opts).load(directory)


def _read_checkpoint(directory: str | Path) -> tuple[dict, dict]:
    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "state.pt").is_file():
        raise ValueError(
            f"{d} is not an otgen checkpoint (needs config.json and state.pt); pass "
            "a directory written by Trainer.save."
        )
    config = json.loads((d / "config.json").read_text())
    if config.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{d}/config.json has format {config.get('format')!r}, expected "
            f"{CHECKPOINT_FORMAT!r}."
        )
    state = torch.load(d / "state.pt", weights_only=True, map_location="cpu")
    return config, state


def _build_from_config(mconf: Mapping[str, Any]) -> GenerativeModel:
    from otgen.models.presets import build

    if not mconf:
        raise ValueError(
            "this checkpoint holds a hand-built model (empty model config); build "
            "the model yourself and call Trainer(model, data, ...).load(directory)."
        )
    return build(mconf["preset"], mconf["d_x"], **mconf["options"])


def load_model(directory: str | Path) -> GenerativeModel:
    """The trained model of a preset checkpoint, in eval mode.

    Examples
    --------
    >>> import tempfile
    >>> from otgen.models.presets import wae_mmd
    >>> tr = Trainer(wae_mmd(2), torch.randn(64, 2), batch_size=32, progress=False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     m = load_model(tr.save(d))
    >>> m.config["preset"]
    'wae_mmd'
    """
    config, state = _read_checkpoint(directory)
    model = _build_from_config(config["model"])
    dtype = getattr(torch, config["trainer"]["dtype"])
    model.to(dtype)
    model.load_state_dict(state["model"])
    return model.eval()
