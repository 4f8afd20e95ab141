r"""One trainer for every model: update groups, lambda schedules, checkpoints.

Per step, with alternating updates (default) each update group of the model
(e.g. ``"critic"`` then ``"model"``, docs/paper.md Algorithm 1) takes its
``n_updates`` Adam steps, each on a fresh batch; with simultaneous updates all
groups compute their gradients at the same parameters on one batch, then step.

Every random choice is seeded: data order (a NumPy generator), model noise
(prior samples, reparametrisation, critic interpolates: one torch generator,
one per rank in data-parallel training, :mod:`otgen.models.distributed`),
weight initialisation (the preset's ``seed``). Checkpoints hold state dicts
(model, optimisers, generators, schedule, data position, step, history) saved
with :func:`torch.save` and read back with ``torch.load(weights_only=True)``,
plus a JSON config; nothing is unpickled, and :meth:`Trainer.load` continues
bit-for-bit.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from otgen.models.base import GenerativeModel, check_int
from otgen.models.data import batches
from otgen.models.datasets import as_points
from otgen.models.devices import autocast, default_threads, resolve_device
from otgen.models.distributed import (
    GlobalBatch,
    RankBlockSampler,
    agree,
    all_gather_objects,
    all_ranks_any,
    mean_over_ranks,
    rank_seed,
    setup_process_group,
    shared_seed,
    wrap_group,
)
from otgen.models.report import atomic_write, atomic_write_text

__all__ = ["LambdaSchedule", "Trainer", "TrainingError", "load_model"]

CHECKPOINT_FORMAT = "otgen-checkpoint-1"
# Trainer options that may differ between a checkpoint and the trainer that
# loads it without an explicit override: they do not change the computation.
_COSMETIC = frozenset({"log_every", "device"})
# log(lambda) of the adaptive schedule stays within +-_LOG_LAM_MAX (e^690 is
# about 1e299): exp() never overflows, a runaway lambda ends as a non-finite
# loss term, which stops training with its step and name.
_LOG_LAM_MAX = 690.0


class TrainingError(RuntimeError):
    """Training stopped: a loss term, or a value inside the model, became NaN or inf.

    The message names the step, the update group and the term (or the module
    whose output stopped being finite).
    """


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
        value = _real(value, "lam")
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(
                f"lam must be a finite number >= 0 (got {value!r}); pass e.g. 10."
            )
        warmup_steps = check_int(warmup_steps, name="warmup_steps", minimum=0)
        if kind == "warmup" and warmup_steps < 1:
            raise ValueError(
                f"warmup_steps must be >= 1 for schedule='warmup' (got {warmup_steps})."
            )
        if target is not None:
            target = _real(target, "lam_target")
        if kind == "adaptive" and not (
            target is not None and 0 < target < math.inf and value > 0
        ):
            raise ValueError(
                "schedule='adaptive' needs target > 0 (the finite penalty level to "
                f"reach) and an initial lam > 0 (got target={target!r}, lam={value!r})."
            )
        rate = _real(rate, "lam_rate")
        if not 0 < rate <= 1:
            raise ValueError(
                f"lam_rate must be in (0, 1] (got {rate!r}): log(lambda) moves by at "
                "most lam_rate per step, so 1 already multiplies lambda by e each "
                "step; pass e.g. lam_rate=0.01."
            )
        self.kind, self.value = kind, value
        self.warmup_steps, self.target, self.rate = warmup_steps, target, rate
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
        self.log_lam = max(
            -_LOG_LAM_MAX, min(_LOG_LAM_MAX, self.log_lam + self.rate * err)
        )

    def state_dict(self) -> dict:
        """Mutable state."""
        return {"log_lam": self.log_lam, "avg": self.avg}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`."""
        self.log_lam, self.avg = float(state["log_lam"]), state["avg"]


