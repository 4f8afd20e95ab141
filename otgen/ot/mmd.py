r"""Maximum mean discrepancy: estimators and the permutation two-sample test.

For probability measures :math:`\alpha = \sum_i a_i \delta_{x_i}` and
:math:`\beta = \sum_j b_j \delta_{y_j}` and a kernel :math:`k`,

.. math::
    \mathrm{MMD}_k^2(P, Q) = \mathbb{E}\,k(X, X') + \mathbb{E}\,k(Y, Y')
    - 2\,\mathbb{E}\,k(X, Y),

estimated from the samples by U- or V-statistics. Every estimator except the
linear-time one is a bilinear form in one pooled kernel matrix
:math:`K = k(z_i, z_j)`, :math:`z = (x, y)`: the quadratic forms
:math:`V^\top K V` of a :class:`otgen.ot._reduce.Reduction`
(``kernel_quadform``: dense, chunked, native or KeOps; online, :math:`K` is
never stored beyond a block, and the chunked and native backends evaluate each
pair once), so the estimators are written once for every backend. The
permutation test uses its kernel sums :math:`K E` (``kernel_sums``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from otgen._arrays import ArrayLike, is_torch, scalar_output
from otgen._validation import (
    check_bool,
    check_choice,
    check_points,
    check_weights,
    is_int,
)
from otgen.ot._reduce import Backend, Reduction, choose_reduction, native_support
from otgen.ot.kernels import Kernel, KernelLike, ScaleLike, working_kernel

__all__ = ["MMDTestResult", "mmd", "mmd_test"]

Estimator = Literal["unbiased", "biased", "all_pairs", "off_diagonal", "linear"]
ESTIMATORS = ("unbiased", "biased", "all_pairs", "off_diagonal", "linear")
# Entries of the (N, n_permutations) indicator block held at once by mmd_test.
_TEST_BLOCK = 20_000_000


def _check_probability(w: torch.Tensor, name: str) -> None:
    total = float(w.detach().sum())
    tol = 1e-6 if w.dtype == torch.float64 else 1e-4
    if abs(total - 1.0) > tol:
        raise ValueError(
            f"{name} must sum to 1: MMD compares probability measures (got sum "
            f"{total:.9g}); normalise it ({name} / {name}.sum()) or pass None for "
            "uniform weights."
        )


def _prepare(x, y, a, b, kernel, scale, estimator, backend, group=None):
    """Validate the inputs; return working tensors, weights, kernels, backend.

    The points and the kernel are in the working units of
    :func:`otgen.ot.kernels.working_kernel` (centred, divided by a power of two
    with the scales; float64 where float32 cannot resolve the scale), which
    leave every kernel value unchanged. Returns ``(tx, ty, ta, tb, k, be,
    k_user, dtype)``: ``k_user`` the kernel in the data's units, ``dtype`` the
    input's.

    ``group``: a sharded problem (:mod:`otgen.ot._sharded`): the ranks'
    inputs are checked together and gathered; ``tx``, ``ty``, ``ta``, ``tb``
    are the global clouds and ``be`` a
    :class:`~otgen.ot._sharded.ShardedReduction` over the local backend.
    """
    shard = None
    if group is not None:
        from otgen.ot._sharded import open_shard

        check_choice(estimator, "estimator", ESTIMATORS)
        if estimator in ("off_diagonal", "linear"):
            raise ValueError(
                f"estimator={estimator!r} pairs x[l] with y[l], which group=... "
                "does not support; pass estimator='unbiased' or 'biased', or "
                "group=None."
            )
        shard, x, y, a, b = open_shard(group, x, y, a, b)
    tx, ty = check_points(x, y)
    check_choice(estimator, "estimator", ESTIMATORS)
    n, m = tx.shape[0], ty.shape[0]
    if estimator in ("off_diagonal", "linear"):
        if a is not None or b is not None:
            raise ValueError(
                f"estimator={estimator!r} pairs x[l] with y[l] and needs uniform "
                "weights (got a or b); pass a=None, b=None, or use "
                "estimator='unbiased' or 'biased' for weighted samples."
            )
        if n != m:
            raise ValueError(
                f"estimator={estimator!r} needs as many points in x as in y (got "
                f"n={n}, m={m}); subsample to equal sizes or use "
                "estimator='unbiased'."
            )
    if estimator != "biased" and min(n, m) < 2:
        raise ValueError(
            f"estimator={estimator!r} needs at least 2 points in x and in y (got "
            f"n={n}, m={m}); pass more points or use estimator='biased'."
        )
    ta = check_weights(a, n, "a", tx)
    tb = check_weights(b, m, "b", ty)
    for w, t, name in ((a, ta, "a"), (b, tb, "b")):
        if w is None:
            continue
        try:
            _check_probability(t, name)
        except ValueError as err:
            if shard is None:
                raise
            raise ValueError(
                f"{err} With group=..., {name} holds each rank's entries of the "
                "global weights: the sum is over all ranks (normalise by the "
                "global sum, not per rank)."
            ) from None
    dtype = tx.dtype
    k_user, k, tx, ty = working_kernel(kernel, scale, tx, ty)
    ta, tb = ta.to(tx.dtype), tb.to(tx.dtype)
    be = choose_reduction(
        backend, n + m, n + m, tx.device, native_support(tx, kernel=k)
    )
    if shard is not None:
        from otgen.ot._sharded import ShardedReduction

        be = ShardedReduction(be, shard)
    return tx, ty, ta, tb, k, be, k_user, dtype


def _pooled(tx: torch.Tensor, ty: torch.Tensor, k: Kernel) -> torch.Tensor:
    z = torch.cat([tx, ty])  # (n + m, d)
    if k.translation_invariant:
        # Centring does not change a translation-invariant kernel and keeps
        # |z_i|^2 + |z_j|^2 - 2 <z_i, z_j> free of cancellation.
        z = z - z.detach().mean(0)
    return z


def _linear(tx: torch.Tensor, ty: torch.Tensor, k: Kernel, be: Reduction):
    h = tx.shape[0] // 2
    total = be.linear_mmd_sum(tx, ty, k)  # one fused pass, where the backend can
    if total is not None:
        return torch.tensor(total / h, dtype=torch.float64)
    x1, x2 = tx[0 : 2 * h : 2], tx[1 : 2 * h : 2]
    y1, y2 = ty[0 : 2 * h : 2], ty[1 : 2 * h : 2]
    terms = k.paired(x1, x2) + k.paired(y1, y2) - k.paired(x1, y2) - k.paired(x2, y1)
    return terms.to(torch.float64).mean()


def _estimate(tx, ty, ta, tb, k: Kernel, estimator: str, be: Reduction):
    """The MMD^2 estimate in float64 (differentiable)."""
    if estimator == "linear":
        return _linear(tx, ty, k, be)
    n = tx.shape[0]
    z = _pooled(tx, ty, k)
    a64, b64 = ta.to(torch.float64), tb.to(torch.float64)
    # Sharded (a ShardedReduction): pair sums and point sums by the rows each
    # rank holds, added over the ranks; one process: as they are.
    sharded = hasattr(be, "point_sum")
    quad = {"n": n} if sharded else {}

    def psum(t: torch.Tensor, side: str) -> torch.Tensor:
        return be.point_sum(t, side) if sharded else t.sum()

    if estimator == "biased":
        # w^T K w with w = (a, -b): one kernel pass, one product per block.
        w = torch.cat([ta, -tb]).unsqueeze(1)  # (N, 1)
        return be.kernel_quadform(z, w, k, diag=True, **quad)[0].to(torch.float64)
    zero_n = torch.zeros_like(ta)
    zero_m = torch.zeros_like(tb)
    V = torch.stack([torch.cat([ta, zero_m]), torch.cat([zero_n, tb])], 1)  # (N, 2)
    Q = be.kernel_quadform(z, V, k, **quad).to(torch.float64)  # (2, 2) = V^T K V
    s_xx, s_yy, s_xy = Q[0, 0], Q[1, 1], Q[0, 1]
    # U-statistics: drop the diagonal i = j, renormalise by sum_{i != j} a_i a_j.
    dx = k.diag(tx).to(torch.float64)
    dy = k.diag(ty).to(torch.float64)
    nx = 1 - psum(a64 * a64, "x")
    ny = 1 - psum(b64 * b64, "y")
    for norm, name in ((nx, "a"), (ny, "b")):
        if float(norm.detach()) <= 1e-12:
            raise ValueError(
                f"estimator={estimator!r} needs at least 2 points with positive "
                f"weight in {name} (got one point holding all the mass); use "
                "estimator='biased'."
            )
    u_xx = (s_xx - psum(a64 * a64 * dx, "x")) / nx
    u_yy = (s_yy - psum(b64 * b64 * dy, "y")) / ny
    if estimator == "off_diagonal":
        # Cross term over l != j only (uniform weights, n = m).
        same = k.paired(tx, ty).to(torch.float64).sum()
        cross = (n * n * s_xy - same) / (n * (n - 1))
        return u_xx + u_yy - 2 * cross
    return u_xx + u_yy - 2 * s_xy


def mmd(
    x: ArrayLike,
    y: ArrayLike,
    a: ArrayLike | None = None,
    b: ArrayLike | None = None,
    *,
    kernel: KernelLike = "imq",
    scale: ScaleLike = None,
    estimator: Estimator = "unbiased",
    squared: bool = True,
    backend: Backend = "auto",
    group: Any = None,
):
    r"""Maximum mean discrepancy between two samples (MMD² by default).

    With weights :math:`a, b` (uniform by default) the estimators are

    - ``"unbiased"`` (U-statistic, default):
      :math:`\frac{\sum_{i \ne j} a_i a_j k(x_i, x_j)}{1 - \sum_i a_i^2}
      + \frac{\sum_{i \ne j} b_i b_j k(y_i, y_j)}{1 - \sum_j b_j^2}
      - 2 \sum_{i, j} a_i b_j k(x_i, y_j)`; for uniform weights the first
      factor is :math:`\frac{1}{n(n-1)} \sum_{i \ne j}`.
    - ``"biased"`` (V-statistic):
      :math:`\sum_{ij} a_i a_j k(x_i, x_j) + \sum_{ij} b_i b_j k(y_i, y_j)
      - 2 \sum_{ij} a_i b_j k(x_i, y_j) = \|\mu_\alpha - \mu_\beta\|^2_{H_k}
      \ge 0`. GeomLoss's ``SamplesLoss("gaussian")`` returns half of it.
    - ``"all_pairs"`` (WAE-MMD, final version): identical to ``"unbiased"``.
    - ``"off_diagonal"`` (WAE-MMD, ICLR submission; :math:`n = m`):
      :math:`\frac{1}{n(n-1)} \sum_{l \ne j} [k(x_l, x_j) + k(y_l, y_j)
      - 2 k(x_l, y_j)]`.
    - ``"linear"`` (streaming, :math:`O(n)`; :math:`n = m`):
      :math:`\frac{1}{h} \sum_{i < h} [k(x_{2i}, x_{2i+1}) + k(y_{2i}, y_{2i+1})
      - k(x_{2i}, y_{2i+1}) - k(x_{2i+1}, y_{2i})]`, :math:`h = \lfloor n/2
      \rfloor` :cite:`gretton2012kernel`.

    All but ``"biased"`` are unbiased for :math:`\mathrm{MMD}^2` (and can be
    negative) when the scale does not depend on the data.

    References: :cite:`tolstikhin2018wae`.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        The two samples (a 1-D input is n points on the line).
    a, b : array or Tensor, shape (n,) and (m,), optional
        Non-negative weights, each summing to 1; uniform when None. Only for
        ``"unbiased"``, ``"all_pairs"`` and ``"biased"``.
    kernel : {"imq", "gaussian", "laplacian", "energy"}, Kernel or callable
        The kernel (:mod:`otgen.ot.kernels`): inverse multiquadric
        :math:`C/(C + \|x - y\|^2)` (default), Gaussian
        :math:`\exp(-\|x-y\|^2 / 2s^2)`, Laplacian :math:`\exp(-\|x-y\|/s)`,
        energy :math:`-(\|x-y\|/s)^\beta` (``Kernel("energy", beta=...)``), or
        ``fn(x, y) -> (n, m)`` Gram block.
    scale : float, sequence of float, "median" or None, default=None
        Kernel scale :math:`s` (for IMQ, :math:`C`, in squared units). A
        sequence sums the single-scale estimates (multi-scale kernel).
        ``"median"``: the median heuristic on the pooled sample (data-dependent,
        so the estimate is biased). None: :math:`C = 2d` for IMQ (the WAE choice
        for a standard normal prior, see :func:`wae_imq_scale`), 1 otherwise.
        Kernel values depend only on :math:`(x - y) / s`: the points are
        centred and divided by a power of two with the scales (so coordinates
        of :math:`10^{\pm 200}` give the same MMD), float32 runs in float64 when
        s is below 5% of the data's extent, and s (for IMQ, :math:`\sqrt C`)
        below 1e-150 times that extent is refused.
    estimator : {"unbiased", "biased", "all_pairs", "off_diagonal", "linear"}
        See above.
    squared : bool, default=True
        Return :math:`\widehat{\mathrm{MMD}^2}` (default) or
        :math:`\sqrt{\max(\widehat{\mathrm{MMD}^2}, 0)}`; True or False only.
    backend : {"auto", "dense", "chunked", "keops", "native"}, default="auto"
        Kernel sums: dense matrix, bounded-memory torch blocks, or KeOps. Unused
        by ``"linear"``.
    group : torch.distributed ProcessGroup or "world", optional
        Sharded samples (``"unbiased"``, ``"all_pairs"``, ``"biased"``): each
        rank passes its rows of x (and a) and of y (and b), in rank order. The
        weights are each rank's entries of the global weights: each of a and
        b must sum to 1 over all ranks (checked); None everywhere: uniform
        over the global samples. Every rank gathers the two samples once (one
        ``all_gather`` each; the scale, ``"median"`` included, is then that of
        one process), computes the kernel sums of its rows of the pooled
        sample :math:`z = (x, y)` against all of it,
        :math:`V_{I_r}^\top K(z_{I_r}, z) V` (:math:`N^2 / R` pairs per rank,
        its local backend), and one ``all_reduce`` adds the (2, 2) blocks and
        the weight sums. The value is global on every rank; every rank calls
        ``backward()`` and gets the gradient on its rows (collective).

    Returns
    -------
    float or Tensor
        :math:`\widehat{\mathrm{MMD}^2}` (or its root with ``squared=False``);
        a Python float for NumPy input, a 0-d tensor of the input dtype for
        torch input, differentiable in ``x``, ``y``, ``a`` and ``b``.

    Raises
    ------
    ValueError
        On invalid points, weights, kernel, scale, estimator or backend, and
        sizes an estimator cannot use.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0]])
    >>> round(mmd(x, x + 1.0, kernel="gaussian", scale=1.0, estimator="biased"), 6)
    0.432332
    >>> mmd(x, x, estimator="biased")
    0.0
    """
    as_torch = is_torch(x, y, a, b)
    squared = check_bool(squared, "squared")
    tx, ty, ta, tb, k, be, _, dtype = _prepare(
        x, y, a, b, kernel, scale, estimator, backend, group
    )
    value = _estimate(tx, ty, ta, tb, k, estimator, be)
    if not squared:
        pos = value > 0
        value = torch.where(pos, value, torch.ones_like(value)).sqrt() * pos
    return scalar_output(value.to(dtype), as_torch)


@dataclass(frozen=True)
class MMDTestResult:
    r"""Result of the permutation two-sample test :func:`mmd_test`.

    Attributes
    ----------
    statistic : float
        :math:`\widehat{\mathrm{MMD}^2}` on the observed split (``estimator``).
    p_value : float
        :math:`(1 + \#\{T_\pi \ge T\}) / (1 + B)` over ``B`` random
        permutations :math:`\pi`; valid (size at most alpha) for any B.
    null_statistics : numpy.ndarray, shape (B,)
        The statistics :math:`T_\pi` of the permuted splits.
    n_permutations : int
        ``B``.
    estimator : str
        ``"unbiased"`` or ``"biased"``.
    kernel : str
        The kernel with its scales, e.g. ``gaussian(s=1.2)``.
    """

    statistic: float
    p_value: float
    null_statistics: np.ndarray
    n_permutations: int
    estimator: str
    kernel: str

    def reject(self, alpha: float = 0.05) -> bool:
        """True if the test rejects :math:`P = Q` at level ``alpha``."""
        return self.p_value <= alpha


def _split_stats(ES, Er, Ed, T, dsum, n, m, estimator):
    """MMD^2 estimates of B splits from e^T K e, e^T K 1 and e^T diag(K).

    ``ES`` = (e_p^T K e_p), ``Er`` = (e_p^T K 1), ``Ed`` = (e_p^T diag K).
    """
    s_xx = ES
    s_xy = Er - ES
    s_yy = T - 2 * Er + ES
    if estimator == "biased":
        return s_xx / n**2 + s_yy / m**2 - 2 * s_xy / (n * m)
    return (
        (s_xx - Ed) / (n * (n - 1))
        + (s_yy - (dsum - Ed)) / (m * (m - 1))
        - 2 * s_xy / (n * m)
    )


def mmd_test(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: KernelLike = "gaussian",
    scale: ScaleLike = "median",
    estimator: Literal["unbiased", "biased"] = "unbiased",
    n_permutations: int = 1000,
    seed: int = 0,
    backend: Backend = "auto",
) -> MMDTestResult:
    r"""Permutation two-sample test of :math:`H_0: P = Q` with the MMD statistic.

    The statistic :math:`T = \widehat{\mathrm{MMD}^2}(x, y)` is compared with
    its values :math:`T_\pi` on :math:`B` random re-splits of the pooled sample
    :math:`z = (x, y)` into groups of sizes :math:`n` and :math:`m`:

    .. math::
        p = \frac{1 + \#\{\pi : T_\pi \ge T\}}{1 + B},

    which is a valid p-value for any :math:`B` :cite:`gretton2012kernel`. Every
    split is a bilinear form :math:`e^\top K e` in one pooled kernel matrix
    :math:`K` and an indicator :math:`e`, so all permutations share one kernel
    evaluation: a dense :math:`K` reused by matrix products when it fits
    (``backend="auto"`` or ``"dense"``), otherwise one kernel-sum pass :math:`K
    E` over a block of indicator columns (``"chunked"``, ``"keops"``). The
    median-heuristic scale depends on the pooled sample only, so it does not
    affect the validity.

    Parameters
    ----------
    x, y : array or Tensor, shape (n, d) and (m, d)
        The two samples, :math:`n, m \ge 2`.
    kernel : {"gaussian", "laplacian", "imq", "energy"}, Kernel or callable
        See :func:`mmd`; default Gaussian.
    scale : float, sequence of float, "median" or None, default="median"
        See :func:`mmd`.
    estimator : {"unbiased", "biased"}, default="unbiased"
        The statistic.
    n_permutations : int, default=1000
        Number :math:`B \ge 1` of random permutations.
    seed : int, default=0
        Seed of the permutations: the same seed gives the same p-value.
    backend : {"auto", "dense", "chunked", "keops", "native"}, default="auto"
        How the kernel sums are computed (see :func:`mmd`).

    Returns
    -------
    MMDTestResult
        ``statistic``, ``p_value``, ``null_statistics``; ``reject(alpha)``.
        Not differentiable.

    Raises
    ------
    ValueError
        On invalid points, kernel, scale, estimator, backend, seed or
        ``n_permutations``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(50, 2)), rng.normal(size=(60, 2)) + 1.0
    >>> mmd_test(x, y, n_permutations=200, seed=0).p_value < 0.01
    True
    """
    check_choice(estimator, "estimator", ("unbiased", "biased"))
    if not is_int(n_permutations) or n_permutations < 1:
        raise ValueError(
            f"n_permutations must be a positive integer (got {n_permutations!r}); "
            "pass e.g. n_permutations=1000."
        )
    if not is_int(seed) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative integer (got {seed!r}); pass e.g. seed=0."
        )
    with torch.no_grad():
        tx, ty, _, _, k, be, k_user, _ = _prepare(
            x, y, None, None, kernel, scale, estimator, backend
        )
        n_permutations, seed = int(n_permutations), int(seed)
        n, m = tx.shape[0], ty.shape[0]
        N = n + m
        z = _pooled(tx, ty, k)
        diag = torch.cat([k.diag(tx), k.diag(ty)]).to(torch.float64)  # (N,)
        dsum = diag.sum()
        kernel_sums = be.kernel_sums(z, k)  # E -> K E (dense: K built once)

        ones = torch.ones(N, 1, dtype=z.dtype, device=z.device)
        r1 = kernel_sums(ones)[:, 0].to(torch.float64)  # K 1, (N,)
        T = r1.sum()
        gen = torch.Generator(device="cpu").manual_seed(seed)
        # Column 0: the observed split; then B random splits.
        total = n_permutations + 1
        block = max(1, min(total, _TEST_BLOCK // N))
        stats = []
        done = 0
        while done < total:
            cols = min(block, total - done)
            idx = torch.argsort(torch.rand(cols, N, generator=gen), dim=1)[:, :n]
            if done == 0:
                idx[0] = torch.arange(n)
            E = torch.zeros(N, cols, dtype=z.dtype)
            E.scatter_(0, idx.T.contiguous(), 1.0)  # (N, cols): 1 on group x
            E = E.to(z.device)
            KE = kernel_sums(E).to(torch.float64)  # (N, cols)
            E64 = E.to(torch.float64)
            ES = (E64 * KE).sum(0)  # e^T K e
            Er = E64.T @ r1  # e^T K 1
            Ed = E64.T @ diag  # e^T diag(K)
            stats.append(_split_stats(ES, Er, Ed, T, dsum, n, m, estimator))
            done += cols
        all_stats = torch.cat(stats).cpu().numpy()
    observed, null = float(all_stats[0]), all_stats[1:]
    if not np.isfinite(all_stats).all():
        raise ValueError(
            f"the MMD statistics are not finite (observed {observed!r}) with the "
            f"kernel {k_user.describe()}; pass a callable kernel that returns "
            "finite values, or a named kernel."
        )
    # Ties within rounding count as exceedances (conservative).
    tol = 1e-9 * max(1.0, abs(observed))
    p = (1 + int(np.sum(null >= observed - tol))) / (1 + n_permutations)
    return MMDTestResult(
        statistic=observed,
        p_value=p,
        null_statistics=null,
        n_permutations=n_permutations,
        estimator=estimator,
        kernel=k_user.describe(),
    )
