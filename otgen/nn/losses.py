r"""``torch.nn.Module`` losses over the distances of :mod:`otgen.ot`.

Each module holds the keyword options of its function and calls it in
``forward(x, y, a=None, b=None)``:

- :class:`SinkhornLoss`: :func:`otgen.ot.sinkhorn_divergence`,
  :math:`S_\varepsilon`;
- :class:`MMDLoss`: :func:`otgen.ot.mmd`, MMD² (or MMD);
- :class:`WassersteinLoss`: :func:`otgen.ot.wasserstein` (exact), :math:`W_p`;
- :class:`SlicedWassersteinLoss`: :func:`otgen.ot.sliced_wasserstein`,
  :math:`SW_p`.

Points of shape (n, d) and (m, d) give a 0-d tensor; (B, n, d) and
(B, m, d) give B values (the pairs in turn, :mod:`otgen.ot._batch`).
Gradients are those of the functions (envelope theorem for the OT losses,
no unrolled iterations).

**Mixed precision.** Inside ``torch.autocast`` the loss runs with autocast
off, on float16/bfloat16 input cast to float32: every reduction (soft-mins,
kernel sums, sorts) is in float32 at least, and the loss is returned in
float32 (its gradient reaches the inputs in their own dtype).

**torch.compile.** The solvers run NumPy and data-dependent loops, so the
solve is marked ``torch.compiler.disable``: under ``torch.compile`` it is a
graph break that runs eagerly (nothing is traced or recompiled), the
model's own layers are compiled around it, and the loss's value and
gradients are those of eager mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otgen.ot._batch import is_batched, over_batch
from otgen.ot.divergence import sinkhorn_divergence
from otgen.ot.exact import wasserstein
from otgen.ot.mmd import mmd
from otgen.ot.sliced import _check_seed, max_sliced_wasserstein, sliced_wasserstein

__all__ = ["SinkhornLoss", "MMDLoss", "WassersteinLoss", "SlicedWassersteinLoss"]

_LOW = (torch.float16, torch.bfloat16)


def _tensor(v: Any) -> Any:
    if v is None or isinstance(v, torch.Tensor):
        return v if v is None or v.dtype not in _LOW else v.to(torch.float32)
    return torch.as_tensor(np.asarray(v))


@torch.compiler.disable
def _run(loss: _SampleLoss, x, y, a, b) -> torch.Tensor:
    """The solve, run eagerly: under ``torch.compile`` a graph break, not a trace.

    The solvers' NumPy calls, data-dependent loops and float conversions are
    not traceable (dynamo would recompile per eps and fail in SciPy's BLAS
    lookup); the compiled graph around the loss is unaffected, and autograd
    flows through the eager region.
    """
    x, y, a, b = (_tensor(t) for t in (x, y, a, b))
    with torch.autocast(device_type=x.device.type, enabled=False):
        if is_batched(x, y):
            return over_batch(loss._one, x, y, a, b)
        return loss._one(x, y, a=a, b=b)


class _SampleLoss(torch.nn.Module):
    """Batch axis, autocast and dtype handling shared by the losses."""

    def _one(self, x, y, a=None, b=None) -> torch.Tensor:
        raise NotImplementedError

    def _options(self) -> dict:
        raise NotImplementedError

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        a: torch.Tensor | None = None,
        b: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss between samples ``x`` and ``y`` (weights ``a``, ``b``).

        Shapes (n, d) and (m, d) give a 0-d tensor, (B, n, d) and (B, m, d)
        a tensor of B values; ``a``, ``b`` are (n,), (B, n) or None.
        """
        return _run(self, x, y, a, b)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options().items())


