"""TFLite model metadata: what Android's tooling reads from a ``.tflite`` file.

Android Studio's ML Model Binding and the TFLite Task Library look inside the model file
for the labels (an associated ``labels.txt``), the input normalisation and the colour
space. ``embed_metadata`` writes them with tflite-support's image-classifier metadata
writer, ``read_metadata`` reads them back.

tflite-support is an optional dependency: its last release (0.4.4, 2023) has wheels only
for x86_64 with Python <= 3.11 (none for Apple Silicon) and pins ``protobuf<4``, which
TensorFlow 2.21 cannot share; installed with ``--no-deps`` its metadata writers work (see
``../shared/docs/stack.md``). Where it is missing, the same facts go into a JSON side file
``<name>.tflite.json`` beside the model, and the export says so.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import json
import platform
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import MlkitError
from ..training.spec import COLOR_ORDER, LABELS_FILE, PIXEL_RANGE, ModelCard, labels_text

SIDE_FILE_SUFFIX = ".json"   # HotDog.tflite -> HotDog.tflite.json
SIDE_FILE_FORMAT = 1
AUTHOR = "mlkit"
# The licence of the weights this toolkit starts from (Keras' MobileNetV2); the photos a
# model was trained on keep their own licences, listed in the dataset's manifest.
LICENSE = "Apache-2.0 (MobileNetV2 weights); training images keep their own licenses (see the dataset manifest)"
# The model normalises inside itself (x / 127.5 - 1, see model_spec), so the app must feed
# raw pixels: (x - 0) / 1. For a uint8-input (int8) model the Task Library feeds the raw
# uint8 pixels and ignores these numbers, which is right too: its input scale is 1, zero
# point 0, so uint8 value v means pixel v.
NORM_MEAN = [0.0, 0.0, 0.0]
NORM_STD = [1.0, 1.0, 1.0]

_WRITER_MODULE = "tensorflow_lite_support.metadata.python.metadata_writers.image_classifier"
_INSTALL_HINT = ("install it where a wheel exists (x86_64 Linux or macOS, Python <= 3.11) with "
                 "`pip install --no-deps tflite-support==0.4.4 libusb-package importlib_resources pybind11 "
                 "sounddevice`")


@functools.lru_cache(maxsize=1)
def metadata_writers_available() -> tuple[bool, str]:
    """(True, "") where tflite-support's metadata writers import; else (False, why).

    Its import needs the system library libusb-1.0, absent on many machines; the
    ``libusb-package`` wheel ships one, loaded globally first so the import finds it."""
    try:
        import libusb_package

        lib = libusb_package.get_library_path()
        if lib:
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):
        pass  # the system's libusb may still be there; the import below decides
    try:
        importlib.import_module(_WRITER_MODULE)
        importlib.import_module("tensorflow_lite_support.metadata.python.metadata")
    except ImportError as exc:
        here = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
        if str(getattr(exc, "name", "") or "").startswith("tensorflow_lite_support"):
            if not _wheel_exists_here():
                return False, f"tflite-support publishes no wheel for {here} (only x86_64, Python <= 3.11)"
            return False, f"tflite-support is not installed ({here}); {_INSTALL_HINT}"
        return False, f"tflite-support does not import here ({here}: {exc}); {_INSTALL_HINT}"
    except Exception as exc:  # noqa: BLE001 - a broken native module raises anything; degrade, don't crash
        return False, f"tflite-support does not import here ({type(exc).__name__}: {exc})"
    return True, ""


def _wheel_exists_here() -> bool:
    """Whether tflite-support 0.4.4 publishes a wheel for this machine and Python at all."""
    return sys.version_info < (3, 12) and platform.machine().lower() in ("x86_64", "amd64")


# --------------------------------------------------------------------------- what is said
def model_facts(card: ModelCard, input_dtype: str = "float32", output_dtype: str = "float32",
                input_quantization: dict[str, float] | None = None,
                output_quantization: dict[str, float] | None = None) -> dict[str, Any]:
    """Name, description, version and the input/output facts, shared by the embedded
    metadata and the side file so the two can never disagree."""
    spec = card.spec
    dataset_hash = str(card.dataset.get("content_hash") or "")
    size = f"{spec.image_size}x{spec.image_size}"
    binary = len(spec.labels) == 2
    decision = (f"'{spec.positive_label}' when its probability >= {spec.threshold:g}" if binary
                else "the most probable label is the answer")
    subject = f"Image classifier for {spec.positive_label!r}" if binary else \
        f"Image classifier of {len(spec.labels)} classes"
    description = (f"{subject} (classes: {', '.join(spec.labels)}). "
                   f"Input: {size} {COLOR_ORDER} image, raw pixels 0..255 ({input_dtype}); the model "
                   f"normalises them itself. Output: {len(spec.labels)} class probabilities ({output_dtype}), "
                   f"in labels.txt order; {decision}. "
                   f"Made by mlkit {__version__} from a MobileNetV2 (alpha {spec.alpha:g}); "
                   f"dataset {card.dataset.get('name') or '(unnamed)'}, content hash {dataset_hash or 'unknown'}.")
    return {
        "name": card.name or "mlkit image classifier",
        "description": description,
        # toolkit version + the training data's identity (semver build metadata)
        "version": f"{__version__}+{dataset_hash[:12]}" if dataset_hash else __version__,
        "author": AUTHOR,
        "license": LICENSE,
        "labels": list(spec.labels),
        "positive_label": spec.positive_label,
        "threshold": spec.threshold,
        "input": {
            "shape": [1, spec.image_size, spec.image_size, 3], "layout": "NHWC", "dtype": input_dtype,
            "color": COLOR_ORDER, "pixel_range": list(PIXEL_RANGE), "resize_mode": spec.resize_mode,
            "normalization": {"mean": list(NORM_MEAN), "std": list(NORM_STD),
                              "note": "raw pixels: the model normalises inside itself (x / 127.5 - 1)"},
            **({"quantization": input_quantization} if input_quantization else {}),
        },
        "output": {"kind": "probabilities", "classes": len(spec.labels), "dtype": output_dtype,
                   **({"quantization": output_quantization} if output_quantization else {})},
        "associated_files": [LABELS_FILE],
    }


# --------------------------------------------------------------------------- embedded
def embed_metadata(model_bytes: bytes, card: ModelCard, labels: Path | str, *,
                   facts: dict[str, Any] | None = None) -> bytes:
    """``model_bytes`` with image-classifier metadata and ``labels.txt`` packed inside.

    labels: a ``Path`` is a labels file; a ``str`` is the labels text itself. Either must
        list ``card.spec.labels`` in order (the card is the truth; a stale file is refused).
    facts: from ``model_facts`` (default: float32 input/output).

    ``image_classifier.MetadataWriter.create_for_inference`` fills the tensor metadata the
    Task Library needs (normalisation, colour space, min/max from the tensor types, the
    label file) but only a generic name and description; this builds the same input and
    output metadata and passes a ``GeneralMd`` too, through ``create_from_metadata_info``,
    which is what ``create_for_inference`` calls. Raises MlkitError where tflite-support
    is unavailable (``metadata_writers_available`` says why)."""
    ok, reason = metadata_writers_available()
    if not ok:
        raise MlkitError(f"cannot embed TFLite metadata: {reason}")
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as md_fb
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, metadata_info, \
        writer_utils

    facts = facts or model_facts(card)
    text = labels.read_text(encoding="utf-8") if isinstance(labels, Path) else str(labels)
    if [line.strip() for line in text.splitlines() if line.strip()] != list(card.spec.labels):
        raise MlkitError(f"the labels given for the TFLite metadata ({text.splitlines()}) are not model.json's "
                         f"{card.spec.labels}: rewrite labels.txt from model.json (one label a line, in order)")
    buffer = bytearray(model_bytes)
    with tempfile.TemporaryDirectory(prefix="mlkit-tflite-labels-") as tmp:
        # The writer packs a file from disk, under its base name: always "labels.txt".
        label_path = Path(tmp) / LABELS_FILE
        label_path.write_text(labels_text(card.spec.labels), encoding="utf-8")
        general = metadata_info.GeneralMd(name=facts["name"], version=facts["version"],
                                          description=facts["description"], author=facts["author"],
                                          licenses=facts["license"])
        size = card.spec.image_size
        image = metadata_info.InputImageTensorMd(
            name="image",
            description=f"{size}x{size} RGB image, raw pixels 0..255 (the model normalises them itself).",
            norm_mean=list(NORM_MEAN), norm_std=list(NORM_STD), color_space_type=md_fb.ColorSpaceType.RGB,
            tensor_type=writer_utils.get_input_tensor_types(buffer)[0])
        probability = metadata_info.ClassificationTensorMd(
            name="probability", description="Probability of each label, in labels.txt order.",
            label_files=[metadata_info.LabelFileMd(file_path=str(label_path))],
            tensor_type=writer_utils.get_output_tensor_types(buffer)[0])
        try:
            writer = image_classifier.MetadataWriter.create_from_metadata_info(
                buffer, general_md=general, input_md=image, output_md=probability)
            return bytes(writer.populate())
        except (ValueError, RuntimeError) as exc:
            raise MlkitError(f"could not write TFLite metadata into the model: {exc}") from exc


# --------------------------------------------------------------------------- side file
def side_file_path(model_path: Path | str) -> Path:
    """``HotDog.tflite`` -> ``HotDog.tflite.json``."""
    p = Path(model_path)
    return p.with_name(p.name + SIDE_FILE_SUFFIX)


def side_file_json(facts: dict[str, Any], reason: str) -> str:
    """The side file's text: the facts the embedded metadata would hold, and why it is not."""
    doc = {"format": SIDE_FILE_FORMAT, "written_by": f"mlkit {__version__}",
           "embedded_metadata": False, "reason": reason, **facts}
    return json.dumps(doc, indent=2) + "\n"