def _real(value: Any, name: str) -> float:
    """``value`` as a float (any real number type), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a real number (got {value!r}).")
    if isinstance(value, np.complexfloating):
        raise ValueError(f"{name} must be a real number (got {value!r}).")
    return float(value)


def _first_nonfinite(model: torch.nn.Module, run: Callable[[], Any]) -> str | None:
    """Name of the first parameter, or module output, of ``model`` that is not finite.

    Parameters are checked first; then ``run()`` is called with forward hooks
    on every submodule, recording the first (in call order) whose output
    holds NaN or inf. Exceptions from ``run`` are swallowed.
    """
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p.detach()).all()):
            return f"parameter {name!r}"
    found: list[str] = []

    def leaves(out: Any) -> list[torch.Tensor]:
        if isinstance(out, torch.Tensor):
            return [out]
        if isinstance(out, (tuple, list)):
            return [t for o in out for t in leaves(o)]
        return []

    def hook(name: str):
        def check(_module, _inputs, out):
            if not found and any(
                t.is_floating_point() and not bool(torch.isfinite(t.detach()).all())
                for t in leaves(out)
            ):
                found.append(f"the output of module {name!r}")

        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            run()
    except Exception:  # noqa: BLE001 (a diagnosis of a failure that already happened)
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


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
    data : Tensor, array, Dataset or DataLoader
        Training data of shape (N, d), (N, H, W) or (N, C, H, W)
        (:mod:`otgen.models.datasets`), reshaped to the model's point shape
        when the sizes agree (a ValueError names the expected shape
        otherwise). A ``torch.utils.data.Dataset`` is read by a DataLoader
        shuffled from ``seed`` (a resumed checkpoint restarts that order, so
        resuming is exact for tensor data only); a DataLoader is cycled in its own order
        (bit-for-bit resume then needs a seeded loader). Items may be
        tensors or ``(x, label)`` pairs. On several ranks every rank passes
        the same tensor or Dataset and takes its block of each global batch;
        a DataLoader is used as given (give each rank its own shard, with
        equal batch sizes).
    batch_size : int, default=256
        Batch size for tensor data and Datasets; per rank on several ranks
        (global batch ``batch_size * world_size``).
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
    tensorboard : str or Path, optional
        A TensorBoard log directory receiving the same terms as scalars
        (needs ``pip install tensorboard``, or the ``tensorboard`` extra).
    progress : bool, default=True
        Show a tqdm progress bar on standard error.
    num_threads : int or "auto", default="auto"
        Torch CPU threads during :meth:`fit` (restored afterwards). ``"auto"``:
        one thread for models under a million parameters, else the cores left
        idle by the load average (:func:`otgen.models.devices.default_threads`);
        small models on a loaded CPU train 30-70 times faster on one thread
        than on all. None keeps torch's setting.
    device : str or torch.device, optional
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (a GPU when available); the model
        and tensor data are moved there. None keeps the model's device.
    amp : bool, default=False
        bfloat16 automatic mixed precision for the networks (CUDA only); the
        losses and latent penalties stay in float32.

    Notes
    -----
    **Data-parallel training.** Under ``torchrun --nproc-per-node R`` (or
    ``otgen train --nproc R``), or with a default process group initialised
    beforehand, the trainer joins the group (initialising it from torchrun's
    environment: gloo on the CPU, NCCL on CUDA with ``cuda:LOCAL_RANK``) and
    wraps each update group's loss in DistributedDataParallel. The step is the
    single-process step of the global batch of ``R * batch_size`` points:
    per-sample terms are averaged by DDP, latent penalties that couple samples
    are computed on the gathered global batch (the global-batch estimator, not
    the mean of per-rank penalties; :mod:`otgen.models.distributed`). The
    logged terms are means over the ranks; rank 0 alone writes the log and the
    checkpoints, which hold every rank's generator, and every rank resumes
    from them (``world_size`` is then part of the configuration).

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
        tensorboard: str | Path | None = None,
        log_every: int = 10,
        progress: bool = True,
        num_threads: int | str | None = "auto",
        device: str | torch.device | None = None,
        amp: bool = False,
    ) -> None:
        if update not in ("alternating", "simultaneous"):
            raise ValueError(
                f"update must be 'alternating' or 'simultaneous' (got {update!r})."
            )
        batch_size = check_int(
            batch_size, name="batch_size", minimum=2, fix="; pass e.g. 128"
        )
        seed = check_int(seed, name="seed", minimum=0, fix="; pass e.g. 0")
        log_every = check_int(log_every, name="log_every", minimum=1)
        if num_threads == "auto":
            num_threads = default_threads(model)
        elif num_threads is not None:
            num_threads = check_int(
                num_threads, name="num_threads", minimum=1, fix="; or pass 'auto'"
            )
        where = resolve_device(device) if device is not None else model.device
        where, rank, world = setup_process_group(where)
        if device is not None or where != model.device:
            model.to(where)
        if not isinstance(amp, bool):
            raise ValueError(f"amp must be True or False (got {amp!r}).")
        if amp and model.device.type != "cuda":
            raise ValueError(
                f"amp=True needs a CUDA device (the model is on {model.device}); "
                "pass device='cuda', or amp=False on the CPU."
            )
        if n_critic is not None:
            n_critic = check_int(n_critic, name="n_critic", minimum=1)
        if isinstance(dtype, str):
            names = {"float32": torch.float32, "float64": torch.float64}
            if dtype not in names:
                raise ValueError(
                    f"dtype must be 'float32' or 'float64' (got {dtype!r})."
                )
            dtype = names[dtype]
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"dtype must be 'float32' or 'float64' (got {dtype}): in half "
                "precision the losses and OT penalties overflow; pass "
                "dtype='float32'."
            )
        if dtype is not None:
            model.to(dtype)
        if model.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"the model's parameters must be float32 or float64 (got "
                f"{model.dtype}); pass dtype='float32' or call model.float()."
            )
        self.model, self.seed, self.update = model, seed, update
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world
        if world > 1:
            _check_data_parallel(model)
        self.dtype = model.dtype
        self.device = model.device
        self.amp = amp
        if isinstance(data, (torch.Tensor, np.ndarray)):
            self.data = self._fit_shape(as_points(data).to(self.dtype))
            self.data = self.data.to(self.device)
            if self.data.shape[0] < batch_size * world:
                raise ValueError(
                    f"batch_size must be at most the number of points{_per(world)} "
                    f"(got batch_size={batch_size} for {self.data.shape[0]} points)."
                )
            self._stream = None
        elif _is_dataset(data):
            if len(data) < batch_size * world:
                raise ValueError(
                    f"batch_size must be at most the number of points{_per(world)} "
                    f"(got batch_size={batch_size} for a Dataset of {len(data)})."
                )
            order = torch.Generator().manual_seed(seed)
            split = {"shuffle": True, "generator": order}
            if world > 1:  # this rank's block of each global batch
                sampler = RankBlockSampler(len(data), batch_size, rank, world, order)
                split = {"sampler": sampler}
            loader = torch.utils.data.DataLoader(
                data,
                batch_size=batch_size,
                drop_last=True,
                pin_memory=self.device.type == "cuda",
                **split,
            )
            self.data, self._stream = None, batches(loader)
        else:
            self.data, self._stream = None, batches(data)
        self.groups = model.update_groups()
        optim = dict(optim or {})
        for g in self.groups:
            if g.name == "critic" and n_critic is not None:
                g.n_updates = n_critic
            over = dict(optim.pop(g.name, {}))
            g.lr = _learning_rate(over.pop("lr", g.lr), g.name)
            g.betas = _betas(over.pop("betas", g.betas), g.name)
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
        base = model.lam if lam is None else _real(lam, "lam")
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
            "warmup_steps": self.schedule.warmup_steps,
            "lam_target": self.schedule.target,
            "lam_rate": self.schedule.rate,
            "dtype": str(self.dtype).replace("torch.", ""),
            "log_every": log_every,
            "device": str(self.device),
        }
        if amp:
            self.options["amp"] = True
        if world > 1:
            self.options["world_size"] = world
        self.generator = torch.Generator(device=self.device).manual_seed(
            rank_seed(self.seed, rank)
        )
        shared = None
        if world > 1:
            shared = torch.Generator(device=self.device)
            shared.manual_seed(shared_seed(self.seed))
        self.global_batch = GlobalBatch(rank, world, shared)
        self._objectives = {g.name: self._objective(g) for g in self.groups}
        self._rng = np.random.default_rng((self.seed, 1))
        self._perm: np.ndarray | None = None
        self._pos = 0
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.log_path = Path(log_path) if log_path is not None else None
        self.tensorboard = Path(tensorboard) if tensorboard is not None else None
        if self.tensorboard is not None:
            _summary_writer_class()  # a missing package is an error now
        self.log_every, self.progress = log_every, progress
        self.num_threads = num_threads

    def _fit_shape(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as (n, *model.x_shape), or a ValueError naming both shapes."""
        shape = self.model.x_shape
        if shape is None:
            return x
        d = math.prod(x.shape[1:])
        if d != math.prod(shape):
            want = ", ".join(map(str, shape))
            raise ValueError(
                f"data has points of dimension {d} (shape {tuple(x.shape)}) but the "
                f"model was built for d_x={self.model.config['d_x']}, expecting data "
                f"of shape (N, {want}); build the model for this data (e.g. "
                f"build(preset, {tuple(x.shape[1:]) if x.ndim > 2 else d}, ...)) "
                f"or pass data of shape (N, {want})."
            )
        return x.reshape(x.shape[0], *shape)

    def _objective(self, group) -> Callable[..., Any]:
        """``f(x, lam, generator)``: the loss of ``group``; DDP over it on R ranks."""
        if self.world_size == 1:
            model, name = self.model, group.name
            return lambda x, lam, gen: model.group_loss(name, x, lam=lam, generator=gen)
        return wrap_group(
            self.model, group.name, group.params, self.global_batch, self.device
        )

    # -- data -------------------------------------------------------------------
    def _next_batch(self) -> torch.Tensor:
        """The next batch: on R ranks, this rank's block of the global batch."""
        if self._stream is not None:
            x = self._fit_shape(next(self._stream))
            return x.to(self.device, self.dtype, non_blocking=True)
        n, b = self.data.shape[0], self.batch_size
        if self._perm is None or self._pos + b * self.world_size > n:
            self._perm, self._pos = self._rng.permutation(n), 0
        lo = self._pos + self.rank * b
        idx = self._perm[lo : lo + b]
        self._pos += b * self.world_size
        return self.data[torch.from_numpy(idx).to(self.device)]

    # -- one step -----------------------------------------------------------------
    def _loss(self, group: str, x: torch.Tensor, lam: float):
        """The loss of ``group`` on ``x`` and its finite terms, or TrainingError."""
        try:
            with autocast(self.device, self.amp):
                loss, terms = self._objectives[group](x, lam, self.generator)
        except (ValueError, RuntimeError) as err:
            # A piece of the model (e.g. a penalty checking its input) refused
            # non-finite values: name where they first appeared, not the input.
            g = torch.Generator(device=self.device).manual_seed(0)
            where = _first_nonfinite(
                self.model,
                lambda: self.model.group_loss(group, x, lam=lam, generator=g),
            )
            if where is None:
                raise
            raise TrainingError(
                f"training stopped at step {self.step}: the loss of update group "
                f"{group!r} could not be computed because {where} is not finite "
                "(NaN or inf): the run diverged; lower the learning rate or lambda, "
                "check the data for extreme values, or train in float64."
            ) from err
        if self.world_size > 1:  # the terms of the global batch: rank means
            vals = torch.stack([t.detach().to(torch.float64) for t in terms.values()])
            terms = dict(zip(terms, mean_over_ranks(vals, self.world_size)))
        return loss, _finite_or_raise(terms, self.step, group)

    def _update(self, group, lam: float) -> dict[str, float]:
        x = self._next_batch()
        loss, vals = self._loss(group.name, x, lam)
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
            for g in self.groups:  # no step before every group has its gradient
                loss, vals = self._loss(g.name, x, lam)
                self.optimizers[g.name].zero_grad(set_to_none=True)
                loss.backward(inputs=g.params)
                out.update({f"{g.name}/{k}": v for k, v in vals.items()})
            for g in self.groups:
                self.optimizers[g.name].step()
                self.optimizers[g.name].zero_grad(set_to_none=True)
        if "model/penalty" in out:
            self.schedule.observe(out["model/penalty"])
        self.step += 1
        return out

    def fit(
        self, steps: int, *, callback: Callable[[Trainer], Any] | None = None
    ) -> Trainer:
        """Train ``steps`` more steps (progress bar on stderr, JSON-lines log).

        Parameters
        ----------
        steps : int
            Number of steps, >= 0.
        callback : callable, optional
            ``callback(trainer)`` after every step (and its log line); a true
            return value stops training there, between two steps, so that the
            trainer can be saved and resumed bit-for-bit. ``otgen train`` uses
            it for periodic checkpoints and to stop cleanly on Ctrl-C. On
            several ranks it runs on every rank, and training stops on every
            rank when it returns true on one (one all-reduce per step).

        On several ranks only rank 0 writes the log, the TensorBoard scalars
        and the progress bar; every rank keeps the same ``history`` (the
        logged terms are means over the ranks).

        Raises
        ------
        TrainingError
            When a loss term, or a value inside the model, becomes NaN or inf;
            the message names the step, the update group and the term.
        """
        from tqdm.auto import tqdm

        steps = check_int(steps, name="steps", minimum=0)
        writer = self.rank == 0
        log = None
        if self.log_path is not None and writer:
            log = self.log_path.open("a")
        board = None
        if self.tensorboard is not None and writer:
            board = _summary_writer_class()(log_dir=str(self.tensorboard))
        bar = tqdm(
            total=steps,
            file=sys.stderr,
            disable=not (self.progress and writer),
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
                        log.flush()
                    if board is not None:
                        for k, v in out.items():
                            if k != "step":
                                board.add_scalar(k, v, self.step)
                    short = {
                        k.split("/")[-1]: f"{v:.4g}"
                        for k, v in out.items()
                        if k.startswith("model/")
                    }
                    bar.set_postfix(short, refresh=False)
                if callback is not None and all_ranks_any(
                    bool(callback(self)), self.world_size, self.device
                ):
                    break
        finally:
            torch.set_num_threads(threads)
            bar.close()
            if log is not None:
                log.close()
            if board is not None:
                board.close()
        self.model.eval()
        return self

    # -- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training (tensors and plain values).

        On several ranks, this rank's state (its own ``generator``) and the
        ranks' shared generator; :meth:`save` adds every rank's generator.
        """
        perm = None if self._perm is None else torch.from_numpy(self._perm.copy())
        shared = {}
        if self.global_batch.generator is not None:
            shared["shared_generator"] = self.global_batch.generator.get_state()
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "schedule": self.schedule.state_dict(),
            "data_perm": perm,
            "data_pos": self._pos,
            "step": self.step,
            "history": self.history,
            **shared,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises ValueError when the state does not fit this model or trainer
        (other parameter names or shapes, other update groups). Each rank
        takes its own generator from ``rank_generators`` when the state has
        one for it (a rank that the saved run did not have keeps its seed).
        """
        try:
            self.model.load_state_dict(state["model"])
            for k, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            ranks = state.get("rank_generators") or [state["generator"]]
            if self.rank < len(ranks):
                self.generator.set_state(ranks[self.rank])
            shared = self.global_batch.generator
            if shared is not None and "shared_generator" in state:
                shared.set_state(state["shared_generator"])
            self.schedule.load_state_dict(state["schedule"])
            perm = state["data_perm"]
            self._perm = None if perm is None else perm.numpy()
            self._pos, self.step = int(state["data_pos"]), int(state["step"])
            self.history = [dict(h) for h in state["history"]]
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            msg = " ".join(str(err).split()) or type(err).__name__
            raise ValueError(
                f"the checkpoint's state does not fit this trainer ({msg}); build "
                "the model and Trainer as for the checkpoint (Trainer.from_checkpoint "
                "does it for presets)."
            ) from err

    def save(self, directory: str | Path) -> Path:
        """Write ``state.pt`` (state dicts) and ``config.json`` to ``directory``.

        Each file is written atomically (a temporary file, then a rename), the
        state first: an interrupted save leaves the previous checkpoint, or a
        step mismatch that :meth:`load` reports, never a truncated file.

        On several ranks every rank calls it: the ranks' generator states are
        gathered, rank 0 writes, and the call returns on every rank once the
        files are written (or raises on every rank when rank 0 could not
        write them). Every rank then resumes with :meth:`load` from the same
        directory (on several nodes it must be visible to all of them).
        """
        d = Path(directory)
        state = self.state_dict()
        if self.world_size > 1:
            own = self.generator.get_state()
            state["rank_generators"] = all_gather_objects(own, self.world_size)
        failure: Exception | None = None
        if self.rank == 0:
            try:
                self._write(d, state)
            except (OSError, ValueError) as err:
                if self.world_size == 1:
                    raise
                failure = err
        message = agree(
            None if failure is None else " ".join(str(failure).split()),
            self.world_size,
        )
        if failure is not None:
            raise failure
        if message is not None:
            raise ValueError(f"rank 0 could not save the checkpoint: {message}")
        return d

    def _write(self, d: Path, state: dict[str, Any]) -> None:
        if d.exists() and not d.is_dir():
            raise ValueError(
                f"cannot save a checkpoint to {d}: a file is in the way; move it "
                "or pass another directory."
            )
        d.mkdir(parents=True, exist_ok=True)
        config = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.config,
            "trainer": self.options,
            "numpy_rng": self._rng.bit_generator.state,
            "step": self.step,
        }
        text = json.dumps(config, indent=1) + "\n"
        atomic_write(d / "state.pt", lambda tmp: torch.save(state, tmp))
        atomic_write_text(d / "config.json", text)

    def load(self, directory: str | Path, *, override: Iterable[str] = ()) -> Trainer:
        """Restore a checkpoint written by :meth:`save` into this trainer.

        The checkpoint's configuration (the preset and its options, and the
        trainer options except ``log_every``) must equal this trainer's: a
        ValueError names every field that differs.

        Parameters
        ----------
        directory : str or Path
            A directory written by :meth:`save`.
        override : iterable of str, optional
            Fields allowed to differ; this trainer's values are kept. A field
            is named as in the error: ``"lam"`` (the model option and the
            trainer option of that name) or qualified, ``"model.lam"``,
            ``"trainer.lam"``.

        Examples
        --------
        >>> import tempfile
        >>> from otgen.models.presets import wae_mmd
        >>> x = torch.randn(64, 2)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = Trainer(wae_mmd(2), x, batch_size=32, progress=False).save(d)
        ...     new = Trainer(wae_mmd(2), x, batch_size=32, lam=1.0, progress=False)
        ...     new.load(d, override=["lam"]).schedule(0)
        1.0
        """
        config, state = _read_checkpoint(directory)
        diffs = _differences(config, self.model.config, self.options)
        override = [override] if isinstance(override, str) else list(override)
        known = {q for q, _, _, _ in _fields(config, self.model.config, self.options)}
        known |= {q.split(".", 1)[1] for q in known}
        unknown = sorted(set(override) - known)
        if unknown:
            raise ValueError(
                f"override names unknown field(s) {', '.join(map(repr, unknown))}; "
                f"the configuration fields are {', '.join(sorted(known))}."
            )
        left = [
            (q, a, b)
            for q, leaf, a, b in diffs
            if q not in override and leaf not in override
        ]
        if [q for q, _, _ in left] == ["trainer.world_size"]:
            saved = config["trainer"].get("world_size", 1)
            raise ValueError(
                f"checkpoint {directory} was written by {saved} process(es) and "
                f"this trainer runs on {self.world_size}: resume it with "
                f"{saved} (torchrun --nproc-per-node {saved}, or otgen train "
                f"--nproc {saved}), or pass override=('world_size',) to go on with "
                f"{self.world_size} (another global batch: not a continuation)."
            )
        if left:
            names = sorted({q.split(".", 1)[1] for q, _, _ in left})
            listed = "; ".join(
                f"{q}: {a!r} in the checkpoint, {b!r} here" for q, a, b in left
            )
            raise ValueError(
                f"checkpoint {directory} was written with another configuration "
                f"({listed}); build the model and Trainer with the checkpoint's "
                "values (Trainer.from_checkpoint does it for presets), or pass "
                f"override={tuple(names)!r} to keep this trainer's values."
            )
        self.load_state_dict(state)
        self._rng.bit_generator.state = config["numpy_rng"]
        return self

    @classmethod
    def from_checkpoint(
        cls, directory: str | Path, data: Any, **overrides: Any
    ) -> Trainer:
        """Rebuild model and trainer from a checkpoint of a preset, ready to resume.

        ``overrides`` are Trainer options; those that change the checkpoint's
        configuration (e.g. ``lam=5.0``) are explicit overrides of
        :meth:`load`.
        """
        config, _ = _read_checkpoint(directory)
        model = _build_from_config(config["model"])
        opts = dict(config["trainer"])
        opts.pop("world_size", None)  # set by the processes, not an option
        opts["dtype"] = getattr(torch, opts["dtype"])
        opts.update(overrides)
        changed = [k for k in overrides if k in config["trainer"]]
        return cls(model, data, **opts).load(directory, override=changed)


