"""The Sinkhorn stopping rules: the value rule keeps its promise, the marginal rule
its tolerance, against tightly converged float64 references."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import otgen
from otgen.ot import _stopping
from otgen.ot._stopping import DEFAULT_RTOL, ValueRule
from otgen.ot.costs import resolve_cost
from otgen.ot.sinkhorn import default_eps


def clouds(n, m, d, seed, shift=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 1.5 * torch.randn(m, d, generator=g, dtype=torch.float64) + shift
    return x, y


def reference(x, y, a=None, b=None, eps=None):
    """OT_eps in float64 by Newton's method on the semi-dual (independent).

    max_g H(g) = <b, g> + sum_i a_i f_i(g), f_i = -eps log sum_j b_j
    exp((g_j - C_ij) / eps); the gradient is b - P^T 1 and the Hessian
    (P^T diag(1 / a) P - diag(P^T 1)) / eps, P the plan whose rows sum to a.
    Newton steps with backtracking from the marginal rule's potentials
    (tol=1e-3), until the gradient (the column marginal's L1 error, which
    certifies the optimum whatever the start) is below 1e-12.
    """
    if eps is None:
        eps = default_eps(x, y, resolve_cost("sqeuclidean"))
    xn, yn = x.double().numpy(), y.double().numpy()
    n, m = len(xn), len(yn)
    an = np.full(n, 1 / n) if a is None else a.double().numpy()
    bn = np.full(m, 1 / m) if b is None else b.double().numpy()
    C = ((xn[:, None, :] - yn[None, :, :]) ** 2).sum(-1)
    s = C.max()  # work in units of the cost range (eps / s is what matters)
    Cs, e = C / s, eps / s

    def parts(g):
        h = np.log(bn)[None, :] + (g[None, :] - Cs) / e
        lse = logsumexp(h, axis=1)
        P = an[:, None] * np.exp(h - lse[:, None])  # rows sum to a
        return bn @ g - e * (an @ lse), bn - P.sum(0), P

    g = otgen.sinkhorn(x, y, a, b, eps=eps, tol=1e-3).g.double().numpy() / s
    val, grad, P = parts(g)
    for _ in range(500):
        if np.abs(grad).sum() < 1e-13:
            break
        H = (P.T @ (P / an[:, None]) - np.diag(P.sum(0))) / e
        step = np.linalg.lstsq(H, -grad, rcond=1e-12)[0]  # cut the null space
        t = 1.0
        while True:
            v2, g2, P2 = parts(g + t * step)
            if v2 >= val - 1e-15 * abs(val) or t < 1e-8:
                break
            t /= 2
        g, val, grad, P = g + t * step, v2, g2, P2
    assert np.abs(grad).sum() < 1e-12
    return float(val * s)


def promise(r, ref, rtol):
    """|value - ref| against the rule's bound rtol (|value| + eps m(a))."""
    return abs(float(r.value) - ref) / (rtol * (abs(ref) + r.eps))


CASES = [  # n, m, d, eps (None: default), weighted
    (300, 300, 2, None, False),
    (300, 200, 3, None, True),
    (250, 250, 3, 0.02, False),
    (200, 260, 5, None, True),
    (200, 200, 8, None, False),
]


