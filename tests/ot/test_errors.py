"""Every error of the exact OT core: a ValueError naming parameter, constraint,
value received and a fix (matched here), never a wrong number or a crash.
"""

import numpy as np
import pytest
import torch

from otgen import cost_matrix, emd, exact_ot, gaussian_w2, sinkhorn, wasserstein
from otgen._validation import check_cost_matrix, check_positive
from otgen.ot.costs import resolve_cost

X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
Y = np.array([[1.0, 1.0], [2.0, 0.0]])
C = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
U3, U2 = np.full(3, 1 / 3), np.full(2, 1 / 2)


def with_nan(v, idx):
    v = np.array(v, dtype=float)
    v[idx] = np.nan
    return v


# --------------------------------------------------------------- non-finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_points(bad):
    x = X.copy()
    x[1, 0] = bad
    with pytest.raises(
        ValueError,
        match=r"x must be finite \(got 1 NaN or inf entries, "
        r"first at index \(1, 0\)\); remove or impute",
    ):
        exact_ot(x, Y)
    with pytest.raises(ValueError, match=r"y must be finite"):
        wasserstein(Y, x, p=1)
    with pytest.raises(ValueError, match=r"y must be finite"):
        wasserstein(Y[:, 0], x[:, 0], p=1)


def test_nonfinite_weights_and_costs():
    with pytest.raises(ValueError, match=r"a must be finite .*first at index \(2,\)"):
        exact_ot(X, Y, with_nan(U3, 2), U2)
    with pytest.raises(ValueError, match=r"b must be finite"):
        emd(U3, with_nan(U2, 0), C)
    with pytest.raises(ValueError, match=r"C must be finite .*index \(0, 1\)"):
        emd(U3, U2, with_nan(C, (0, 1)))
    with pytest.raises(ValueError, match=r"C must be finite"):
        emd(None, None, torch.tensor([[0.0, float("-inf")]]))
    # +inf marks a forbidden pair (issue 15): here no plan avoids it.
    with pytest.raises(ValueError, match=r"no transport plan avoids the forbidden"):
        emd(None, None, torch.tensor([[0.0, float("inf")]]))


def test_nonfinite_callable_cost():
    def bad(x, y):
        return torch.full((x.shape[0], y.shape[0]), float("nan"))

    with pytest.raises(
        ValueError,
        match=r"the cost matrix returned by cost must be "
        r"finite",
    ):
        exact_ot(X, Y, cost=bad)


# -------------------------------------------------------------------- shapes


def test_points_wrong_rank_empty_or_zero_dim():
    with pytest.raises(
        ValueError,
        match=r"x must be a 2-D array of points, shape "
        r"\(n, d\) \(got shape \(2, 2, 2\)\); reshape",
    ):
        exact_ot(np.zeros((2, 2, 2)), Y)
    with pytest.raises(ValueError, match=r"x must be a 2-D array"):
        exact_ot(torch.tensor(1.0), Y)
    # A NumPy or Python scalar is not silently read as a one-point sample.
    for scalar in (np.float64(3.0), 3.0):
        with pytest.raises(ValueError, match=r"x must be a 2-D array .*got shape \(\)"):
            wasserstein(scalar, np.array([1.0, 2.0]))
    with pytest.raises(
        ValueError,
        match=r"y must hold at least one point \(got shape "
        r"\(0, 2\)\); pass a non-empty sample",
    ):
        exact_ot(X, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"x must hold at least one point"):
        wasserstein(np.array([]), np.array([1.0]))
    with pytest.raises(
        ValueError,
        match=r"x must have at least one coordinate \(got "
        r"shape \(3, 0\)\)",
    ):
        exact_ot(np.zeros((3, 0)), np.zeros((2, 0)))


def test_dimension_mismatch():
    with pytest.raises(
        ValueError,
        match=r"x and y must have the same dimension \(got "
        r"2 and 3\); both must be \(n, d\) and \(m, d\)",
    ):
        exact_ot(X, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"same dimension"):
        wasserstein(X, np.zeros(4))


def test_weight_shapes():
    with pytest.raises(
        ValueError,
        match=r"a must be a 1-D weight vector of length 3, "
        r"one per point \(got shape \(2,\)\); pass shape \(3,\) or None",
    ):
        exact_ot(X, Y, U2, U2)
    with pytest.raises(ValueError, match=r"b must be a 1-D weight vector of length 2"):
        exact_ot(X, Y, U3, U2[:, None])
    with pytest.raises(ValueError, match=r"b must be a 1-D weight vector of length 2"):
        emd(U3, U3, C)  # C is (3, 2): b must have 2 entries
    with pytest.raises(ValueError, match=r"a must be a 1-D weight vector of length 1"):
        wasserstein([0.0], [1.0, 2.0], 1, a=[0.5, 0.5])


