"""``mlkit export``: a trained model as the files phones run, each checked right after it
is written.

    from toolkit.export import ExportOptions, export_model
    report = export_model("models/hot_dog", ExportOptions(coreml=True, tflite=True))
    report.valid        # every file within the tolerance of its precision

Modules: ``coreml`` (the ``.mlmodel`` / ``.mlpackage`` and the names the iOS app relies on),
``coreml_runtime`` (Core ML, or the reference evaluator off Apple platforms), ``tflite``
(conversion and quantization), ``tflite_metadata`` (Android's embedded metadata),
``tflite_runtime`` (LiteRT). Validation itself lives in ``toolkit.export.validate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlkitError, ParameterError
from ..fsutil import check_writable
from ..progress import SILENT, Reporter
from .coreml import PRECISIONS

# --precision picks TFLite's quantization unless --quantize says otherwise.
TFLITE_QUANTIZE_FOR = {"fp32": "none", "fp16": "fp16", "int8": "int8"}
CALIBRATION_IMAGES = 100


@dataclass
class ExportOptions:
    """What ``mlkit export`` writes. Neither ``coreml`` nor ``tflite`` set means both.

    output: a folder for every file, or one file path (``.mlmodel`` / ``.mlpackage`` /
        ``.tflite``) when exporting one format; default the model's own folder.
    quantize: TFLite's none / fp16 / dynamic / int8; default from ``precision``.
    samples: validation images (default: the whole test split).
    """

    coreml: bool = False
    tflite: bool = False
    coreml_format: str = "neuralnetwork"
    precision: str = "fp32"
    quantize: str | None = None
    name: str | None = None
    output: Path | None = None
    validate: bool = True
    samples: int | None = None
    data_dir: Path | None = None

    @property
    def formats(self) -> tuple[bool, bool]:
        return (self.coreml, self.tflite) if (self.coreml or self.tflite) else (True, True)


@dataclass
class ExportReport:
    model_dir: Path
    exports: list = field(default_factory=list)      # CoreMLExport / TFLiteExport
    validation: object | None = None                 # toolkit.export.validate.ValidationReport
    validation_json: Path | None = None

    @property
    def valid(self) -> bool:
        return self.validation is None or self.validation.valid

    def to_json(self) -> dict:
        out = {"model": str(self.model_dir), "exports": [e.to_json() for e in self.exports], "valid": self.valid}
        if self.validation is not None:
            out["validation"] = self.validation.to_json()
            out["validation_json"] = str(self.validation_json)
        return out


def _targets(options: ExportOptions, model_dir: Path, name: str, card) -> tuple[Path | None, Path | None]:
    from .coreml import SUFFIX

    want_coreml, want_tflite = options.formats
    quantize = options.quantize or TFLITE_QUANTIZE_FOR[options.precision]
    if want_tflite:
        from .tflite import QUANTIZE_MODES

        if quantize not in QUANTIZE_MODES:
            raise MlkitError(f"unknown --quantize {quantize!r}: choose {', '.join(QUANTIZE_MODES)}")
    coreml_suffix = SUFFIX.get(options.coreml_format, ".mlmodel")
    tflite_name = f"{card.name or 'model'}{'' if quantize == 'none' else '_' + quantize}.tflite"
    out = Path(options.output) if options.output else model_dir
    suffix = out.suffix.lower()
    if suffix in (".mlmodel", ".mlpackage", ".tflite"):
        if want_coreml and want_tflite:
            raise MlkitError(f"--output {out} names one file, but both Core ML and TFLite are exported: give a "
                             "folder, or choose --coreml or --tflite")
        if want_coreml and suffix == ".tflite" or want_tflite and suffix != ".tflite":
            raise MlkitError(f"--output {out} does not match the format exported; a Core ML file ends in "
                             f"{coreml_suffix}, a TFLite file in .tflite")
        return (out, None) if want_coreml else (None, out)
    return (out / f"{name}{coreml_suffix}" if want_coreml else None,
            out / tflite_name if want_tflite else None)


def export_model(model: Path | str, options: ExportOptions | None = None,
                 reporter: Reporter = SILENT) -> ExportReport:
    """Export ``models/<name>/`` (or its model.keras) to Core ML and/or TFLite, then validate
    every file written against the Keras model on the dataset's test images."""
    from . import validate as val
    from .coreml import check_model_name, default_model_name, find_keras_model

    options = options or ExportOptions()
    say = reporter.note
    if options.precision not in PRECISIONS:
        raise MlkitError(f"unknown --precision {options.precision!r}: choose {', '.join(PRECISIONS)}")
    if options.samples is not None and options.samples < 1:
        raise ParameterError("samples", options.samples, "must be at least 1")
    keras_path, card = find_keras_model(model)
    name = check_model_name(options.name or default_model_name(card))
    coreml_out, tflite_out = _targets(options, keras_path.parent, name, card)
    quantize = options.quantize or TFLITE_QUANTIZE_FOR[options.precision]
    what = "--output" if options.output else "the model folder"
    for target in {t.parent for t in (coreml_out, tflite_out) if t is not None}:
        check_writable(target, what)                 # before minutes of conversion
    if options.validate:
        check_writable(keras_path.parent, "the model folder (validation.json)")

    # Read the images first: a missing dataset fails before minutes of conversion.
    images = val.validation_images(card, options.data_dir, options.samples) if options.validate else None
    from ..runtimes.predict import KerasRunner

    keras = KerasRunner(keras_path, card)   # loaded once: both converters and the reference use it
    report = ExportReport(model_dir=keras_path.parent)
    with _write_errors(keras.model):
        _convert_all(report, keras_path, card, keras, options, name, coreml_out, tflite_out, quantize, reporter)
        if options.validate:
            say(f"Validating against Keras on {images.source} ...")
            reference = val.run_reference(keras_path, card, images, runner=keras)
            precision_of = {coreml_out: options.precision, tflite_out: quantize}
            rows = [val.compare(e.path, card, images, reference, precision_of.get(Path(e.path)))
                    for e in report.exports]
            report.validation = val.ValidationReport(reference, images, rows)
            report.validation_json = val.write_validation_json(keras_path.parent, report.validation)
    return report