@pytest.mark.parametrize("n, m, d, eps, weighted", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_value_rule_keeps_its_promise(n, m, d, eps, weighted, dtype):
    x, y = clouds(n, m, d, seed=n + d)
    a = b = None
    if weighted:
        g = torch.Generator().manual_seed(1)
        a = torch.rand(n, generator=g, dtype=torch.float64) + 0.1
        b = torch.rand(m, generator=g, dtype=torch.float64) + 0.1
        a, b = a / a.sum(), b / b.sum()
    ref = reference(x, y, a, b, eps)
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    r = otgen.sinkhorn(cast(x), cast(y), cast(a), cast(b), eps=eps)
    assert r.converged
    # float32 data: the value is also rounded to float32 (~6e-8 of itself).
    assert promise(r, ref, DEFAULT_RTOL) <= 1.0


def test_value_rule_is_faster_than_the_old_marginal_default():
    x, y = clouds(500, 500, 3, seed=3)
    fast = otgen.sinkhorn(x, y)
    slow = otgen.sinkhorn(x, y, tol=1e-3)
    assert fast.converged and slow.converged
    assert fast.n_iter < slow.n_iter


@pytest.mark.parametrize("rtol", [1e-3, 1e-5])
def test_rtol_is_the_stated_fraction(rtol):
    x, y = clouds(400, 400, 3, seed=5)
    ref = reference(x, y)
    r = otgen.sinkhorn(x, y, rtol=rtol)
    assert promise(r, ref, rtol) <= 1.0


def test_geometric_extrapolation_alone_would_break_the_promise(monkeypatch):
    # Planted defect: the tail estimated as geometric only. After the
    # annealing the increments decay like a power of k (their ratios creep up
    # towards 1), so this estimate stops too early and the test sees it.
    x, y = clouds(1000, 1000, 3, seed=0)
    ref = reference(x, y)

    def geometric_only(self, value, step, size, eps_mass):
        self.steps.append(abs(step))
        d = self.steps
        if len(d) < 3 or min(d[-3:]) == 0:
            self.remaining = math.inf
        else:
            rho = max(d[-1] / d[-2], d[-2] / d[-3])
            tail = math.inf if rho >= 1 else d[-1] * rho / (1 - rho)
            self.remaining = tail / (abs(value) + eps_mass)
        return self.remaining <= self.rtol

    good = otgen.sinkhorn(x, y, rtol=1e-4)
    assert promise(good, ref, 1e-4) <= 1.0
    monkeypatch.setattr(_stopping.ValueRule, "update", geometric_only)
    bad = otgen.sinkhorn(x, y, rtol=1e-4)
    assert promise(bad, ref, 1e-4) > 1.0


def test_value_rule_tail_estimates():
    # Geometric increments 2^-k: at least the exact tail 2^-11, at most a
    # few times it (the power-law estimate is the larger one early on).
    rule = ValueRule(rtol=1e-300, unit=0.0)
    for k in range(1, 12):
        rule.update(1.0, 2.0**-k, 1.0, 0.0)
    assert 2.0**-11 <= rule.remaining <= 4 * 2.0**-11
    # Power-law increments k^-2 (tail ~ 1/k): never below the true tail.
    rule = ValueRule(rtol=1e-300, unit=0.0)
    partial = 0.0
    for k in range(1, 200):
        rule.update(1.0, k**-2.0, 1.0, 0.0)
        partial += k**-2.0
        if k >= 10:
            true_tail = math.pi**2 / 6 - partial
            assert rule.remaining >= 0.9 * true_tail
    # Increments below the rounding floor: the value no longer moves.
    rule = ValueRule(rtol=1e-9, unit=1e-8)
    assert not rule.update(1.0, 1e-9, 1.0, 0.0)
    assert rule.update(1.0, 1e-9, 1.0, 0.0)


def test_marginal_rule_when_tol_is_given():
    x, y = clouds(300, 300, 3, seed=7)
    r = otgen.sinkhorn(x, y, tol=1e-5, max_iter=100_000)
    assert r.converged and max(r.marginal_error) <= 1e-5
    both = otgen.sinkhorn(x, y, tol=1e-2, rtol=1e-5)
    only = otgen.sinkhorn(x, y, tol=1e-2)
    assert both.n_iter > only.n_iter  # both rules must hold
    ref = reference(x, y)
    assert promise(both, ref, 1e-5) <= 1.0


def test_divergence_default_matches_a_tight_solve():
    x, y = clouds(300, 250, 3, seed=9)
    tight = otgen.sinkhorn_divergence(x, y, tol=1e-8, max_iter=200_000)
    s = otgen.sinkhorn_divergence(x, y)
    terms = [abs(reference(u, v)) for u, v in ((x, y), (x, x), (y, y))]
    bound = DEFAULT_RTOL * (terms[0] + 0.5 * terms[1] + 0.5 * terms[2] + 2 * 0.1)
    assert abs(float(s) - float(tight)) <= bound


def test_capped_value_rule_warns_and_is_not_converged():
    x, y = clouds(300, 300, 3, seed=11)
    with pytest.warns(UserWarning, match="rtol=1e-12"):
        r = otgen.sinkhorn(x, y, rtol=1e-12, max_iter=5)
    assert not r.converged


def test_capped_warning_says_whether_it_has_an_estimate():
    x, y = clouds(300, 300, 3, seed=11)
    # Too few increments for an estimate: the warning says so, with the last
    # increment, and prints no "inf".
    with pytest.warns(UserWarning, match="no estimate") as rec:
        otgen.sinkhorn(x, y, max_iter=2)
    text = " ".join(str(w.message) for w in rec)
    assert "inf" not in text.replace("info", "")
    assert "the last was" in text
    # Enough shrinking increments: the estimate, which exceeds rtol.
    with pytest.warns(UserWarning, match="may still move by about") as rec:
        otgen.sinkhorn(x, y, rtol=1e-12, max_iter=60)
    assert "no estimate" not in " ".join(str(w.message) for w in rec)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rtol=0.0), "rtol"),
        (dict(rtol=-1e-3), "rtol"),
        (dict(rtol=1e-3, reach=1.0), "reach"),
    ],
)
def test_bad_rtol(kw, match):
    x, y = clouds(20, 20, 2, seed=0)
    with pytest.raises(ValueError, match=match):
        otgen.sinkhorn(x, y, **kw)


