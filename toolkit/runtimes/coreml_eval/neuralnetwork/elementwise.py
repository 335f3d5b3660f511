"""NeuralNetwork element-wise layers, per ``NeuralNetwork.proto``: ``unary`` and the ND
math layers (``exp2``, ``floor``, ``sin`` ...), the multi-input arithmetic layers (``add``,
``multiply``, ``max``, ``*Broadcastable``, ``average``) and the constant ``scale`` /
``bias`` layers."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import Unsupported
from ..weights import nn_weights
from .registry import BUILDERS, Fn, f32, implements


@implements("unary")
def _unary(p, layer) -> Fn:
    from coremltools.proto import NeuralNetwork_pb2

    kind = NeuralNetwork_pb2.UnaryFunctionLayerParams.Operation.Name(p.type)
    alpha = np.float32(p.alpha)
    eps = np.float32(p.epsilon or 1e-6)
    shift = np.float32(p.shift)
    scale = np.float32(p.scale or 1.0)
    funcs = {
        "SQRT": np.sqrt,
        "RSQRT": lambda x: 1 / np.sqrt(x + eps),
        "INVERSE": lambda x: 1 / (x + eps),
        "POWER": lambda x: np.power(x, alpha),
        "EXP": np.exp,
        "LOG": np.log,
        "ABS": np.abs,
        "THRESHOLD": lambda x: np.maximum(x, alpha),
    }
    if kind not in funcs:
        raise Unsupported(f"unary function '{kind}'", f"unary ({kind})")
    f = funcs[kind]
    return lambda xs, ctx: [f(f32(xs[0]) * scale + shift).astype(np.float32)]


_ND_UNARY = {
    "tanh": np.tanh, "exp2": np.exp2, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "sign": np.sign, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "erf": ops.erf,
    "copy": lambda x: x,
}


def _nd_unary(kind):
    f = _ND_UNARY[kind]
    return lambda p, layer: (lambda xs, ctx: [np.asarray(f(f32(xs[0])), np.float32)])


for _kind in _ND_UNARY:
    BUILDERS[_kind] = _nd_unary(_kind)


def _reduce_inputs(f, single):
    def build(p, layer):
        alpha = np.float32(getattr(p, "alpha", 0.0))

        def run(xs, ctx):
            if len(xs) == 1 and single is not None:
                return [single(f32(xs[0]), alpha)]
            out = f32(xs[0])
            for x in xs[1:]:
                out = f(out, f32(x))
            return [out]
        return run
    return build


BUILDERS["add"] = _reduce_inputs(np.add, lambda x, a: x + a)
BUILDERS["multiply"] = _reduce_inputs(np.multiply, lambda x, a: x * a)
BUILDERS["max"] = _reduce_inputs(np.maximum, None)
BUILDERS["min"] = _reduce_inputs(np.minimum, None)
BUILDERS["addBroadcastable"] = _reduce_inputs(np.add, None)
BUILDERS["multiplyBroadcastable"] = _reduce_inputs(np.multiply, None)
BUILDERS["maxBroadcastable"] = _reduce_inputs(np.maximum, None)
BUILDERS["minBroadcastable"] = _reduce_inputs(np.minimum, None)
BUILDERS["subtractBroadcastable"] = _reduce_inputs(np.subtract, None)
BUILDERS["divideBroadcastable"] = _reduce_inputs(np.divide, None)
BUILDERS["powBroadcastable"] = _reduce_inputs(np.power, None)


@implements("average")
def _average(p, layer) -> Fn:
    return lambda xs, ctx: [sum(f32(x) for x in xs) / np.float32(len(xs))]


def _chan_shape(values: np.ndarray, shape) -> np.ndarray:
    """Reshape scale / bias parameters with shape [1], [C], [1, H, W] or [C, H, W] so they
    broadcast against the last three axes (C, H, W)."""
    shape = [int(s) for s in shape] or [values.size]
    if len(shape) == 1:
        return values.reshape(-1, 1, 1) if shape[0] > 1 else values.reshape(1)
    return values.reshape(shape)


@implements("scale")
def _scale(p, layer) -> Fn:
    n = int(np.prod([int(s) for s in p.shapeScale] or [1]))
    scale = _chan_shape(nn_weights(p.scale, n, name=layer.name), p.shapeScale)
    bias = None
    if p.hasBias:
        nb = int(np.prod([int(s) for s in p.shapeBias] or [1]))
        bias = _chan_shape(nn_weights(p.bias, nb, name=layer.name), p.shapeBias)

    def run(xs, ctx):
        y = f32(xs[0]) * scale
        return [y + bias if bias is not None else y]
    return run


@implements("bias")
def _bias(p, layer) -> Fn:
    n = int(np.prod([int(s) for s in p.shape] or [1]))
    bias = _chan_shape(nn_weights(p.bias, n, name=layer.name), p.shape)
    return lambda xs, ctx: [f32(xs[0]) + bias]
