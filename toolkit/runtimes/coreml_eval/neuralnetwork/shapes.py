"""NeuralNetwork shape layers, per ``NeuralNetwork.proto``: transposes (``transpose``,
legacy ``permute``), flattening and reshapes (legacy ``reshape`` / ``flatten`` over C, H,
W; ``reshapeStatic``, ``rankPreservingReshape``, ``flattenTo2D``), ``squeeze`` /
``expandDims``, ``concat`` / ``concatND``, ``splitND`` and ``sliceStatic``."""

from __future__ import annotations

import numpy as np

from ....errors import MlkitError
from .. import ops
from .registry import Fn, RunContext, f32, implements


def _widen_batch(target: list[int], x: np.ndarray, ctx: RunContext) -> list[int]:
    """A reshape written for batch 1, run on a batch: keep the batch axis."""
    if ctx.batch > 1 and target and target[0] == 1 and x.ndim and x.shape[0] == ctx.batch:
        return [ctx.batch] + list(target[1:])
    return list(target)


@implements("transpose")
def _transpose(p, layer) -> Fn:
    axes = [int(a) for a in p.axes]
    return lambda xs, ctx: [np.ascontiguousarray(np.transpose(xs[0], axes))]


@implements("permute")
def _permute(p, layer) -> Fn:
    axis = [int(a) for a in p.axis] or [0, 1, 2, 3]
    m = {0: 0, 1: 2, 2: 3, 3: 4}   # [Seq, C, H, W] -> rank-5 positions; batch stays put
    perm = [m[axis[0]], 1, m[axis[1]], m[axis[2]], m[axis[3]]]

    def run(xs, ctx):
        x = xs[0]
        if x.ndim != 5:
            raise MlkitError(f"permute '{layer.name}' needs a rank-5 input, got {x.shape}")
        return [np.ascontiguousarray(np.transpose(x, perm))]
    return run


@implements("flatten")
def _flatten(p, layer) -> Fn:
    channel_last = p.mode == 1

    def run(xs, ctx):
        x = xs[0]
        if channel_last:
            x = np.moveaxis(x, -3, -1)
        return [np.ascontiguousarray(x).reshape(x.shape[:-3] + (-1, 1, 1))]
    return run


@implements("flattenTo2D")
def _flatten_2d(p, layer) -> Fn:
    axis = int(p.axis)

    def run(xs, ctx):
        x = xs[0]
        a = axis if axis >= 0 else x.ndim + axis
        return [x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)]
    return run


@implements("reshape")
def _reshape_legacy(p, layer) -> Fn:
    target = [int(v) for v in p.targetShape]
    channel_last = p.mode == 1

    def run(xs, ctx):
        x = xs[0]
        if channel_last:
            x = np.ascontiguousarray(np.moveaxis(x, -3, -1))
        lead = x.shape[:-3] if len(target) == 3 else (target[0],) + x.shape[1:-3]
        chw = target[-3:]
        if channel_last:
            y = x.reshape(lead + (chw[1], chw[2], chw[0]))
            return [np.ascontiguousarray(np.moveaxis(y, -1, -3))]
        return [x.reshape(lead + tuple(chw))]
    return run


@implements("reshapeStatic", "rankPreservingReshape")
def _reshape_static(p, layer) -> Fn:
    target = [int(v) for v in p.targetShape]

    def run(xs, ctx):
        x = xs[0]
        t = _widen_batch(target, x, ctx)
        return [x.reshape(ops.resolve_reshape(x.shape, t))]
    return run


@implements("squeeze")
def _squeeze(p, layer) -> Fn:
    axes = tuple(int(a) for a in p.axes)
    every = bool(p.squeezeAll)

    def run(xs, ctx):
        x = xs[0]
        if x.ndim == 1:
            return [x]
        return [np.squeeze(x) if every or not axes else np.squeeze(x, axis=axes)]
    return run


@implements("expandDims")
def _expand_dims(p, layer) -> Fn:
    axes = [int(a) for a in p.axes]

    def run(xs, ctx):
        x = xs[0]
        rank = x.ndim + len(axes)
        for a in sorted(a if a >= 0 else rank + a for a in axes):
            x = np.expand_dims(x, a)
        return [x]
    return run


@implements("concat")
def _concat(p, layer) -> Fn:
    axis = -5 if p.sequenceConcat else -3
    return lambda xs, ctx: [np.concatenate([f32(x) for x in xs], axis=axis)]


@implements("concatND")
def _concat_nd(p, layer) -> Fn:
    axis = int(p.axis)
    return lambda xs, ctx: [np.concatenate([f32(x) for x in xs], axis=axis)]


@implements("splitND")
def _split_nd(p, layer) -> Fn:
    axis, n = int(p.axis), int(p.numSplits)
    sizes = [int(s) for s in p.splitSizes]

    def run(xs, ctx):
        x = xs[0]
        if sizes:
            return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        return np.split(x, n or len(layer.output), axis=axis)
    return run


@implements("sliceStatic")
def _slice_static(p, layer) -> Fn:
    begin, end = [int(v) for v in p.beginIds], [int(v) for v in p.endIds]
    bmask, emask = list(p.beginMasks), list(p.endMasks)
    strides = [int(v) for v in p.strides] or [1] * len(begin)
    squeeze = list(getattr(p, "squeezeMasks", []))

    def run(xs, ctx):
        x = xs[0]
        idx = []
        for i in range(x.ndim):
            s = strides[i] if i < len(strides) else 1
            b = None if i >= len(begin) or (i < len(bmask) and bmask[i]) else begin[i]
            e = None if i >= len(end) or (i < len(emask) and emask[i]) else end[i]
            idx.append(slice(b, e, s))
        y = x[tuple(idx)]
        drop = tuple(i for i, sq in enumerate(squeeze) if sq)
        return [np.squeeze(y, axis=drop) if drop else y]
    return run