_MISSING = "(not set)"
# Preset options added after checkpoints were first written, with the value
# that those checkpoints' models had.
_ADDED_OPTIONS = {"nets": "auto", "conv_width": 32}


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _fields(saved: Mapping, model_config: Mapping | None, options: Mapping):
    """(qualified name, leaf, checkpoint value, current value) of every field."""
    sm, cm = saved.get("model") or {}, model_config or {}
    out = [(f"model.{k}", k, sm.get(k), cm.get(k)) for k in ("preset", "d_x")]
    so, co = sm.get("options") or {}, cm.get("options") or {}
    if sm.get("preset"):  # a preset checkpoint written before these options
        so = {**_ADDED_OPTIONS, **so}
    if sm.get("preset") != cm.get("preset"):  # other presets: options not comparable
        so, co = {}, {}
    out += [
        (f"model.{k}", k, so.get(k, _MISSING), co.get(k, _MISSING))
        for k in sorted(set(so) | set(co))
    ]
    st = saved.get("trainer") or {}
    out += [
        (f"trainer.{k}", k, st.get(k, _MISSING), options.get(k, _MISSING))
        for k in sorted((set(st) | set(options)) - _COSMETIC)
    ]
    return out


def _differences(saved: Mapping, model_config: Mapping | None, options: Mapping):
    return [
        (q, leaf, a, b)
        for q, leaf, a, b in _fields(saved, model_config, options)
        if _json(a) != _json(b)
    ]


