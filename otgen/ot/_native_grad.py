"""Autograd Functions of the native loops (the ``Native`` reduction).

Soft-mins and kernel sums of :class:`otgen.ot._reduce.Native` whose backward
passes run on the same fused loops, in O(n + m) memory.
"""

from __future__ import annotations

import torch

from otgen.ot import _native

__all__ = ["native_kind", "NativeSoftmin", "NativeKernelMatmul", "NativeQuadform"]


def native_kind(kernel) -> str | None:
    """The native loops' name of a named kernel (None: they cannot run it)."""
    if kernel.fn is not None:
        return None
    if kernel.name == "energy":
        return {1.0: "energy1", 2.0: "energy2"}.get(float(kernel.beta))
    return kernel.name


class NativeSoftmin(torch.autograd.Function):
    """Differentiable soft-min by the native loops (backward: two more passes).

    ``units_rows`` / ``units_cols``: the block-sparse pair lists of the
    multiscale solver (:mod:`otgen.ot._multiscale`) seen from x and from y;
    None: all pairs.
    """

    @staticmethod
    def forward(ctx, x, y, h, eps, cost, units_rows=None, units_cols=None):
        xd, yd, hd = x.detach(), y.detach(), h.detach()
        p = int(cost.p)
        lse = _native.lse_rows(xd, yd.T.contiguous(), hd, eps, p, units_rows)
        ctx.save_for_backward(x, y, h, lse)
        ctx.eps, ctx.p, ctx.units = eps, p, (units_rows, units_cols)
        return -eps * lse

    @staticmethod
    def backward(ctx, go):
        x, y, h, lse = ctx.saved_tensors
        eps, p, (ur, uc) = ctx.eps, ctx.p, ctx.units
        xd, yd, hd, go = x.detach(), y.detach(), h.detach(), go.detach()
        gx = gy = gh = None
        # P_ij = exp(h_j - C_ij / eps - lse_i); d out_i / d C_ij = P_ij.
        if ctx.needs_input_grad[0]:
            yt = yd.T.contiguous()
            G, _ = _native.expgrad_rows(xd, yt, -lse, hd, None, eps, p, ur)
            gx = go[:, None] * G
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            # Rows y_j, columns x_i, weights go_i: sum_i go_i P_ij grad_y C_ij.
            xt = xd.T.contiguous()
            G, S = _native.expgrad_rows(yd, xt, hd, -lse, go, eps, p, uc)
            if ctx.needs_input_grad[1]:
                gy = G
            if ctx.needs_input_grad[2]:
                gh = -eps * S
        return gx, gy, gh, None, None, None, None


def _native_kernel_rows(kernel, x, yt, V, tri: bool) -> torch.Tensor:
    """``sum_j k(x_i, y_j) V_j`` (float64), at most 8 columns of V per call."""
    kind, scales = native_kind(kernel), kernel.scales
    parts = [
        _native.kernel_rows(kind, scales, x, yt, V[:, c : c + 8].T.to(x.dtype), tri)
        for c in range(0, V.shape[1], 8)
    ]
    return torch.cat(parts, 1)


def _native_kernel_grad(kernel, x, yt, U, V) -> torch.Tensor:
    r"""``\sum_j \nabla_{x_i} k(x_i, y_j) (U_i \cdot V_j)``, shape (n, d)."""
    kind, scales = native_kind(kernel), kernel.scales
    G = None
    for c in range(0, V.shape[1], 8):
        Vc = V[:, c : c + 8].T.to(x.dtype)
        part = _native.kernel_grad_rows(kind, scales, x, yt, U[:, c : c + 8], Vc)
        G = part if G is None else G + part
    return G


class NativeKernelMatmul(torch.autograd.Function):
    """``K @ V`` by the native loops; backward by the same loops (O(n + m) memory).

    For ``y = x`` the same tensor is passed as both inputs and autograd adds
    the two gradients.
    """

    @staticmethod
    def forward(ctx, x, y, V, kernel):
        xd, yd = x.detach(), y.detach()
        yt = yd.T.contiguous()
        out = _native_kernel_rows(kernel, xd, yt, V.detach(), False).to(V.dtype)
        ctx.save_for_backward(x, y, V)
        ctx.kernel = kernel
        return out

    @staticmethod
    def backward(ctx, G):
        x, y, V = ctx.saved_tensors
        kernel = ctx.kernel
        xd, yd, Vd, Gd = x.detach(), y.detach(), V.detach(), G.detach()
        gx = gy = gV = None
        xt, yt = xd.T.contiguous(), yd.T.contiguous()
        if ctx.needs_input_grad[2]:
            gV = _native_kernel_rows(kernel, yd, xt, Gd, False).to(V.dtype)
        if ctx.needs_input_grad[0]:
            gx = _native_kernel_grad(kernel, xd, yt, Gd, Vd)
        if ctx.needs_input_grad[1]:
            gy = _native_kernel_grad(kernel, yd, xt, Vd, Gd)
        return gx, gy, gV, None


class NativeQuadform(torch.autograd.Function):
    """``V^T K(z, z) V`` (float64) by the native loops, each pair once."""

    @staticmethod
    def forward(ctx, z, V, kernel, diag: bool):
        zd, Vd = z.detach(), V.detach()
        r = _native_kernel_rows(kernel, zd, zd.T.contiguous(), Vd, True)  # j > i
        V64 = Vd.to(torch.float64)
        k0 = float(kernel.value_at_zero)
        if diag:
            out = 2 * (V64 * r).sum(0) + k0 * (V64 * V64).sum(0)
        else:
            m = V64.T @ r
            out = m + m.T + k0 * (V64.T @ V64)
        ctx.save_for_backward(z, V)
        ctx.kernel, ctx.diag = kernel, diag
        return out

    @staticmethod
    def backward(ctx, G):
        z, V = ctx.saved_tensors
        kernel = ctx.kernel
        Gm = torch.diag_embed(G) if ctx.diag else G
        Gs = (Gm + Gm.T).to(torch.float64)  # d/dV_i of V^T K V : (K V)_i Gs
        zd, Vd = z.detach(), V.detach()
        zt = zd.T.contiguous()
        U = (Vd.to(torch.float64) @ Gs).to(z.dtype)
        gz = gV = None
        if ctx.needs_input_grad[0]:
            # sum_ij K_ij V_i^T G V_j: d/dz_i = sum_j grad k(z_i, z_j) V_i^T Gs V_j
            gz = _native_kernel_grad(kernel, zd, zt, U, Vd)
        if ctx.needs_input_grad[1]:
            gV = _native_kernel_rows(kernel, zd, zt, U, False).to(V.dtype)
        return gz, gV, None, None
