"""The contract between the toolkit's Core ML export and the iOS sample.

The names the Swift code relies on (the model class, its input, its outputs, the metadata
keys, the resize modes, the label strings its tests use) are read FROM the Swift sources
with tree-sitter, then checked against a tiny model exported by
``toolkit.export.coreml.export_coreml``. A rename on either side fails here, not on
someone's iPhone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import test_ios_demo as demo
from toolkit.model_spec import RESIZE_MODES, ModelCard, ModelSpec, labels_text

LABELS = ["hot_dog", "not_hot_dog"]
IMAGE_SIZE = 96

KIT_SOURCES = demo.PACKAGE_DIR / "Sources" / "HotDogKit"
KIT_TESTS = demo.PACKAGE_DIR / "Tests" / "HotDogKitTests"
CONTRACT_SWIFT = KIT_SOURCES / "ModelContract.swift"
MODEL_INFO_SWIFT = KIT_SOURCES / "ModelInfo.swift"
CLASSIFIER_SWIFT = demo.APP_DIR / "PhotoClassifier.swift"
# The metadata keys without which the app refuses the model (ModelInfo(metadata:)).
REQUIRED_KEYS = {"labels", "positive_label", "threshold", "resize_mode"}
# toolkit.model_spec.RESIZE_MODES -> Vision's VNImageCropAndScaleOption
VISION_OPTION = {"squash": "scaleFill", "center_crop": "centerCrop"}


@dataclass(frozen=True)
class SwiftNames:
    model_name: str          # the generated class, and the .mlmodel's file name
    input_name: str
    label_output: str
    probs_output: str
    metadata_keys: dict[str, str]   # Swift case -> metadata key
    resize_modes: dict[str, str]    # Swift case -> resize_mode value


@pytest.fixture(scope="module")
def swift() -> SwiftNames:
    contract = demo.string_constants(CONTRACT_SWIFT, "ModelContract")
    assert set(contract) == {"modelName", "inputName", "predictedLabelName", "probabilitiesName"}, \
        f"{CONTRACT_SWIFT.name} changed shape: {contract}"
    return SwiftNames(model_name=contract["modelName"], input_name=contract["inputName"],
                      label_output=contract["predictedLabelName"], probs_output=contract["probabilitiesName"],
                      metadata_keys=demo.enum_raw_values(MODEL_INFO_SWIFT, "Key"),
                      resize_modes=demo.enum_raw_values(MODEL_INFO_SWIFT, "ResizeMode"))


# --------------------------------------------------------------------------- Swift side only
def test_swift_reads_the_required_metadata(swift):
    assert REQUIRED_KEYS <= set(swift.metadata_keys.values())


def test_the_app_loads_the_class_the_contract_names(swift):
    # Xcode names the class after the file: the project's model file, the class the app
    # instantiates and the compiled model it looks for in the bundle must all agree.
    assert demo.MODEL_FILE == f"{swift.model_name}.mlmodel"
    assert swift.model_name in demo.called_names(CLASSIFIER_SWIFT)
    assert re.search(r'Bundle\.main\.url\(forResource: ModelContract\.modelName, withExtension: "mlmodelc"\)',
                     CLASSIFIER_SWIFT.read_text())
    assert f"path = {swift.model_name}.mlmodel;" in demo.PBXPROJ.read_text()


def test_the_app_checks_the_model_with_the_contract_names():
    text = CLASSIFIER_SWIFT.read_text()
    for use in ("inputDescriptionsByName[ModelContract.inputName]",
                "predictedFeatureName == ModelContract.predictedLabelName",
                "predictedProbabilitiesName == ModelContract.probabilitiesName",
                "metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String]",
                "ModelInfo(metadata: metadata)"):
        assert use in text, use


def test_resize_modes_agree_and_map_to_vision(swift):
    assert set(swift.resize_modes.values()) == set(RESIZE_MODES), \
        "toolkit.model_spec.RESIZE_MODES and Swift's ResizeMode must list the same modes"
    text = CLASSIFIER_SWIFT.read_text()
    for case, mode in swift.resize_modes.items():
        assert re.search(rf"case \.{case}: return \.{VISION_OPTION[mode]}\b", text), \
            f"resize_mode {mode} must give Vision .{VISION_OPTION[mode]}"


def test_the_exporter_uses_the_same_names(swift):
    from toolkit.export import coreml

    assert (coreml.INPUT_NAME, coreml.LABEL_OUTPUT, coreml.PROBS_OUTPUT) == \
        (swift.input_name, swift.label_output, swift.probs_output)
    card = ModelCard(spec=ModelSpec(labels=LABELS), name="hot_dog")
    assert coreml.default_model_name(card) == swift.model_name   # what `mlkit export` names it by default


# --------------------------------------------------------------------------- against an export
@pytest.fixture(scope="module")
def exported(tmp_path_factory, swift):
    """A tiny untrained model (as tests/test_predict.py builds one), exported with the
    exporter's defaults to ``<model class>.mlmodel``; yields (export result, spec)."""
    import coremltools as ct
    import keras

    from toolkit.export.coreml import export_coreml
    from toolkit.model import build_classifier, save_keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("models") / "hot_dog"
    spec = ModelSpec(labels=LABELS, alpha=0.35, image_size=IMAGE_SIZE)
    save_keras(build_classifier(spec, "none"), folder / "model.keras")
    ModelCard(spec=spec, name="hot_dog").write(folder)
    (folder / "labels.txt").write_text(labels_text(LABELS))
    out = tmp_path_factory.mktemp("ios") / demo.APP / demo.MODEL_FILE
    result = export_coreml(folder, out)
    return result, ct.utils.load_spec(str(result.path))


