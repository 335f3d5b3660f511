"""MIL dtypes: how a value is held between ops (``store``: fp16 as fp16-rounded float32)
and the ``cast`` op with the dtype names it takes (shared with ``constexpr_cast``)."""

from __future__ import annotations

import numpy as np

from ..errors import Unsupported
from .registry import implements

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)

CAST_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int32": np.int32,
    "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16,
    "int64": np.int64, "bool": np.bool_,
}


def store(value, dtype: np.dtype | None):
    """A value as held in the environment: fp16 as fp16-rounded float32, others as
    declared."""
    if dtype is None:
        return value
    value = np.asarray(value)
    if dtype == F16:
        return value.astype(F16).astype(F32)
    return value.astype(dtype, copy=False)


@implements("cast")
def _cast(a):
    dtype = str(a.scalar("dtype"))
    if dtype not in CAST_DTYPES:
        raise Unsupported(f"cast to '{dtype}'")
    x = np.asarray(a.get("x"))
    if np.dtype(CAST_DTYPES[dtype]).kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)
    return x.astype(CAST_DTYPES[dtype])