@contextmanager
def _write_errors(keras_model) -> Iterator[None]:
    """A full or read-only disk while writing a file: an MlkitError with the path (and the
    space needed), not a traceback; the writers leave nothing half-written."""
    from ..training.model_folder import write_error

    try:
        yield
    except OSError as exc:
        error = write_error(Path(exc.filename or "."), exc, keras_model)
        if error is None:
            raise
        raise error from None


def _convert_all(report, keras_path, card, keras, options, name, coreml_out, tflite_out, quantize,
                 reporter: Reporter) -> None:
    from .coreml import export_coreml

    say = reporter.note
    if coreml_out is not None:
        report.exports.append(export_coreml(keras_path, coreml_out, name=name, fmt=options.coreml_format,
                                            precision=options.precision, reporter=reporter, keras_model=keras.model))
        say(f"Wrote {coreml_out}")
    if tflite_out is not None:
        from .tflite import export_tflite

        calibration = calibration_images(card, options.data_dir) if quantize == "int8" else None
        say(f"Converting {keras_path} to TFLite ({quantize}) ...")
        report.exports.append(export_tflite(keras_path, card, tflite_out, quantize=quantize,
                                            calibration=calibration, keras_model=keras.model))
        say(f"Wrote {tflite_out}")


def calibration_images(card, data_dir: Path | None = None, limit: int = CALIBRATION_IMAGES):
    """Up to ``limit`` training images (seeded, every class) for int8 calibration."""
    from .validate import validation_images

    try:
        return validation_images(card, data_dir, limit, split="train", seed=1).pixels
    except MlkitError as exc:
        raise MlkitError(f"int8 quantization is calibrated on training images, and they could not be read: {exc}") \
            from exc
