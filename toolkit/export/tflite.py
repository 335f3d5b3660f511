"""``export_tflite``: a trained ``model.keras`` as a ``.tflite`` file for Android, with
its labels and input facts, verified in LiteRT before it is put in place.

Quantization modes (``--quantize``):

- ``none``: float32 weights and activations; the reference.
- ``fp16``: the big weight matrices (CONV_2D and FULLY_CONNECTED kernels, 96 % of
  MobileNetV2 1.0's weights) stored as float16, each behind a DEQUANTIZE op, as TFLite's
  own fp16 quantization writes them; depthwise kernels and biases stay float32, since fp16
  rounding of those moved probabilities by up to 0.031 (see ``tflite_fp16``). 52 % of the
  float32 size (3 % more than all-fp16); float32 input, output and arithmetic where the
  device has no fp16 support.
- ``dynamic``: int8 weights, activations quantized on the fly; no calibration data.
- ``int8``: full integer quantization with uint8 input and output, calibrated on real
  training images. The model takes raw pixels 0..255 and normalises itself, and the
  calibration always contains a 0 and a 255 pixel, so the uint8 input ends up with scale
  ~1 and zero point 0: an app feeds the camera's uint8 RGB bytes as they are.

The file appears only complete: it is written under a temporary name beside its target,
its metadata embedded (or its side file prepared), loaded and run once in LiteRT, and only
then renamed into place. Any failure leaves the target as it was and no temporary file.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MlkitError
from ..fsutil import atomic_path, atomic_write_text
from ..progress import SILENT, Reporter
from ..training.spec import KERAS_FILE, LABELS_FILE, PIXEL_RANGE, ModelCard, labels_text
from . import tflite_metadata as md
from .tflite_fp16 import large_weights_to_fp16

QUANTIZE_MODES = ("none", "fp16", "dynamic", "int8")
SUFFIX = ".tflite"
# An int8 input scale further than this from 1 would mean an app feeding raw uint8 pixels
# gets the wrong values; the 0 / 255 anchors in the calibration data prevent it.
INPUT_SCALE_TOLERANCE = 0.01


@dataclass
class TFLiteExport:
    """What ``export_tflite`` wrote."""

    path: Path
    quantize: str                      # one of QUANTIZE_MODES
    size_bytes: int
    seconds: float                     # the whole export: conversion, metadata, verification
    metadata: str                      # "embedded" | "side-file"
    metadata_note: str                 # why the metadata is not embedded ("" when it is)
    input_dtype: str                   # "float32" | "uint8"
    output_dtype: str
    labels_path: Path | None = None
    side_file: Path | None = None
    convert_seconds: float = 0.0
    input_quantization: dict[str, float] | None = None    # {"scale", "zero_point"} of a uint8 input
    output_quantization: dict[str, float] | None = None
    calibration_images: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"format": "tflite", "path": str(self.path), "quantize": self.quantize,
                "size_bytes": self.size_bytes, "seconds": round(self.seconds, 2),
                "convert_seconds": round(self.convert_seconds, 2), "metadata": self.metadata,
                "metadata_note": self.metadata_note, "input_dtype": self.input_dtype,
                "output_dtype": self.output_dtype, "input_quantization": self.input_quantization,
                "output_quantization": self.output_quantization,
                "labels": str(self.labels_path) if self.labels_path else None,
                "side_file": str(self.side_file) if self.side_file else None,
                "calibration_images": self.calibration_images, "warnings": list(self.warnings)}


def export_tflite(keras_path: Path | str, card: ModelCard, out_path: Path | str, quantize: str = "none",
                  calibration: np.ndarray | None = None, reporter: Reporter = SILENT,
                  embed: bool | None = None, keras_model=None) -> TFLiteExport:
    """Convert ``keras_path`` to ``out_path`` (a ``.tflite``) and write ``labels.txt`` beside it.

    card: the model's ``model.json`` (labels, input size, dataset) -- the source of every
        fact written into the metadata.
    quantize: one of QUANTIZE_MODES (see the module docstring).
    calibration: int8 only: (N, size, size, 3) float32 RGB pixels 0..255 from the
        training data (a hundred or so is plenty); every image is used.
    reporter: told each stage (``toolkit.progress``; by default nothing is said).
    keras_model: the model at ``keras_path``, already loaded and checked against ``card``
        (None: load it here).
    embed: True: embed the metadata (MlkitError where tflite-support is missing);
        False: write the ``<name>.tflite.json`` side file instead; None: embed where
        tflite-support works, else the side file (the result says so in ``metadata_note``).
    """
    start = time.perf_counter()
    out = Path(out_path)
    keras_path = Path(keras_path)
    _check_arguments(keras_path, out, quantize, card)
    pixels = _check_calibration(calibration, card) if quantize == "int8" else None
    embed, reason = _where_metadata_goes(embed)
    say = reporter.note
    if keras_model is None:
        from ..runtimes.predict import KerasRunner   # loads the model and checks it against model.json

        say(f"Loading {keras_path}")
        keras_model = KerasRunner(keras_path, card).model
    model = keras_model
    say(f"Converting to TFLite ({quantize}"
        f"{f', calibrating on {len(pixels)} images' if pixels is not None else ''}) ...")
    t0 = time.perf_counter()
    flat = convert(model, quantize, pixels)
    convert_seconds = time.perf_counter() - t0

    facts, cautions = _facts_from_model(flat, card, quantize)
    if embed:
        say("Embedding metadata (labels, normalisation) ...")
        flat = md.embed_metadata(flat, card, labels_text(card.spec.labels), facts=facts)
    side, labels_path = md.side_file_path(out), out.parent / LABELS_FILE
    with atomic_path(out) as tmp:   # the model is put in place last, only complete and checked
        tmp.write_bytes(flat)
        say("Checking the file in LiteRT ...")
        verify(tmp, card)
        atomic_write_text(labels_path, labels_text(card.spec.labels))
        if not embed:
            atomic_write_text(side, md.side_file_json(facts, reason))
    if embed:
        side.unlink(missing_ok=True)   # a side file from an earlier export would now contradict the model
    note = "" if embed else f"embedded TFLite metadata skipped: {reason}; labels and input facts are in {side.name}"
    return TFLiteExport(path=out, quantize=quantize, size_bytes=out.stat().st_size,
                        seconds=time.perf_counter() - start, metadata="embedded" if embed else "side-file",
                        metadata_note=note, input_dtype=facts["input"]["dtype"],
                        output_dtype=facts["output"]["dtype"], labels_path=labels_path,
                        side_file=None if embed else side, convert_seconds=convert_seconds,
                        input_quantization=facts["input"].get("quantization"),
                        output_quantization=facts["output"].get("quantization"),
                        calibration_images=0 if pixels is None else len(pixels), warnings=cautions)


def _where_metadata_goes(embed: bool | None) -> tuple[bool, str]:
    """(embed it?, why not) for ``export_tflite``'s ``embed``."""
    if embed is None:
        return md.metadata_writers_available()
    if embed:
        ok, why = md.metadata_writers_available()
        if not ok:
            raise MlkitError(f"cannot embed TFLite metadata: {why}")
        return True, ""
    return False, "the side file was asked for"


