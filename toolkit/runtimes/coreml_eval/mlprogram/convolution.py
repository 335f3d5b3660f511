"""MIL convolution, pooling and padding ops (2-D, NCHW), per coremltools' op definitions:
``pad_type`` ``valid`` / ``same`` / ``same_lower`` / ``custom`` becomes explicit pads for
the kernels in ``ops``."""

from __future__ import annotations

import numpy as np

from ....errors import MlkitError
from .. import ops
from ..errors import Unsupported
from .registry import OPS, Args, implements


def _spatial_pads(a: Args, in_hw, kernel, strides, dilations) -> ops.Pads:
    pad_type = str(a.scalar("pad_type", "valid"))
    if pad_type == "valid":
        return 0, 0, 0, 0
    if pad_type in ("same", "same_lower"):
        return ops.same_pads(in_hw, kernel, strides, dilations, lower=pad_type == "same_lower")
    if pad_type == "custom":
        p = a.ints("pad", [0, 0, 0, 0])
        return p[0], p[1], p[2], p[3]
    raise MlkitError(f"op '{a.graph.op_name(a.op)}': unknown pad_type '{pad_type}'")


@implements("conv")
def _conv(a):
    x, w = a.f32("x"), a.f32("weight")
    if x.ndim != 4:
        raise Unsupported(f"{x.ndim - 2}-D convolution (only 2-D is implemented)")
    strides = a.ints("strides", [1, 1])
    dil = a.ints("dilations", [1, 1])
    groups = int(a.scalar("groups", 1))
    pads = _spatial_pads(a, x.shape[2:], w.shape[2:], strides, dil)
    bias = a.f32("bias") if a.has("bias") else None
    return ops.conv2d(x, w, bias, strides=strides, dilations=dil, pads=pads, groups=groups)


def _pool(mode):
    def run(a):
        x = a.f32("x")
        if x.ndim != 4:
            raise Unsupported(f"{x.ndim - 2}-D pooling (only 2-D is implemented)")
        kernel = a.ints("kernel_sizes")
        strides = a.ints("strides", [1, 1])
        pads = _spatial_pads(a, x.shape[2:], kernel, strides, [1, 1])
        return ops.pool2d(x, kernel, mode=mode, strides=strides, pads=pads,
                          exclude_padding=bool(a.scalar("exclude_padding_from_average", False)),
                          ceil_mode=bool(a.scalar("ceil_mode", False)))
    return run


OPS["avg_pool"] = _pool("avg")
OPS["max_pool"] = _pool("max")


@implements("pad")
def _pad(a):
    x = a.get("x")
    p = a.ints("pad")
    widths = [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    mode = str(a.scalar("mode", "constant"))
    return ops.pad(np.asarray(x, np.float32), widths, mode, float(a.scalar("constant_val", 0.0)))
