r"""Discrete solvers for the theory: encoder LPs, POT values, Kantorovich duals.

Every problem here is finite: the data law is :math:`P_X = \sum_i p_i
\delta_{x_i}`, the prior :math:`P_Z = \sum_j r_j \delta_{z_j}`, and an encoder
may only use the prior atoms as codes, so a random encoder is a plan
:math:`\pi_{ij} = p_i Q(z_j | x_i)` with row sums :math:`p`. With the cost
matrix :math:`C_{ij} = c(x_i, G(z_j))` (a deterministic decoder) or
:math:`C_{ij} = E_{P_G(Y|z_j)} c(x_i, Y)` (a random one):

- :func:`encoder_lp`: :math:`\min \{\langle C, \pi\rangle : \pi 1 = p,\
  \pi^\top 1 = r\}`, the constrained problem of Theorem A (and :math:`W_c^\dagger`
  of Theorem B), with its dual :math:`\max p^\top u - r^\top h`,
  :math:`u_i - h_j \le C_{ij}`;
- :func:`deterministic_encoder`: the same over deterministic encoders (a MILP;
  :math:`+\infty` when none is feasible, Prop. A1);
- :func:`pot_w1`, :func:`pot_tv`, :func:`pot_mmd2`: the penalised value
  :math:`D_{POT}(\lambda) = \min_{\pi 1 = p} \langle C, \pi\rangle + \lambda
  D_Z(\pi^\top 1, r)`;
- :func:`kr_dual`: the Kantorovich-Rubinstein dual of :math:`W_1`;
- :func:`encoder_dual_lp`, :func:`pot_w1_dual`, :func:`c_transform_critic`: the
  Lagrange duals of Prop. W and the WGAN critic they give.

LPs are solved by HiGHS (``scipy.optimize.linprog``) with sparse constraint
matrices; the MMD QP by a primal active-set method (SLSQP as a fallback) with
a Frank-Wolfe duality-gap certificate.
These solvers are independent of :mod:`otgen.ot` on purpose: the checks
compare them with its exact OT.

This module gathers them; they live in :mod:`otgen.theory.encoders` (Theorem A,
Prop. A1), :mod:`otgen.theory.pot` (penalised values, the MMD² QP) and
:mod:`otgen.theory.duals` (Prop. W, Kantorovich-Rubinstein, critics), on the
result types and LP helpers of ``otgen.theory._lp_core``.
"""

from otgen.theory._lp_core import EncoderLP, POTResult
from otgen.theory.duals import c_transform_critic, encoder_dual_lp, kr_dual, pot_w1_dual
from otgen.theory.encoders import deterministic_encoder, encoder_lp
from otgen.theory.pot import pot_mmd2, pot_tv, pot_w1

__all__ = [
    "EncoderLP",
    "POTResult",
    "c_transform_critic",
    "deterministic_encoder",
    "encoder_dual_lp",
    "encoder_lp",
    "kr_dual",
    "pot_mmd2",
    "pot_tv",
    "pot_w1",
    "pot_w1_dual",
]