class SinkhornLoss(_SampleLoss):
    r"""The debiased Sinkhorn divergence as a loss (GeomLoss's ``SamplesLoss``).

    .. math::
        S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
        - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha)
        - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta)
        (+ \tfrac{\varepsilon}{2}(m(\alpha) - m(\beta))^2 \text{ unbalanced})

    :cite:`feydy2019interpolating`. The keyword options are those of
    :func:`otgen.ot.sinkhorn_divergence` (``eps``, ``cost``, ``p``, ``q``,
    ``reach``, ``scaling``, ``tol``, ``rtol``, ``max_iter``, ``backend``); ``reach``
    gives the unbalanced divergence. GeomLoss's ``SamplesLoss("sinkhorn",
    p=2, blur=s)`` is half of ``SinkhornLoss(eps=2 * s**2)`` (GeomLoss's cost
    is :math:`\|x - y\|^2 / 2`).

    Examples
    --------
    >>> import torch
    >>> loss = SinkhornLoss(eps=0.01)
    >>> x = torch.zeros(4, 2, requires_grad=True)
    >>> v = loss(x, torch.ones(5, 2))  # W_2^2 = 2
    >>> round(float(v.detach()), 3)
    2.0
    """

    def __init__(
        self,
        *,
        eps: float | None = None,
        cost: Any = "sqeuclidean",
        p: float | None = None,
        q: float = 2.0,
        reach: float | None = None,
        scaling: float = 0.8,
        tol: float | None = None,
        rtol: float | None = None,
        max_iter: int = 1000,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.options = dict(
            eps=eps, cost=cost, p=p, q=q, reach=reach, scaling=scaling, tol=tol,
            rtol=rtol, max_iter=max_iter, backend=backend,
        )  # fmt: skip

    def _options(self) -> dict:
        return self.options

    def _one(self, x, y, a=None, b=None):
        return sinkhorn_divergence(x, y, a, b, progress=False, **self.options)


class MMDLoss(_SampleLoss):
    r"""The maximum mean discrepancy as a loss.

    The keyword options are those of :func:`otgen.ot.mmd`: every kernel
    (``kernel``, ``scale``: IMQ, Gaussian, Laplace, energy, multiscale
    sums, callables) and every estimator (``"unbiased"``, ``"biased"``,
    ``"all_pairs"``, ``"off_diagonal"``, ``"linear"``), ``squared`` (MMD² by
    default) and ``backend`` :cite:`gretton2012kernel`.

    Examples
    --------
    >>> import torch
    >>> loss = MMDLoss(kernel="gaussian", scale=1.0, estimator="biased")
    >>> x = torch.tensor([[0.0], [1.0]])
    >>> round(float(loss(x, x + 1.0)), 6)
    0.432332
    """

    def __init__(
        self,
        *,
        kernel: Any = "imq",
        scale: Any = None,
        estimator: str = "unbiased",
        squared: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.options = dict(
            kernel=kernel, scale=scale, estimator=estimator, squared=squared,
            backend=backend,
        )  # fmt: skip

    def _options(self) -> dict:
        return self.options

    def _one(self, x, y, a=None, b=None):
        return mmd(x, y, a, b, **self.options)


class WassersteinLoss(_SampleLoss):
    r"""The exact Wasserstein distance :math:`W_p` (the p-th root) as a loss.

    Calls :func:`otgen.ot.wasserstein` with ``method="exact"``: sorting on
    the line, the network simplex, and the certified multiscale solver for
    large clouds (``solver="auto"``, see :func:`otgen.ot.exact_ot`).
    Gradients by the envelope theorem at the optimal plan
    :cite:`peyre2019computational`. The options ``solver``, ``max_iter`` and
    ``tol`` are those of :func:`otgen.ot.exact_ot`.

    Examples
    --------
    >>> import torch
    >>> loss = WassersteinLoss(p=1)
    >>> round(float(loss(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0]))), 6)
    2.0
    """

    def __init__(
        self,
        p: float = 2,
        *,
        solver: str = "auto",
        max_iter: int | None = None,
        tol: float = 1e-9,
    ) -> None:
        super().__init__()
        self.p = p
        self.options = dict(solver=solver, max_iter=max_iter, tol=tol)

    def _options(self) -> dict:
        return dict(p=self.p, **self.options)

    def _one(self, x, y, a=None, b=None):
        return wasserstein(x, y, self.p, a, b, method="exact", **self.options)


class SlicedWassersteinLoss(_SampleLoss):
    r"""The sliced Wasserstein distance :math:`SW_p` as a loss.

    Calls :func:`otgen.ot.sliced_wasserstein` (or
    :func:`otgen.ot.max_sliced_wasserstein` with ``max=True``) and returns
    its ``value``. Each call draws ``n_projections`` new directions from one
    NumPy generator seeded by ``seed`` at construction: a training run sees
    fresh directions at every step (and each pair of a batch its own), and
    the same sequence when rerun. Pass
    ``projections`` (d, L) to use fixed ones instead.

    Examples
    --------
    >>> import torch
    >>> loss = SlicedWassersteinLoss(n_projections=8)
    >>> x = torch.randn(50, 1)
    >>> float(loss(x, x + 2.0))  # on the line SW_2 = W_2
    2.0
    """

    def __init__(
        self,
        p: float = 2,
        *,
        n_projections: int = 100,
        seed: int | None = 0,
        projections: Any = None,
        max: bool = False,
    ) -> None:
        super().__init__()
        self.p, self.n_projections, self.seed, self.max = p, n_projections, seed, max
        self.projections = projections
        self._rng = _check_seed(seed)

    def _options(self) -> dict:
        return dict(
            p=self.p, n_projections=self.n_projections, seed=self.seed, max=self.max
        )

    def _one(self, x, y, a=None, b=None):
        fn = max_sliced_wasserstein if self.max else sliced_wasserstein
        r = fn(
            x, y, self.p, a=a, b=b, n_projections=self.n_projections,
            seed=self._rng, projections=self.projections,
        )  # fmt: skip
        return r.value