def _learning_rate(value: Any, group: str) -> float:
    lr = _real(value, f"optim[{group!r}]['lr']")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(
            f"optim[{group!r}]['lr'] must be a finite number > 0 (got {value!r}); "
            "pass e.g. 1e-3."
        )
    return lr


def _betas(value: Any, group: str) -> tuple[float, float]:
    name = f"optim[{group!r}]['betas']"
    try:
        b = tuple(_real(v, name) for v in value)
    except TypeError:
        b = ()
    if len(b) != 2 or not all(0 <= v < 1 for v in b):
        raise ValueError(
            f"{name} must be two numbers in [0, 1) (got {value!r}); pass e.g. "
            "(0.5, 0.999)."
        )
    return b


def _read_checkpoint(directory: str | Path) -> tuple[dict, dict]:
    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "state.pt").is_file():
        raise ValueError(
            f"{d} is not an otgen checkpoint (needs config.json and state.pt); pass "
            "a directory written by Trainer.save."
        )
    damaged = "the checkpoint is damaged; use another checkpoint or train again"
    try:
        config = json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as err:  # JSON and Unicode errors are ValueErrors
        raise ValueError(
            f"{d / 'config.json'} cannot be read ({type(err).__name__}: "
            f"{' '.join(str(err).split())}); {damaged}."
        ) from err
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        got = config.get("format") if isinstance(config, dict) else config
        raise ValueError(
            f"{d}/config.json has format {got!r}, expected {CHECKPOINT_FORMAT!r}."
        )
    path = d / "state.pt"
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); {damaged}.")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (EOFError, RuntimeError, OSError, ValueError, pickle.UnpicklingError) as err:
        msg = " ".join(str(err).split())[:200] or "no message"
        raise ValueError(
            f"{path} cannot be read ({type(err).__name__}: {msg}); {damaged}."
        ) from err
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{path} does not hold a trainer state; {damaged}.")
    if int(state["step"]) != config.get("step"):
        raise ValueError(
            f"checkpoint {d} is inconsistent: state.pt is at step {int(state['step'])}"
            f" but config.json at step {config.get('step')} (a save was interrupted); "
            "use another checkpoint or train again."
        )
    return config, state


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ValueError(
            "tensorboard logging needs the tensorboard package; pip install "
            "tensorboard (or otgen[tensorboard]), or pass tensorboard=None."
        ) from err
    return SummaryWriter


