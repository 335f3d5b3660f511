"""Pure NumPy kernels shared by the NeuralNetwork layers and the MIL ops.

Everything is NCHW (batch, channels, height, width), the layout both Core ML formats use,
float32 in and out. No kernel knows about protobuf; the layer / op modules translate each
spec's parameters into these calls.

Convolution is written for speed on a few CPU cores: 1x1 convolutions are one matrix
product, depthwise convolutions accumulate one shifted slice per kernel tap, anything else
goes through im2col + one matrix product per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Pads = tuple[int, int, int, int]  # top, bottom, left, right


def same_pads(in_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int] = (1, 1), *, lower: bool = False) -> Pads:
    """TensorFlow-style SAME padding: output = ceil(input / stride).

    The odd pixel goes to the bottom / right (Core ML's ``BOTTOM_RIGHT_HEAVY``, MIL's
    ``same``) unless ``lower`` (``TOP_LEFT_HEAVY``, MIL's ``same_lower``)."""
    pads: list[int] = []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        eff = (k - 1) * d + 1
        out = -(-size // s)
        total = max(0, (out - 1) * s + eff - size)
        small, big = total // 2, total - total // 2
        pads += [big, small] if lower else [small, big]
    return pads[0], pads[1], pads[2], pads[3]


def _as_batch4(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """View an input of rank >= 3 as (N, C, H, W); leading axes are all batch."""
    if x.ndim < 3:
        raise ValueError(f"expected a tensor of rank >= 3 (.., C, H, W), got shape {x.shape}")
    lead = x.shape[:-3]
    return x.reshape((-1,) + x.shape[-3:]), lead


def _taps(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
          ho: int, wo: int):
    """Yield (i, j, view) for each kernel tap: the strided input window it multiplies."""
    for i in range(kh):
        for j in range(kw):
            r, c = i * dh, j * dw
            yield i, j, xp[:, :, r:r + sh * (ho - 1) + 1:sh, c:c + sw * (wo - 1) + 1:sw]


def conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, *,
           strides: Sequence[int] = (1, 1), dilations: Sequence[int] = (1, 1),
           pads: Pads = (0, 0, 0, 0), groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation) of x (.., C_in, H, W) with w (C_out, C_in/groups, kH, kW).

    Zero padding ``pads`` = (top, bottom, left, right) is applied first."""
    x4, lead = _as_batch4(np.asarray(x, dtype=np.float32))
    w = np.asarray(w, dtype=np.float32)
    n, cin, _, _ = x4.shape
    cout, cpg, kh, kw = w.shape
    if cin != cpg * groups or cout % groups:
        raise ValueError(f"convolution: input has {cin} channels, weights {tuple(w.shape)} "
                         f"with {groups} groups")
    sh, sw = strides
    dh, dw = dilations
    top, bottom, left, right = pads
    xp = x4
    if any(pads):
        xp = np.pad(x4, ((0, 0), (0, 0), (top, bottom), (left, right)))
    hp, wp = xp.shape[2], xp.shape[3]
    ho = (hp - ((kh - 1) * dh + 1)) // sh + 1
    wo = (wp - ((kw - 1) * dw + 1)) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"convolution: kernel {kh}x{kw} larger than padded input {hp}x{wp}")

    if groups == 1:
        out = _conv_dense(xp, w, kh, kw, sh, sw, dh, dw, ho, wo)
    elif cpg == 1:
        out = _conv_depthwise(xp, w, cout // cin, kh, kw, sh, sw, dh, dw, ho, wo)
    else:
        opg = cout // groups
        out = np.concatenate(
            [_conv_dense(xp[:, g * cpg:(g + 1) * cpg], w[g * opg:(g + 1) * opg],
                         kh, kw, sh, sw, dh, dw, ho, wo) for g in range(groups)], axis=1)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float32).reshape(1, -1, 1, 1)
    return out.reshape(lead + out.shape[1:])


def _conv_dense(xp, w, kh, kw, sh, sw, dh, dw, ho, wo) -> np.ndarray:
    n, c = xp.shape[:2]
    cout = w.shape[0]
    if kh == kw == 1:
        cols = xp[:, :, :sh * (ho - 1) + 1:sh, :sw * (wo - 1) + 1:sw].reshape(n, c, ho * wo)
    else:
        cols = np.empty((n, c, kh, kw, ho, wo), dtype=np.float32)
        for i, j, view in _taps(xp, kh, kw, sh, sw, dh, dw, ho, wo):
            cols[:, :, i, j] = view
        cols = cols.reshape(n, c * kh * kw, ho * wo)
    w2 = w.reshape(cout, -1)
    if n == 1:
        out = (w2 @ cols[0])[None]
    else:
        out = np.matmul(w2[None], cols)
    return out.reshape(n, cout, ho, wo)


def _conv_depthwise(xp, w, mult, kh, kw, sh, sw, dh, dw, ho, wo) -> np.ndarray:
    if mult != 1:
        xp = np.repeat(xp, mult, axis=1)
    n, c = xp.shape[:2]
    out = np.zeros((n, c, ho, wo), dtype=np.float32)
    tmp = np.empty_like(out)
    for i, j, view in _taps(xp, kh, kw, sh, sw, dh, dw, ho, wo):
        np.multiply(view, w[:, 0, i, j].reshape(1, c, 1, 1), out=tmp)
        out += tmp
    return out


def pool2d(x: np.ndarray, kernel: Sequence[int], *, mode: str, strides: Sequence[int] = (1, 1),
           pads: Pads = (0, 0, 0, 0), exclude_padding: bool = False,
           ceil_mode: bool = False) -> np.ndarray:
    """Max or average pooling over the last two axes of x (.., C, H, W).

    ``exclude_padding``: average over the real (unpadded) pixels of each window only.
    ``ceil_mode``: round the output size up (extra windows hang over the bottom / right edge
    and see only real pixels), as MIL's ``ceil_mode`` and NeuralNetwork's
    ``includeLastPixel`` do."""
    if mode not in ("max", "avg"):
        raise ValueError(f"pooling mode must be 'max' or 'avg', not {mode!r}")
    x4, lead = _as_batch4(np.asarray(x, dtype=np.float32))
    kh, kw = kernel
    sh, sw = strides
    top, bottom, left, right = pads
    h, w = x4.shape[2:]
    ho = _pool_out_size(h, kh, sh, top, bottom, ceil_mode)
    wo = _pool_out_size(w, kw, sw, left, right, ceil_mode)
    need_h = (ho - 1) * sh + kh - (h + top)   # rows needed below the input
    need_w = (wo - 1) * sw + kw - (w + left)
    fill = -np.inf if mode == "max" else 0.0
    pad_spec = ((0, 0), (0, 0), (top, max(need_h, 0)), (left, max(need_w, 0)))
    xp = np.pad(x4, pad_spec, constant_values=fill)
    acc = None
    for _, _, view in _taps(xp, kh, kw, sh, sw, 1, 1, ho, wo):
        if acc is None:
            acc = view.copy()
        elif mode == "max":
            np.maximum(acc, view, out=acc)
        else:
            acc += view
    if mode == "avg":
        ones = _averaged_pixels((h, w), pads, xp.shape[2:], exclude_padding)
        count = sum(view for _, _, view in _taps(ones, kh, kw, sh, sw, 1, 1, ho, wo))
        acc /= np.maximum(count, 1)
    return acc.reshape(lead + acc.shape[1:])


def _pool_out_size(size: int, k: int, s: int, a: int, b: int, ceil_mode: bool) -> int:
    """Output length of pooling ``size`` pixels padded by ``a`` / ``b`` with kernel ``k``,
    stride ``s``; in ceil mode no window starts beyond the input and its leading pad."""
    span = size + a + b - k
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= size + a:
        o -= 1
    return o


def _averaged_pixels(in_hw: Sequence[int], pads: Pads, padded_hw: Sequence[int],
                     exclude_padding: bool) -> np.ndarray:
    """A (1, 1, H', W') mask of the padded input, 1 where a pixel counts towards an
    average-pooling window's divisor."""
    h, w = in_hw
    top, bottom, left, right = pads
    # Padding declared in the spec counts towards the average unless excluded; the
    # extra rows that ceil mode hangs over the edge never do.
    ones = np.zeros((1, 1) + tuple(padded_hw), np.float32)
    if exclude_padding:
        ones[:, :, top:top + h, left:left + w] = 1
    else:
        ones[:, :, :h + top + bottom, :w + left + right] = 1
    return ones


def pad(x: np.ndarray, widths: Sequence[tuple[int, int]], mode: str = "constant",
        value: float = 0.0) -> np.ndarray:
    """Pad the LAST ``len(widths)`` axes of x; mode constant / reflect / replicate."""
    full = [(0, 0)] * (x.ndim - len(widths)) + [(int(a), int(b)) for a, b in widths]
    if mode == "constant":
        return np.pad(x, full, mode="constant", constant_values=value)
    if mode in ("reflect", "reflection"):
        return np.pad(x, full, mode="reflect")
    if mode in ("replicate", "replication"):
        return np.pad(x, full, mode="edge")
    raise ValueError(f"padding mode must be constant, reflect or replicate, not {mode!r}")


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (0.5 * (np.tanh(0.5 * x) + 1.0)).astype(np.float32)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float32)).astype(np.float32)


