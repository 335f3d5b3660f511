"""``TFLiteRunner``: a ``.tflite`` file run by LiteRT (``ai_edge_litert``), the runtime
Android ships, behind ``toolkit.runtimes.predict``'s Runner protocol.

Callers always give float32 pixels 0..255 and get float32 probabilities back, whatever the
file stores: a full-integer (int8) model takes uint8 pixels and gives uint8 scores, so
pixels are quantized with the input tensor's own scale / zero point and the scores
dequantized with the output's, as an app must do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MlkitError
from ..training.spec import ModelCard

RUNTIME = "LiteRT"
BATCH_SIZE = 1   # see TFLiteRunner's docstring


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor as LiteRT reports it (for validation tables)."""

    name: str
    shape: tuple[int, ...]            # -1 where the file leaves a dimension free (the batch)
    dtype: str                        # "float32", "uint8", ...
    scale: float | None = None        # quantized tensors: real = (q - zero_point) * scale
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.quantized:
            out["quantization"] = {"scale": self.scale, "zero_point": self.zero_point}
        return out

    @classmethod
    def from_details(cls, d: dict[str, Any]) -> TensorInfo:
        shape = tuple(int(v) for v in d.get("shape_signature", d["shape"]))
        scale, zero_point = d.get("quantization", (0.0, 0))
        quantized = np.issubdtype(np.dtype(d["dtype"]), np.integer) and scale != 0.0
        return cls(name=str(d["name"]), shape=shape, dtype=np.dtype(d["dtype"]).name,
                   scale=float(scale) if quantized else None, zero_point=int(zero_point) if quantized else None)


class TFLiteRunner:
    """A ``.tflite`` classifier: ``predict`` (n, size, size, 3) float32 RGB 0..255 ->
    (n, classes) float32 probabilities.

    num_threads: LiteRT's CPU threads (None: its default).
    batch_size: images per ``invoke``. The converter leaves the batch dimension free, so
        the input can be resized to a whole batch, but one image at a time was as fast or
        faster in every mode (MobileNetV2 1.0/224 on 2 x86 cores: fp32 7.8 ms/image at
        batch 1, 9.9 at batch 32; dynamic 14 vs 20), and it is how an app runs the model,
        so latencies measured here mean something. A file with a fixed batch of 1 is
        always run one image at a time.
    """

    runtime = RUNTIME

    def __init__(self, path: Path | str, card: ModelCard, num_threads: int | None = None,
                 batch_size: int = BATCH_SIZE):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise MlkitError(f"running .tflite files needs LiteRT: pip install ai-edge-litert ({exc})") from None
        self.path, self.card = Path(path), card
        if not self.path.is_file():
            raise MlkitError(f"{self.path} does not exist: give a .tflite file written by `mlkit export --tflite`")
        try:
            self._interp = Interpreter(model_path=str(self.path), num_threads=num_threads)
        except (ValueError, RuntimeError) as exc:
            raise MlkitError(f"{self.path} is not a TFLite model LiteRT can load ({exc}); export it again with "
                             "`mlkit export --tflite`") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise MlkitError(f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; an mlkit "
                             "classifier has one of each")
        self.input_details = TensorInfo.from_details(inputs[0])
        self.output_details = TensorInfo.from_details(outputs[0])
        self._in_index, self._out_index = inputs[0]["index"], outputs[0]["index"]
        shape = self.input_details.shape[1:]
        classes = self.output_details.shape[-1]
        labels = card.spec.labels
        if shape != card.spec.input_shape or classes != len(labels):
            raise MlkitError(f"{self.path} takes {shape} and gives {classes} classes, but its model.json says "
                             f"{card.spec.input_shape} and {len(labels)} labels ({', '.join(labels)}): they belong "
                             "to different models; export again, or keep each model.json with its model")
        self.batch_size = batch_size if self.input_details.shape[0] == -1 else 1
        self._allocated_batch = 0

    # ------------------------------------------------------------------ inference
    def predict(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        expected = self.card.spec.input_shape
        if images.ndim != 4 or images.shape[1:] != expected:
            raise MlkitError(f"{self.path} takes images of shape (n, {', '.join(map(str, expected))}), "
                             f"got {images.shape}: resize them as model.json says")
        classes = self.output_details.shape[-1]
        if len(images) == 0:
            return np.zeros((0, classes), np.float32)
        out = [self._invoke(images[i:i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if n != self._allocated_batch:   # resizing re-plans the graph: only when the batch size changes
            if self.input_details.shape[0] == -1:
                self._interp.resize_tensor_input(self._in_index, [n, *self.card.spec.input_shape], strict=True)
            self._interp.allocate_tensors()
            self._allocated_batch = n
        self._interp.set_tensor(self._in_index, self._to_input(batch))
        self._interp.invoke()
        return self._from_output(self._interp.get_tensor(self._out_index))

    def _to_input(self, pixels: np.ndarray) -> np.ndarray:
        info = self.input_details
        if not info.quantized:
            return pixels.astype(info.dtype, copy=False)
        limits = np.iinfo(info.dtype)
        q = np.round(pixels / info.scale + info.zero_point)
        return np.clip(q, limits.min, limits.max).astype(info.dtype)

    def _from_output(self, raw: np.ndarray) -> np.ndarray:
        info = self.output_details
        if not info.quantized:
            return raw.astype(np.float32, copy=False)
        return ((raw.astype(np.float32) - info.zero_point) * info.scale).astype(np.float32)

    @property
    def precision(self) -> str:
        """fp32 / fp16 / int8 / dynamic, read from the file's tensors."""
        return interpreter_precision(self._interp)

    def describe(self) -> dict[str, Any]:
        """File, runtime and tensor facts, for a validation table or ``--json``."""
        return {"file": str(self.path), "runtime": self.runtime, "input": self.input_details.to_json(),
                "output": self.output_details.to_json()}


def interpreter_precision(interp) -> str:
    """fp32 / fp16 / int8 / dynamic, read from the tensors of a loaded LiteRT interpreter."""
    if interp.get_input_details()[0]["dtype"] in (np.uint8, np.int8):
        return "int8"
    dtypes = {d["dtype"] for d in interp.get_tensor_details()}
    if np.float16 in dtypes:
        return "fp16"
    if np.int8 in dtypes:
        return "dynamic"
    return "fp32"
