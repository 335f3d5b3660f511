"""The contract between the toolkit's Core ML export and the iOS sample.

The names the Swift code relies on (the model class, its input, its outputs, the metadata
keys, the resize modes, the label strings its tests use) are read FROM the Swift sources
with tree-sitter, then checked against a tiny model exported by
``toolkit.export.coreml.export_coreml``. A rename on either side fails here, not on
someone's iPhone.

The export's description and metadata (what the app checks at launch) are also written to
``ios_demo/HotDogKit/Tests/HotDogKitTests/Resources/exported_model.json``; a Swift test
(``ModelContractTests``) runs that fixture through ``ModelContract.check``, the code the
app runs on the loaded model. Here a fresh export must give exactly the committed fixture;
after a deliberate change to the exporter, regenerate it with
``MLKIT_UPDATE_IOS_FIXTURE=1 pytest tests/test_ios_demo_contract.py`` and commit it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import test_ios_demo as demo
from helpers_models import save_untrained_model
from toolkit.training.spec import RESIZE_MODES, ModelCard, ModelSpec

LABELS = ["hot_dog", "not_hot_dog"]
IMAGE_SIZE = 96

KIT_SOURCES = demo.PACKAGE_DIR / "Sources" / "HotDogKit"
KIT_TESTS = demo.PACKAGE_DIR / "Tests" / "HotDogKitTests"
CONTRACT_SWIFT = KIT_SOURCES / "ModelContract.swift"
MODEL_INFO_SWIFT = KIT_SOURCES / "ModelInfo.swift"
CLASSIFIER_SWIFT = demo.APP_DIR / "PhotoClassifier.swift"
# The metadata keys without which the app refuses the model (ModelInfo(metadata:)).
REQUIRED_KEYS = {"labels", "positive_label", "threshold", "resize_mode"}
# toolkit.training.spec.RESIZE_MODES -> Vision's VNImageCropAndScaleOption
VISION_OPTION = {"squash": "scaleFill", "center_crop": "centerCrop"}
FIXTURE = KIT_TESTS / "Resources" / "exported_model.json"
UPDATE_FIXTURE = "MLKIT_UPDATE_IOS_FIXTURE"
# Core ML's FeatureType oneof -> MLFeatureType's case name (ModelDescription.FeatureType in Swift)
FEATURE_TYPES = {"int64Type": "int64", "doubleType": "double", "stringType": "string", "imageType": "image",
                 "multiArrayType": "multiArray", "dictionaryType": "dictionary", "sequenceType": "sequence",
                 "stateType": "state"}
# Metadata values that change without the contract changing: coremltools' own entries, and
# the toolkit's version (compared by presence only).
VOLATILE_PREFIX = "com.github.apple."
VERSION_KEY = "toolkit_version"


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


def test_the_app_checks_the_model_with_the_contract_code():
    """The app hands the loaded model's description to ModelContract.check, the code the
    Swift tests run on the exported fixture."""
    text = CLASSIFIER_SWIFT.read_text()
    for use in ("ModelContract.check(ModelDescription(coreMLModel.modelDescription))",
                "metadata[MLModelMetadataKey.creatorDefinedKey] as? [String: String]",
                "inputDescriptionsByName", "outputDescriptionsByName", "classLabels",
                "predictedFeatureName", "predictedProbabilitiesName", "imageConstraint"):
        assert use in text, use
    contract = CONTRACT_SWIFT.read_text()
    for use in ("name == inputName", "predictedFeatureName == predictedLabelName",
                "predictedProbabilitiesName == probabilitiesName", "ModelInfo(metadata: model.metadata)"):
        assert use in contract, use


def test_resize_modes_agree_and_map_to_vision(swift):
    assert set(swift.resize_modes.values()) == set(RESIZE_MODES), \
        "toolkit.training.spec.RESIZE_MODES and Swift's ResizeMode must list the same modes"
    kit = MODEL_INFO_SWIFT.read_text()
    crop_cases = demo.enum_cases(MODEL_INFO_SWIFT, "CropAndScale")
    assert set(crop_cases) == set(VISION_OPTION.values()), "CropAndScale names Vision's options"
    for case, mode in swift.resize_modes.items():
        assert re.search(rf"case \.{case}: return \.{VISION_OPTION[mode]}\b", kit), \
            f"resize_mode {mode} must give .{VISION_OPTION[mode]}"
    # The app maps each CropAndScale case to Vision's option of the same name.
    app = CLASSIFIER_SWIFT.read_text()
    for option in crop_cases:
        assert re.search(rf"case \.{option}: return \.{option}\b", app), f"CropAndScale.{option} -> Vision"


def test_the_exporter_uses_the_same_names(swift):
    from toolkit.export import coreml

    assert (coreml.INPUT_NAME, coreml.LABEL_OUTPUT, coreml.PROBS_OUTPUT) == \
        (swift.input_name, swift.label_output, swift.probs_output)
    card = ModelCard(spec=ModelSpec(labels=LABELS), name="hot_dog")
    assert coreml.default_model_name(card) == swift.model_name   # what `mlkit export` names it by default


# --------------------------------------------------------------------------- against an export
@pytest.fixture(scope="module")
def exported(tmp_path_factory, swift):
    """A tiny untrained model (as tests/test_predict.py builds one), exported by
    ``mlkit export --coreml`` with its defaults to ``<model class>.mlmodel``; yields
    (path of the export, its spec)."""
    import coremltools as ct
    from typer.testing import CliRunner

    from toolkit.cli import app

    folder = save_untrained_model(tmp_path_factory.mktemp("models") / "hot_dog", LABELS, image_size=IMAGE_SIZE)
    out = tmp_path_factory.mktemp("ios") / demo.APP
    # No test images here, so no validation (tests/test_export_coreml.py validates exports).
    run = CliRunner().invoke(app, ["export", str(folder), "--coreml", "--output", str(out), "--no-validate", "--json"])
    assert run.exit_code == 0, run.output
    [export] = json.loads(run.stdout)["exports"]
    path = Path(export["path"])
    return path, ct.utils.load_spec(str(path))


@pytest.mark.slow
def test_export_is_the_file_the_project_references(exported, swift):
    path, spec = exported
    # The default name, from the positive label; Xcode names the class after the file.
    assert path.name == demo.MODEL_FILE == f"{swift.model_name}.mlmodel"
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


# --------------------------------------------------------------------------- the Swift fixture
def contract_of(spec) -> dict:
    """What the app checks at launch (HotDogKit's ModelDescription, as JSON): the inputs
    and outputs with their types (and an image's size), the names of the predicted outputs,
    the class labels and the user-defined metadata, coremltools' own entries left out."""
    def feature(f) -> dict:
        kind = f.type.WhichOneof("Type")
        out = {"name": f.name, "type": FEATURE_TYPES.get(kind, "invalid")}
        if kind == "imageType":
            out["width"], out["height"] = int(f.type.imageType.width), int(f.type.imageType.height)
        return out

    model_type = spec.WhichOneof("Type")
    classifier = getattr(spec, model_type)
    labels = None
    if model_type.endswith("Classifier") and classifier.WhichOneof("ClassLabels") == "stringClassLabels":
        labels = list(classifier.stringClassLabels.vector)
    d = spec.description
    return {
        "inputs": [feature(f) for f in d.input],
        "outputs": [feature(f) for f in d.output],
        "predictedFeatureName": d.predictedFeatureName,
        "predictedProbabilitiesName": d.predictedProbabilitiesName,
        "classLabels": labels,
        "metadata": {k: v for k, v in sorted(d.metadata.userDefined.items()) if not k.startswith(VOLATILE_PREFIX)},
    }


def comparable(contract: dict) -> dict:
    out = json.loads(json.dumps(contract))
    assert VERSION_KEY in out["metadata"], f"the export has no {VERSION_KEY}"
    out["metadata"][VERSION_KEY] = "(any)"
    return out


@pytest.mark.slow
def test_the_swift_fixture_is_a_fresh_export(exported):
    """The JSON fixture the Swift tests check is what `mlkit export --coreml` writes today."""
    from toolkit.fsutil import atomic_write_text

    _, spec = exported
    fresh = contract_of(spec)
    text = json.dumps(fresh, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_FIXTURE):
        atomic_write_text(FIXTURE, text)
    assert FIXTURE.is_file(), f"{FIXTURE.relative_to(demo.ROOT)} is missing: run {UPDATE_FIXTURE}=1 pytest {__file__}"
    committed = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert comparable(committed) == comparable(fresh), (
        f"{FIXTURE.relative_to(demo.ROOT)} is not what the exporter writes now. If the change is meant, "
        f"regenerate it with `{UPDATE_FIXTURE}=1 pytest tests/test_ios_demo_contract.py`, run `swift test` in "
        f"ios_demo/HotDogKit and fix the app if its checks reject the new contract.")


def test_the_fixture_holds_the_contract_the_app_checks(swift):
    """Without an export: the committed fixture has the names ModelContract expects, so a
    rename in Swift alone fails here too (and in ModelContractTests)."""
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    inputs = {f["name"]: f for f in doc["inputs"]}
    assert inputs[swift.input_name]["type"] == "image"
    assert inputs[swift.input_name]["width"] == inputs[swift.input_name]["height"] == IMAGE_SIZE
    assert doc["predictedFeatureName"] == swift.label_output
    assert doc["predictedProbabilitiesName"] == swift.probs_output
    assert doc["classLabels"] == LABELS == json.loads(doc["metadata"]["labels"])
    assert set(swift.metadata_keys.values()) <= set(doc["metadata"])
    # Every type the fixture names is one Swift's ModelDescription.FeatureType decodes.
    swift_types = set(demo.enum_cases(KIT_SOURCES / "ModelContract.swift", "FeatureType"))
    assert {f["type"] for f in doc["inputs"] + doc["outputs"]} <= swift_types
    assert set(FEATURE_TYPES.values()) | {"invalid"} == swift_types


def test_contract_of_reads_a_spec():
    """contract_of on a hand-built spec: a wrong input name shows in the fixture."""
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = 4
    i = spec.description.input.add()
    i.name = "photo"
    i.type.imageType.width, i.type.imageType.height = 64, 32
    o = spec.description.output.add()
    o.name = "scores"
    o.type.multiArrayType.SetInParent()
    spec.description.metadata.userDefined.update({"a": "1", "com.github.apple.coremltools.version": "9"})
    spec.neuralNetwork.SetInParent()
    doc = contract_of(spec)
    assert doc["inputs"] == [{"name": "photo", "type": "image", "width": 64, "height": 32}]
    assert doc["outputs"] == [{"name": "scores", "type": "multiArray"}]
    assert doc["classLabels"] is None and doc["metadata"] == {"a": "1"}
