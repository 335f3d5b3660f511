"""NeuralNetwork activation layers, per ``NeuralNetwork.proto``: ``activation`` (its
``NonlinearityType`` s: ReLU, PReLU, sigmoid, ELU, softplus ...), ``gelu`` and ``clip``."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import Unsupported
from ..weights import nn_weights
from .registry import Fn, f32, implements


def _per_channel(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 1, 1) if values.size > 1 else values.reshape(1)


def _count(wp) -> int:
    if len(wp.floatValue):
        return len(wp.floatValue)
    if len(wp.float16Value):
        return len(wp.float16Value) // 2
    raise Unsupported("quantized activation parameters")


@implements("activation")
def _activation(p, layer) -> Fn:
    kind = p.WhichOneof("NonlinearityType")
    a = getattr(p, kind)
    if kind == "linear":
        alpha, beta = a.alpha, a.beta
        return lambda xs, ctx: [f32(xs[0]) * np.float32(alpha) + np.float32(beta)]
    if kind == "ReLU":
        return lambda xs, ctx: [np.maximum(f32(xs[0]), 0)]
    if kind == "leakyReLU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(f32(xs[0]) >= 0, xs[0], alpha * f32(xs[0]))]
    if kind == "thresholdedReLU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(f32(xs[0]) >= alpha, f32(xs[0]), 0).astype(np.float32)]
    if kind == "PReLU":
        alpha = _per_channel(nn_weights(a.alpha, _count(a.alpha), name=layer.name))
        return lambda xs, ctx: [np.where(f32(xs[0]) >= 0, xs[0], alpha * f32(xs[0]))]
    if kind == "tanh":
        return lambda xs, ctx: [np.tanh(f32(xs[0]))]
    if kind == "scaledTanh":
        alpha, beta = np.float32(a.alpha), np.float32(a.beta)
        return lambda xs, ctx: [alpha * np.tanh(beta * f32(xs[0]))]
    if kind == "sigmoid":
        return lambda xs, ctx: [ops.sigmoid(xs[0])]
    if kind == "sigmoidHard":
        alpha, beta = np.float32(a.alpha), np.float32(a.beta)
        return lambda xs, ctx: [np.clip(alpha * f32(xs[0]) + beta, 0, 1)]
    if kind == "ELU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(f32(xs[0]) >= 0, xs[0],
                                         alpha * np.expm1(f32(xs[0]))).astype(np.float32)]
    if kind == "softsign":
        return lambda xs, ctx: [f32(xs[0]) / (1 + np.abs(f32(xs[0])))]
    if kind == "softplus":
        return lambda xs, ctx: [ops.softplus(xs[0])]
    if kind == "parametricSoftplus":
        alpha = _per_channel(nn_weights(a.alpha, _count(a.alpha), name=layer.name))
        beta = _per_channel(nn_weights(a.beta, _count(a.beta), name=layer.name))
        return lambda xs, ctx: [alpha * ops.softplus(beta * f32(xs[0]))]
    raise Unsupported(f"activation type '{kind}'", f"activation ({kind})")


@implements("gelu")
def _gelu(p, layer) -> Fn:
    mode = {0: "EXACT", 1: "TANH_APPROXIMATION", 2: "SIGMOID_APPROXIMATION"}[p.mode]
    return lambda xs, ctx: [ops.gelu(xs[0], mode)]


@implements("clip")
def _clip(p, layer) -> Fn:
    lo, hi = np.float32(p.minVal), np.float32(p.maxVal)
    return lambda xs, ctx: [np.clip(f32(xs[0]), lo, hi)]
