"""The transport LP solved by SciPy's HiGHS: the independent reference."""

import numpy as np
from scipy.optimize import linprog


def transport_lp(a, b, C, forbidden=None):
    """Primal and dual optimum of min <P, C> over P 1 = a, P^T 1 = b, P >= 0.

    ``forbidden``: a boolean (n, m) mask of pairs held at zero mass (their
    costs are ignored; the dual constraints skip them).
    """
    n, m = C.shape
    A = np.zeros((n + m, n * m))
    for i in range(n):
        A[i, i * m : (i + 1) * m] = 1.0
    for j in range(m):
        A[n + j, j::m] = 1.0
    keep = np.ones(n * m, dtype=bool) if forbidden is None else ~forbidden.ravel()
    c = np.where(keep, C.ravel(), 0.0)
    bounds = [(0, None) if k else (0, 0) for k in keep]
    primal = linprog(c, A_eq=A, b_eq=np.r_[a, b], bounds=bounds, method="highs-ds")
    dual = linprog(
        -np.r_[a, b],
        A_ub=A.T[keep],
        b_ub=C.ravel()[keep],
        bounds=(None, None),
        method="highs-ds",
    )
    assert primal.status == 0 and dual.status == 0
    return primal.fun, -dual.fun
