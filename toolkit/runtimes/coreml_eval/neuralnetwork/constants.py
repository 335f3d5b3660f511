"""NeuralNetwork constant layers, per ``NeuralNetwork.proto``: ``loadConstantND`` (a tensor
of the stored shape) and legacy ``loadConstant`` (stored [C, H, W], produced as rank 5)."""

from __future__ import annotations

import numpy as np

from ..weights import nn_weights
from .registry import Fn, implements


@implements("loadConstantND")
def _load_constant_nd(p, layer) -> Fn:
    shape = [int(s) for s in p.shape]
    value = nn_weights(p.data, int(np.prod(shape)), name=layer.name).reshape(shape)
    return lambda xs, ctx: [value]


@implements("loadConstant")
def _load_constant(p, layer) -> Fn:
    shape = [int(s) for s in p.shape]
    value = nn_weights(p.data, int(np.prod(shape)), name=layer.name).reshape([1, 1] + shape)
    return lambda xs, ctx: [value]