# --------------------------------------------------------------------------- reading back
def read_metadata(path: Path | str) -> dict[str, Any] | None:
    """The metadata of a ``.tflite`` file, embedded or in its side file, in one shape:

        {"source": "embedded" | "side-file", "name", "description", "version", "author",
         "license", "labels": [...], "normalization": {"mean": [...], "std": [...]},
         "associated_files": [...], "json": <the full metadata document>}

    None where the file has neither. Embedded metadata is read with tflite-support's
    ``MetadataDisplayer``; where that is unavailable, the labels are still read from the
    zip archive the associated files are packed in (a ``note`` says what is missing)."""
    p = Path(path)
    if not p.is_file():
        raise MlkitError(f"{p} does not exist: give a .tflite file written by `mlkit export --tflite`")
    if zipfile.is_zipfile(p):   # associated files are a zip appended to the flatbuffer
        return _read_embedded(p)
    side = side_file_path(p)
    if side.is_file():
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MlkitError(f"cannot read {side}: {exc}; export the model again") from exc
        inp = doc.get("input", {})
        return {"source": "side-file", "name": doc.get("name"), "description": doc.get("description"),
                "version": doc.get("version"), "author": doc.get("author"), "license": doc.get("license"),
                "labels": list(doc.get("labels", [])),
                "normalization": {k: inp.get("normalization", {}).get(k) for k in ("mean", "std")},
                "associated_files": list(doc.get("associated_files", [])), "json": doc}
    return None