def test_cost_matrix_shape():
    with pytest.raises(
        ValueError,
        match=r"C must be a 2-D cost matrix \(got shape "
        r"\(3,\)\); pass C\[i, j\]",
    ):
        emd(None, None, np.ones(3))
    with pytest.raises(ValueError, match=r"C must be non-empty \(got shape \(0, 2\)\)"):
        emd(None, None, np.ones((0, 2)))
    with pytest.raises(
        ValueError,
        match=r"C must have shape \(3, 4\) to match a and "
        r"b \(got shape \(3, 2\)\); check the order",
    ):
        check_cost_matrix(C, 3, 4)


def test_callable_cost_wrong_shape():
    with pytest.raises(
        ValueError,
        match=r"cost must return a matrix of shape \(3, 2\) "
        r"\(got \(2, 3\)\); a callable cost maps",
    ):
        exact_ot(X, Y, cost=lambda x, y: torch.zeros(2, 3))


# ------------------------------------------------------------------- weights


def test_negative_weights():
    with pytest.raises(
        ValueError,
        match=r"a must be non-negative \(got a\[1\] = -0\.1\)"
        r"; weights are masses",
    ):
        exact_ot(X, Y, [0.6, -0.1, 0.5], U2)
    with pytest.raises(ValueError, match=r"b must be non-negative \(got b\[0\] = -1\)"):
        emd(U3, [-1.0, 2.0], C)
    with pytest.raises(ValueError, match=r"b must be non-negative"):
        wasserstein([0.0, 1.0], [1.0, 2.0], 1, b=[-1.0, 2.0])


def test_zero_total_mass():
    with pytest.raises(
        ValueError,
        match=r"a must have positive total mass \(got sum "
        r"0\); pass at least one positive weight",
    ):
        exact_ot(X, Y, np.zeros(3), U2)


def test_unequal_masses():
    with pytest.raises(
        ValueError,
        match=r"a and b must have the same total mass for "
        r"balanced OT \(got 1 and 2\); normalise both",
    ):
        exact_ot(X, Y, U3, 2 * U2)
    with pytest.raises(ValueError, match=r"same total mass"):
        emd(U3, [0.5, 0.6], C)
    with pytest.raises(ValueError, match=r"same total mass"):
        wasserstein([0.0, 1.0], [1.0, 2.0], 1, a=[1.0, 1.0])  # b: uniform, mass 1
    with pytest.raises(ValueError, match=r"same total mass"):
        wasserstein(X, Y, 2, a=[1.0, 1.0, 1.0])


def test_non_numeric_and_complex_input():
    with pytest.raises(
        ValueError,
        match=r"x must hold real numbers \(got dtype <U1\); "
        r"convert it",
    ):
        exact_ot(np.array([["a"]]), Y)
    with pytest.raises(
        ValueError,
        match=r"x must be an array of numbers \(got list\); "
        r"pass a NumPy array",
    ):
        exact_ot([[1.0], [1.0, 2.0]], Y)
    with pytest.raises(
        ValueError,
        match=r"a must be real \(got complex dtype "
        r"complex128\); pass its real part",
    ):
        emd(np.ones(3, dtype=complex) / 3, U2, C)
    with pytest.raises(
        ValueError,
        match=r"C must be real \(got complex dtype "
        r"torch.complex64\)",
    ):
        emd(None, None, torch.ones(2, 2, dtype=torch.complex64))


def test_tensors_on_different_devices():
    # The meta device stands in for a GPU: the check must fire before any compute.
    x = torch.zeros(3, 2)
    with pytest.raises(
        ValueError,
        match=r"all inputs must be on the same device \(got "
        r"a on meta, the points on cpu\); move them with \.to\(device\)",
    ):
        exact_ot(x, x, torch.ones(3, device="meta"))


@pytest.mark.gpu
def test_points_on_different_devices_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(
        ValueError,
        match=r"all inputs must be on the same device \(got "
        r"x on cpu, y on cuda:0\)",
    ):
        exact_ot(torch.zeros(3, 2), torch.zeros(3, 2, device="cuda"))


# ------------------------------------------------------------------- options


@pytest.mark.parametrize("p", [0.5, 0, -1, np.nan, np.inf])
def test_p_below_one(p):
    with pytest.raises(
        ValueError,
        match=r"p must be >= 1 \(got .*\): W_p is a metric "
        r"only for p >= 1; pass e\.g\. p=1 or p=2",
    ):
        wasserstein(X, Y, p=p)
    with pytest.raises(ValueError, match=r"p must be >= 1"):
        exact_ot(X, Y, cost="minkowski", p=p)


def test_p_not_a_number():
    with pytest.raises(ValueError, match=r"p must be a number >= 1 \(got 'two'\)"):
        wasserstein(X, Y, p="two")


def test_q_below_one():
    with pytest.raises(
        ValueError,
        match=r"q must be >= 1 for a norm \(got 0\.5\); "
        r"pass e\.g\. q=1, 2 or inf",
    ):
        exact_ot(X, Y, cost="minkowski", q=0.5)
    with pytest.raises(ValueError, match=r"q must be >= 1"):
        resolve_cost("minkowski", q=float("nan"))