def test_unbalanced_default_is_the_marginal_rule():
    x, y = clouds(200, 200, 2, seed=2)
    r = otgen.sinkhorn(x, y, reach=1.0)
    assert r.converged and max(r.marginal_error) <= 1e-3


def test_numpy_and_torch_agree():
    x, y = clouds(200, 150, 3, seed=4)
    vt = float(otgen.sinkhorn(x, y).value)
    vn = float(otgen.sinkhorn(x.numpy(), y.numpy()).value)
    assert np.isclose(vt, vn, rtol=1e-12)


def test_capped_divergence_warns_once_naming_its_problems():
    x, y = clouds(200, 150, 3, seed=12)
    with pytest.warns(UserWarning) as rec:
        otgen.sinkhorn_divergence(x, y, max_iter=2)
    mine = [w for w in rec if "sinkhorn_divergence did not converge" in str(w.message)]
    assert len(mine) == 1
    assert all(k in str(mine[0].message) for k in ("OT(a,b)", "OT(a,a)", "OT(b,b)"))


def test_rounding_cycle_bounds_the_remaining_change():
    # Values alternating between two numbers: more iterations only repeat the
    # cycle, so what is left is its amplitude (here 1e-6 of the value).
    rule = ValueRule(1e-4, 2.0**-24)
    for k in range(8):
        value = 1.0 + (1e-6 if k % 2 else 0.0)
        done = rule.update(value, 1e-6, 1e-3, 0.0)
    assert done and rule.remaining == pytest.approx(1e-6, rel=1e-5)
    # A cycle wider than rtol is not settled.
    rule = ValueRule(1e-4, 2.0**-24)
    for k in range(8):
        done = rule.update(1.0 + (1e-3 if k % 2 else 0.0), 1e-3, 1e-3, 0.0)
    assert not done


def test_float32_symmetric_cycle_converges_to_the_float64_value():
    # Averaged symmetric updates in float32 fall into a 2-cycle here (codes
    # packed near one point, eps = 0.2): this ran to max_iter and warned.
    g = torch.Generator().manual_seed(0)
    x = 0.01 * torch.randn(64, 8, generator=g) + 0.5
    r = otgen.sinkhorn(x, x, eps=0.2)
    assert r.converged
    ref = otgen.sinkhorn(x.double(), x.double(), eps=0.2, rtol=1e-10)
    assert abs(float(r.value) - float(ref.value)) <= DEFAULT_RTOL * (
        abs(float(ref.value)) + 0.2
    )
