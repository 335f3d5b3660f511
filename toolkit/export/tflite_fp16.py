"""``large_weights_to_fp16``: a float32 TFLite flatbuffer with only its big weight matrices
-- the kernels of CONV_2D and FULLY_CONNECTED -- stored as float16, each behind a
DEQUANTIZE op that gives the float32 tensor the op has always read.

That is the pattern TFLite's own float16 quantization writes, and LiteRT, XNNPACK and the
GPU delegate dequantize such constants once, when the model is prepared. But the
converter's ``target_spec.supported_types=[tf.float16]`` stores *every* float constant in
fp16, and it has no way to leave some out. With BatchNorm folded in, MobileNetV2's
depthwise kernels and biases reach magnitudes of 30-60, where fp16's step is 0.015-0.03:
on MobileNetV2 1.0/224 trained on seefood that moved probabilities by up to 0.031 and
changed 2 % of top-1 answers. Keeping depthwise kernels, biases and kernels under
MIN_ELEMENTS in float32 (3.7 % of the weights) made the file 3 % larger than all-fp16 and
brought that to 0.0027, every answer unchanged (the Core ML export makes the same choice,
see ``coreml._large_weights_only``).

So the fp16 export converts to float32 and rewrites the flatbuffer here, with the object
API that ships with TensorFlow (``tensorflow.lite.python.schema_py_generated``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# Weight tensors with fewer elements stay float32: they save next to nothing (MobileNetV2
# 1.0's first 3x3 convolution has 864, its smallest pointwise one 512).
MIN_ELEMENTS = 1024
WEIGHT_INPUT = 1                # the kernel's place among CONV_2D's / FULLY_CONNECTED's inputs
DEQUANTIZE_FP16_VERSION = 3     # DEQUANTIZE's op version for a float16 input
# What the converter records for a model with a float16 DEQUANTIZE (v3) and otherwise
# only MobileNetV2's ops: its all-fp16 files say 1.15.0 where the float32 ones say 1.6.0.
FP16_MIN_RUNTIME = "1.15.0"
MIN_RUNTIME_KEY = b"min_runtime_version"
MIN_RUNTIME_BYTES = 16          # the converter writes the version NUL-padded to 16 bytes
FILE_IDENTIFIER = b"TFL3"


def large_weights_to_fp16(flat: bytes, min_elements: int = MIN_ELEMENTS) -> bytes:
    """``flat`` (a converter's float32 output, no metadata yet) with every constant float32
    kernel of a CONV_2D or FULLY_CONNECTED op of at least ``min_elements`` elements stored
    as float16. Depthwise kernels, biases and every other constant stay as they were.

    Each such kernel gets a new float16 tensor and buffer and a DEQUANTIZE op (put first in
    its subgraph) whose output is the original tensor, now without data; its float32
    buffer is emptied, so the file shrinks. Tensor indices, subgraph inputs and outputs,
    signature defs and metadata are unchanged (``min_runtime_version`` is raised to what
    DEQUANTIZE of float16 needs). A model with no such kernel comes back as it was.

    Unlike the converter's fp16 files, the result gets no ``reduced_precision_support``
    metadata ("fp16accfp32"): that says the whole model may run in fp16, which is what its
    depthwise layers should not do."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(flat, 0))
    kernels = [(sg, _large_kernels(model, sg, min_elements, fb)) for sg in model.subgraphs or []]
    if not any(indices for _sg, indices in kernels):
        return flat
    dequantize = _opcode_index(model, fb.BuiltinOperator.DEQUANTIZE, DEQUANTIZE_FP16_VERSION, fb)
    users = Counter(t.buffer for sg in model.subgraphs for t in sg.tensors)
    for sg, indices in kernels:
        added = []
        for index in indices:
            weight = sg.tensors[index]
            old = model.buffers[weight.buffer]
            half = _as_float32(old.data).astype("<f2")
            model.buffers.append(fb.BufferT(data=np.frombuffer(half.tobytes(), np.uint8)))
            sg.tensors.append(fb.TensorT(shape=weight.shape, type=fb.TensorType.FLOAT16,
                                         buffer=len(model.buffers) - 1, name=(weight.name or b"") + b"_fp16",
                                         shapeSignature=weight.shapeSignature, hasRank=weight.hasRank))
            # The float32 values now come from the DEQUANTIZE. A buffer other tensors still
            # read (the converter shares identical constants) keeps its data.
            users[weight.buffer] -= 1
            if users[weight.buffer] == 0:
                old.data = None
            else:
                model.buffers.append(fb.BufferT())
                weight.buffer = len(model.buffers) - 1
            added.append(fb.OperatorT(opcodeIndex=dequantize, inputs=[len(sg.tensors) - 1], outputs=[index]))
        sg.operators = added + list(sg.operators or [])
    _raise_min_runtime(model, FP16_MIN_RUNTIME)
    builder = flatbuffers.Builder(len(flat))
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _large_kernels(model, sg, min_elements: int, fb) -> list[int]:
    """Indices of ``sg``'s tensors that are a large constant float32 kernel of a CONV_2D or
    FULLY_CONNECTED op, in the order the ops first read them."""
    wanted = (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.FULLY_CONNECTED)
    produced = {int(i) for op in sg.operators or [] for i in (op.outputs if op.outputs is not None else [])}
    graph_inputs = {int(i) for i in (sg.inputs if sg.inputs is not None else [])}
    found: list[int] = []
    for op in sg.operators or []:
        inputs = op.inputs if op.inputs is not None else []
        if _builtin(model.operatorCodes[op.opcodeIndex]) not in wanted or len(inputs) <= WEIGHT_INPUT:
            continue
        index = int(inputs[WEIGHT_INPUT])
        if index < 0 or index in found or index in produced or index in graph_inputs:
            continue
        t = sg.tensors[index]
        data = model.buffers[t.buffer].data if 0 < t.buffer < len(model.buffers) else None
        size = int(np.prod(t.shape)) if t.shape is not None else 1
        if (t.type == fb.TensorType.FLOAT32 and not t.isVariable and t.sparsity is None
                and not _quantized(t) and data is not None and len(data) == 4 * size and size >= min_elements):
            found.append(index)
    return found


def _builtin(code) -> int:
    """An operator code's builtin op: ``builtinCode`` where set, else the byte-sized
    ``deprecatedBuiltinCode`` that files written before schema v3a carry alone."""
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _quantized(t) -> bool:
    q = t.quantization
    return q is not None and (q.scale is not None and len(q.scale) > 0 or q.details is not None)


def _as_float32(data) -> np.ndarray:
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    return np.frombuffer(raw, "<f4")


def _opcode_index(model, code: int, version: int, fb) -> int:
    """The index of an operator code for builtin ``code`` at ``version`` or later, added
    where the model has none. ``deprecated_builtin_code`` is a byte: codes beyond it read
    PLACEHOLDER_FOR_GREATER_OP_CODES there, as the schema asks."""
    codes = model.operatorCodes if model.operatorCodes is not None else []
    for i, c in enumerate(codes):
        if _builtin(c) == code and c.customCode is None and c.version >= version:
            return i
    placeholder = fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    codes.append(fb.OperatorCodeT(builtinCode=code, deprecatedBuiltinCode=min(code, placeholder), version=version))
    model.operatorCodes = codes
    return len(codes) - 1


def _raise_min_runtime(model, version: str) -> None:
    """Set the ``min_runtime_version`` metadata to ``version`` where it says less."""
    for entry in model.metadata or []:
        if entry.name != MIN_RUNTIME_KEY:
            continue
        buffer = model.buffers[entry.buffer]
        current = bytes(buffer.data if buffer.data is not None else b"").rstrip(b"\0").decode("ascii", "replace")
        if _version_tuple(current) < _version_tuple(version):
            buffer.data = np.frombuffer(version.encode("ascii").ljust(MIN_RUNTIME_BYTES, b"\0"), np.uint8)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