def test_unknown_choices():
    with pytest.raises(
        ValueError,
        match=r"solver must be one of 'auto', "
        r"'network_simplex', 'assignment', 'sorted_1d', 'multiscale' \(got 'lp'\)",
    ):
        exact_ot(X, Y, solver="lp")
    with pytest.raises(
        ValueError,
        match=r"solver must be one of 'auto', "
        r"'network_simplex', 'assignment' \(got 'sorted_1d'\)",
    ):
        emd(None, None, C, solver="sorted_1d")
    with pytest.raises(
        ValueError,
        match=r"method must be one of 'auto', 'exact', 'sinkhorn' \(got "
        r"'lp'\)",
    ):
        wasserstein(X, Y, method="lp")
    with pytest.raises(
        ValueError,
        match=r"cost must be one of 'sqeuclidean', "
        r"'euclidean', 'minkowski'.* \(got 'cosine'\)",
    ):
        exact_ot(X, Y, cost="cosine")
    with pytest.raises(ValueError, match=r"cost must be one of"):
        cost_matrix(X, Y, "l1")


def test_solver_does_not_fit_the_problem():
    with pytest.raises(
        ValueError,
        match=r"solver='assignment' needs n == m and uniform "
        r"weights \(got n=3, m=2, uniform a: True, uniform b: True\); "
        r"use solver='network_simplex'",
    ):
        exact_ot(X, Y, solver="assignment")
    with pytest.raises(ValueError, match=r"uniform a: False"):
        emd([0.2, 0.8], [0.5, 0.5], C[:2], solver="assignment")
    with pytest.raises(
        ValueError,
        match=r"solver='sorted_1d' needs points on the line "
        r"and a cost \|x - y\|\^p \(got dimension 2, cost sqeuclidean\); "
        r"use solver='auto'",
    ):
        exact_ot(X, Y, solver="sorted_1d")
    with pytest.raises(ValueError, match=r"got dimension 1, cost <lambda>"):
        exact_ot(
            X[:, :1], Y[:, :1], cost=lambda x, y: (x - y.T) ** 2, solver="sorted_1d"
        )


def test_check_positive_messages():
    with pytest.raises(
        ValueError,
        match=r"eps must be a number \(got 'x'\); pass a "
        r"positive float",
    ):
        check_positive("x", "eps")
    with pytest.raises(
        ValueError,
        match=r"eps must be finite and > 0 \(got 0\); pass a "
        r"value > 0",
    ):
        check_positive(0, "eps")
    with pytest.raises(ValueError, match=r"tol must be finite and >= 0 \(got -1\)"):
        check_positive(-1, "tol", allow_zero=True)


# ------------------------------------------------------------------ gaussian


def test_gaussian_errors():
    eye = np.eye(2)
    with pytest.raises(
        ValueError,
        match=r"m1 must have shape \(\.\.\., d\) with d >= 1 "
        r"\(got \(\)\); pass a mean vector",
    ):
        gaussian_w2(torch.tensor(0.0), eye, np.zeros(2), eye)
    with pytest.raises(ValueError, match=r"m2 must be finite"):
        gaussian_w2(np.zeros(2), eye, with_nan(np.zeros(2), 0), eye)
    with pytest.raises(
        ValueError,
        match=r"m1 and m2 must have the same dimension \(got "
        r"2 and 3\); both Gaussians",
    ):
        gaussian_w2(np.zeros(2), eye, np.zeros(3), np.eye(3))
    with pytest.raises(
        ValueError,
        match=r"S2 must have shape \(\.\.\., 2, 2\) to match "
        r"the means \(got \(3, 3\)\)",
    ):
        gaussian_w2(np.zeros(2), eye, np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match=r"S1 must be finite"):
        gaussian_w2(np.zeros(2), with_nan(eye, (0, 1)), np.zeros(2), eye)
    with pytest.raises(
        ValueError,
        match=r"S1 must be symmetric \(got max \|S - S\^T\| = "
        r"1\); pass \(S \+ S\^T\) / 2",
    ):
        gaussian_w2(np.zeros(2), np.array([[1.0, 1.0], [0.0, 1.0]]), np.zeros(2), eye)
    with pytest.raises(
        ValueError,
        match=r"S2 must be positive semi-definite \(got "
        r"smallest eigenvalue -1\); pass a covariance matrix",
    ):
        gaussian_w2(np.zeros(2), eye, np.zeros(2), np.diag([1.0, -1.0]))


# --------------------------------------------- peers' failures otgen avoids


def test_empty_cost_matrix_is_an_error_not_a_crash():
    # POT's emd2 segfaults on empty input (ANCHORS.md).
    with pytest.raises(
        ValueError,
        match=r"a must be a 1-D weight vector of length 0|"
        r"C must be non-empty",
    ):
        emd(np.zeros(0), np.zeros(0), np.zeros((0, 0)))


def test_p_with_a_fixed_power_cost_is_an_error():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="p=1 does not apply to cost='sqeuclidean'"):
        sinkhorn(x, x + 1, eps=0.5, cost="sqeuclidean", p=1)
    with pytest.raises(ValueError, match="p=3 does not apply to cost='euclidean'"):
        exact_ot(x, x + 1, cost="euclidean", p=3)