# --------------------------------------------------------------------------- conversion
def convert(model, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """The TFLite flatbuffer of a Keras model in one quantization mode (no metadata)."""
    import tensorflow as tf

    if quantize not in QUANTIZE_MODES:
        raise MlkitError(f"unknown quantization {quantize!r}: choose {', '.join(QUANTIZE_MODES)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # fp16 converts to float32: the converter's float16 mode rounds every constant, so the
    # large kernels alone are rewritten to float16 afterwards (large_weights_to_fp16).
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise MlkitError("int8 quantization needs calibration images; give some training images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    # Keras' export prints a long signature listing on stdout (where --json output goes). The
    # converter warns "Statistics for quantized inputs were expected" for a uint8 input: that
    # is TF1's quantized_input_stats, which TF2 ignores (the calibration sets the input range).
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            flat = bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; all mean "not converted"
        raise MlkitError(f"TFLite conversion ({quantize}) failed: {exc}. Try another --quantize mode, "
                         "or report this with the model's model.json") from exc
    return large_weights_to_fp16(flat) if quantize == "fp16" else flat


def _representative(pixels: np.ndarray):
    """The calibration images one at a time, the first carrying a 0 and a 255 pixel.

    The uint8 input's range is the min..max seen here; with both ends present it is the
    whole 0..255, so the input scale is ~1 and the zero point 0 (uint8 v means pixel v),
    even where the photos never reach pure black or white. Two pixels of one image barely
    move the ranges of the layers after it."""
    first = pixels[0].copy()
    first[0, 0, :] = PIXEL_RANGE[0]
    first[0, 1, :] = PIXEL_RANGE[1]

    def gen():
        yield [first[None]]
        for image in pixels[1:]:
            yield [image[None]]

    return gen


# --------------------------------------------------------------------------- checks
def _check_arguments(keras_path: Path, out: Path, quantize: str, card: ModelCard) -> None:
    if quantize not in QUANTIZE_MODES:
        raise MlkitError(f"unknown --quantize {quantize!r}: choose one of {', '.join(QUANTIZE_MODES)} "
                         "(none = float32, fp16 = half-size weights, dynamic = int8 weights, "
                         "int8 = integer model with uint8 input, calibrated on training images)")
    if keras_path.suffix.lower() != ".keras":
        raise MlkitError(f"{keras_path} is not a Keras model: give the {KERAS_FILE} written by `mlkit train`")
    if not keras_path.is_file():
        raise MlkitError(f"{keras_path} does not exist: give the {KERAS_FILE} written by `mlkit train`")
    if out.suffix.lower() != SUFFIX:
        raise MlkitError(f"the TFLite file must end in {SUFFIX}, got {out}")
    if out.is_dir():
        raise MlkitError(f"{out} is a folder: give the .tflite file's path")
    if not isinstance(card, ModelCard):
        raise MlkitError("export_tflite needs the model's ModelCard (toolkit.training.spec.read_model_card)")


def _check_calibration(calibration: np.ndarray | None, card: ModelCard) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise MlkitError("int8 quantization is calibrated on real images and none were given: pass some "
                         "training images (about 100, float32 RGB 0..255 at the model's input size), "
                         "or choose --quantize dynamic, which needs none")
    pixels = np.asarray(calibration, dtype=np.float32)
    size = card.spec.input_shape
    if pixels.ndim != 4 or pixels.shape[1:] != size:
        raise MlkitError(f"calibration images must be an array of shape (N, {', '.join(map(str, size))}), "
                         f"got {pixels.shape}: resize them to the model's input size as model.json says")
    if not np.isfinite(pixels).all():
        raise MlkitError("calibration images contain NaN or infinite pixels")
    if pixels.max() <= 1.0:
        raise MlkitError("calibration pixels are all within 0..1, but the model takes raw pixels 0..255: "
                         "give them unscaled")
    return np.clip(pixels, *PIXEL_RANGE)


def _facts_from_model(flat: bytes, card: ModelCard, quantize: str) -> tuple[dict[str, Any], list[str]]:
    """The metadata facts, with the dtypes and quantization the converter actually chose."""
    from ai_edge_litert.interpreter import Interpreter

    from ..runtimes.litert import TensorInfo

    interp = Interpreter(model_content=flat)
    inp = TensorInfo.from_details(interp.get_input_details()[0])
    outp = TensorInfo.from_details(interp.get_output_details()[0])
    cautions: list[str] = []
    if quantize == "int8" and inp.quantized and (abs(inp.scale - 1.0) > INPUT_SCALE_TOLERANCE or inp.zero_point):
        cautions.append(f"the uint8 input has scale {inp.scale:.6g}, zero point {inp.zero_point} (expected ~1 and "
                        "0): an app must quantize pixels with these, not feed raw bytes")
    q_in = {"scale": inp.scale, "zero_point": inp.zero_point} if inp.quantized else None
    q_out = {"scale": outp.scale, "zero_point": outp.zero_point} if outp.quantized else None
    return md.model_facts(card, inp.dtype, outp.dtype, q_in, q_out), cautions


def verify(path: Path, card: ModelCard) -> None:
    """Load ``path`` in LiteRT and run one mid-grey image: shapes match ``card``, the
    probabilities are finite and sum to ~1 (within uint8 rounding for an int8 model)."""
    from ..runtimes.litert import TFLiteRunner

    runner = TFLiteRunner(path, card)
    probs = runner.predict(np.full((1, *card.spec.input_shape), 128.0, np.float32))
    total = float(probs.sum())
    if not np.isfinite(probs).all() or abs(total - 1.0) > 0.02 + 0.5 * len(card.spec.labels) / 256:
        raise MlkitError(f"the converted model gives {probs.tolist()} on a grey image, not probabilities: "
                         "the conversion is broken; try another --quantize mode")

