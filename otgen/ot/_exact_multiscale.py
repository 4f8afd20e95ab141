r"""Certified exact OT between point clouds without the n x m cost matrix.

The Kantorovich LP is solved on a sparse set of candidate pairs (edges) that
grows until the dual solution of the sparse problem is feasible for **all**
pairs, which certifies it optimal for the full problem
:cite:`schmitzer2016sparse,gerber2017multiscale`:

1. **Coarse to fine.** Each cloud is cut into clusters of about ``COARSEN``
   points (random centres, nearest-centre cells); the clusters' barycentres
   and masses form a smaller OT problem, solved recursively (the dense network
   simplex below ``DENSE_PAIRS`` pairs). The coarse plan lifts to a feasible
   fine support of O(n + m) pairs (:func:`_lift_plan`: each point's mass
   split over the clusters its cluster sends to, matched inside them by the
   north-west corner rule), to which each point's partner under two exact
   c-transforms of the coarse potentials is added.
2. **Column generation.** POT's network simplex solves the LP on the edges
   (cold in the first round, then warm-started with the previous round's
   potentials: its warm start helps only from those) and returns potentials f, g
   with :math:`f_i + g_j = c_{ij}` on the plan's support. An exact c-transform
   over all pairs (:mod:`otgen.ot._ctransform`) finds, for every row, the
   column minimising :math:`c_{ij} - g_j`, and for every column the row
   minimising :math:`c_{ij} - f_i` (columns in the first ``COLUMN_ROUNDS``
   rounds only). All violating pairs join the edges (at most n + m per
   round); past ``BUDGET`` edges per point they are pruned. The loop ends
   when no new pair violates.
3. **Certificate.** At the end, :math:`\max_{ij}(f_i + g_j - c_{ij})^+`
   (``max_dual_violation``, over all pairs, from that c-transform) and the
   duality gap are at most ``tol`` times the cost scale. Then
   :math:`(f - \delta, g)` is dual feasible with :math:`\delta` the
   violation, so the returned value exceeds the optimum by at most
   :math:`\delta` times the mass.

The problem is solved on normalised coordinates (centred, divided by the
diagonal D of the pooled bounding box, so every cost is at most 1); values
and potentials are scaled back by :math:`D^p`, which makes the solver
scale-equivariant and ``tol`` relative to the largest cost.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from otgen._imports import quiet_import
from otgen.ot._ctransform import choose_ctransform
from otgen.ot._solvers import UNBOUNDED_ITER, Solution, network_simplex
from otgen.ot.costs import Cost

__all__ = [
    "dual_violation",
    "multiscale_exact",
    "pair_costs",
    "dense_costs",
    "MultiscaleStats",
    "COARSEN",
    "DENSE_PAIRS",
]

COARSEN = 4  # points per cluster from one level to the next
DENSE_PAIRS = 1_000_000  # the dense network simplex solves problems up to here
# Past BUDGET edges per point, the edges are pruned to the plan's and the KEEP
# cheapest (in reduced cost) of each row. Pruning only then, not every round,
# keeps the loop from dropping and re-adding the same pairs (cycling).
BUDGET = 8
KEEP = 4
COLUMN_ROUNDS = 3  # rounds in which columns are priced as well as rows
# Pairs violating the dual constraints by more than this (relative to the
# largest cost) join the edges. It sits just above the rounding of the network
# simplex's potentials (sums of costs along tree paths: about 1e-12 measured at
# n = 1e4), so the loop runs to the exact optimum and stops on rounding only.
ADD_TOL = 1e-11


@dataclass
class MultiscaleStats:
    """What the solver did: per finest-level round and in total."""

    levels: int = 0
    rounds: int = 0
    edges: int = 0
    violations: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    per_level: list = field(default_factory=list)


def pair_costs(
    x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray, cost: Cost
) -> np.ndarray:
    """:math:`c(x_{r_k}, y_{c_k})` from coordinate differences (no cancellation)."""
    out = np.empty(rows.size)
    step = 1 << 20
    for s in range(0, rows.size, step):
        diff = x[rows[s : s + step]] - y[cols[s : s + step]]
        if cost.q == 2:
            d2 = np.einsum("ij,ij->i", diff, diff)
            out[s : s + step] = d2 if cost.p == 2 else d2 ** (cost.p / 2)
        elif np.isinf(cost.q):
            out[s : s + step] = np.abs(diff).max(1) ** cost.p
        else:
            dq = (np.abs(diff) ** cost.q).sum(1) ** (1.0 / cost.q)
            out[s : s + step] = dq**cost.p
    return out


def dense_costs(x: np.ndarray, y: np.ndarray, cost: Cost) -> np.ndarray:
    """The (n, m) cost matrix in float64 from coordinate differences (SciPy)."""
    from scipy.spatial.distance import cdist

    if cost.q == 2 and cost.p == 2:
        return cdist(x, y, "sqeuclidean")
    if cost.q == 2:
        C = cdist(x, y, "euclidean")
    elif cost.q == 1:
        C = cdist(x, y, "cityblock")
    elif np.isinf(cost.q):
        C = cdist(x, y, "chebyshev")
    else:
        C = cdist(x, y, "minkowski", p=cost.q)
    if cost.p != 1:
        np.power(C, cost.p, out=C)
    return C


def _coarsen(
    x: np.ndarray, a: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clusters of about COARSEN points: barycentres, masses and labels."""
    from scipy.spatial import cKDTree

    n = x.shape[0]
    k = max(1, n // COARSEN)
    centres = x[rng.choice(n, k, replace=False)]
    _, lab = cKDTree(centres).query(x, workers=-1)
    _, lab = np.unique(lab, return_inverse=True)
    mass = np.bincount(lab, weights=a)
    # Mass-weighted barycentres (plain means where a cluster has no mass).
    w = np.where(mass[lab] > 0, a, 1.0)
    tot = np.bincount(lab, weights=w)
    X = (
        np.stack([np.bincount(lab, weights=w * x[:, k]) for k in range(x.shape[1])], 1)
        / tot[:, None]
    )
    return X, mass, lab


def _lift_support(
    R: np.ndarray, C: np.ndarray, lx: np.ndarray, ly: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every fine pair (i, j) whose clusters (lx_i, ly_j) are a coarse edge."""
    ox, oy = np.argsort(lx, kind="stable"), np.argsort(ly, kind="stable")
    cx = np.bincount(lx, minlength=int(R.max(initial=-1)) + 1)
    cy = np.bincount(ly, minlength=int(C.max(initial=-1)) + 1)
    sx = np.concatenate([[0], np.cumsum(cx)])
    sy = np.concatenate([[0], np.cumsum(cy)])
    ny = cy[C]
    sizes = cx[R] * ny
    pair = np.repeat(np.arange(R.size), sizes)
    off = np.arange(pair.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    per = ny[pair]
    return ox[sx[R][pair] + off // per], oy[sy[C][pair] + off % per]


def _sorted_unique(key: np.ndarray) -> np.ndarray:
    key = np.sort(key)
    return key[np.concatenate([key[:1] == key[:1], key[1:] != key[:-1]])]


def _lift_plan(
    R: np.ndarray,
    C: np.ndarray,
    P: np.ndarray,
    lx: np.ndarray,
    ly: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Support of a feasible fine plan with O(n + m) pairs from the coarse plan.

    Each fine point i of cluster I splits its mass over the clusters J that I
    sends to, in proportion :math:`P_{IJ} / A_I`; within each J, these parts
    are matched to the points of J by the north-west corner rule (the
    cumulative masses agree at the cluster boundaries).
    """
    A = np.bincount(lx, weights=a, minlength=int(R.max(initial=-1)) + 1)
    ox = np.argsort(lx, kind="stable")
    cx = np.bincount(lx, minlength=A.size)
    sx = np.concatenate([[0], np.cumsum(cx)])
    order = np.argsort(C, kind="stable")  # coarse edges by destination J
    R, C, P = R[order], C[order], P[order]
    sizes = cx[R]
    edge = np.repeat(np.arange(R.size), sizes)
    off = np.arange(edge.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    src = ox[sx[R][edge] + off]  # fine row of each part, grouped by J
    part = a[src] * (P / np.where(A[R] > 0, A[R], 1.0))[edge]
    oy = np.argsort(ly, kind="stable")
    t1 = np.cumsum(part)
    t2 = np.cumsum(b[oy])
    t2 *= t1[-1] / t2[-1]
    t = np.concatenate([t1[:-1], t2[:-1]])
    step = np.argsort(t, kind="stable")
    k = np.concatenate([[0], np.cumsum(step < t1.size - 1)])
    j = np.concatenate([[0], np.cumsum(step >= t1.size - 1)])
    return src[k], oy[j]


def _top_per_group(group: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k lowest scores in each group (ties by position)."""
    order = np.lexsort((score, group))
    g = group[order]
    start = np.searchsorted(g, g, side="left")
    mask = np.zeros(group.size, dtype=bool)
    mask[order[np.arange(group.size) - start < k]] = True
    return mask


class _Level:
    """One level's column generation: the LP on the edges and the pricing."""

    def __init__(self, x, y, a, b, cost: Cost):
        self.x, self.y, self.a, self.b, self.cost = x, y, a, b, cost
        self.n, self.m = x.shape[0], y.shape[0]
        d = x.shape[1]
        self.check = choose_ctransform(cost, d)
        self.check_t = choose_ctransform(cost, d)

    def simplex(self, key, f0, g0, max_iter):
        """The network simplex on the edges ``key`` (= i * m + j), warm-started."""
        emd_c_sparse = quiet_import("ot.lp.emd_wrap").emd_c_sparse
        rows, cols = np.divmod(key, self.m)
        c = pair_costs(self.x, self.y, rows, cols, self.cost)
        b = self.b * self.a.sum() / self.b.sum()  # equal masses to the last bit
        fs, ft, fv, _, f, g, code = emd_c_sparse(
            self.a,
            b,
            rows.astype(np.uint64),
            cols.astype(np.uint64),
            c,
            max_iter,
            f0,
            g0,
        )
        red = c - f[rows] - g[cols]
        return fs.astype(np.int64), ft.astype(np.int64), fv, f, g, code, red

    def partners(self, fs, ft):
        """A partner per row and per column on the plan (start of the walks)."""
        pr = np.zeros(self.n, dtype=np.int64)
        pc = np.zeros(self.m, dtype=np.int64)
        pr[fs], pc[ft] = ft, fs
        return pr, pc

    def pricing(self, f, g, pr, pc, columns=True):
        """Candidate pairs and their violations :math:`f_i + g_j - c_{ij}`.

        Each row's most violated pair (exact over all pairs: their maximum is
        the largest violation), with ``columns`` each column's too. Returns
        rows, cols, violations and the largest violation.
        """
        jr = self.check.argmin(self.x, self.y, g, pr)
        if columns:
            ic = self.check_t.argmin(self.y, self.x, f, pc)
            jc = np.arange(self.m)
        else:
            ic = jc = np.zeros(0, dtype=np.int64)
        rows = np.concatenate([np.arange(self.n), ic])
        cols = np.concatenate([jr, jc])
        viol = f[rows] + g[cols] - pair_costs(self.x, self.y, rows, cols, self.cost)
        worst = max(float(viol[: self.n].max()), 0.0)
        return rows, cols, viol, worst

    def prune(self, key, red, fs, ft):
        """Keep the plan's edges and the KEEP cheapest (reduced cost) per row."""
        kept = key[_top_per_group(key // self.m, red, KEEP)]
        return _sorted_unique(np.concatenate([kept, fs * np.int64(self.m) + ft]))


def _solve_level(
    x, y, a, b, cost, *, tol, max_rounds, max_iter, depth, rng, stats, bar
):
    """Plan (rows, cols, vals), potentials f, g, violation, rounds, success."""
    n, m = x.shape[0], y.shape[0]
    if n * m <= DENSE_PAIRS:
        C = dense_costs(x, y, cost)
        sol = network_simplex(a, b, C, max_iter)
        return sol.rows, sol.cols, sol.vals, sol.f, sol.g, 0.0, 0, sol.converged
    X, A, lx = _coarsen(x, a, rng) if n > 2 * COARSEN else (x, a, np.arange(n))
    Y, B, ly = _coarsen(y, b, rng) if m > 2 * COARSEN else (y, b, np.arange(m))
    R, Cc, Pc, F, G, *_ = _solve_level(
        X,
        Y,
        A,
        B,
        cost,
        tol=tol,
        max_rounds=max_rounds,
        max_iter=max_iter,
        depth=depth + 1,
        rng=rng,
        stats=stats,
        bar=bar,
    )
    t0 = time.perf_counter()
    lvl = _Level(x, y, a, b, cost)
    rows, cols = _lift_plan(R, Cc, Pc, lx, ly, a, b)
    # The coarse potentials, extended to the fine points by two exact
    # c-transforms (g on y from the coarse f, then f on x from g), point at each
    # row's and column's likely partners: they join the lifted support.
    # Walks start at the coarse partners (any start is exact, a near one fast).
    pr_c, pc_c = np.zeros(X.shape[0], np.int64), np.zeros(Y.shape[0], np.int64)
    pr_c[R], pc_c[Cc] = Cc, R
    rep_x, rep_y = np.zeros(X.shape[0], np.int64), np.zeros(Y.shape[0], np.int64)
    rep_x[lx], rep_y[ly] = np.arange(n), np.arange(m)
    _, g0 = _c_transform(lvl.check, y, X, F, cost, pc_c[ly])
    j0, f0 = _c_transform(lvl.check, x, y, g0, cost, rep_y[pr_c[lx]])
    vr, vc, _, _ = lvl.pricing(f0, g0, j0, rep_x[pc_c[ly]])
    key = _sorted_unique(np.concatenate([rows * np.int64(m) + cols, vr * m + vc]))
    # Warm starts help only from potentials complementary to a basis (those of
    # the previous round): the first solve is cold, on O(n + m) edges.
    f, g = None, None
    viol, ok, rnd = np.inf, False, 0
    clock = stats.seconds if depth == 0 else {}
    clock["lift"] = clock.get("lift", 0.0) + time.perf_counter() - t0
    for rnd in range(1, max_rounds + 1):
        t1 = time.perf_counter()
        fs, ft, fv, f, g, code, red = lvl.simplex(key, f, g, max_iter)
        t2 = time.perf_counter()
        if code == 0 and rnd == 1:  # rounding left the lifted plan infeasible
            block = _lift_support(R, Cc, lx, ly)
            key = np.union1d(key, block[0] * np.int64(m) + block[1])
            fs, ft, fv, f, g, code, red = lvl.simplex(key, None, None, max_iter)
            t2 = time.perf_counter()
        if code != 1:
            ok = False
            break
        # Columns are priced too in the first rounds, where it saves rounds;
        # later the rows alone (which certify) cost half as much.
        vr, vc, vv, viol = lvl.pricing(
            f, g, *lvl.partners(fs, ft), columns=rnd <= COLUMN_ROUNDS
        )
        t3 = time.perf_counter()
        clock["simplex"] = clock.get("simplex", 0.0) + t2 - t1
        clock["pricing"] = clock.get("pricing", 0.0) + t3 - t2
        if depth == 0:
            stats.rounds, stats.edges = rnd, max(stats.edges, int(key.size))
            stats.violations.append(viol)
        if bar is not None:
            bar.set_postfix_str(
                f"level {depth}, n={n}, round {rnd}, edges {key.size}, "
                f"violation {viol:.1e}",
                refresh=True,
            )
        hot = vv > ADD_TOL
        cand = np.unique(vr[hot] * np.int64(m) + vc[hot])
        pos = np.minimum(np.searchsorted(key, cand), key.size - 1)
        cand = cand[key[pos] != cand]
        if not cand.size:  # optimal, up to the sparse LP's own rounding
            ok = viol <= tol
            break
        if key.size > BUDGET * (n + m):
            key = lvl.prune(key, red, fs, ft)
        key = np.union1d(key, cand)
    if bar is not None:
        bar.update(1)
    stats.levels = max(stats.levels, depth + 1)
    stats.per_level.append(
        dict(
            depth=depth,
            n=n,
            m=m,
            rounds=rnd,
            edges=int(key.size),
            seconds=time.perf_counter() - t0,
        )
    )
    return fs, ft, fv, f, g, viol, rnd, ok


def _c_transform(check, x, y, g, cost, start=None):
    r"""Minimisers ``j`` and values :math:`\min_j c(x_i, y_j) - g_j` per row.

    The values are recomputed from coordinate differences at the minimisers.
    """
    start = np.zeros(x.shape[0], dtype=np.int64) if start is None else start
    j = check.argmin(x, y, g, start)
    return j, pair_costs(x, y, np.arange(x.shape[0]), j, cost) - g[j]


def dual_violation(
    x: np.ndarray, y: np.ndarray, f: np.ndarray, g: np.ndarray, cost: Cost
) -> float:
    r""":math:`\max_{ij} (f_i + g_j - c(x_i, y_j))^+` over all pairs, exactly.

    By the exact c-transform of :mod:`otgen.ot._ctransform` (no n x m matrix),
    with the violating pair's cost recomputed from coordinate differences.
    """
    _, gc = _c_transform(choose_ctransform(cost, x.shape[1]), x, y, g, cost)
    return max(float((f - gc).max()), 0.0)


def multiscale_exact(
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    cost: Cost,
    *,
    tol: float = 1e-9,
    max_rounds: int | None = None,
    max_iter: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Solution, MultiscaleStats]:
    """Solve exact OT between weighted point clouds (float64 NumPy, named cost).

    Returns the raw :class:`Solution` in the caller's units (value, plan,
    potentials), with ``converged`` True only when the certificate holds, and
    the solver's statistics. See the module docstring for the algorithm.
    """
    t_start = time.perf_counter()
    n, m = x.shape[0], y.shape[0]
    # Normalise: centred, the pooled bounding-box diagonal D becomes 1.
    z = np.concatenate([x, y])
    lo, hi = z.min(0), z.max(0)
    D = float(np.linalg.norm(hi - lo))
    D = D if D > 0 else 1.0
    centre = 0.5 * (lo + hi)
    xs, ys = (x - centre) / D, (y - centre) / D
    unit = D**cost.p
    # Unit mass (POT's tolerances are absolute), b at a's mass to the last bit.
    mass = float(a.sum())
    a = a / mass
    b = b / float(b.sum())
    b = b * a.sum() / b.sum()
    # Zero-weight points carry no mass: solved without them, their potentials
    # are c-transforms at the end (so that the certificate covers them too).
    ia, ib = np.flatnonzero(a > 0), np.flatnonzero(b > 0)
    stats = MultiscaleStats()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="exact OT (multiscale)", unit="level", leave=False)
    cap = UNBOUNDED_ITER if max_iter is None else int(max_iter)
    rounds_cap = 1000 if max_rounds is None else int(max_rounds)
    try:
        fs, ft, fv, f, g, viol, rnd, ok = _solve_level(
            xs[ia],
            ys[ib],
            a[ia],
            b[ib],
            cost,
            tol=tol,
            max_rounds=rounds_cap,
            max_iter=cap,
            depth=0,
            rng=np.random.default_rng(seed),
            stats=stats,
            bar=bar,
        )
    finally:
        if bar is not None:
            bar.close()
    rows, cols = ia[fs], ib[ft]
    # POT's potentials carry an arbitrary constant as large as its artificial
    # costs (1e6 seen at n = 2000), which would round every f_i + g_j - c_ij to
    # 1e-10: shift it out so that <a, f> = <b, g>.
    shift = 0.5 * (float(a[ia] @ f) - float(b[ib] @ g))
    F = np.zeros(n)
    G = np.zeros(m)
    F[ia], G[ib] = f - shift, g + shift
    check = choose_ctransform(cost, x.shape[1])
    if ib.size < m:  # zero-mass columns: g_j = min over massive rows
        G[b == 0] = _c_transform(check, ys[b == 0], xs[ia], F[ia], cost)[1]
    if ia.size < n:  # zero-mass rows: f_i = min over all columns
        F[a == 0] = _c_transform(check, xs[a == 0], ys, G, cost)[1]
    if ia.size < n or ib.size < m:
        viol = dual_violation(xs, ys, F, G, cost)
    value = float(fv @ pair_costs(xs, ys, rows, cols, cost))
    gap = abs(value - float(a @ F) - float(b @ G))
    # POT drops flows below 1e-15 from its output: the plan must still carry
    # the marginals (it does unless some weight is below that, relative).
    infeas = max(
        float(np.abs(np.bincount(rows, fv, minlength=n) - a).sum()),
        float(np.abs(np.bincount(cols, fv, minlength=m) - b).sum()),
    )
    converged = bool(ok and viol <= tol and gap <= tol and infeas <= tol)
    fv = fv * mass
    stats.seconds["total"] = time.perf_counter() - t_start
    if not converged:
        warnings.warn(
            f"the multiscale exact solver stopped before its certificate held "
            f"(largest dual violation {viol * unit:.3g}, {viol:.2e} of the largest "
            f"cost; duality gap {gap * unit:.3g}; marginal error {infeas:.2g}; "
            f"{rnd} rounds): the value may "
            "exceed the optimum by up to that violation times the mass "
            "(converged=False). Raise max_iter, or use solver='network_simplex' "
            "if the dense cost matrix fits in memory.",
            UserWarning,
            stacklevel=4,
        )
    sol = Solution(
        rows,
        cols,
        fv,
        F * unit,
        G * unit,
        value * unit * mass,
        "multiscale",
        converged,
        rnd,
        viol * unit,
    )
    return sol, stats