def _read_embedded(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        files = zf.namelist()
        labels_raw = zf.read(LABELS_FILE).decode("utf-8") if LABELS_FILE in files else ""
    labels = [line.strip() for line in labels_raw.splitlines() if line.strip()]
    ok, reason = metadata_writers_available()
    if not ok:
        return {"source": "embedded", "name": None, "description": None, "version": None, "author": None,
                "license": None, "labels": labels, "normalization": {"mean": None, "std": None},
                "associated_files": files, "json": None,
                "note": f"the metadata JSON cannot be read here: {reason}"}
    from tensorflow_lite_support.metadata.python.metadata import MetadataDisplayer

    try:
        displayer = MetadataDisplayer.with_model_file(str(path))
        doc = json.loads(displayer.get_metadata_json())
        files = list(displayer.get_packed_associated_file_list())
    except ValueError as exc:   # a zip with no metadata flatbuffer, e.g.
        raise MlkitError(f"{path} holds associated files but no readable TFLite metadata ({exc}); "
                         "export the model again") from exc
    norm: dict[str, Any] = {"mean": None, "std": None}
    for tensor in doc.get("subgraph_metadata", [{}])[0].get("input_tensor_metadata", []):
        for unit in tensor.get("process_units", []):
            if unit.get("options_type") == "NormalizationOptions":
                norm = {k: unit.get("options", {}).get(k) for k in ("mean", "std")}
    return {"source": "embedded", "name": doc.get("name"), "description": doc.get("description"),
            "version": doc.get("version"), "author": doc.get("author"), "license": doc.get("license"),
            "labels": labels, "normalization": norm, "associated_files": files, "json": doc}
