"""Every check of docs/paper.md section 5 passes over seeds and small sizes, and a
deliberately broken instance makes the right check fail (so checks can fail)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otgen.theory.checks import CHECKS, CheckResult, holds, run_checks

SEEDS = st.integers(0, 2**31 - 1)


def _assert_all_pass(results):
    assert results and all(isinstance(r, CheckResult) for r in results)
    bad = [
        (r.name, r.lhs, r.relation, r.rhs, r.tolerance) for r in results if not r.passed
    ]
    assert bad == []


def test_registry_covers_items_1_to_16():
    assert sorted(CHECKS) == list(range(1, 17))
    names = [r.name for r in run_checks(0, quick=True, items=[14, 15])]
    assert names == [f"14.{k}" for k in range(1, 6)] + [f"15.{k}" for k in range(1, 5)]


@pytest.mark.parametrize(
    "lhs, rhs, rel, tol, expected",
    [
        (1.0, 1.0 + 1e-9, "==", 1e-8, True),
        (1.0, 1.1, "==", 1e-8, False),
        (1.0, 1.0, "<", 1e-8, False),  # strict means beyond the tolerance
        (0.0, 1.0, "<", 1e-8, True),
        (1.0 + 1e-9, 1.0, "<=", 1e-8, True),
        (math.inf, math.inf, "==", 0.0, True),
        (1.0, math.inf, "==", 0.0, False),
        (math.nan, 0.0, "==", 1.0, False),
    ],
)
def test_relations(lhs, rhs, rel, tol, expected):
    assert holds(lhs, rhs, rel, tol) is expected


# Fast discrete items: several seeds and sizes.
@pytest.mark.parametrize("item", [1, 2, 3, 4, 7, 8, 9])
@given(seed=SEEDS, n=st.integers(1, 6), m=st.integers(1, 5))
@settings(max_examples=4, deadline=None)
def test_discrete_items_pass(item, seed, n, m):
    _assert_all_pass(CHECKS[item].fn(seed, n=n, m=m))


@pytest.mark.parametrize("item", [5, 6])
@given(seed=SEEDS, n=st.integers(1, 5), m=st.integers(1, 5))
@settings(max_examples=4, deadline=None)
def test_pot_items_pass(item, seed, n, m):
    _assert_all_pass(CHECKS[item].fn(seed, n=n, m=m))


@given(seed=SEEDS)
@settings(max_examples=2, deadline=None)
def test_gaussian_item_passes(seed):
    _assert_all_pass(CHECKS[10].fn(seed, mc=2000))


@given(seed=SEEDS, n=st.integers(2, 3))
@settings(max_examples=2, deadline=None)
def test_blur_item_passes(seed, n):
    _assert_all_pass(CHECKS[11].fn(seed, n=n, mc=2000))


@given(seed=SEEDS, n=st.integers(1, 3))
@settings(max_examples=2, deadline=None)
def test_vae_item_passes(seed, n):
    _assert_all_pass(CHECKS[12].fn(seed, n=n))


@given(seed=SEEDS, n=st.integers(6, 12))
@settings(max_examples=2, deadline=None)
def test_mmd_item_passes(seed, n):
    _assert_all_pass(CHECKS[13].fn(seed, n=n, mc=200))


@pytest.mark.parametrize("item", [14, 15])
@given(seed=SEEDS, n=st.integers(2, 8))
@settings(max_examples=4, deadline=None)
def test_gan_items_pass(item, seed, n):
    _assert_all_pass(CHECKS[item].fn(seed, n=n))


@pytest.mark.slow
@pytest.mark.parametrize("item", sorted(CHECKS))
def test_full_sizes_pass(item):  # item 16 at full size: 1000 training steps
    it = CHECKS[item]
    _assert_all_pass(it.fn(7, **it.full))


# -- broken instances: the right check fails ----------------------------------

BROKEN = [
    # (item, sizes, broken keyword, the checks that must fail)
    (1, dict(n=5, m=4), dict(descending=True), {"1.3"}),
    (2, dict(n=5, m=4), dict(decoder_noise=0.5), {"2.1"}),
    (3, dict(n=5, m=3), dict(reachable=True), {"3.1"}),
    (4, dict(n=5, m=4), dict(noise_mean=0.2), {"4.5"}),
    (5, dict(n=4, m=3), dict(wc_scale=0.5), {"5.1"}),
    (6, dict(n=4, m=3), dict(penalty="w1"), {"6.1"}),
    (7, dict(n=5, m=4), dict(lam_factor=0.0), {"7.1"}),
    (8, dict(n=5, m=4), dict(metric_scale=0.5), {"8.1"}),
    (9, dict(n=5, m=4), dict(h_perturb=0.3), {"9.3"}),
    (10, dict(mc=2000), dict(map_scale=1.1), {"10.2", "10.3", "10.4", "10.5", "10.6"}),
    (11, dict(n=3, mc=2000), dict(decoder_shift=0.3), {"11.1", "11.2", "11.3"}),
    (12, dict(n=3), dict(kl_prior_std=1.7), {"12.1"}),
    (13, dict(n=8, mc=400), dict(estimator="biased"), {"13.1", "13.2", "13.3"}),
    (14, dict(n=5), dict(logit_shift=0.3), {"14.1", "14.2", "14.5"}),
    (15, dict(n=8), dict(lam_aae=3.0), {"15.1", "15.2"}),
    (15, dict(n=8), dict(seed_aae=4), {"15.1", "15.2", "15.4"}),
    # item 16 (a trained model) has its broken instances in test_models_items.py
]


@pytest.mark.parametrize("item, sizes, broken, must_fail", BROKEN)
def test_broken_instance_fails_the_right_check(item, sizes, broken, must_fail):
    fn = CHECKS[item].fn
    assert all(r.passed for r in fn(3, **sizes)), "the sound instance must pass"
    failed = {r.name for r in fn(3, **sizes, **broken) if not r.passed}
    assert must_fail <= failed, (must_fail, failed)
