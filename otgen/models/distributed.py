r"""Data-parallel training over processes: torch.distributed, DDP, the global batch.

Under ``torchrun --nproc-per-node R`` (or in processes whose default process
group the user initialised) the :class:`~otgen.models.train.Trainer` runs one
replica of the model per process (*rank*) with
:class:`~torch.nn.parallel.DistributedDataParallel`: gloo on the CPU, NCCL on
CUDA (one GPU per process, ``cuda:LOCAL_RANK``). With ``batch_size`` b per
rank a step sees a *global batch* of :math:`B = R b` points.

The objective is the single-process objective of the global batch, not a mean
of per-rank objectives:

- per-sample terms (reconstruction costs, the critics' per-sample logistic or
  Wasserstein terms, the gradient penalty, the VAE's KL) are means over each
  rank's b samples; DDP averages the gradients over the R ranks, which gives
  the gradient of the mean over the B samples (equal b on every rank);
- a latent penalty that couples the samples of a batch (MMD, Sinkhorn
  divergence, exact minibatch OT, sliced Wasserstein: ``couples_samples``
  is True) is the **global-batch estimator** :math:`\widehat D_Z(\tilde
  z_{1..B}, z_{1..B})`. Each rank gathers the codes and prior samples of all
  ranks (:meth:`GlobalBatch.gather`, a differentiable ``all_gather``) and
  computes the same value. Each rank's rows then receive R times
  :math:`\partial \widehat D_Z/\partial \tilde z_i` (the sum of the R
  identical copies' gradients, which the backward pass forms locally, with
  no communication), and DDP's average divides by R again: the penalty counts
  once, as on one process. The mean of R
  per-rank penalties on b samples would be another estimator, the minibatch
  penalty at batch size b: more biased where the minibatch value is biased
  and the bias shrinks with the batch (Sinkhorn, exact and sliced minibatch
  OT, the MMD root, the V-statistic MMD²), and, for the unbiased U-statistic
  MMD² of WAE-MMD, unbiased too but of larger variance (it uses the
  :math:`R\,b(b-1)` pairs within ranks of the :math:`B(B-1)`). It is not
  used.

So R ranks with b samples each give the loss and the gradients of one process
with the B samples, up to rounding (``tests/models/test_distributed_train.py``
checks 1e-6 in float64 for WAE-MMD, WAE-GAN and WAE-Sinkhorn). The model calls
:meth:`GlobalBatch.gather` in one place, before its penalty; it is the identity
on one process, so there is one code path.

Seeds: the data order is one permutation per epoch, the same on every rank
(drawn from the run seed); rank r takes the r-th block of b indices of each
global batch, so R ranks see the same B points as one process with batch B.
Model noise (prior samples, encoder noise) comes from a generator per rank,
seeded by :func:`rank_seed` (rank 0 keeps the run seed, so one process draws
what it always drew); draws that every rank must share (the sliced penalty's
directions) come from :attr:`GlobalBatch.generator`, seeded by
:func:`shared_seed` alike on every rank.
"""

from __future__ import annotations

import atexit
import inspect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "GlobalBatch",
    "RankBlockSampler",
    "agree",
    "all_gather_objects",
    "all_ranks_any",
    "mean_over_ranks",
    "rank_seed",
    "setup_process_group",
    "shared_seed",
    "world",
    "wrap_group",
]

