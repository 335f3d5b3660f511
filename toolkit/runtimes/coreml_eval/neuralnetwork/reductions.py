"""NeuralNetwork reduction layers, per ``NeuralNetwork.proto``: the ND layers
(``reduceMean``, ``reduceSum`` ... over ``axes`` or all, ``keepDims``) and the legacy
``reduce`` layer (over C, H, W or combinations, always keeping the axes)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import Unsupported
from .registry import BUILDERS, Fn, f32, implements

# ND reduction layer type -> its kind in ops.REDUCTIONS.
_ND_REDUCE = {
    "reduceMean": "mean", "reduceSum": "sum", "reduceMax": "max", "reduceMin": "min",
    "reduceProd": "prod", "reduceL1": "l1_norm", "reduceL2": "l2_norm",
    "reduceSumSquare": "sum_square", "reduceLogSum": "log_sum",
    "reduceLogSumExp": "log_sum_exp",
}


def _nd_reduce(kind):
    def build(p, layer):
        axes = tuple(int(a) for a in p.axes)
        keep, every = bool(p.keepDims), bool(p.reduceAll)

        def run(xs, ctx):
            x = f32(xs[0])
            a = None if every or not axes else axes
            return [ops.reduce(kind, x, a, keep)]
        return run
    return build


for _name, _kind in _ND_REDUCE.items():
    BUILDERS[_name] = _nd_reduce(_kind)


# Legacy reduce mode -> its kind in ops.REDUCTIONS (LOGSUM, a sum of logs, is its own).
_LEGACY_REDUCE = {"SUM": "sum", "AVG": "mean", "PROD": "prod", "SUMSQUARE": "sum_square",
                  "L1": "l1_norm", "L2": "l2_norm", "MAX": "max", "MIN": "min"}


@implements("reduce")
def _reduce_legacy(p, layer) -> Fn:
    from coremltools.proto import NeuralNetwork_pb2

    R = NeuralNetwork_pb2.ReduceLayerParams
    mode = R.ReduceOperation.Name(p.mode)
    axes = {"CHW": (-3, -2, -1), "HW": (-2, -1), "C": (-3,), "H": (-2,),
            "W": (-1,)}[R.ReduceAxis.Name(p.axis)]
    if mode == "ARGMAX" and len(axes) == 1:
        return lambda xs, ctx: [np.expand_dims(np.argmax(f32(xs[0]), axis=axes[0]),
                                               axes[0]).astype(np.float32)]
    if mode == "LOGSUM":
        eps = np.float32(p.epsilon or 1e-6)
        return lambda xs, ctx: [np.asarray(np.sum(np.log(f32(xs[0]) + eps), axes, keepdims=True),
                                           dtype=np.float32)]
    if mode not in _LEGACY_REDUCE:
        raise Unsupported(f"reduce mode {mode} over {axes}", f"reduce ({mode})")
    kind = _LEGACY_REDUCE[mode]
    return lambda xs, ctx: [ops.reduce(kind, f32(xs[0]), axes, True)]
