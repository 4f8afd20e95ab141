r"""When the Sinkhorn loop stops at the target eps.

Two rules, either or both:

- **the value rule** (``rtol``; the default for balanced problems): stop when
  further iterations cannot move the value by more than ``rtol`` times
  :math:`|\mathrm{OT}_\varepsilon| + \varepsilon\, m(a)`, the value's own
  scale (or eps times the mass, for values near zero);
- **the marginal rule** (``tol``): stop when the plan's relative L1 marginal
  errors are below ``tol``.

The value rule rests on two facts. At the target eps each balanced update is
an exact block maximisation of the concave dual

.. math::
    F(f, g) = \langle a, f\rangle + \langle b, g\rangle - \varepsilon\,
    \big(\langle a \otimes b, e^{(f \oplus g - C)/\varepsilon}\rangle
    - m(a) m(b)\big),

so the values :math:`F_k` of successive iterations increase to
:math:`\mathrm{OT}_\varepsilon`; and Sinkhorn converges linearly
:cite:`peyre2019computational`, so the increments
:math:`\Delta_k = F_k - F_{k-1}` decay geometrically, with ratio
:math:`\rho`, once the iterates are close. What is left to gain is then
:math:`\sum_{l > k} \Delta_l = \Delta_k \rho / (1 - \rho)`. The rule
estimates :math:`\rho` by the larger of the last two ratios
:math:`|\Delta_k| / |\Delta_{k-1}|` (absolute values: the averaged
symmetric updates need not be monotone) and stops when this estimate of the remaining
gain is below ``rtol`` times the scale. Increments below the rounding of the
working precision count as zero (the value no longer moves in that
precision). Symmetric problems (:math:`\mathrm{OT}_\varepsilon(\alpha,
\alpha)`) use the same rule on :math:`F(f, f)`.

The marginal rule certifies the plan, the value rule the number: at the
default ``eps`` the entropic bias dominates the error against exact OT long
before the marginals reach 1e-3, and the value converges faster than the
marginals (its error is second order in theirs). Measured effect:
benchmarks/README.md, "Sinkhorn stopping rule".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_RTOL", "DEFAULT_TOL", "Stop", "ValueRule"]

# Relative change of the value that more iterations may still bring.
DEFAULT_RTOL = 1e-4
# Marginal tolerance: the default of the marginal rule (unbalanced problems),
# and the precision the working dtype must reach under the value rule.
DEFAULT_TOL = 1e-3
# Increments below this many rounding units of the potentials' size (times
# the mass) are rounding, not progress.
_NOISE_UNITS = 2.0
# Increments needed before the first estimate (the power-law exponent
# compares the increments at k / 2 and k).
_MIN_STEPS = 6


@dataclass(frozen=True)
class Stop:
    """The stopping rule at the target eps.

    ``tol``: the marginal tolerance (also what the working precision must
    reach, see :mod:`otgen.ot.sinkhorn`); ``marginal``: whether the marginal
    rule applies; ``rtol``: the value rule's relative tolerance, None when off.
    At least one rule is on.
    """

    tol: float = DEFAULT_TOL
    rtol: float | None = DEFAULT_RTOL
    marginal: bool = False


class ValueRule:
    r"""Tracks the dual values of one loop and says when they have settled.

    ``update(value, step, size, eps_mass)`` takes the current dual value, its
    increment since the last call (computed by the caller from the change of
    the potentials, which float32 rounds far less than the value itself), the
    size of the potentials times the mass (the rounding floor's scale) and
    :math:`\varepsilon\, m(a)`; it returns True once the estimated
    remaining gain is at most ``rtol (|value| + eps m(a))``. ``remaining`` is
    the last estimate, relative to that scale (inf before there is one, or
    while the increments do not shrink); ``last`` the last increment, relative
    to the same scale.

    A value that alternates between two numbers (the working precision's
    rounding cycle) has the cycle's amplitude as its remaining change.

    The estimate is the larger of two tails: the geometric one
    :math:`\Delta_k \rho / (1 - \rho)`, and the power-law one
    :math:`\Delta_k k / (\alpha - 1)` for increments decaying like
    :math:`k^{-\alpha}` (:math:`\alpha` from :math:`\Delta_{k/2} /
    \Delta_k`), which is what the first iterations after the annealing show
    (their ratios creep up towards 1, so a geometric extrapolation alone
    stops early).
    """

    def __init__(self, rtol: float, unit: float) -> None:
        self.rtol = rtol
        self.unit = unit  # unit roundoff of the working dtype
        self.steps: list[float] = []
        self.remaining = math.inf
        self.last = math.inf
        self.values: list[float] = []  # the last four values

    def update(self, value: float, step: float, size: float, eps_mass: float) -> bool:
        noise = _NOISE_UNITS * self.unit * size
        self.steps.append(0.0 if abs(step) <= noise else abs(step))
        self.values = [*self.values[-3:], value]
        d, k, v = self.steps, len(self.steps), self.values
        scale = abs(value) + eps_mass
        if k >= 2 and d[-1] == 0.0 and d[-2] == 0.0:
            tail = 0.0  # the value no longer moves in this precision
        elif len(v) == 4 and v[-1] == v[-3] != v[-2] == v[-4]:
            # A rounding cycle of period 2 (float32 averaged updates can
            # alternate between two states): more iterations only repeat it,
            # so the value stays within the cycle's amplitude.
            tail = abs(v[-1] - v[-2])
        elif k >= _MIN_STEPS and min(d[-3:]) > 0.0:
            rho = max(d[-1] / d[-2], d[-2] / d[-3])
            tail = math.inf if rho >= 1 else d[-1] * rho / (1 - rho)
            h = k // 2
            alpha = math.log(d[h - 1] / d[-1]) / math.log(k / h) if d[h - 1] else 0.0
            tail = max(tail, d[-1] * k / (alpha - 1) if alpha > 1 else math.inf)
        else:
            tail = math.inf
        self.remaining = tail / scale if scale > 0 else (0.0 if tail == 0 else tail)
        self.last = d[-1] / scale if scale > 0 else d[-1]
        return self.remaining <= self.rtol
