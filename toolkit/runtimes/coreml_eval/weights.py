"""How Core ML files store their constants, decoded to NumPy.

Three stores, all read here and nowhere else:

- the ``.mlpackage`` weight blob file (``weights/weight.bin``) that MIL ``const`` values point
  into with ``blobFileValue {fileName, offset}``;
- MIL immediate values (``Value.immediateValue``) written inline in the program;
- NeuralNetwork ``WeightParams`` (fp32 / fp16 / linearly quantized / look-up-table).

Blob file layout (version 2, little-endian), as coremltools' MIL storage writes it:

- a 64-byte file header: ``uint32 count, uint32 version (2)``, then reserved bytes;
- per blob, a 64-byte metadata record at the offset a ``blobFileValue`` names:
  ``uint32 sentinel (0xDEADBEEF), uint32 storage dtype, uint64 size in bytes,
  uint64 offset of the data, uint64 padding size in bits`` and reserved bytes;
- the data itself at that (64-byte aligned) offset.

Sub-byte types (int4, uint1..uint6) are packed starting at the least significant bit of
each byte, the way MIL's constexpr ops document it. NeuralNetwork quantized weights below
8 bits are packed the other way round: most significant bit first.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ...errors import MlkitError

BLOB_SENTINEL = 0xDEADBEEF
_HEADER = struct.Struct("<II")
_METADATA = struct.Struct("<IIQQQ")

# Blob storage dtype code -> (numpy dtype of the decoded values, bits per value, signed).
_BLOB_DTYPES: dict[int, tuple[np.dtype, int, bool]] = {
    1: (np.dtype(np.float16), 16, True),
    2: (np.dtype(np.float32), 32, True),
    3: (np.dtype(np.uint8), 8, False),
    4: (np.dtype(np.int8), 8, True),
    6: (np.dtype(np.int16), 16, True),
    7: (np.dtype(np.uint16), 16, False),
    8: (np.dtype(np.int8), 4, True),       # int4
    9: (np.dtype(np.uint8), 1, False),     # uint1
    10: (np.dtype(np.uint8), 2, False),    # uint2
    11: (np.dtype(np.uint8), 4, False),    # uint4
    12: (np.dtype(np.uint8), 3, False),    # uint3
    13: (np.dtype(np.uint8), 6, False),    # uint6
    14: (np.dtype(np.int32), 32, True),
    15: (np.dtype(np.uint32), 32, False),
}

# MIL DataType name -> (numpy dtype, bits per value, signed); None for non-numeric.
MIL_DTYPES: dict[str, tuple[np.dtype, int, bool]] = {
    "BOOL": (np.dtype(np.bool_), 8, False),
    "FLOAT16": (np.dtype(np.float16), 16, True),
    "FLOAT32": (np.dtype(np.float32), 32, True),
    "FLOAT64": (np.dtype(np.float64), 64, True),
    "INT8": (np.dtype(np.int8), 8, True),
    "INT16": (np.dtype(np.int16), 16, True),
    "INT32": (np.dtype(np.int32), 32, True),
    "INT64": (np.dtype(np.int64), 64, True),
    "UINT8": (np.dtype(np.uint8), 8, False),
    "UINT16": (np.dtype(np.uint16), 16, False),
    "UINT32": (np.dtype(np.uint32), 32, False),
    "UINT64": (np.dtype(np.uint64), 64, False),
    "INT4": (np.dtype(np.int8), 4, True),
    "UINT1": (np.dtype(np.uint8), 1, False),
    "UINT2": (np.dtype(np.uint8), 2, False),
    "UINT3": (np.dtype(np.uint8), 3, False),
    "UINT4": (np.dtype(np.uint8), 4, False),
    "UINT6": (np.dtype(np.uint8), 6, False),
}


def unpack_bits(data: bytes, nbits: int, count: int, *, signed: bool = False,
                msb_first: bool = False) -> np.ndarray:
    """``count`` integers of ``nbits`` bits each, packed back to back in ``data``.

    ``msb_first=False`` is MIL's order (the first value in the lowest bits of byte 0);
    ``True`` is NeuralNetwork's. Signed values are two's complement in ``nbits`` bits."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size * 8 < count * nbits:
        raise MlkitError(f"packed weight data too short: {raw.size} bytes hold fewer than "
                         f"{count} values of {nbits} bits; the model file is damaged")
    bits = np.unpackbits(raw, bitorder="big" if msb_first else "little")[: count * nbits]
    bits = bits.reshape(count, nbits).astype(np.int32)
    weights = (1 << np.arange(nbits - 1, -1, -1)) if msb_first else (1 << np.arange(nbits))
    values = bits @ weights.astype(np.int32)
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
        return values.astype(np.int8)
    return values.astype(np.uint8)


