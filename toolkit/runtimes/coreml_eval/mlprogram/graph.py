"""``MILGraph``: the ``main`` function of an ML program, compiled and run.

``const`` values and all ``constexpr_*`` ops (weight decompression: fp16 / int8 / int4 /
palettized weights) are evaluated once at load time; every other op becomes a step run in
order.

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

from dataclasses import dataclass

import numpy as np

from ....errors import MlkitError
from ..errors import Unsupported, UnsupportedOpError
from ..weights import MIL_DTYPES, mil_value
from .constexpr import CONSTEXPR
from .dtypes import F16, F32, store
from .registry import OPS, Args, OpFn, RunContext

FORMAT = "mlprogram"


def supported_ops() -> list[str]:
    return sorted(set(OPS) | set(CONSTEXPR) | {"const"})


@dataclass
class OutSpec:
    name: str
    dtype: np.dtype | None          # None: not a tensor (classify's label / dict outputs)
    shape: tuple[int, ...] | None   # None: not static


@dataclass
class Step:
    op: object
    type: str
    name: str
    fn: OpFn
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


def _function_block(program, function: str):
    """(function, its block for its own opset) of ``program``."""
    if function not in program.functions:
        raise MlkitError(f"the ML program has no '{function}' function "
                         f"(it has {sorted(program.functions)})")
    fn = program.functions[function]
    if fn.opset not in fn.block_specializations:
        raise MlkitError(f"function '{function}' has no block for its opset '{fn.opset}'")
    return fn, fn.block_specializations[fn.opset]


class MILGraph:
    """A compiled MIL ``main`` function."""

    def __init__(self, program, read_blob, *, function: str = "main"):
        fn, block = _function_block(program, function)
        self.opset = fn.opset
        self._read_blob = read_blob
        self.inputs = {i.name: _out_spec(i) for i in fn.inputs}
        self.outputs = list(block.outputs)
        self.consts: dict[str, object] = {}
        self.steps: list[Step] = []
        self.classify_step: Step | None = None
        self.op_types: set[str] = set()
        self.weight_kinds: dict[str, int] = {}
        self.fp16_names: set[str] = {n for n, spec in self.inputs.items() if spec.dtype == F16}
        self._compile(block.operations)
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

    # --- compilation ---------------------------------------------------------------------

    def _compile(self, operations) -> None:
        """Every op in order: constants decoded, constexpr ops evaluated, the rest made
        steps. Raises ``UnsupportedOpError`` naming the first op that cannot run."""
        problems: list[tuple[str, str, str]] = []
        for op in operations:
            self.op_types.add(op.type)
            if op.blocks:
                problems.append((op.type, self.op_name(op), "ops with nested blocks "
                                 "(control flow) are not implemented"))
                continue
            try:
                self._compile_op(op)
            except Unsupported as e:
                problems.append((op.type, self.op_name(op), e.detail))
        if problems:
            op_type, name, detail = problems[0]
            raise UnsupportedOpError(op_type, name, FORMAT, detail, others=len(problems) - 1)

    def _compile_op(self, op) -> None:
        if op.type == "const":
            self._const(op)
        elif op.type in CONSTEXPR:
            self._constexpr(op)
        elif op.type in OPS:
            self._add_step(op)
        else:
            raise Unsupported()

    def _add_step(self, op) -> None:
        reads = [b.name for arg in op.inputs.values() for b in arg.arguments
                 if b.WhichOneof("binding") == "name"]
        step = Step(op, op.type, self.op_name(op), OPS[op.type],
                    [_out_spec(o) for o in op.outputs], reads)
        self.fp16_names.update(o.name for o in step.outputs if o.dtype == F16)
        self.steps.append(step)
        if op.type == "classify":
            self.classify_step = step

    def _count_weight(self, kind: str, value) -> None:
        if isinstance(value, np.ndarray) and value.size > 16:
            self.weight_kinds[kind] = self.weight_kinds.get(kind, 0) + 1

    def _const(self, op) -> None:
        value = self.decode(op.attributes["val"])
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            self._count_weight(str(value.dtype).replace("float", "fp"), value)
            if value.dtype == F16:
                self.fp16_names.add(op.outputs[0].name)
                value = value.astype(F32)          # exact: fp16 values fit in fp32
        self.consts[op.outputs[0].name] = value

    def _constexpr(self, op) -> None:
        args = Args(op, self, {}, RunContext())
        value = CONSTEXPR[op.type](args)
        out = _out_spec(op.outputs[0])
        value = np.asarray(value)
        if out.shape is not None and tuple(value.shape) != out.shape:
            raise MlkitError(f"{op.type} '{self.op_name(op)}' decompressed to shape "
                             f"{value.shape}, the program declares {out.shape}")
        if out.dtype == F16:
            self.fp16_names.add(out.name)
        self.consts[out.name] = store(value, out.dtype)
        self._count_weight(op.type, value)

    # --- running ---------------------------------------------------------------------------

    def run(self, feeds: dict[str, np.ndarray], fetch: set[str], ctx: RunContext) -> dict:
        env: dict[str, object] = {}
        for name, spec in self.inputs.items():
            if name not in feeds:
                raise MlkitError(f"the program needs input '{name}'")
            env[name] = store(feeds[name], spec.dtype)
        keep = set(fetch)
        for i, step in enumerate(self.steps):
            self._run_step(step, env, ctx)
            for n in step.reads:
                if self._last_use.get(n) == i and n not in keep and n not in self.inputs:
                    env.pop(n, None)
        missing = [n for n in fetch if n not in env and n not in self.consts]
        if missing:
            raise MlkitError(f"no op produces {missing}; the program is broken")
        result = {n: env[n] if n in env else self.consts[n] for n in fetch}
        for n in fetch:
            if n in self.fp16_names:
                result[n] = np.asarray(result[n]).astype(F16)
        return result

    def _run_step(self, step: Step, env: dict, ctx: RunContext) -> None:
        """Run one step on ``env`` and store its outputs there, in their declared dtypes."""
        args = Args(step.op, self, env, ctx)
        try:
            result = step.fn(args)
        except Unsupported as e:
            raise UnsupportedOpError(step.type, step.name, FORMAT, e.detail) from None
        except (ValueError, IndexError, FloatingPointError) as e:
            raise MlkitError(f"{step.type} op '{step.name}' failed: {e}") from None
        results = list(result) if isinstance(result, tuple) else [result]
        if len(results) != len(step.outputs):
            raise MlkitError(f"{step.type} op '{step.name}' produced {len(results)} "
                             f"outputs, the program declares {len(step.outputs)}")
        for out, value in zip(step.outputs, results):
            if out.dtype is not None and step.type != "classify":   # classify: per-row lists
                value = store(value, out.dtype)
                self._check_shape(step, out, value, ctx)
            env[out.name] = value

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
