"""NeuralNetwork ``convolution``, ``pooling`` and ``padding`` layers, per
``NeuralNetwork.proto``: ``same`` / ``valid`` / ``includeLastPixel`` padding becomes
explicit pads for the kernels in ``ops``."""

from __future__ import annotations

import numpy as np

from ....errors import MlkitError
from .. import ops
from ..errors import Unsupported
from ..weights import nn_weights
from .registry import Fn, f32, implements


def _pads_from_border(border) -> ops.Pads:
    amounts = list(border.borderAmounts)
    if not amounts:
        return 0, 0, 0, 0
    if len(amounts) != 2:
        raise Unsupported(f"paddingAmounts with {len(amounts)} entries (expected [H, W])")
    h, w = amounts
    return (int(h.startEdgeSize), int(h.endEdgeSize), int(w.startEdgeSize), int(w.endEdgeSize))


@implements("convolution")
def _convolution(p, layer) -> Fn:
    if p.isDeconvolution:
        raise Unsupported("deconvolution (isDeconvolution = true)", "convolution (deconvolution)")
    kh, kw = [int(v) for v in p.kernelSize] or [3, 3]
    strides = [int(v) for v in p.stride] or [1, 1]
    dil = [int(v) for v in p.dilationFactor] or [1, 1]
    groups = int(p.nGroups) or 1
    cout, kc = int(p.outputChannels), int(p.kernelChannels)
    w = nn_weights(p.weights, cout * kc * kh * kw, channels=cout, name=layer.name)
    if w is None:
        raise MlkitError(f"convolution layer '{layer.name}' has no weights")
    w = w.reshape(cout, kc, kh, kw)
    b = nn_weights(p.bias, cout, channels=cout, name=layer.name) if p.hasBias else None
    which = p.WhichOneof("ConvolutionPaddingType")
    if which == "same":
        lower = p.same.asymmetryMode == 1   # TOP_LEFT_HEAVY
        fixed = None
    else:
        lower, fixed = False, _pads_from_border(p.valid.paddingAmounts)
    if len(layer.input) != 1:
        raise Unsupported("convolution with weights given as a second input")

    def run(xs, ctx):
        x = f32(xs[0])
        pads = fixed or ops.same_pads(x.shape[-2:], (kh, kw), strides, dil, lower=lower)
        return [ops.conv2d(x, w, b, strides=strides, dilations=dil, pads=pads, groups=groups)]
    return run


@implements("pooling")
def _pooling(p, layer) -> Fn:
    kinds = {0: "max", 1: "avg"}
    if p.type not in kinds:
        raise Unsupported("L2 pooling", "pooling (L2)")
    mode = kinds[p.type]
    if p.globalPooling:
        def run_global(xs, ctx):
            x = f32(xs[0])
            f = np.max if mode == "max" else np.mean
            return [f(x, axis=(-2, -1), keepdims=True)]
        return run_global
    kernel = [int(v) for v in p.kernelSize] or [3, 3]
    strides = [int(v) for v in p.stride] or [1, 1]
    which = p.WhichOneof("PoolingPaddingType")
    exclude = bool(p.avgPoolExcludePadding)
    ceil_mode, fixed, lower = False, None, False
    if which == "same":
        lower = p.same.asymmetryMode == 1
    elif which == "includeLastPixel":
        amounts = [int(v) for v in p.includeLastPixel.paddingAmounts] or [0, 0]
        fixed = (amounts[0], amounts[0], amounts[1], amounts[1])
        ceil_mode = True
    else:
        fixed = _pads_from_border(p.valid.paddingAmounts)

    def run(xs, ctx):
        x = f32(xs[0])
        pads = fixed or ops.same_pads(x.shape[-2:], kernel, strides, lower=lower)
        return [ops.pool2d(x, kernel, mode=mode, strides=strides, pads=pads,
                           exclude_padding=exclude, ceil_mode=ceil_mode)]
    return run


@implements("padding")
def _padding(p, layer) -> Fn:
    top, bottom, left, right = _pads_from_border(p.paddingAmounts)
    which = p.WhichOneof("PaddingType")
    mode = {"constant": "constant", "reflection": "reflect", "replication": "replicate"}[which]
    value = float(p.constant.value) if which == "constant" else 0.0

    def run(xs, ctx):
        return [ops.pad(f32(xs[0]), [(top, bottom), (left, right)], mode, value)]
    return run