class BlobFile:
    """A ``weight.bin`` blob file, read once, decoded per blob on request."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._data = self.path.read_bytes()
        except OSError as e:
            raise MlkitError(f"cannot read the Core ML weight file {self.path}: {e.strerror or e}")
        if len(self._data) < 64:
            raise MlkitError(f"{self.path} is not a Core ML weight file (only {len(self._data)} bytes)")
        self.count, self.version = _HEADER.unpack_from(self._data, 0)
        if self.version != 2:
            raise MlkitError(f"{self.path}: unsupported weight file version {self.version} "
                             "(the evaluator reads version 2, what coremltools 7-9 write)")

    def read(self, offset: int, count: int) -> np.ndarray:
        """The flat array of ``count`` values whose metadata record is at ``offset``."""
        if offset + _METADATA.size > len(self._data):
            raise MlkitError(f"{self.path}: blob offset {offset} is past the end of the file")
        sentinel, code, size, data_offset, _padding = _METADATA.unpack_from(self._data, offset)
        if sentinel != BLOB_SENTINEL:
            raise MlkitError(f"{self.path}: no blob at offset {offset} (bad sentinel "
                             f"{sentinel:#x}); the weight file does not match the program")
        if code not in _BLOB_DTYPES:
            raise MlkitError(f"{self.path}: blob at offset {offset} has storage type {code}, "
                             "which the evaluator cannot decode")
        if data_offset + size > len(self._data):
            raise MlkitError(f"{self.path}: blob at offset {offset} runs past the end of the file")
        dtype, nbits, signed = _BLOB_DTYPES[code]
        raw = self._data[data_offset:data_offset + size]
        if nbits < 8:
            return unpack_bits(raw, nbits, count, signed=signed)
        values = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
        if values.size < count:
            raise MlkitError(f"{self.path}: blob at offset {offset} holds {values.size} values, "
                             f"the program expects {count}")
        return values[:count].astype(dtype)


def _tensor_type(value_type) -> tuple[str, tuple[int, ...] | None]:
    """(MIL dtype name, static shape or None) of a ``ValueType`` holding a tensor."""
    from coremltools.proto import MIL_pb2

    tt = value_type.tensorType
    dtype = MIL_pb2.DataType.Name(tt.dataType)
    dims = []
    for d in tt.dimensions:
        if d.WhichOneof("dimension") != "constant":
            return dtype, None
        dims.append(int(d.constant.size))
    return dtype, tuple(dims)


def mil_value(value, read_blob) -> object:
    """Decode a MIL ``Value`` (immediate or blob-file) to NumPy / Python.

    Tensors become arrays of their declared dtype and shape (sub-byte types widened to
    int8 / uint8), lists and tuples Python lists, strings ``str``. ``read_blob(file_name,
    offset, count)`` serves ``blobFileValue`` s."""
    kind = value.WhichOneof("value")
    vtype = value.type.WhichOneof("type")
    if kind == "blobFileValue":
        return _mil_blob_value(value, read_blob)
    if kind != "immediateValue":
        raise MlkitError(f"MIL value of kind '{kind}' cannot be decoded")
    imm = value.immediateValue
    ikind = imm.WhichOneof("value")
    if ikind in ("list", "tuple"):
        return [mil_value(v, read_blob) for v in getattr(imm, ikind).values]
    if ikind == "dictionary":
        return {mil_value(kv.key, read_blob): mil_value(kv.value, read_blob)
                for kv in imm.dictionary.values}
    if ikind != "tensor" or vtype != "tensorType":
        raise MlkitError(f"MIL immediate value of kind '{ikind}' cannot be decoded")
    return _mil_immediate_tensor(value)


def _mil_blob_value(value, read_blob) -> np.ndarray:
    """A ``blobFileValue``: its values read from the weight file, in the declared shape."""
    dtype, shape = _tensor_type(value.type)
    if shape is None:
        raise MlkitError("a blob-file constant without a static shape cannot be read")
    flat = read_blob(value.blobFileValue.fileName, value.blobFileValue.offset,
                     int(np.prod(shape, dtype=np.int64)))
    want = MIL_DTYPES[dtype][0]
    if flat.dtype != want:
        raise MlkitError(f"blob at offset {value.blobFileValue.offset} stores "
                         f"{flat.dtype}, the program declares {dtype}")
    return flat.reshape(shape)


def _mil_immediate_tensor(value):
    """An immediate tensor value: an array of its declared dtype and shape (a ``str`` for
    a scalar string)."""
    dtype, shape = _tensor_type(value.type)
    if shape is None:
        raise MlkitError("an immediate MIL value without a static shape cannot be decoded")
    count = int(np.prod(shape, dtype=np.int64))
    tv = value.immediateValue.tensor
    field = tv.WhichOneof("value")
    if dtype == "STRING":
        vals = list(tv.strings.values)
        return vals[0] if shape == () else np.array(vals, dtype=object).reshape(shape)
    np_dtype, nbits, signed = MIL_DTYPES[dtype]
    if field == "bytes":
        raw = tv.bytes.values
        if nbits < 8:
            arr = unpack_bits(raw, nbits, count, signed=signed)
        else:
            arr = np.frombuffer(raw, dtype=np_dtype.newbyteorder("<"))[:count].astype(np_dtype)
    elif field is None:
        arr = np.zeros(0, dtype=np_dtype)
    else:
        arr = np.asarray(list(getattr(tv, field).values)).astype(np_dtype)
    if arr.size != count:
        raise MlkitError(f"MIL immediate value holds {arr.size} values, its type "
                         f"{dtype}{list(shape)} needs {count}")
    return arr.reshape(shape)


def nn_weights(wp, count: int, *, channels: int = 1, name: str = "") -> np.ndarray | None:
    """Decode a NeuralNetwork ``WeightParams`` to a flat float32 array of ``count`` values.

    ``channels`` is the size of the leading (output-channel) axis of the stored layout,
    which per-channel linear quantization scales along. Returns None when the message holds
    no values at all (an absent optional weight)."""
    what = f"weights of layer '{name}'" if name else "weights"
    if len(wp.floatValue):
        values = np.asarray(wp.floatValue, dtype=np.float32)
    elif len(wp.float16Value):
        values = np.frombuffer(wp.float16Value, dtype="<f2").astype(np.float32)
    elif len(wp.rawValue) or len(getattr(wp, "int8RawValue", b"")):
        values = _nn_dequantize(wp, count, channels, what)
    else:
        return None
    if values.size != count:
        raise MlkitError(f"{what}: {values.size} values stored, the layer needs {count}")
    return values


def _nn_dequantize(wp, count: int, channels: int, what: str) -> np.ndarray:
    q = wp.quantization
    nbits = int(q.numberOfBits)
    if len(getattr(wp, "int8RawValue", b"")):
        ints = np.frombuffer(wp.int8RawValue, dtype=np.int8)[:count].astype(np.float32)
        scale = np.asarray(q.linearQuantization.scale, dtype=np.float32)
        return (ints.reshape(scale.size if scale.size > 1 else 1, -1)
                * scale.reshape(-1, 1)).reshape(-1)
    if not 1 <= nbits <= 8:
        raise MlkitError(f"{what}: raw weights with {nbits}-bit quantization cannot be decoded")
    raw = wp.rawValue
    if nbits == 8:
        ints = np.frombuffer(raw, dtype=np.uint8)[:count]
    else:
        ints = unpack_bits(raw, nbits, count, msb_first=True)
    kind = q.WhichOneof("QuantizationType")
    if kind == "linearQuantization":
        scale = np.asarray(q.linearQuantization.scale, dtype=np.float32)
        bias = np.asarray(q.linearQuantization.bias, dtype=np.float32)
        if bias.size == 0:
            bias = np.zeros(1, np.float32)
        per = max(scale.size, bias.size)
        if per not in (1, channels) or count % per:
            raise MlkitError(f"{what}: {per} quantization scales for {channels} channels")
        grid = ints.astype(np.float32).reshape(per, -1)
        return (grid * scale.reshape(-1, 1) + bias.reshape(-1, 1)).reshape(-1)
    if kind == "lookupTableQuantization":
        lut = np.asarray(q.lookupTableQuantization.floatValue, dtype=np.float32)
        if lut.size < (1 << nbits):
            raise MlkitError(f"{what}: look-up table has {lut.size} entries, needs {1 << nbits}")
        return lut[ints.astype(np.int64)]
    raise MlkitError(f"{what}: raw weights without quantization parameters cannot be decoded")
