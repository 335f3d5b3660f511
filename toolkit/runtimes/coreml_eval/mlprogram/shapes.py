"""MIL tensor shape ops: ``transpose``, ``reshape``, ``squeeze``, ``expand_dims`` and
``concat``, per coremltools' op definitions."""

from __future__ import annotations

import numpy as np

from .. import ops
from .registry import implements


@implements("transpose")
def _transpose(a):
    return np.ascontiguousarray(np.transpose(a.get("x"), a.ints("perm")))


@implements("reshape")
def _reshape(a):
    x = np.asarray(a.get("x"))
    target = a.ints("shape")
    if a.ctx.batch > 1 and target and target[0] == 1 and x.shape[:1] == (a.ctx.batch,):
        target = [a.ctx.batch] + target[1:]
    if 0 in target and len(target) != x.ndim:
        # iOS 17: each 0 copies the input dimension at the same distance from the right.
        off = x.ndim - len(target)
        target = [(x.shape[i + off] if 0 <= i + off < x.ndim else 1) if t == 0 else t
                  for i, t in enumerate(target)]
    return x.reshape(ops.resolve_reshape(x.shape, target))


@implements("squeeze")
def _squeeze(a):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))


@implements("expand_dims")
def _expand_dims(a):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    rank = x.ndim + len(axes)
    for ax in sorted(ax if ax >= 0 else rank + ax for ax in axes):
        x = np.expand_dims(x, ax)
    return x


@implements("concat")
def _concat(a):
    values = [np.asarray(v) for v in a.list("values")]
    axis = int(a.scalar("axis"))
    if bool(a.scalar("interleave", False)):
        stacked = np.stack(values, axis=axis + 1 if axis >= 0 else axis)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)