@pytest.mark.slow
def test_export_is_the_file_the_project_references(exported, swift):
    result, spec = exported
    assert Path(result.path).name == demo.MODEL_FILE
    assert result.name == swift.model_name
    # A NeuralNetwork classifier: the single-file .mlmodel the project compiles.
    assert spec.WhichOneof("Type") == "neuralNetworkClassifier"


@pytest.mark.slow
def test_input(exported, swift):
    from coremltools.proto import FeatureTypes_pb2 as ft

    _, spec = exported
    [image] = spec.description.input
    assert image.name == swift.input_name
    assert image.type.WhichOneof("Type") == "imageType"
    assert image.type.imageType.colorSpace == ft.ImageFeatureType.RGB
    assert image.type.imageType.width == image.type.imageType.height == IMAGE_SIZE


@pytest.mark.slow
def test_outputs(exported, swift):
    _, spec = exported
    outputs = {o.name: o.type for o in spec.description.output}
    assert set(outputs) == {swift.label_output, swift.probs_output}
    assert outputs[swift.label_output].WhichOneof("Type") == "stringType"
    probs = outputs[swift.probs_output]
    assert probs.WhichOneof("Type") == "dictionaryType"
    assert probs.dictionaryType.WhichOneof("KeyType") == "stringKeyType"   # label -> probability
    assert spec.description.predictedFeatureName == swift.label_output
    assert spec.description.predictedProbabilitiesName == swift.probs_output


@pytest.mark.slow
def test_labels(exported):
    _, spec = exported
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == LABELS
    meta = dict(spec.description.metadata.userDefined)
    assert json.loads(meta["labels"]) == LABELS


@pytest.mark.slow
def test_metadata_the_app_reads(exported, swift):
    _, spec = exported
    meta = dict(spec.description.metadata.userDefined)
    missing = set(swift.metadata_keys.values()) - set(meta)
    assert not missing, f"the Swift code reads metadata keys the export lacks: {sorted(missing)}"
    # ... with values ModelInfo(metadata:) accepts.
    labels = json.loads(meta["labels"])
    assert isinstance(labels, list) and all(isinstance(x, str) for x in labels) and len(set(labels)) >= 2
    assert meta["positive_label"] in labels
    assert re.fullmatch(r"\s*[0-9]*\.?[0-9]+(e-?[0-9]+)?\s*", meta["threshold"]) and 0 <= float(meta["threshold"]) <= 1
    assert meta["resize_mode"] in swift.resize_modes.values()
    assert int(meta["image_size"]) == IMAGE_SIZE
    described = spec.description.metadata
    for field in (described.shortDescription, described.author, described.license, described.versionString):
        assert field.strip()


@pytest.mark.slow
def test_swift_tests_use_what_the_exporter_writes(exported):
    """ModelInfoTests.exportedMetadata, the dictionary the XCTest tests parse, is what a real
    export carries (provenance values aside)."""
    _, spec = exported
    meta = dict(spec.description.metadata.userDefined)
    fixture = demo.dictionary_constant(KIT_TESTS / "ModelInfoTests.swift", "exportedMetadata")
    assert set(fixture) <= set(meta)
    assert json.loads(fixture["labels"]) == json.loads(meta["labels"])
    assert float(fixture["threshold"]) == float(meta["threshold"])
    for key in ("positive_label", "resize_mode", "image_size"):
        assert fixture[key] == meta[key], key


@pytest.mark.slow
def test_swift_tests_show_every_label(exported):
    """DisplayNameTests names every label the model carries ("hot_dog" -> "Hot dog!")."""
    _, spec = exported
    shown = set(demo.call_string_arguments(KIT_TESTS / "DisplayNameTests.swift", "DisplayName.of"))
    assert set(spec.neuralNetworkClassifier.stringClassLabels.vector) <= shown
