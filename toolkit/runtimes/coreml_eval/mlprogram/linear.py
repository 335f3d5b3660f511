"""MIL matrix products: ``matmul`` (batched, optional transposes) and ``linear`` (a dense
layer, ``x @ weight.T + bias``), per coremltools' op definitions."""

from __future__ import annotations

from .. import ops
from .registry import implements


@implements("matmul")
def _matmul(a):
    return ops.matmul(a.get("x"), a.get("y"), bool(a.scalar("transpose_x", False)),
                      bool(a.scalar("transpose_y", False)))


@implements("linear")
def _linear(a):
    x, w = a.f32("x"), a.f32("weight")
    y = x @ w.T
    return y + a.f32("bias") if a.has("bias") else y
