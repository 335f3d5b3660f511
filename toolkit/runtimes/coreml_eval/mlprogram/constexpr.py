"""MIL ``constexpr_*`` ops: weight decompression (affine / block-wise dequantisation,
palettes, sparse masks, casts), evaluated once at load time, per coremltools' op
definitions. ``CONSTEXPR`` maps each op type to its function; unlike ``registry.OPS``
these never run per prediction."""

from __future__ import annotations

import numpy as np

from ....errors import MlkitError
from ..errors import Unsupported
from ..weights import unpack_bits
from .dtypes import CAST_DTYPES


def _affine_dequantize(a):
    q = np.asarray(a.get("quantized_data")).astype(np.float32)
    zp = np.asarray(a.get("zero_point")).astype(np.float32)
    scale = np.asarray(a.get("scale")).astype(np.float32)
    axis = int(a.scalar("axis", 0))
    axis = axis if axis >= 0 else q.ndim + axis
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis] = -1
    zshape = [1] * q.ndim
    if zp.size > 1:
        zshape[axis] = -1
    return (q - zp.reshape(zshape)) * scale.reshape(shape)


def _blockwise(data: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Repeat per-block parameters (same rank as data) to data's shape."""
    out = params
    for axis, (n, m) in enumerate(zip(data.shape, params.shape)):
        if n % m:
            raise MlkitError(f"block-wise parameters of shape {params.shape} do not divide "
                             f"data of shape {data.shape}")
        if m != n:
            out = np.repeat(out, n // m, axis=axis)
    return out


def _blockwise_shift_scale(a):
    data = np.asarray(a.get("data")).astype(np.float32)
    scale = np.asarray(a.get("scale")).astype(np.float32)
    y = data
    if a.has("offset"):
        y = y - _blockwise(data, np.asarray(a.get("offset")).astype(np.float32))
    return y * _blockwise(data, scale)


def _lut_to_dense(a):
    lut = np.asarray(a.get("lut"))
    indices = np.asarray(a.get("indices"))
    if a.has("shape"):
        # iOS 16: a flat LUT, indices packed into uint8 bytes (LSB first), explicit shape.
        shape = a.ints("shape")
        count = int(np.prod(shape))
        nbits = int(np.log2(lut.size))
        idx = unpack_bits(indices.astype(np.uint8).tobytes(), nbits, count)
        return lut.reshape(-1)[idx.astype(np.int64)].reshape(shape)
    # iOS 18: indices already shaped (sub-byte dtype widened); lut [*blocks, palettes, vec].
    if lut.shape[-1] != 1:
        raise Unsupported("vector palettization (lookup-table vector size > 1)")
    k = indices.ndim
    tables = lut.reshape(lut.shape[:k] + (lut.shape[k],))
    grid = _blockwise(indices, np.zeros(tables.shape[:k], np.int64)).shape  # validates blocks
    out = np.empty(grid, dtype=lut.dtype)
    reps = [n // m for n, m in zip(indices.shape, tables.shape[:k])]
    for block in np.ndindex(*tables.shape[:k]):
        sl = tuple(slice(b * r, (b + 1) * r) for b, r in zip(block, reps))
        out[sl] = tables[block][indices[sl].astype(np.int64)]
    return out


def _sparse_to_dense(a):
    values = np.asarray(a.get("nonzero_data")).reshape(-1)
    mask = np.asarray(a.get("mask"))
    if a.has("shape"):
        shape = a.ints("shape")
        bits = unpack_bits(mask.astype(np.uint8).tobytes(), 1, int(np.prod(shape)))
    else:
        shape, bits = list(mask.shape), mask.reshape(-1)
    out = np.zeros(int(np.prod(shape)), dtype=values.dtype)
    out[bits.astype(bool)] = values
    return out.reshape(shape)


def _constexpr_cast(a):
    dtype = str(a.scalar("output_dtype"))
    return np.asarray(a.get("source_val")).astype(CAST_DTYPES[dtype])


CONSTEXPR = {
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_blockwise_shift_scale": _blockwise_shift_scale,
    "constexpr_lut_to_dense": _lut_to_dense,
    "constexpr_sparse_to_dense": _sparse_to_dense,
    "constexpr_cast": _constexpr_cast,
}
