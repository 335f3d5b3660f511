"""NeuralNetwork normalisation layers, per ``NeuralNetwork.proto``: ``batchnorm`` (stored
statistics folded into one multiply-add, or statistics computed per run / per instance)
and ``softmax`` (legacy, over C) / ``softmaxND`` (over any axis)."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..weights import nn_weights
from .registry import Fn, f32, implements


@implements("batchnorm")
def _batchnorm(p, layer) -> Fn:
    c = int(p.channels)
    eps = np.float32(p.epsilon or 1e-5)
    gamma = nn_weights(p.gamma, c, name=layer.name).reshape(-1, 1, 1)
    beta = nn_weights(p.beta, c, name=layer.name).reshape(-1, 1, 1)
    if p.computeMeanVar:
        instance = bool(p.instanceNormalization)

        def run_stats(xs, ctx):
            x = f32(xs[0])
            axes = (-2, -1) if instance else tuple(i for i in range(x.ndim) if i != x.ndim - 3)
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            return [gamma * (x - mean) / np.sqrt(var + eps) + beta]
        return run_stats
    mean = nn_weights(p.mean, c, name=layer.name).reshape(-1, 1, 1)
    var = nn_weights(p.variance, c, name=layer.name).reshape(-1, 1, 1)
    mult = gamma / np.sqrt(var + eps)
    add = beta - mean * mult
    return lambda xs, ctx: [f32(xs[0]) * mult + add]


@implements("softmax")
def _softmax(p, layer) -> Fn:
    return lambda xs, ctx: [ops.softmax(xs[0], axis=-3)]


@implements("softmaxND")
def _softmax_nd(p, layer) -> Fn:
    axis = int(p.axis)
    return lambda xs, ctx: [ops.softmax(xs[0], axis=axis)]