def erf(x: np.ndarray) -> np.ndarray:
    """Error function (Abramowitz-Stegun 7.1.26 is too coarse; use the float64 series
    via math.erf, vectorised)."""
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, np.float64)).astype(np.float32)


def gelu(x: np.ndarray, mode: str = "EXACT") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * sigmoid(1.702 * x)
    return 0.5 * x * (1 + erf(x / np.sqrt(2.0)))


def matmul(a: np.ndarray, b: np.ndarray, transpose_a: bool = False,
           transpose_b: bool = False) -> np.ndarray:
    """NumPy-style batched matrix product with optional transposes of the last two axes
    (1-D operands are promoted and the promoted axis removed, as np.matmul does)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if transpose_a and a.ndim >= 2:
        a = np.swapaxes(a, -1, -2)
    if transpose_b and b.ndim >= 2:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


def resolve_reshape(in_shape: Sequence[int], target: Sequence[int], *,
                    zero_copies: bool = True) -> tuple[int, ...]:
    """Target shape with ``0`` (copy the input's dimension at that index) and one ``-1``
    (whatever is left) resolved."""
    shape = [int(s) for s in target]
    if zero_copies:
        for i, s in enumerate(shape):
            if s == 0:
                if i >= len(in_shape):
                    raise ValueError(f"reshape: 0 at index {i} but input rank is {len(in_shape)}")
                shape[i] = int(in_shape[i])
    size = int(np.prod(in_shape, dtype=np.int64))
    if shape.count(-1) > 1:
        raise ValueError(f"reshape: more than one -1 in {list(target)}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        shape[shape.index(-1)] = size // known if known else 0
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ValueError(f"reshape: cannot reshape {tuple(in_shape)} to {list(target)}")
    return tuple(shape)


# The reductions both formats have (MIL ``reduce_<kind>``, NeuralNetwork ``reduceMean`` ...):
# kind -> f(x, axes, keepdims), axes a tuple or None for all.
REDUCTIONS = {
    "mean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "sum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "max": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "min": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "prod": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "l1_norm": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "l2_norm": lambda x, ax, k: np.sqrt(np.sum(x * x, axis=ax, keepdims=k)),
    "sum_square": lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k),
    "log_sum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "log_sum_exp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}


def reduce(kind: str, x: np.ndarray, axes: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    """The reduction ``kind`` (a key of ``REDUCTIONS``) of float32 x over ``axes``, as float32."""
    return np.asarray(REDUCTIONS[kind](x, axes, keepdims), dtype=np.float32)
