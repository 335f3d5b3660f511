"""NeuralNetwork (``.mlmodel``) layer semantics, per ``NeuralNetwork.proto``.

``NNGraph`` compiles a ``NeuralNetwork`` / ``NeuralNetworkClassifier`` message into a list
of steps (decoding every weight once) and runs them in file order, which the spec
guarantees is topological.

Tensor layout: from specification version 4 on, coremltools writes
``arrayInputShapeMapping = EXACT_ARRAY_MAPPING`` and ``imageInputShapeMapping =
RANK4_IMAGE_MAPPING``: an image is a rank-4 ``[batch, C, H, W]`` tensor and the "ND"
layers (``batchedMatmul``, ``reduceMean``, ``softmaxND``, ``transpose`` ...) see tensors of
their true rank. Older files map everything to rank 5 ``[seq, batch, C, H, W]``; the
legacy layers here read their axes from the end (``C`` = -3, ``H`` = -2, ``W`` = -1), as the
spec defines, so both mappings run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import MlkitError
from . import ops
from .errors import UnsupportedOpError
from .weights import nn_weights

FORMAT = "neuralnetwork"
Fn = Callable[[list, "RunContext"], list]


@dataclass
class RunContext:
    """What a step may need beyond its inputs: the batch size of this run (reshapes with
    a hard-coded batch of 1 are widened to it, so ``predict_batch`` can run N images at
    once)."""

    batch: int = 1


@dataclass
class Step:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    fn: Fn


class _Unsupported(Exception):
    def __init__(self, detail: str = "", op_type: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.op_type = op_type


_BUILDERS: dict[str, Callable[[object, object], Fn]] = {}


def _layer(*names: str):
    def register(builder):
        for n in names:
            _BUILDERS[n] = builder
        return builder
    return register


def supported_layers() -> list[str]:
    return sorted(_BUILDERS)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _pads_from_border(border) -> ops.Pads:
    amounts = list(border.borderAmounts)
    if not amounts:
        return 0, 0, 0, 0
    if len(amounts) != 2:
        raise _Unsupported(f"paddingAmounts with {len(amounts)} entries (expected [H, W])")
    h, w = amounts
    return (int(h.startEdgeSize), int(h.endEdgeSize), int(w.startEdgeSize), int(w.endEdgeSize))


def _chan_shape(values: np.ndarray, shape) -> np.ndarray:
    """Reshape scale / bias parameters with shape [1], [C], [1, H, W] or [C, H, W] so they
    broadcast against the last three axes (C, H, W)."""
    shape = [int(s) for s in shape] or [values.size]
    if len(shape) == 1:
        return values.reshape(-1, 1, 1) if shape[0] > 1 else values.reshape(1)
    return values.reshape(shape)


# --- convolution, pooling, padding -------------------------------------------------------

@_layer("convolution")
def _convolution(p, layer) -> Fn:
    if p.isDeconvolution:
        raise _Unsupported("deconvolution (isDeconvolution = true)", "convolution (deconvolution)")
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
        raise _Unsupported("convolution with weights given as a second input")

    def run(xs, ctx):
        x = _f32(xs[0])
        pads = fixed or ops.same_pads(x.shape[-2:], (kh, kw), strides, dil, lower=lower)
        return [ops.conv2d(x, w, b, strides=strides, dilations=dil, pads=pads, groups=groups)]
    return run


@_layer("pooling")
def _pooling(p, layer) -> Fn:
    kinds = {0: "max", 1: "avg"}
    if p.type not in kinds:
        raise _Unsupported("L2 pooling", "pooling (L2)")
    mode = kinds[p.type]
    if p.globalPooling:
        def run_global(xs, ctx):
            x = _f32(xs[0])
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
        x = _f32(xs[0])
        pads = fixed or ops.same_pads(x.shape[-2:], kernel, strides, lower=lower)
        return [ops.pool2d(x, kernel, mode=mode, strides=strides, pads=pads,
                           exclude_padding=exclude, ceil_mode=ceil_mode)]
    return run


@_layer("padding")
def _padding(p, layer) -> Fn:
    top, bottom, left, right = _pads_from_border(p.paddingAmounts)
    which = p.WhichOneof("PaddingType")
    mode = {"constant": "constant", "reflection": "reflect", "replication": "replicate"}[which]
    value = float(p.constant.value) if which == "constant" else 0.0

    def run(xs, ctx):
        return [ops.pad(_f32(xs[0]), [(top, bottom), (left, right)], mode, value)]
    return run


# --- activations and element-wise --------------------------------------------------------

def _per_channel(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 1, 1) if values.size > 1 else values.reshape(1)


@_layer("activation")
def _activation(p, layer) -> Fn:
    kind = p.WhichOneof("NonlinearityType")
    a = getattr(p, kind)
    if kind == "linear":
        alpha, beta = a.alpha, a.beta
        return lambda xs, ctx: [_f32(xs[0]) * np.float32(alpha) + np.float32(beta)]
    if kind == "ReLU":
        return lambda xs, ctx: [np.maximum(_f32(xs[0]), 0)]
    if kind == "leakyReLU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(_f32(xs[0]) >= 0, xs[0], alpha * _f32(xs[0]))]
    if kind == "thresholdedReLU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(_f32(xs[0]) >= alpha, _f32(xs[0]), 0).astype(np.float32)]
    if kind == "PReLU":
        alpha = _per_channel(nn_weights(a.alpha, _count(a.alpha), name=layer.name))
        return lambda xs, ctx: [np.where(_f32(xs[0]) >= 0, xs[0], alpha * _f32(xs[0]))]
    if kind == "tanh":
        return lambda xs, ctx: [np.tanh(_f32(xs[0]))]
    if kind == "scaledTanh":
        alpha, beta = np.float32(a.alpha), np.float32(a.beta)
        return lambda xs, ctx: [alpha * np.tanh(beta * _f32(xs[0]))]
    if kind == "sigmoid":
        return lambda xs, ctx: [ops.sigmoid(xs[0])]
    if kind == "sigmoidHard":
        alpha, beta = np.float32(a.alpha), np.float32(a.beta)
        return lambda xs, ctx: [np.clip(alpha * _f32(xs[0]) + beta, 0, 1)]
    if kind == "ELU":
        alpha = np.float32(a.alpha)
        return lambda xs, ctx: [np.where(_f32(xs[0]) >= 0, xs[0],
                                         alpha * np.expm1(_f32(xs[0]))).astype(np.float32)]
    if kind == "softsign":
        return lambda xs, ctx: [_f32(xs[0]) / (1 + np.abs(_f32(xs[0])))]
    if kind == "softplus":
        return lambda xs, ctx: [ops.softplus(xs[0])]
    if kind == "parametricSoftplus":
        alpha = _per_channel(nn_weights(a.alpha, _count(a.alpha), name=layer.name))
        beta = _per_channel(nn_weights(a.beta, _count(a.beta), name=layer.name))
        return lambda xs, ctx: [alpha * ops.softplus(beta * _f32(xs[0]))]
    raise _Unsupported(f"activation type '{kind}'", f"activation ({kind})")


def _count(wp) -> int:
    if len(wp.floatValue):
        return len(wp.floatValue)
    if len(wp.float16Value):
        return len(wp.float16Value) // 2
    raise _Unsupported("quantized activation parameters")


@_layer("unary")
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
        raise _Unsupported(f"unary function '{kind}'", f"unary ({kind})")
    f = funcs[kind]
    return lambda xs, ctx: [f(_f32(xs[0]) * scale + shift).astype(np.float32)]


_ND_UNARY = {
    "tanh": np.tanh, "exp2": np.exp2, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "sign": np.sign, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "erf": ops.erf,
    "copy": lambda x: x,
}


def _nd_unary(kind):
    f = _ND_UNARY[kind]
    return lambda p, layer: (lambda xs, ctx: [np.asarray(f(_f32(xs[0])), np.float32)])


for _kind in _ND_UNARY:
    _BUILDERS[_kind] = _nd_unary(_kind)


@_layer("gelu")
def _gelu(p, layer) -> Fn:
    mode = {0: "EXACT", 1: "TANH_APPROXIMATION", 2: "SIGMOID_APPROXIMATION"}[p.mode]
    return lambda xs, ctx: [ops.gelu(xs[0], mode)]


@_layer("clip")
def _clip(p, layer) -> Fn:
    lo, hi = np.float32(p.minVal), np.float32(p.maxVal)
    return lambda xs, ctx: [np.clip(_f32(xs[0]), lo, hi)]


def _reduce_inputs(f, single):
    def build(p, layer):
        alpha = np.float32(getattr(p, "alpha", 0.0))

        def run(xs, ctx):
            if len(xs) == 1 and single is not None:
                return [single(_f32(xs[0]), alpha)]
            out = _f32(xs[0])
            for x in xs[1:]:
                out = f(out, _f32(x))
            return [out]
        return run
    return build


_BUILDERS["add"] = _reduce_inputs(np.add, lambda x, a: x + a)
_BUILDERS["multiply"] = _reduce_inputs(np.multiply, lambda x, a: x * a)
_BUILDERS["max"] = _reduce_inputs(np.maximum, None)
_BUILDERS["min"] = _reduce_inputs(np.minimum, None)
_BUILDERS["addBroadcastable"] = _reduce_inputs(np.add, None)
_BUILDERS["multiplyBroadcastable"] = _reduce_inputs(np.multiply, None)
_BUILDERS["maxBroadcastable"] = _reduce_inputs(np.maximum, None)
_BUILDERS["minBroadcastable"] = _reduce_inputs(np.minimum, None)
_BUILDERS["subtractBroadcastable"] = _reduce_inputs(np.subtract, None)
_BUILDERS["divideBroadcastable"] = _reduce_inputs(np.divide, None)
_BUILDERS["powBroadcastable"] = _reduce_inputs(np.power, None)


@_layer("average")
def _average(p, layer) -> Fn:
    return lambda xs, ctx: [sum(_f32(x) for x in xs) / np.float32(len(xs))]


@_layer("scale")
def _scale(p, layer) -> Fn:
    n = int(np.prod([int(s) for s in p.shapeScale] or [1]))
    scale = _chan_shape(nn_weights(p.scale, n, name=layer.name), p.shapeScale)
    bias = None
    if p.hasBias:
        nb = int(np.prod([int(s) for s in p.shapeBias] or [1]))
        bias = _chan_shape(nn_weights(p.bias, nb, name=layer.name), p.shapeBias)

    def run(xs, ctx):
        y = _f32(xs[0]) * scale
        return [y + bias if bias is not None else y]
    return run


@_layer("bias")
def _bias(p, layer) -> Fn:
    n = int(np.prod([int(s) for s in p.shape] or [1]))
    bias = _chan_shape(nn_weights(p.bias, n, name=layer.name), p.shape)
    return lambda xs, ctx: [_f32(xs[0]) + bias]


@_layer("batchnorm")
def _batchnorm(p, layer) -> Fn:
    c = int(p.channels)
    eps = np.float32(p.epsilon or 1e-5)
    gamma = nn_weights(p.gamma, c, name=layer.name).reshape(-1, 1, 1)
    beta = nn_weights(p.beta, c, name=layer.name).reshape(-1, 1, 1)
    if p.computeMeanVar:
        instance = bool(p.instanceNormalization)

        def run_stats(xs, ctx):
            x = _f32(xs[0])
            axes = (-2, -1) if instance else tuple(i for i in range(x.ndim) if i != x.ndim - 3)
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            return [gamma * (x - mean) / np.sqrt(var + eps) + beta]
        return run_stats
    mean = nn_weights(p.mean, c, name=layer.name).reshape(-1, 1, 1)
    var = nn_weights(p.variance, c, name=layer.name).reshape(-1, 1, 1)
    mult = gamma / np.sqrt(var + eps)
    add = beta - mean * mult
    return lambda xs, ctx: [_f32(xs[0]) * mult + add]


# --- matrix products ---------------------------------------------------------------------

@_layer("innerProduct")
def _inner_product(p, layer) -> Fn:
    if getattr(p, "int8DynamicQuantize", False):
        raise _Unsupported("int8DynamicQuantize (activations quantized at run time)",
                           "innerProduct (int8DynamicQuantize)")
    cin, cout = int(p.inputChannels), int(p.outputChannels)
    w = nn_weights(p.weights, cin * cout, channels=cout, name=layer.name).reshape(cout, cin)
    b = nn_weights(p.bias, cout, channels=cout, name=layer.name) if p.hasBias else None

    def run(xs, ctx):
        x = _f32(xs[0])
        shape = x.shape
        if x.ndim == 1:
            m, out_shape = x.reshape(1, -1), (cout,)
        elif x.ndim == 2:
            m, out_shape = x, (shape[0], cout)
        elif x.ndim == 3:
            m, out_shape = x.reshape(-1, shape[2]), (shape[0], shape[1], cout)
        elif x.ndim == 4:
            m, out_shape = x.reshape(shape[0], -1), (shape[0], cout, 1, 1)
        elif x.ndim == 5:
            m, out_shape = x.reshape(shape[0] * shape[1], -1), (shape[0], shape[1], cout, 1, 1)
        else:
            raise MlkitError(f"innerProduct '{layer.name}': input of rank {x.ndim}")
        y = m @ w.T
        if b is not None:
            y = y + b
        return [y.reshape(out_shape)]
    return run


@_layer("batchedMatmul")
def _batched_matmul(p, layer) -> Fn:
    if getattr(p, "int8DynamicQuantize", False):
        raise _Unsupported("int8DynamicQuantize (activations quantized at run time)",
                           "batchedMatmul (int8DynamicQuantize)")
    if len(layer.input) == 2:
        ta, tb = bool(p.transposeA), bool(p.transposeB)
        return lambda xs, ctx: [ops.matmul(xs[0], xs[1], ta, tb)]
    x1, x2 = int(p.weightMatrixFirstDimension), int(p.weightMatrixSecondDimension)
    # Stored column-major: the flat values are W.T ([X2, X1]) in row-major order.
    w = nn_weights(p.weights, x1 * x2, channels=x2, name=layer.name).reshape(x2, x1).T
    b = nn_weights(p.bias, x2, channels=x2, name=layer.name) if p.hasBias else None

    def run(xs, ctx):
        y = _f32(xs[0]) @ w
        return [y + b if b is not None else y]
    return run


# --- softmax and reductions --------------------------------------------------------------

@_layer("softmax")
def _softmax(p, layer) -> Fn:
    return lambda xs, ctx: [ops.softmax(xs[0], axis=-3)]


@_layer("softmaxND")
def _softmax_nd(p, layer) -> Fn:
    axis = int(p.axis)
    return lambda xs, ctx: [ops.softmax(xs[0], axis=axis)]


_ND_REDUCE = {
    "reduceMean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "reduceSum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "reduceMax": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduceMin": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduceProd": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "reduceL1": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "reduceL2": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "reduceSumSquare": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
    "reduceLogSum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "reduceLogSumExp": lambda x, a, k: np.log(np.sum(np.exp(x), axis=a, keepdims=k)),
}


def _nd_reduce(kind):
    f = _ND_REDUCE[kind]

    def build(p, layer):
        axes = tuple(int(a) for a in p.axes)
        keep, every = bool(p.keepDims), bool(p.reduceAll)

        def run(xs, ctx):
            x = _f32(xs[0])
            a = None if every or not axes else axes
            return [np.asarray(f(x, a, keep), dtype=np.float32)]
        return run
    return build


for _kind in _ND_REDUCE:
    _BUILDERS[_kind] = _nd_reduce(_kind)


@_layer("reduce")
def _reduce_legacy(p, layer) -> Fn:
    from coremltools.proto import NeuralNetwork_pb2

    R = NeuralNetwork_pb2.ReduceLayerParams
    mode = R.ReduceOperation.Name(p.mode)
    axes = {"CHW": (-3, -2, -1), "HW": (-2, -1), "C": (-3,), "H": (-2,),
            "W": (-1,)}[R.ReduceAxis.Name(p.axis)]
    eps = np.float32(p.epsilon or 1e-6)
    funcs = {
        "SUM": lambda x: np.sum(x, axes, keepdims=True),
        "AVG": lambda x: np.mean(x, axes, keepdims=True),
        "PROD": lambda x: np.prod(x, axes, keepdims=True),
        "LOGSUM": lambda x: np.sum(np.log(x + eps), axes, keepdims=True),
        "SUMSQUARE": lambda x: np.sum(x * x, axes, keepdims=True),
        "L1": lambda x: np.sum(np.abs(x), axes, keepdims=True),
        "L2": lambda x: np.sqrt(np.sum(x * x, axes, keepdims=True)),
        "MAX": lambda x: np.max(x, axes, keepdims=True),
        "MIN": lambda x: np.min(x, axes, keepdims=True),
    }
    if mode == "ARGMAX" and len(axes) == 1:
        return lambda xs, ctx: [np.expand_dims(np.argmax(_f32(xs[0]), axis=axes[0]),
                                               axes[0]).astype(np.float32)]
    if mode not in funcs:
        raise _Unsupported(f"reduce mode {mode} over {axes}", f"reduce ({mode})")
    f = funcs[mode]
    return lambda xs, ctx: [np.asarray(f(_f32(xs[0])), dtype=np.float32)]


# --- shape manipulation ------------------------------------------------------------------

def _widen_batch(target: list[int], x: np.ndarray, ctx: RunContext) -> list[int]:
    """A reshape written for batch 1, run on a batch: keep the batch axis."""
    if ctx.batch > 1 and target and target[0] == 1 and x.ndim and x.shape[0] == ctx.batch:
        return [ctx.batch] + list(target[1:])
    return list(target)


@_layer("transpose")
def _transpose(p, layer) -> Fn:
    axes = [int(a) for a in p.axes]
    return lambda xs, ctx: [np.ascontiguousarray(np.transpose(xs[0], axes))]


@_layer("permute")
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


@_layer("flatten")
def _flatten(p, layer) -> Fn:
    channel_last = p.mode == 1

    def run(xs, ctx):
        x = xs[0]
        if channel_last:
            x = np.moveaxis(x, -3, -1)
        return [np.ascontiguousarray(x).reshape(x.shape[:-3] + (-1, 1, 1))]
    return run


@_layer("flattenTo2D")
def _flatten_2d(p, layer) -> Fn:
    axis = int(p.axis)

    def run(xs, ctx):
        x = xs[0]
        a = axis if axis >= 0 else x.ndim + axis
        return [x.reshape(int(np.prod(x.shape[:a], dtype=np.int64)), -1)]
    return run


@_layer("reshape")
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


@_layer("reshapeStatic", "rankPreservingReshape")
def _reshape_static(p, layer) -> Fn:
    target = [int(v) for v in p.targetShape]

    def run(xs, ctx):
        x = xs[0]
        t = _widen_batch(target, x, ctx)
        return [x.reshape(ops.resolve_reshape(x.shape, t))]
    return run


@_layer("squeeze")
def _squeeze(p, layer) -> Fn:
    axes = tuple(int(a) for a in p.axes)
    every = bool(p.squeezeAll)

    def run(xs, ctx):
        x = xs[0]
        if x.ndim == 1:
            return [x]
        return [np.squeeze(x) if every or not axes else np.squeeze(x, axis=axes)]
    return run


@_layer("expandDims")
def _expand_dims(p, layer) -> Fn:
    axes = [int(a) for a in p.axes]

    def run(xs, ctx):
        x = xs[0]
        rank = x.ndim + len(axes)
        for a in sorted(a if a >= 0 else rank + a for a in axes):
            x = np.expand_dims(x, a)
        return [x]
    return run


@_layer("concat")
def _concat(p, layer) -> Fn:
    axis = -5 if p.sequenceConcat else -3
    return lambda xs, ctx: [np.concatenate([_f32(x) for x in xs], axis=axis)]


@_layer("concatND")
def _concat_nd(p, layer) -> Fn:
    axis = int(p.axis)
    return lambda xs, ctx: [np.concatenate([_f32(x) for x in xs], axis=axis)]


@_layer("splitND")
def _split_nd(p, layer) -> Fn:
    axis, n = int(p.axis), int(p.numSplits)
    sizes = [int(s) for s in p.splitSizes]

    def run(xs, ctx):
        x = xs[0]
        if sizes:
            return np.split(x, np.cumsum(sizes)[:-1], axis=axis)
        return np.split(x, n or len(layer.output), axis=axis)
    return run


@_layer("sliceStatic")
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


@_layer("loadConstantND")
def _load_constant_nd(p, layer) -> Fn:
    shape = [int(s) for s in p.shape]
    value = nn_weights(p.data, int(np.prod(shape)), name=layer.name).reshape(shape)
    return lambda xs, ctx: [value]


@_layer("loadConstant")
def _load_constant(p, layer) -> Fn:
    shape = [int(s) for s in p.shape]
    value = nn_weights(p.data, int(np.prod(shape)), name=layer.name).reshape([1, 1] + shape)
    return lambda xs, ctx: [value]


# --- the graph ---------------------------------------------------------------------------

class NNGraph:
    """A compiled NeuralNetwork: preprocessing, steps in order, classifier facts."""

    def __init__(self, nn, *, spec_version: int):
        self.spec_version = spec_version
        self.image_rank = 4 if nn.imageInputShapeMapping == 1 else 5
        self.exact_arrays = nn.arrayInputShapeMapping == 1
        self.scalers: dict[str, tuple[float, dict[str, float]]] = {}
        for pre in nn.preprocessing:
            which = pre.WhichOneof("preprocessor")
            if which == "scaler":
                s = pre.scaler
                self.scalers[pre.featureName] = (
                    s.channelScale, {"red": s.redBias, "green": s.greenBias,
                                     "blue": s.blueBias, "gray": s.grayBias})
            elif which == "meanImage":
                raise UnsupportedOpError("meanImage preprocessing", pre.featureName, FORMAT)
        self.steps: list[Step] = []
        problems: list[tuple[str, str, str]] = []
        for layer in nn.layers:
            kind = layer.WhichOneof("layer")
            builder = _BUILDERS.get(kind)
            try:
                if builder is None:
                    raise _Unsupported()
                fn = builder(getattr(layer, kind), layer)
            except _Unsupported as e:
                problems.append((e.op_type or kind, layer.name, e.detail))
                continue
            self.steps.append(Step(kind, layer.name, list(layer.input), list(layer.output), fn))
        if problems:
            op_type, name, detail = problems[0]
            raise UnsupportedOpError(op_type, name, FORMAT, detail, others=len(problems) - 1)
        self.layer_types = sorted({s.type for s in self.steps})
        self.produced = {o for s in self.steps for o in s.outputs}
        self._last_use = {}
        for i, s in enumerate(self.steps):
            for name in s.inputs:
                self._last_use[name] = i

    def preprocess_image(self, name: str, chw: np.ndarray, color_space: str) -> np.ndarray:
        """Apply the spec's scaler to an image tensor (N, C, H, W) in the model's colour
        order, then map it to the network's input rank."""
        if name in self.scalers:
            scale, bias = self.scalers[name]
            x = chw * np.float32(scale)
            if color_space == "GRAYSCALE":
                x = x + np.float32(bias["gray"])
            else:
                order = ["blue", "green", "red"] if color_space == "BGR" else ["red", "green", "blue"]
                x = x + np.array([bias[c] for c in order], np.float32).reshape(1, 3, 1, 1)
        else:
            x = chw
        x = x.astype(np.float32)
        return x if self.image_rank == 4 else x[None]

    def run(self, feeds: dict[str, np.ndarray], fetch: set[str], ctx: RunContext) -> dict:
        env = dict(feeds)
        keep = set(fetch)
        for i, step in enumerate(self.steps):
            try:
                xs = [env[n] for n in step.inputs]
            except KeyError as e:
                raise MlkitError(f"layer '{step.name}' reads '{e.args[0]}', which no input or "
                                 "earlier layer produces; the model file is broken") from None
            try:
                ys = step.fn(xs, ctx)
            except (ValueError, FloatingPointError) as e:
                raise MlkitError(f"{step.type} layer '{step.name}' failed on inputs of shape "
                                 f"{[np.shape(x) for x in xs]}: {e}") from None
            for name, y in zip(step.outputs, ys):
                env[name] = y
            for name in step.inputs:
                if self._last_use.get(name) == i and name not in keep:
                    env.pop(name, None)
        missing = [n for n in fetch if n not in env]
        if missing:
            raise MlkitError(f"no layer produces {missing}; the model file is broken")
        return {n: env[n] for n in fetch}
