"""MIL activations and element-wise ops: unary math, parametric activations (``alpha`` /
``beta`` / ``epsilon``) and the broadcasting binary ops, per coremltools' op definitions."""

from __future__ import annotations

import numpy as np

from .. import ops
from .registry import OPS, implements

_UNARY = {
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": ops.sigmoid,
    "tanh": np.tanh,
    "softplus": ops.softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * ops.sigmoid(x),
    "abs": np.abs, "exp": np.exp, "exp2": np.exp2, "sqrt": np.sqrt, "square": np.square,
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "sign": np.sign,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "sinh": np.sinh, "cosh": np.cosh,
    "atan": np.arctan, "asin": np.arcsin, "acos": np.arccos, "erf": ops.erf,
    "identity": lambda x: x,
}


def _unary_op(f):
    return lambda a: f(a.f32())


for _name, _f in _UNARY.items():
    OPS[_name] = _unary_op(_f)


@implements("rsqrt")
def _rsqrt(a):
    return 1 / np.sqrt(a.f32() + np.float32(a.scalar("epsilon", 1e-12)))


@implements("inverse")
def _inverse(a):
    return 1 / (a.f32() + np.float32(a.scalar("epsilon", 1e-4)))


@implements("log")
def _log(a):
    return np.log(a.f32() + np.float32(a.scalar("epsilon", 0.0)))


@implements("clip")
def _clip(a):
    return np.clip(a.f32(), np.float32(a.scalar("alpha")), np.float32(a.scalar("beta")))


@implements("leaky_relu")
def _leaky_relu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 0.01))
    return np.where(x >= 0, x, alpha * x)


@implements("elu")
def _elu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 1.0))
    return np.where(x >= 0, x, alpha * np.expm1(x))


@implements("thresholded_relu")
def _thresholded_relu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 1.0))
    return np.where(x >= alpha, x, 0)


@implements("linear_activation")
def _linear_activation(a):
    return a.f32() * np.float32(a.scalar("alpha")) + np.float32(a.scalar("beta", 0.0))


@implements("sigmoid_hard")
def _sigmoid_hard(a):
    return np.clip(a.f32() * np.float32(a.scalar("alpha", 0.2)) + np.float32(a.scalar("beta", 0.5)), 0, 1)


@implements("scaled_tanh")
def _scaled_tanh(a):
    return np.float32(a.scalar("alpha", 1.0)) * np.tanh(np.float32(a.scalar("beta", 1.0)) * a.f32())


@implements("prelu")
def _prelu(a):
    x, alpha = a.f32(), a.f32("alpha").reshape(-1)
    alpha = alpha.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, alpha * x)


@implements("gelu")
def _gelu(a):
    return ops.gelu(a.f32(), str(a.scalar("mode", "EXACT")))


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power,
    "floor_div": np.floor_divide, "mod": np.mod,
}


def _binary_op(f):
    def run(a):
        x, y = a.get("x"), a.get("y")
        if np.asarray(x).dtype.kind in "iub" and np.asarray(y).dtype.kind in "iub":
            return f(np.asarray(x), np.asarray(y))
        return f(np.asarray(x, np.float32), np.asarray(y, np.float32))
    return run


for _name, _f in _BINARY.items():
    OPS[_name] = _binary_op(_f)