def _per(world: int) -> str:
    return "" if world == 1 else f" divided by the {world} ranks"


def _check_data_parallel(model: GenerativeModel) -> None:
    """A ValueError unless ``model.group_loss`` takes ``global_batch``."""
    import inspect

    params = inspect.signature(model.group_loss).parameters
    if "global_batch" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    ):
        return
    raise ValueError(
        f"{type(model).__name__}.group_loss takes no global_batch argument, so "
        "its penalties would be per-rank estimates in data-parallel training; "
        "add global_batch=None to it and gather what couples the samples of a "
        "batch (GenerativeModel.group_loss), or train in one process."
    )


def _is_dataset(data: Any) -> bool:
    """A map-style torch Dataset (not a DataLoader or another iterable)."""
    return isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__")


def _build_from_config(mconf: Mapping[str, Any]) -> GenerativeModel:
    from otgen.models.presets import build

    if not mconf or "preset" not in mconf:
        raise ValueError(
            "this checkpoint holds a hand-built model (no preset in its config); "
            "build the model again and pass it: otgen.models.load(directory, "
            "model=model), or Trainer(model, data, ...).load(directory)."
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
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        msg = " ".join(str(err).split())[:300]
        raise ValueError(
            f"checkpoint {directory}: its state does not fit the model its "
            f"config.json describes ({msg}); the checkpoint is damaged."
        ) from err
    return model.eval()
