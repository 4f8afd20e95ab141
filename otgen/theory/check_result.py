r"""The result of one numerical check, and the tolerances of docs/paper.md.

Tolerances follow docs/paper.md section 5: linear programs 1e-8 relative,
quadrature 1e-7, Monte Carlo 4 standard errors; numerical maximisers 1e-6
(an argmax is found to about the square root of machine epsilon); algebraic
identities 1e-10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "holds"]

LP_RTOL = 1e-8  # linear programs (docs/paper.md section 5)
QUAD_RTOL = 1e-7  # adaptive quadrature
MC_SE = 4.0  # Monte Carlo: standard errors
# Numerical maximisation of smooth concave objectives: the argmax is found to
# about sqrt(machine epsilon), so these compare at 1e-6, not 1e-8.
OPT_TOL = 1e-6
EXACT_TOL = 1e-10  # algebraic identities evaluated in float64

_RELATIONS = ("==", "<=", ">=", "<", ">")


@dataclass(frozen=True)
class CheckResult:
    r"""The outcome of one numerical check.

    Attributes
    ----------
    name : str
        Identifier ``"item.k"``, e.g. ``"2.1"``.
    title : str
        Short title (the result checked).
    statement : str
        The statement in words.
    lhs, rhs : float
        The two sides compared.
    relation : {"==", "<=", ">=", "<", ">"}
        ``"=="``: :math:`|lhs - rhs| \le tol`; ``"<="``: :math:`lhs \le rhs + tol`;
        ``"<"``: :math:`lhs < rhs - tol` (strict beyond the tolerance); and
        symmetrically.
    tolerance : float
        Absolute tolerance.
    passed : bool
        Whether the relation holds.
    item : int
        The item of docs/paper.md section 5.
    data : dict
        What a figure or a reader needs (instance, curves, sub-values).
    seconds : float
        Wall time of the item that produced it.
    """

    name: str
    title: str
    statement: str
    lhs: float
    rhs: float
    relation: str
    tolerance: float
    passed: bool
    item: int
    data: dict = field(default_factory=dict, repr=False)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the figure data)."""
        return {
            "name": self.name,
            "title": self.title,
            "statement": self.statement,
            "lhs": _json_float(self.lhs),
            "rhs": _json_float(self.rhs),
            "relation": self.relation,
            "tolerance": _json_float(self.tolerance),
            "passed": self.passed,
            "item": self.item,
            "seconds": self.seconds,
        }


def _json_float(v: float) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v)


def holds(lhs: float, rhs: float, relation: str, tol: float) -> bool:
    """Whether ``lhs relation rhs`` holds within ``tol`` (see CheckResult)."""
    lhs, rhs = float(lhs), float(rhs)
    if math.isinf(lhs) or math.isinf(rhs):
        if relation == "==":
            return lhs == rhs
        lhs_, rhs_ = lhs, rhs
        return bool(
            {
                "<=": lhs_ <= rhs_,
                ">=": lhs_ >= rhs_,
                "<": lhs_ < rhs_,
                ">": lhs_ > rhs_,
            }[relation]
        )
    if not (math.isfinite(lhs) and math.isfinite(rhs)):
        return False
    return bool(
        {
            "==": abs(lhs - rhs) <= tol,
            "<=": lhs <= rhs + tol,
            ">=": lhs >= rhs - tol,
            "<": lhs < rhs - tol,
            ">": lhs > rhs + tol,
        }[relation]
    )


def _res(item, k, title, statement, lhs, rhs, relation, tol, **data) -> CheckResult:
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {_RELATIONS} (got {relation!r})")
    return CheckResult(
        name=f"{item}.{k}",
        title=title,
        statement=statement,
        lhs=float(lhs),
        rhs=float(rhs),
        relation=relation,
        tolerance=float(tol),
        passed=holds(lhs, rhs, relation, tol),
        item=item,
        data=data,
    )


def _rtol(rtol: float, *vals: float) -> float:
    """``rtol`` relative to the largest finite value (floor 1e-12: scale of 0)."""
    finite = [abs(float(v)) for v in vals if math.isfinite(float(v))]
    return rtol * max([1e-12, *finite])
