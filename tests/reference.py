"""Float64 NumPy reference of docs/DESIGN.md, written independently of the
library's canonical reshape: it works along `axis` of the user's array."""

from __future__ import annotations

import numpy as np


def _prep(x, y, mask, axis):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    rank = x.ndim
    axis %= rank
    channels = rank >= 3
    if mask is None:
        valid = np.ones(x.shape[:-1] if channels else x.shape, bool)
    else:
        valid = np.asarray(mask).astype(bool)
    if channels:
        valid = np.broadcast_to(valid[..., None], x.shape)
    return x, y, valid, axis, channels


def _stats(x, y, valid, axis, method, eps):
    with np.errstate(all="ignore"):
        n = valid.sum(axis=axis, keepdims=True).astype(np.float64)
        inv_n = np.where(n > 0, 1.0 / np.maximum(n, 1), 0.0)
        # Mean = first valid value + mean of the deviations from it: the same
        # real number, but exact on constant rows (as every implementation).
        first = valid & (np.cumsum(valid, axis=axis) == 1)
        kx = np.where(first, x, 0).sum(axis=axis, keepdims=True)
        ky = np.where(first, y, 0).sum(axis=axis, keepdims=True)
        mx = kx + np.where(valid, x - kx, 0).sum(axis=axis, keepdims=True) * inv_n
        my = ky + np.where(valid, y - ky, 0).sum(axis=axis, keepdims=True) * inv_n
        dx = np.where(valid, x - mx, 0)
        dy = np.where(valid, y - my, 0)
        vx = (dx * dx).sum(axis=axis, keepdims=True) * inv_n
        vy = (dy * dy).sum(axis=axis, keepdims=True) * inv_n
        cxy = (dx * dy).sum(axis=axis, keepdims=True) * inv_n
        if method == "pearson":
            q = np.sqrt(vx * vy)
            d = q + eps
            k = 1.0
        else:
            q = None
            d = vx + vy + (mx - my) ** 2 + eps
            k = 2.0
    return dict(n=n, mx=mx, my=my, dx=dx, dy=dy, vx=vx, vy=vy, cxy=cxy, q=q, d=d, k=k)


def corr_loss(x, y, mask=None, *, axis=1, method="pearson", eps=1e-7):
    x, y, valid, axis, channels = _prep(x, y, mask, axis)
    s = _stats(x, y, valid, axis, method, eps)
    with np.errstate(all="ignore"):
        loss = np.where(valid, 1.0 - s["k"] * s["dx"] * s["dy"] / s["d"], 0.0)
    if not channels:
        return loss
    # Mean over channels; zero channels give 0 (corrops' definition).
    return loss.sum(axis=-1) / max(x.shape[-1], 1)


def corrcoef(x, y, mask=None, *, axis=1, method="pearson", eps=1e-7):
    x, y, valid, axis, _ = _prep(x, y, mask, axis)
    s = _stats(x, y, valid, axis, method, eps)
    with np.errstate(all="ignore"):
        return np.squeeze(s["k"] * s["cxy"] / s["d"], axis=axis)


def corr_loss_grad(x, y, g, mask=None, *, axis=1, method="pearson", eps=1e-7):
    """docs/DESIGN.md's closed-form gradients: returns (dL/dy_true, dL/dy_pred)."""
    x, y, valid, axis, channels = _prep(x, y, mask, axis)
    g = np.asarray(g, np.float64)
    if channels:
        g = np.broadcast_to(g[..., None] / max(x.shape[-1], 1), x.shape)
    g = np.where(valid, g, 0.0)
    s = _stats(x, y, valid, axis, method, eps)
    n, dx, dy, d = s["n"], s["dx"], s["dy"], s["d"]
    with np.errstate(all="ignore"):
        s1 = (g * dx).sum(axis=axis, keepdims=True)
        s1p = (g * dy).sum(axis=axis, keepdims=True)
        s2 = (g * dx * dy).sum(axis=axis, keepdims=True)
        safe_n = np.maximum(n, 1)
        if method == "pearson":
            q = s["q"]
            term = np.where(q > 0, s2 / d**2 / (safe_n * np.where(q > 0, q, 1)), 0.0)
            gy = -(g * dx - s1 / safe_n) / d + term * s["vx"] * dy
            gx = -(g * dy - s1p / safe_n) / d + term * s["vy"] * dx
        else:
            dm = s["mx"] - s["my"]
            e = 4 * s2 / (safe_n * d**2)
            gy = -2 * (g * dx - s1 / safe_n) / d + e * (dy - dm)
            gx = -2 * (g * dy - s1p / safe_n) / d + e * (dx + dm)
    return np.where(valid, gx, 0.0), np.where(valid, gy, 0.0)
