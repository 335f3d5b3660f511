"""Reading a Core ML file from disk: ``.mlmodel`` or ``.mlpackage``.

A ``.mlmodel`` is one protobuf ``CoreML.Specification.Model``. A ``.mlpackage`` is a
directory: ``Manifest.json`` names the root item (normally
``Data/com.apple.CoreML/model.mlmodel``, a ``Model`` holding an ``mlProgram``), and the
program's ``blobFileValue`` s point at ``@model_path/weights/weight.bin``, where
``@model_path`` is the folder holding that ``model.mlmodel``.

Also here: the feature descriptions (inputs / outputs / classifier outputs / metadata)
that the evaluator and mlkit's validation read back from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import MlkitError
from .weights import BlobFile

MODEL_PATH_PREFIX = "@model_path/"


@dataclass(frozen=True)
class Feature:
    """One input or output as the model description declares it.

    kind: "image", "array", "dictionary", "string", "int64", "double" or the protobuf type
    name for anything else. For images: width, height, color_space ("RGB", "BGR",
    "GRAYSCALE", "GRAYSCALE_FLOAT16"); flexible is True when the file allows other sizes.
    For arrays: shape (may be empty when unspecified) and dtype ("FLOAT32", "FLOAT16", ...).
    """

    name: str
    kind: str
    description: str = ""
    width: int = 0
    height: int = 0
    color_space: str = ""
    flexible: bool = False
    shape: tuple[int, ...] = ()
    dtype: str = ""


@dataclass
class LoadedSpec:
    """A parsed file: the ``Model`` protobuf plus where its weights live."""

    path: Path
    model: object                      # CoreML.Specification.Model
    format: str                        # "neuralnetwork" | "mlprogram"
    model_dir: Path | None = None      # folder of model.mlmodel inside a package
    _blobs: dict[str, BlobFile] = field(default_factory=dict)

    def read_blob(self, file_name: str, offset: int, count: int):
        blob = self._blobs.get(file_name)
        if blob is None:
            blob = BlobFile(self._resolve(file_name))
            self._blobs[file_name] = blob
        return blob.read(offset, count)

    def _resolve(self, file_name: str) -> Path:
        if self.model_dir is None:
            raise MlkitError(f"{self.path} references the weight file '{file_name}', which "
                             "only an .mlpackage can hold; save the ML program as .mlpackage")
        rel = file_name[len(MODEL_PATH_PREFIX):] if file_name.startswith(MODEL_PATH_PREFIX) else file_name
        path = self.model_dir / rel
        if not path.is_file():
            raise MlkitError(f"{self.path} is missing its weight file {path} (the program "
                             f"references '{file_name}'); copy the whole .mlpackage folder")
        return path


def _proto():
    try:
        from coremltools.proto import MIL_pb2, Model_pb2  # noqa: F401
    except ImportError as e:  # pragma: no cover - coremltools is a dependency
        raise MlkitError("reading Core ML files needs coremltools (pip install coremltools)") from e
    return Model_pb2


def _package_model_file(pkg: Path) -> Path:
    manifest = pkg / "Manifest.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())
            root = info["itemInfoEntries"][info["rootModelIdentifier"]]
            path = pkg / "Data" / root["path"]
        except (ValueError, KeyError, TypeError) as e:
            raise MlkitError(f"{manifest} is not a valid .mlpackage manifest ({e})") from None
    else:
        path = pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"
    if not path.is_file():
        raise MlkitError(f"{pkg} is not a complete .mlpackage: {path} is missing")
    return path


def read_spec(path: str | Path) -> LoadedSpec:
    """Parse ``path`` (.mlmodel file or .mlpackage folder); MlkitError if it is not one."""
    path = Path(path)
    if not path.exists():
        raise MlkitError(f"no such Core ML file: {path}")
    model_dir = None
    if path.is_dir():
        if path.suffix == ".mlmodelc":
            raise MlkitError(f"{path} is a compiled model (.mlmodelc); pass the .mlmodel or "
                             ".mlpackage it was compiled from")
        model_file = _package_model_file(path)
        model_dir = model_file.parent
    else:
        model_file = path
    Model_pb2 = _proto()
    model = Model_pb2.Model()
    data = model_file.read_bytes()
    try:
        model.ParseFromString(data)
    except Exception:
        raise MlkitError(f"{path} is not a Core ML model (its protobuf cannot be parsed)") from None
    kind = model.WhichOneof("Type")
    if model.specificationVersion <= 0 or kind is None:
        raise MlkitError(f"{path} is not a Core ML model (no model type / specification "
                         "version in the file)")
    if kind in ("neuralNetwork", "neuralNetworkClassifier"):
        fmt = "neuralnetwork"
    elif kind == "mlProgram":
        fmt = "mlprogram"
    else:
        raise MlkitError(f"{path} is a Core ML '{kind}' model; the reference evaluator runs "
                         "neural networks (.mlmodel) and ML programs (.mlpackage) only")
    return LoadedSpec(path=path, model=model, format=fmt, model_dir=model_dir)


def describe_feature(fd) -> Feature:
    """A ``FeatureDescription`` as a ``Feature``."""
    from coremltools.proto import FeatureTypes_pb2

    t = fd.type
    kind = t.WhichOneof("Type")
    if kind == "imageType":
        it = t.imageType
        space = FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(it.colorSpace)
        flexible = it.WhichOneof("SizeFlexibility") is not None
        return Feature(fd.name, "image", fd.shortDescription, int(it.width), int(it.height),
                       space, flexible)
    if kind == "multiArrayType":
        at = t.multiArrayType
        dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(at.dataType)
        return Feature(fd.name, "array", fd.shortDescription, shape=tuple(int(s) for s in at.shape),
                       dtype=dtype, flexible=at.WhichOneof("ShapeFlexibility") is not None)
    names = {"dictionaryType": "dictionary", "stringType": "string", "int64Type": "int64",
             "doubleType": "double"}
    return Feature(fd.name, names.get(kind, kind or "unknown"), fd.shortDescription)


def metadata(model) -> dict:
    """The model's metadata block as a plain dict (short description, author, license,
    version and the user-defined entries)."""
    m = model.description.metadata
    return {"short_description": m.shortDescription, "author": m.author,
            "license": m.license, "version": m.versionString,
            "user_defined": dict(m.userDefined)}