# torchrun sets these for every process it starts.
_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` without one.

    Examples
    --------
    >>> world()  # a plain Python process
    (0, 1)
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup_process_group(device: torch.device) -> tuple[torch.device, int, int]:
    """Join the default process group; the rank's device, its rank and the world size.

    When no process group is initialised and torchrun's environment
    (``RANK``, ``WORLD_SIZE`` > 1, ``MASTER_ADDR``, ``MASTER_PORT``) is set,
    initialise it: NCCL when ``device`` is a CUDA device, gloo otherwise
    (destroyed at exit). A process group the user initialised is used as it
    is. Under a process group of several ranks a CUDA device becomes the local
    rank's GPU, ``cuda:LOCAL_RANK``.

    Raises
    ------
    ValueError
        When torchrun's environment is incomplete, or a process has no GPU of
        its own.
    """
    dist = torch.distributed
    initialised = dist.is_available() and dist.is_initialized()
    if not initialised and _env_world_size() <= 1:
        return device, 0, 1
    if not dist.is_available():
        raise ValueError(
            "WORLD_SIZE > 1 is set but this torch build has no torch.distributed; "
            "run one process, or install a torch build with distributed support."
        )
    local = int(os.environ.get("LOCAL_RANK", "0"))
    size = dist.get_world_size() if initialised else _env_world_size()
    if device.type == "cuda" and size > 1:
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"process with LOCAL_RANK={local} has no GPU of its own (this node "
                f"has {torch.cuda.device_count()}); start at most one process per "
                "GPU (torchrun --nproc-per-node), or train on the CPU."
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not initialised:
        missing = [k for k in _ENV if k not in os.environ]
        if missing:
            raise ValueError(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} "
                "not set; start the processes with torchrun (or otgen train "
                "--nproc), which sets them."
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend}
        known = inspect.signature(torch.distributed.init_process_group).parameters
        if device.type == "cuda" and "device_id" in known:  # torch >= 2.3
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
        atexit.register(_destroy)
    return device, dist.get_rank(), dist.get_world_size()


def _destroy() -> None:
    dist = torch.distributed
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s model-noise generator: ``seed`` itself on rank 0.

    Other ranks take 63 bits of NumPy's ``SeedSequence((seed, 2, rank))``:
    reproducible, and independent streams across ranks.

    Examples
    --------
    >>> rank_seed(7, 0)
    7
    >>> rank_seed(7, 1) != rank_seed(7, 2)
    True
    """
    if rank == 0:
        return int(seed)
    return _derived(seed, 2, rank)


def shared_seed(seed: int) -> int:
    """Seed of the generator every rank shares (:attr:`GlobalBatch.generator`)."""
    return _derived(seed, 3)


def _derived(*key: int) -> int:
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(frozen=True)
class GlobalBatch:
    """The global batch of a data-parallel step, as one rank sees it.

    The one step injected into a model's loss for data-parallel training
    (module docstring): ``PenalisedAutoEncoder.group_loss`` passes its codes
    and prior samples through :meth:`gather_batch` (one :meth:`gather`)
    before a penalty that couples the samples of a batch. On one process both
    are the identity.

    Attributes
    ----------
    rank, world_size : int
        This process and the number of processes.
    generator : torch.Generator or None
        Draws of the penalty itself that must agree on every rank (the sliced
        penalty's directions): seeded by :func:`shared_seed` alike on every
        rank. None on one process: the model's generator is used.
    """

    rank: int = 0
    world_size: int = 1
    generator: torch.Generator | None = None

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """The rows of ``t`` of every rank, in rank order; ``t`` on one process.

        Differentiable, for a *replicated* computation: every rank must pass
        a tensor of the same shape and compute the same function of the
        result (as the penalties do: same inputs, same operations, shared
        random draws). The gradient that reaches this rank's rows is then
        the sum over the ranks of their copies' gradients, R times this
        rank's block of the local gradient, and the backward pass forms it
        locally: no communication (the autograd ``all_gather`` of
        ``torch.distributed.nn.functional`` would compute the same sum with
        an all-to-all).
        """
        if self.world_size == 1:
            return t
        return _ReplicatedGather.apply(t, self.rank, self.world_size)

    def gather_batch(self, enc: Any, z_prior: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The encoding (every tensor field) and prior samples of every rank.

        One :meth:`gather` per dtype, not one per tensor: the distinct tensors
        (``z`` is ``mean`` for deterministic encoders), all with the batch's
        rows, are flattened to (n, -1), concatenated along the columns,
        gathered and split again. ``enc`` is a NamedTuple (an ``Encoding``).
        """
        if self.world_size == 1:
            return enc, z_prior
        fields = [t for t in (*enc, z_prior) if isinstance(t, torch.Tensor)]
        unique = list({id(t): t for t in fields}.values())
        done: dict[int, torch.Tensor] = {}
        for dtype in dict.fromkeys(t.dtype for t in unique):
            group = [t for t in unique if t.dtype == dtype]
            n = group[0].shape[0]
            flat = [t.reshape(n, -1) for t in group]
            parts = self.gather(torch.cat(flat, 1)).split([f.shape[1] for f in flat], 1)
            for t, part in zip(group, parts):
                done[id(t)] = part.reshape(-1, *t.shape[1:])

        def one(t: Any) -> Any:
            return done[id(t)] if isinstance(t, torch.Tensor) else t

        return type(enc)(*(one(t) for t in enc)), done[id(z_prior)]


class _ReplicatedGather(torch.autograd.Function):
    """all_gather of equal blocks; backward: R x this rank's block, locally."""

    @staticmethod
    def forward(ctx, t, rank, world_size):
        ctx.rows, ctx.rank, ctx.world_size = t.shape[0], rank, world_size
        t = t.contiguous()
        parts = [torch.empty_like(t) for _ in range(world_size)]
        torch.distributed.all_gather(parts, t)
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad):
        lo = ctx.rank * ctx.rows
        return ctx.world_size * grad[lo : lo + ctx.rows], None, None


class _GroupObjective(nn.Module):
    """``forward(x, lam, generator)``: the loss of one update group (for DDP)."""

    def __init__(self, model: nn.Module, group: str, batch: GlobalBatch) -> None:
        super().__init__()
        self.model, self.group, self.batch = model, group, batch

    def forward(self, x, lam, generator):
        return self.model.group_loss(
            self.group, x, lam=lam, generator=generator, global_batch=self.batch
        )


def wrap_group(
    model: nn.Module,
    group: str,
    params: Sequence[nn.Parameter],
    batch: GlobalBatch,
    device: torch.device,
) -> nn.Module:
    """DDP over the loss of update group ``group``, syncing ``params`` only.

    One DDP per update group: each synchronises (averages) the gradients of
    its own group's parameters, and ignores the others (the critic's
    parameters take part in the model's loss but are not updated there).
    Called as ``wrapped(x, lam, generator)``, it returns
    ``model.group_loss(group, x, lam=lam, generator=generator,
    global_batch=batch)``.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    wrapper = _GroupObjective(model, group, batch)
    own = {id(p) for p in params}
    ignore = [n for n, p in wrapper.named_parameters() if id(p) not in own]
    DDP._set_params_and_buffers_to_ignore_for_model(wrapper, ignore)
    ids = [device.index] if device.type == "cuda" else None
    # Buffers are constants (e.g. a fixed decoder variance), synced once at
    # the start: no broadcast before every forward pass. torch >= 2.13 names
    # the option forward_sync_buffers.
    known = inspect.signature(DDP).parameters
    sync = "forward_sync_buffers" if "forward_sync_buffers" in known else None
    return DDP(wrapper, device_ids=ids, **{sync or "broadcast_buffers": False})


def mean_over_ranks(values: torch.Tensor, world_size: int) -> torch.Tensor:
    """The mean over the ranks of ``values`` (a 1-D tensor); itself on one process."""
    if world_size == 1:
        return values
    out = values.detach().clone()
    torch.distributed.all_reduce(out)
    return out / world_size


def all_ranks_any(flag: bool, world_size: int, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on some rank (one all-reduce)."""
    if world_size == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def agree(message: str | None, world_size: int) -> str | None:
    """Rank 0's ``message`` on every rank (an error to raise alike everywhere)."""
    if world_size == 1:
        return message
    box = [message]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(obj: Any, world_size: int) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` on one process)."""
    if world_size == 1:
        return [obj]
    out: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(out, obj)
    return out


class RankBlockSampler(torch.utils.data.Sampler):
    """Indices of one rank's block of each global batch of a shuffled epoch.

    Each epoch draws one permutation of the ``n`` indices from ``generator``
    (seeded alike on every rank), cuts it into global batches of
    ``batch_size * world_size`` (the last, incomplete one is dropped) and
    yields the ``rank``-th block of ``batch_size`` indices of each.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        rank: int,
        world_size: int,
        generator: torch.Generator,
    ) -> None:
        self.n, self.batch_size = n, batch_size
        self.rank, self.world_size, self.generator = rank, world_size, generator

    def __iter__(self) -> Iterator[int]:
        perm = torch.randperm(self.n, generator=self.generator)
        step = self.batch_size * self.world_size
        lo = self.rank * self.batch_size
        for start in range(0, self.n - step + 1, step):
            yield from perm[start + lo : start + lo + self.batch_size].tolist()

    def __len__(self) -> int:
        return (self.n // (self.batch_size * self.world_size)) * self.batch_size
