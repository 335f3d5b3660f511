"""MIL (``mlProgram``, ``.mlpackage``) op semantics, per coremltools' op definitions.

``MILGraph`` compiles the ``main`` function of a program: ``const`` values and all
``constexpr_*`` ops (weight decompression: fp16 / int8 / int4 / palettized weights) are
evaluated once at load time; every other op becomes a step run in order.

Precision: every op computes in float32 and its result is stored in the dtype the program
declares for that output. In an fp16 program (``compute_precision=FLOAT16``, the
coremltools default) each intermediate tensor is therefore rounded to fp16 between ops,
as Core ML stores it, while sums inside an op (a convolution's dot products) run in
float32. Core ML's GPU / Neural Engine may accumulate in fp16 too, so fp16 results agree
with the device to about 1e-3, not bit for bit. (fp16 values are held as float32 arrays
carrying exactly the fp16-rounded values, so each op converts once, not every consumer;
outputs the program declares fp16 are returned as float16.) Every op's result shape is
checked against the shape the program declares, which catches both broken files and
evaluator bugs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import MlkitError
from . import ops
from .errors import UnsupportedOpError
from .weights import MIL_DTYPES, mil_value, unpack_bits

FORMAT = "mlprogram"

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


def _store(value, dtype: np.dtype | None):
    """A value as held in the environment: fp16 as fp16-rounded float32, others as
    declared."""
    if dtype is None:
        return value
    value = np.asarray(value)
    if dtype == _F16:
        return value.astype(_F16).astype(_F32)
    return value.astype(dtype, copy=False)


_CAST_DTYPES = {
    "fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int32": np.int32,
    "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16,
    "int64": np.int64, "bool": np.bool_,
}


@dataclass
class RunContext:
    batch: int = 1


class _Unsupported(Exception):
    def __init__(self, detail: str = ""):
        super().__init__(detail)
        self.detail = detail


@dataclass
class OutSpec:
    name: str
    dtype: np.dtype | None          # None: not a tensor (classify's label / dict outputs)
    shape: tuple[int, ...] | None   # None: not static


class Args:
    """An op's parameters: bound names resolved in the environment, inline values
    decoded, attributes as a fallback (iOS16 constexpr ops keep parameters there)."""

    def __init__(self, op, graph: "MILGraph", env: dict, ctx: RunContext):
        self.op, self.graph, self.env, self.ctx = op, graph, env, ctx

    def _resolve(self, binding):
        if binding.WhichOneof("binding") == "name":
            name = binding.name
            if name in self.env:
                return self.env[name]
            if name in self.graph.consts:
                return self.graph.consts[name]
            raise MlkitError(f"op '{self.graph.op_name(self.op)}' reads '{name}', which nothing "
                             "defines before it; the program is broken")
        return self.graph.decode(binding.value)

    def has(self, key: str) -> bool:
        return key in self.op.inputs or key in self.op.attributes

    def list(self, key: str) -> list:
        if key in self.op.inputs:
            return [self._resolve(b) for b in self.op.inputs[key].arguments]
        if key in self.op.attributes:
            return [self.graph.decode(self.op.attributes[key])]
        raise MlkitError(f"op '{self.graph.op_name(self.op)}' ({self.op.type}) lacks its "
                         f"required parameter '{key}'")

    def get(self, key: str, default=None):
        if not self.has(key):
            return default
        vals = self.list(key)
        return vals[0] if len(vals) == 1 else vals

    def f32(self, key: str = "x") -> np.ndarray:
        return np.asarray(self.get(key), dtype=np.float32)

    def scalar(self, key: str, default=None):
        v = self.get(key, default)
        if isinstance(v, np.ndarray):
            return v.item() if v.size == 1 else v
        return v

    def ints(self, key: str, default=None) -> list[int] | None:
        v = self.get(key, None)
        if v is None:
            return default
        return [int(i) for i in np.asarray(v).reshape(-1)]


_OPS: dict[str, Callable[[Args], object]] = {}


def _op(*names: str):
    def register(fn):
        for n in names:
            _OPS[n] = fn
        return fn
    return register


def supported_ops() -> list[str]:
    return sorted(set(_OPS) | set(_CONSTEXPR) | {"const"})


# --- activations and element-wise --------------------------------------------------------

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
    _OPS[_name] = _unary_op(_f)


@_op("rsqrt")
def _rsqrt(a):
    return 1 / np.sqrt(a.f32() + np.float32(a.scalar("epsilon", 1e-12)))


@_op("inverse")
def _inverse(a):
    return 1 / (a.f32() + np.float32(a.scalar("epsilon", 1e-4)))


@_op("log")
def _log(a):
    return np.log(a.f32() + np.float32(a.scalar("epsilon", 0.0)))


@_op("clip")
def _clip(a):
    return np.clip(a.f32(), np.float32(a.scalar("alpha")), np.float32(a.scalar("beta")))


@_op("leaky_relu")
def _leaky_relu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 0.01))
    return np.where(x >= 0, x, alpha * x)


@_op("elu")
def _elu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 1.0))
    return np.where(x >= 0, x, alpha * np.expm1(x))


@_op("thresholded_relu")
def _thresholded_relu(a):
    x, alpha = a.f32(), np.float32(a.scalar("alpha", 1.0))
    return np.where(x >= alpha, x, 0)


@_op("linear_activation")
def _linear_activation(a):
    return a.f32() * np.float32(a.scalar("alpha")) + np.float32(a.scalar("beta", 0.0))


@_op("sigmoid_hard")
def _sigmoid_hard(a):
    return np.clip(a.f32() * np.float32(a.scalar("alpha", 0.2)) + np.float32(a.scalar("beta", 0.5)), 0, 1)


@_op("scaled_tanh")
def _scaled_tanh(a):
    return np.float32(a.scalar("alpha", 1.0)) * np.tanh(np.float32(a.scalar("beta", 1.0)) * a.f32())


@_op("prelu")
def _prelu(a):
    x, alpha = a.f32(), a.f32("alpha").reshape(-1)
    alpha = alpha.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, alpha * x)


@_op("gelu")
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
    _OPS[_name] = _binary_op(_f)


# --- convolution, pooling, padding -------------------------------------------------------

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


@_op("conv")
def _conv(a):
    x, w = a.f32("x"), a.f32("weight")
    if x.ndim != 4:
        raise _Unsupported(f"{x.ndim - 2}-D convolution (only 2-D is implemented)")
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
            raise _Unsupported(f"{x.ndim - 2}-D pooling (only 2-D is implemented)")
        kernel = a.ints("kernel_sizes")
        strides = a.ints("strides", [1, 1])
        pads = _spatial_pads(a, x.shape[2:], kernel, strides, [1, 1])
        return ops.pool2d(x, kernel, mode=mode, strides=strides, pads=pads,
                          exclude_padding=bool(a.scalar("exclude_padding_from_average", False)),
                          ceil_mode=bool(a.scalar("ceil_mode", False)))
    return run


_OPS["avg_pool"] = _pool("avg")
_OPS["max_pool"] = _pool("max")


@_op("pad")
def _pad(a):
    x = a.get("x")
    p = a.ints("pad")
    widths = [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    mode = str(a.scalar("mode", "constant"))
    return ops.pad(np.asarray(x, np.float32), widths, mode, float(a.scalar("constant_val", 0.0)))


# --- matrix products, normalisation, softmax ---------------------------------------------

@_op("matmul")
def _matmul(a):
    return ops.matmul(a.get("x"), a.get("y"), bool(a.scalar("transpose_x", False)),
                      bool(a.scalar("transpose_y", False)))


@_op("linear")
def _linear(a):
    x, w = a.f32("x"), a.f32("weight")
    y = x @ w.T
    return y + a.f32("bias") if a.has("bias") else y


@_op("softmax")
def _softmax(a):
    return ops.softmax(a.f32(), axis=int(a.scalar("axis", -1)))


@_op("batch_norm")
def _batch_norm(a):
    x = a.f32()
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = a.f32("mean").reshape(shape), a.f32("variance").reshape(shape)
    eps = np.float32(a.scalar("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps)
    if a.has("gamma"):
        y = y * a.f32("gamma").reshape(shape)
    if a.has("beta"):
        y = y + a.f32("beta").reshape(shape)
    return y


@_op("layer_norm")
def _layer_norm(a):
    x = a.f32()
    axes = tuple(a.ints("axes", list(range(x.ndim))))
    eps = np.float32(a.scalar("epsilon", 1e-5))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if a.has("gamma"):
        y = y * a.f32("gamma")
    if a.has("beta"):
        y = y + a.f32("beta")
    return y


_REDUCE = {
    "reduce_mean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "reduce_sum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "reduce_max": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "reduce_min": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "reduce_prod": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "reduce_l1_norm": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "reduce_l2_norm": lambda x, ax, k: np.sqrt(np.sum(x * x, axis=ax, keepdims=k)),
    "reduce_sum_square": lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k),
    "reduce_log_sum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "reduce_log_sum_exp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}


def _reduce_op(f):
    def run(a):
        axes = a.ints("axes")
        return np.asarray(f(a.f32(), None if axes is None else tuple(axes),
                            bool(a.scalar("keep_dims", False))), dtype=np.float32)
    return run


for _name, _f in _REDUCE.items():
    _OPS[_name] = _reduce_op(_f)


# --- dtype and shape ---------------------------------------------------------------------

@_op("cast")
def _cast(a):
    dtype = str(a.scalar("dtype"))
    if dtype not in _CAST_DTYPES:
        raise _Unsupported(f"cast to '{dtype}'")
    x = np.asarray(a.get("x"))
    if np.dtype(_CAST_DTYPES[dtype]).kind in "iu" and x.dtype.kind == "f":
        x = np.trunc(x)
    return x.astype(_CAST_DTYPES[dtype])


@_op("transpose")
def _transpose(a):
    return np.ascontiguousarray(np.transpose(a.get("x"), a.ints("perm")))


@_op("reshape")
def _reshape(a):
    x = np.asarray(a.get("x"))
    target = a.ints("shape")
    if a.ctx.batch > 1 and target and target[0] == 1 and x.shape[:1] == (a.ctx.batch,):
        target = [a.ctx.batch] + target[1:]
    if 0 in target and len(target) != x.ndim:
        # iOS 17: each 0 copies the input dimension at the same distance from the right.
        off = x.ndim - len(target)
        target = [(x.shape[i + off] if 0 <= i + off < x.ndim else 1) if t == 0 else t
                  for i, t in enumerate(target)]
    return x.reshape(ops.resolve_reshape(x.shape, target))


@_op("squeeze")
def _squeeze(a):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))


@_op("expand_dims")
def _expand_dims(a):
    x = np.asarray(a.get("x"))
    axes = a.ints("axes")
    rank = x.ndim + len(axes)
    for ax in sorted(ax if ax >= 0 else rank + ax for ax in axes):
        x = np.expand_dims(x, ax)
    return x


@_op("concat")
def _concat(a):
    values = [np.asarray(v) for v in a.list("values")]
    axis = int(a.scalar("axis"))
    if bool(a.scalar("interleave", False)):
        stacked = np.stack(values, axis=axis + 1 if axis >= 0 else axis)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


@_op("classify")
def _classify(a):
    """Returns (labels, dicts): one predicted label and one {label: probability} per row."""
    probs = np.asarray(a.get("probabilities"), dtype=np.float32)
    classes = a.get("classes")
    if isinstance(classes, np.ndarray):
        classes = classes.reshape(-1).tolist()
    classes = [c.item() if isinstance(c, np.ndarray) else c for c in classes]
    rows = probs.reshape(-1, len(classes)) if probs.size % len(classes) == 0 else None
    if rows is None:
        raise MlkitError(f"classify: {probs.size} probabilities for {len(classes)} classes")
    labels = [classes[int(np.argmax(r))] for r in rows]
    dicts = [{c: float(p) for c, p in zip(classes, r)} for r in rows]
    return labels, dicts


# --- constexpr ops: weight decompression, evaluated at load time ------------------------

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
        raise _Unsupported("vector palettization (lookup-table vector size > 1)")
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
    return np.asarray(a.get("source_val")).astype(_CAST_DTYPES[dtype])


_CONSTEXPR = {
    "constexpr_affine_dequantize": _affine_dequantize,
    "constexpr_blockwise_shift_scale": _blockwise_shift_scale,
    "constexpr_lut_to_dense": _lut_to_dense,
    "constexpr_sparse_to_dense": _sparse_to_dense,
    "constexpr_cast": _constexpr_cast,
}


# --- the graph ---------------------------------------------------------------------------

@dataclass
class Step:
    op: object
    type: str
    name: str
    fn: Callable[[Args], object]
    outputs: list[OutSpec]
    reads: list[str]


def _out_spec(named_value_type) -> OutSpec:
    from coremltools.proto import MIL_pb2

    t = named_value_type.type
    if t.WhichOneof("type") != "tensorType":
        return OutSpec(named_value_type.name, None, None)
    name = MIL_pb2.DataType.Name(t.tensorType.dataType)
    dtype = MIL_DTYPES[name][0] if name in MIL_DTYPES else None
    dims = []
    for d in t.tensorType.dimensions:
        if d.WhichOneof("dimension") != "constant":
            dims = None
            break
        dims.append(int(d.constant.size))
    return OutSpec(named_value_type.name, dtype, tuple(dims) if dims is not None else None)


class MILGraph:
    """A compiled MIL ``main`` function."""

    def __init__(self, program, read_blob, *, function: str = "main"):
        if function not in program.functions:
            raise MlkitError(f"the ML program has no '{function}' function "
                             f"(it has {sorted(program.functions)})")
        fn = program.functions[function]
        if fn.opset not in fn.block_specializations:
            raise MlkitError(f"function '{function}' has no block for its opset '{fn.opset}'")
        block = fn.block_specializations[fn.opset]
        self.opset = fn.opset
        self._read_blob = read_blob
        self.inputs = {i.name: _out_spec(i) for i in fn.inputs}
        self.outputs = list(block.outputs)
        self.consts: dict[str, object] = {}
        self.steps: list[Step] = []
        self.classify_step: Step | None = None
        self.op_types: set[str] = set()
        self.weight_kinds: dict[str, int] = {}
        self.fp16_names: set[str] = {n for n, spec in self.inputs.items() if spec.dtype == _F16}
        problems: list[tuple[str, str, str]] = []
        for op in block.operations:
            self.op_types.add(op.type)
            if op.blocks:
                problems.append((op.type, self.op_name(op), "ops with nested blocks "
                                 "(control flow) are not implemented"))
                continue
            try:
                if op.type == "const":
                    self._const(op)
                elif op.type in _CONSTEXPR:
                    self._constexpr(op)
                elif op.type in _OPS:
                    reads = [b.name for arg in op.inputs.values() for b in arg.arguments
                             if b.WhichOneof("binding") == "name"]
                    step = Step(op, op.type, self.op_name(op), _OPS[op.type],
                                [_out_spec(o) for o in op.outputs], reads)
                    self.fp16_names.update(o.name for o in step.outputs if o.dtype == _F16)
                    self.steps.append(step)
                    if op.type == "classify":
                        self.classify_step = step
                else:
                    raise _Unsupported()
            except _Unsupported as e:
                problems.append((op.type, self.op_name(op), e.detail))
        if problems:
            op_type, name, detail = problems[0]
            raise UnsupportedOpError(op_type, name, FORMAT, detail, others=len(problems) - 1)
        self._last_use: dict[str, int] = {}
        for i, s in enumerate(self.steps):
            for n in s.reads:
                self._last_use[n] = i

    @staticmethod
    def op_name(op) -> str:
        if "name" in op.attributes:
            v = op.attributes["name"].immediateValue.tensor.strings.values
            if v:
                return v[0]
        return op.outputs[0].name if op.outputs else op.type

    def decode(self, value):
        return mil_value(value, self._read_blob)

    def _count_weight(self, kind: str, value) -> None:
        if isinstance(value, np.ndarray) and value.size > 16:
            self.weight_kinds[kind] = self.weight_kinds.get(kind, 0) + 1

    def _const(self, op) -> None:
        value = self.decode(op.attributes["val"])
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            self._count_weight(str(value.dtype).replace("float", "fp"), value)
            if value.dtype == _F16:
                self.fp16_names.add(op.outputs[0].name)
                value = value.astype(_F32)          # exact: fp16 values fit in fp32
        self.consts[op.outputs[0].name] = value

    def _constexpr(self, op) -> None:
        args = Args(op, self, {}, RunContext())
        value = _CONSTEXPR[op.type](args)
        out = _out_spec(op.outputs[0])
        value = np.asarray(value)
        if out.shape is not None and tuple(value.shape) != out.shape:
            raise MlkitError(f"{op.type} '{self.op_name(op)}' decompressed to shape "
                             f"{value.shape}, the program declares {out.shape}")
        if out.dtype == _F16:
            self.fp16_names.add(out.name)
        self.consts[out.name] = _store(value, out.dtype)
        self._count_weight(op.type, value)

    def run(self, feeds: dict[str, np.ndarray], fetch: set[str], ctx: RunContext) -> dict:
        env: dict[str, object] = {}
        for name, spec in self.inputs.items():
            if name not in feeds:
                raise MlkitError(f"the program needs input '{name}'")
            env[name] = _store(feeds[name], spec.dtype)
        keep = set(fetch)
        for i, step in enumerate(self.steps):
            args = Args(step.op, self, env, ctx)
            try:
                result = step.fn(args)
            except _Unsupported as e:
                raise UnsupportedOpError(step.type, step.name, FORMAT, e.detail) from None
            except (ValueError, IndexError, FloatingPointError) as e:
                raise MlkitError(f"{step.type} op '{step.name}' failed: {e}") from None
            results = list(result) if isinstance(result, tuple) else [result]
            if len(results) != len(step.outputs):
                raise MlkitError(f"{step.type} op '{step.name}' produced {len(results)} "
                                 f"outputs, the program declares {len(step.outputs)}")
            for out, value in zip(step.outputs, results):
                if out.dtype is not None and step.type != "classify":   # classify: per-row lists
                    value = _store(value, out.dtype)
                    self._check_shape(step, out, value, ctx)
                env[out.name] = value
            for n in step.reads:
                if self._last_use.get(n) == i and n not in keep and n not in self.inputs:
                    env.pop(n, None)
        missing = [n for n in fetch if n not in env and n not in self.consts]
        if missing:
            raise MlkitError(f"no op produces {missing}; the program is broken")
        result = {n: env[n] if n in env else self.consts[n] for n in fetch}
        for n in fetch:
            if n in self.fp16_names:
                result[n] = np.asarray(result[n]).astype(_F16)
        return result

    @staticmethod
    def _check_shape(step: Step, out: OutSpec, value: np.ndarray, ctx: RunContext) -> None:
        if out.shape is None:
            return
        got = tuple(value.shape)
        want = out.shape
        if ctx.batch > 1 and len(got) == len(want) and want[:1] == (1,):
            want = (got[0],) + want[1:]
        if got != want:
            raise MlkitError(f"{step.type} op '{step.name}' produced shape {got}, the program "
                             f"declares {out.shape}: the evaluator and the file disagree")
