"""Core ML export: the ``.mlmodel`` (NeuralNetwork) users drop into Xcode, or an
``.mlpackage`` (ML program).

What the file carries is a contract with the iOS sample (``ios_demo/``) and with Vision:

- one image input named ``image`` (``ct.ImageType``, RGB, 0..255, the model's own square
  size), so Vision can feed it a photo; the model normalises the pixels itself;
- classifier outputs ``classLabel`` (the most probable label) and ``classLabelProbs``
  (label -> probability), so Vision returns ``VNClassificationObservation`` s;
- the model name (``--name``), which becomes Xcode's generated Swift class;
- metadata: description, author, license, version, input and output descriptions, and
  user-defined entries the app reads (``labels``, ``positive_label``, ``threshold``,
  ``image_size``, ``resize_mode``) plus provenance (``toolkit_version``,
  ``dataset_hash``, ``precision``, ``source_model``), ``com.apple.coreml.model.preview.type
  = imageClassifier`` (Xcode's Preview tab) and the minimum iOS / macOS the file needs,
  computed from the specification version written (``minimum_os``).

Precision (``--precision``) is weight storage: fp32; fp16 (half the size); int8 (linear
8-bit weights, a quarter). A NeuralNetwork quantizes weights only and computes in the
device's own precision; an ML program at fp16 also computes in fp16.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import MlkitError
from ..fsutil import atomic_folder, atomic_path, path_size
from ..progress import SILENT, Reporter
from ..training.spec import ModelCard, read_model_card

FORMATS = ("neuralnetwork", "mlprogram")
PRECISIONS = ("fp32", "fp16", "int8")
SUFFIX = {"neuralnetwork": ".mlmodel", "mlprogram": ".mlpackage"}
INPUT_NAME = "image"
LABEL_OUTPUT = "classLabel"
PROBS_OUTPUT = "classLabelProbs"
AUTHOR = "mlkit"
LICENSE = "Trained on Open Images photos (CC BY 2.0): see the dataset's ATTRIBUTION.md"

# Core ML specification version -> the first (iOS, macOS) that reads it. From coremltools'
# source (apple/coremltools, checked in coremltools 9.0): coremltools/__init__.py names the
# iOS release of each version (1: iOS 11.0, 2: iOS 11.2, 3: iOS 12.0, then
# _SPECIFICATION_VERSION_IOS_13 = 4 ... _SPECIFICATION_VERSION_IOS_26 = 10), and
# coremltools/converters/mil/_deployment_compatibility.py (AvailableTarget) gives the macOS
# alias of each: macOS10_15 = iOS13 (4), macOS11 = iOS14 (5), macOS12 = iOS15 (6),
# macOS13 = iOS16 (7), macOS14 = iOS17 (8), macOS15 = iOS18 (9), macOS26 = iOS26 (10).
# Versions 1-3 predate AvailableTarget; their macOS is that of the same Core ML release
# (Core ML 1: macOS 10.13, 10.13.2 with iOS 11.2; Core ML 2: macOS 10.14).
OS_FOR_SPEC_VERSION = {
    1: ("11", "10.13"), 2: ("11.2", "10.13.2"), 3: ("12", "10.14"), 4: ("13", "10.15"), 5: ("14", "11"),
    6: ("15", "12"), 7: ("16", "13"), 8: ("17", "14"), 9: ("18", "15"), 10: ("26", "26"),
}
SPEC_VERSION = {"neuralnetwork": 4, "mlprogram": 7}
"""What each format's export writes: a NeuralNetwork of MobileNetV2 uses transpose, reduceMean
and softmaxND layers (specification version 4); an ML program targets iOS 16 (version 7).
Checked against every file written (tests), so the help text below cannot drift."""
PREVIEW_TYPE_KEY = "com.apple.coreml.model.preview.type"
PREVIEW_TYPE = "imageClassifier"
"""User-defined metadata that makes Xcode's model viewer offer its Preview tab for an image
classifier (coremltools' guide, "Xcode Model Preview Types")."""


def minimum_os(spec_version: int) -> tuple[str, str]:
    """(iOS, macOS) a Core ML file of this specification version needs at least."""
    if spec_version in OS_FOR_SPEC_VERSION:
        return OS_FOR_SPEC_VERSION[spec_version]
    newest = max(OS_FOR_SPEC_VERSION)
    if spec_version > newest:  # newer than this table: at least the newest known
        ios, macos = OS_FOR_SPEC_VERSION[newest]
        return f"newer than {ios}", f"newer than {macos}"
    raise MlkitError(f"Core ML specification version {spec_version} is not a known version")


def minimum_os_text(spec_version: int) -> str:
    ios, macos = minimum_os(spec_version)
    return f"iOS {ios} / macOS {macos}"


_SWIFT_KEYWORDS = {
    "class", "struct", "enum", "protocol", "func", "var", "let", "import", "return", "self", "Self",
    "Type", "Protocol", "Any", "init", "deinit", "extension", "operator", "static", "super", "true",
    "false", "nil", "if", "else", "for", "while", "switch", "case", "default", "in", "where", "is", "as",
}


@dataclass
class CoreMLExport:
    """One Core ML file written by ``export_coreml``."""

    path: Path
    name: str
    format: str
    precision: str
    size_bytes: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    spec_version: int = 0          # Core ML specification version of the file written
    minimum_ios: str = ""
    minimum_macos: str = ""

    def to_json(self) -> dict:
        return {"path": str(self.path), "name": self.name, "format": self.format, "precision": self.precision,
                "size_bytes": self.size_bytes, "seconds": round(self.seconds, 2), "warnings": self.warnings,
                "spec_version": self.spec_version, "minimum_ios": self.minimum_ios, "minimum_macos": self.minimum_macos}


def default_model_name(card: ModelCard) -> str:
    """The Swift class name Xcode will generate, from the classes other than a catch-all
    (other, not_x ...): hot_dog / not_hot_dog -> 'HotDogClassifier'; hamburger / sandwich
    -> 'HamburgerSandwichClassifier'; more than three named classes: the first two and how
    many more ('HamburgerSandwichAnd3MoreClassifier')."""
    from ..dataset.folder import is_catch_all

    spec = card.spec
    named = [lab for lab in spec.labels if not is_catch_all(lab)]
    if len(spec.labels) == 2 and len(named) != 1:   # two named classes, or two catch-alls
        named = named if named else [spec.positive_label]
    if not named:
        named = [spec.positive_label]
    shown = named if len(named) <= 3 else named[:2]
    stem = "".join(_camel(lab) for lab in shown) or "Image"
    if len(shown) < len(named):
        stem += f"And{len(named) - len(shown)}More"
    if stem[0].isdigit():
        stem = "Model" + stem
    return f"{stem}Classifier"


def _camel(label: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", label))


def check_model_name(name: str) -> str:
    """``--name`` must be a Swift type name: Xcode turns the file name into a class."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or "") or name in _SWIFT_KEYWORDS:
        raise MlkitError(f"--name {name!r} cannot be a Swift class name: use letters, digits and underscores, "
                         "starting with a letter (e.g. HotDogClassifier)")
    return name


def find_keras_model(model: Path | str) -> tuple[Path, ModelCard]:
    """``models/<name>/`` or its ``model.keras`` -> (the .keras file, its model.json)."""
    from ..runtimes.predict import resolve_model_file

    keras_path = resolve_model_file(model)
    if keras_path.suffix.lower() != ".keras" or not keras_path.is_file():
        raise MlkitError(f"{model} is not a Keras model (.keras): export reads the model.keras written by "
                         "`mlkit train`")
    return keras_path, read_model_card(keras_path)


def export_coreml(model: Path | str, out_path: Path | str | None = None, *, name: str | None = None,
                  fmt: str = "neuralnetwork", precision: str = "fp32",
                  reporter: Reporter = SILENT, keras_model=None) -> CoreMLExport:
    """Convert a trained model (``models/<name>/`` or its ``model.keras``) to Core ML.

    ``out_path`` defaults to ``<model folder>/<Name>.mlmodel`` (or ``.mlpackage``). The file
    appears complete or not at all: it is written beside its destination under a temporary
    name and renamed into place."""
    say = reporter.note
    if fmt not in FORMATS:
        raise MlkitError(f"unknown Core ML format {fmt!r} (--coreml-format): choose {' or '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise MlkitError(f"unknown precision {precision!r} (--precision): choose {', '.join(PRECISIONS)}")
    keras_path, card = find_keras_model(model)
    name = check_model_name(name or default_model_name(card))
    out = Path(out_path) if out_path else keras_path.parent / f"{name}{SUFFIX[fmt]}"
    if out.suffix.lower() != SUFFIX[fmt]:
        raise MlkitError(f"{out}: a {fmt} model is saved as {SUFFIX[fmt]}; name the output <Name>{SUFFIX[fmt]}")
    if out.stem != name:
        say(f"note: Xcode names the generated class after the file ({out.stem}), not --name ({name})")

    t0 = time.perf_counter()
    if keras_model is None:   # export_model passes the one it loaded
        from ..training.model import load_keras_model

        keras_model = load_keras_model(keras_path)
    say(f"Converting {keras_path} to Core ML ({fmt}, {precision}) ...")
    mlmodel, notes = _convert(keras_model, card, fmt, precision)
    version = mlmodel.get_spec().specificationVersion  # the version written: _describe leaves it as it is
    _describe(mlmodel, card, name, fmt, precision, keras_path, version)
    _save_atomically(mlmodel, out)
    ios, macos = minimum_os(version)
    say(f"{out.name}: Core ML specification version {version}, needs iOS {ios} / macOS {macos} or later")
    return CoreMLExport(path=out, name=name, format=fmt, precision=precision, size_bytes=path_size(out),
                        seconds=time.perf_counter() - t0, warnings=notes, spec_version=version,
                        minimum_ios=ios, minimum_macos=macos)


def _convert(keras_model, card: ModelCard, fmt: str, precision: str):
    import coremltools as ct

    spec = card.spec
    kw = {}
    if fmt == "mlprogram":
        kw["compute_precision"] = (ct.transform.FP16ComputePrecision(op_selector=_fp16_op) if precision == "fp16"
                                   else ct.precision.FLOAT32)
        kw["minimum_deployment_target"] = ct.target.iOS16   # int8 weights (constexpr ops) need iOS 16
    keras_input = keras_model.inputs[0].name.split(":")[0]
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mlmodel = ct.convert(
                keras_model, source="tensorflow", convert_to=fmt,
                inputs=[ct.ImageType(name=keras_input, shape=(1, spec.image_size, spec.image_size, 3),
                                     color_layout=ct.colorlayout.RGB, scale=1.0, bias=[0.0, 0.0, 0.0])],
                classifier_config=ct.ClassifierConfig(list(spec.labels), predicted_feature_name=LABEL_OUTPUT),
                **kw)
        except Exception as exc:  # the converter raises many types; all mean "cannot convert"
            raise MlkitError(f"Core ML cannot convert this model ({type(exc).__name__}: {_first_line(exc)}); "
                             "models trained by `mlkit train` convert, so a custom layer is the likely cause") from exc
        if precision != "fp32" and not (fmt == "mlprogram" and precision == "fp16"):
            mlmodel = _quantize(mlmodel, fmt, precision)
    notes += sorted({_first_line(w.message) for w in caught if _worth_keeping(w)})
    _rename(mlmodel, keras_input, fmt)
    return _reload(mlmodel, fmt), notes


def _quantize(mlmodel, fmt: str, precision: str):
    if fmt == "neuralnetwork":
        from coremltools.models.neural_network import quantization_utils

        nbits = 16 if precision == "fp16" else 8
        mode = "linear" if nbits == 16 else "linear_symmetric"   # 16 bits: a plain cast to fp16
        with contextlib.redirect_stdout(io.StringIO()):   # it prints a line per layer
            # Symmetric per-channel int8: on MobileNetV2 1.0/224 the asymmetric "linear" mode moved
            # probabilities by 0.10 (98 % agreement), symmetric by 0.0043 (99 %, accuracy unchanged).
            return quantization_utils.quantize_weights(mlmodel, nbits=nbits, quantization_mode=mode,
                                                       selector=_large_weights_only())
    import coremltools.optimize.coreml as cto

    # Depthwise kernels stay fp32 here too (see ``_large_weights_only``): on the tests' MobileNetV2
    # 0.35/96 quantizing them changed 3 of 64 top-1 answers (94.7 % agreement), keeping them none.
    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                  granularity="per_channel", weight_threshold=0),
        op_name_configs={name: None for name in _depthwise_weights(mlmodel._mil_program)})
    return cto.linear_quantize_weights(mlmodel, config)


def _depthwise_weights(program) -> list[str]:
    """Names of the constants feeding depthwise convolutions (conv with groups > 1)."""
    names = []
    for function in program.functions.values():
        for op in function.operations:
            if _is_depthwise(op) and op.weight.op is not None:
                names.append(op.weight.op.name)
    return names


def _large_weights_only():
    """Quantize the big weight matrices (pointwise convolutions, the classifier), keep
    depthwise convolutions and every bias in fp32.

    With BatchNorm folded in, MobileNetV2's depthwise kernels and biases reach magnitudes of
    30-60, where fp16's step is 0.015-0.03: measured on MobileNetV2 1.0/224 trained on seefood,
    rounding every weight to fp16 moved probabilities by up to 0.031 (2 % of top-1 answers
    changed); keeping these in fp32 (3 % of the weights) brought it to 0.0033, all answers
    unchanged."""
    from coremltools.models.neural_network.quantization_utils import QuantizedLayerSelector

    class LargeWeightsOnly(QuantizedLayerSelector):
        def do_quantize(self, layer, weight_param=None, **kwargs) -> bool:
            if not super().do_quantize(layer) or weight_param == "bias":
                return False
            kind = layer.WhichOneof("layer")
            if kind == "convolution" and layer.convolution.nGroups > 1:
                return False
            return kind != "depthwiseConv"

    return LargeWeightsOnly()


# The classifier head: global average pooling, the dense layer and the softmax. In fp16 they
# round the probabilities themselves; in fp32 they cost next to nothing (one pooling, one
# small matrix product). On the tests' MobileNetV2 0.35/96 this took max|dp| from 0.0100 to 0.0091.
_HEAD_OPS = frozenset({"reduce_mean", "matmul", "linear", "softmax"})


def _is_depthwise(op) -> bool:
    return (op.op_type == "conv" and op.groups is not None and op.groups.val is not None
            and int(op.groups.val) > 1)


def _fp16_op(op) -> bool:
    """ML program at fp16: every op computes in fp16 except depthwise convolutions (see
    ``_large_weights_only`` for why) and the classifier head (``_HEAD_OPS``)."""
    return not _is_depthwise(op) and op.op_type not in _HEAD_OPS


def _rename(mlmodel, keras_input: str, fmt: str) -> None:
    """Give the features the contract's names, whatever Keras and the converter called them."""
    import coremltools as ct

    spec = mlmodel._spec
    if keras_input != INPUT_NAME:
        ct.utils.rename_feature(spec, keras_input, INPUT_NAME)
    probs = _probabilities_output(spec)
    if probs != PROBS_OUTPUT:
        ct.utils.rename_feature(spec, probs, PROBS_OUTPUT)


def _probabilities_output(spec) -> str:
    if spec.description.predictedProbabilitiesName:
        return spec.description.predictedProbabilitiesName
    others = [o.name for o in spec.description.output if o.name != LABEL_OUTPUT]
    if len(others) != 1:
        raise MlkitError(f"the converted model has outputs {[o.name for o in spec.description.output]}; "
                         "expected a class label and one probability output")
    return others[0]


def _reload(mlmodel, fmt: str):
    """A fresh MLModel around the edited spec (ML programs keep their weight folder)."""
    import coremltools as ct

    if fmt == "mlprogram":
        return ct.models.MLModel(mlmodel._spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    return ct.models.MLModel(mlmodel._spec, skip_model_load=True)


def _describe(mlmodel, card: ModelCard, name: str, fmt: str, precision: str, keras_path: Path,
              spec_version: int) -> None:
    spec = card.spec
    labels = list(spec.labels)
    others = [lab for lab in labels if lab != spec.positive_label]
    ios, macos = minimum_os(spec_version)
    what = (f"tells {spec.positive_label!r} from {', '.join(repr(o) for o in others)}" if len(labels) == 2 else
            f"tells {len(labels)} classes apart ({', '.join(repr(lab) for lab in labels)})")
    mlmodel.short_description = (
        f"{name}: {what} in a photo. "
        f"MobileNetV2 {spec.alpha:g} at {spec.image_size}x{spec.image_size} px, fine-tuned by mlkit. "
        f"Needs iOS {ios} / macOS {macos} or later (Core ML specification version {spec_version}).")
    mlmodel.author = AUTHOR
    mlmodel.license = LICENSE
    mlmodel.version = str(card.training.get("version") or __version__)
    crop = "scaleFill" if spec.resize_mode == "squash" else "centerCrop"
    mlmodel.input_description[INPUT_NAME] = (
        f"A color (RGB) photo, {spec.image_size}x{spec.image_size} px. With Vision use imageCropAndScaleOption "
        f".{crop}, as in training (resize_mode {spec.resize_mode}).")
    mlmodel.output_description[LABEL_OUTPUT] = (
        f"The most probable label. For the decision the model was tuned for, compare the probability of "
        f"{spec.positive_label!r} with the 'threshold' metadata ({spec.threshold:g}).") if len(labels) == 2 else \
        "The most probable label (a model of more than two classes decides by the highest probability)."
    mlmodel.output_description[PROBS_OUTPUT] = "The probability of each label (they sum to 1)."
    meta = {
        "labels": json.dumps(labels), "positive_label": spec.positive_label, "threshold": f"{spec.threshold:g}",
        "image_size": str(spec.image_size), "resize_mode": spec.resize_mode, "color": "RGB",
        "pixel_range": "0-255", "toolkit_version": __version__,
        "dataset_hash": str(card.dataset.get("content_hash", "")), "precision": precision, "format": fmt,
        "source_model": keras_path.name, "model_name": name,
        "minimum_ios": ios, "minimum_macos": macos,
        PREVIEW_TYPE_KEY: PREVIEW_TYPE,
    }
    mlmodel.user_defined_metadata.update(meta)


def _save_atomically(mlmodel, out: Path) -> None:
    """Save beside ``out`` under a temporary name, then put it in place (fsutil): an existing
    file or package is replaced only once the new one is complete."""
    try:
        if mlmodel.is_package:
            with atomic_folder(out, suffix=out.suffix) as staging:
                mlmodel.save(str(staging))
        else:
            if out.is_dir():
                shutil.rmtree(out)
            with atomic_path(out, suffix=out.suffix) as staged:
                mlmodel.save(str(staged))
    except OSError as exc:   # name the file the user asked for, not the staging one
        if exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(out)) from exc


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _worth_keeping(w) -> bool:
    """Converter warnings a user should see (not coremltools' 'untested TF version' chatter)."""
    text = str(w.message)
    return "skipp" in text.lower() and "quantiz" in text.lower()
