"""``mlkit export --coreml`` and ``mlkit validate`` on a tiny model and the mirror's dataset.

The model is MobileNetV2 alpha 0.35 at 96 px with random but well-conditioned weights
(``condition``: fresh Keras weights give the same answer for every image).
Every Core ML file is run by the reference evaluator (no Core ML runtime on Linux): it
executes the file's own layers, so these tests check the conversion, the names and
metadata the iOS app relies on, validation (including that it can fail), and bad input.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

ct = pytest.importorskip("coremltools")
keras = pytest.importorskip("keras")

from toolkit.cli import app  # noqa: E402
from toolkit.errors import MlkitError  # noqa: E402
from toolkit.export import ExportOptions, export_model  # noqa: E402
from toolkit.export.coreml import (  # noqa: E402
    INPUT_NAME, LABEL_OUTPUT, PROBS_OUTPUT, SPEC_VERSION, check_model_name, default_model_name, export_coreml,
    minimum_os,
)
from toolkit.training.spec import ModelCard, ModelSpec, labels_text  # noqa: E402
from toolkit.export.validate import TOLERANCES, Reference, ValidationImages, compare, tolerance_for  # noqa: E402

logging.getLogger("coremltools").setLevel(logging.ERROR)
LABELS = ["hot_dog", "not_hot_dog"]


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def condition(model, x: np.ndarray, seed: int = 0) -> None:
    """Random but well-conditioned weights (fresh Keras weights make the output independent
    of the image): each BatchNorm gets a random scale, a positive offset and moving
    statistics measured on ``x``; then the head is spread over ``x``. The backbone is called
    directly in training mode (and unfrozen meanwhile), because the classifier always runs it
    in inference mode."""
    from toolkit.training.model import BACKBONE_LAYER
    from toolkit.training.spec import NORM_OFFSET, NORM_SCALE

    rng = np.random.default_rng(seed)
    backbone = model.get_layer(BACKBONE_LAYER)
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            offset = np.zeros(b.shape) if "project" in layer.name else rng.uniform(0.5, 1.5, b.shape)
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), offset, mean, var])
            layer.momentum = 0.0          # the training-mode call below sets the statistics
    backbone.trainable = True             # a frozen BatchNorm ignores training=True
    backbone(x * NORM_SCALE + NORM_OFFSET, training=True)
    backbone.trainable = False
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.99
    spread_head(model, x, rng)


def spread_head(model, x: np.ndarray, rng) -> None:
    """Classifier weights under which the logits vary by about one unit across ``x``, each
    feature weighted by how much it varies (w_j ~ std_j): weights of 1/std_j would make the
    logits a float32 cancellation of huge terms, and every runtime would round differently."""
    head = model.get_layer("classifier")
    features = keras.Model(model.inputs, head.input).predict(x, verbose=0).astype(np.float64)
    std = features.std(axis=0)
    w = rng.normal(0, 1, (features.shape[1], 2)) * std[:, None] / np.sqrt((std ** 4).sum() + 1e-12)
    head.set_weights([w.astype(np.float32), (-features.mean(axis=0) @ w).astype(np.float32)])


def make_model_dir(folder: Path, dataset: Path, model=None, spec: ModelSpec | None = None) -> Path:
    from toolkit.training.data import load_images, read_dataset, split_files
    from toolkit.training.model import build_classifier, save_keras

    spec = spec or ModelSpec(labels=LABELS, alpha=0.35, image_size=96)
    if model is None:
        keras.utils.set_random_seed(0)
        model = build_classifier(spec, "none")
        train = split_files(read_dataset(dataset), "train")
        condition(model, load_images(train.paths[::4], spec))
    save_keras(model, folder / "model.keras")
    ModelCard(spec=spec, name="hot_dog", dataset={"path": str(dataset), "content_hash": "abc123"}).write(folder)
    (folder / "labels.txt").write_text(labels_text(spec.labels))
    return folder


@pytest.fixture(scope="module")
def model_dir(mirror_dataset, tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("models") / "hot_dog", mirror_dataset)


@pytest.fixture(scope="module")
def exported(model_dir) -> Path:
    """The default export: HotDogClassifier.mlmodel (NeuralNetwork, fp32), validated."""
    report = export_model(model_dir, ExportOptions(coreml=True))
    assert report.valid, report.to_json()
    return model_dir / "HotDogClassifier.mlmodel"


# --- names ------------------------------------------------------------------------------------

def test_default_name_is_a_swift_class_from_the_positive_label():
    card = ModelCard(spec=ModelSpec(labels=LABELS), name="x")
    assert default_model_name(card) == "HotDogClassifier"
    card = ModelCard(spec=ModelSpec(labels=["7up can", "other"]), name="x")
    assert default_model_name(card) == "Model7upCanClassifier"
    assert check_model_name("My_Model2") == "My_Model2"
    for bad in ("2Fast", "hot-dog", "class", "", "Hot Dog"):
        with pytest.raises(MlkitError, match="Swift class name"):
            check_model_name(bad)


# --- the file ---------------------------------------------------------------------------------

def test_mlmodel_carries_the_contract(exported):
    spec = ct.utils.load_spec(str(exported))
    assert spec.WhichOneof("Type") == "neuralNetworkClassifier"
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == LABELS
    (inp,) = spec.description.input
    assert inp.name == INPUT_NAME and inp.type.WhichOneof("Type") == "imageType"
    assert (inp.type.imageType.width, inp.type.imageType.height) == (96, 96)
    assert inp.type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    outs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert outs == {LABEL_OUTPUT: "stringType", PROBS_OUTPUT: "dictionaryType"}
    assert spec.description.predictedFeatureName == LABEL_OUTPUT
    assert spec.description.predictedProbabilitiesName == PROBS_OUTPUT
    # the image goes in as 0..255: the model normalises itself (scale 1, no bias)
    (pre,) = spec.neuralNetworkClassifier.preprocessing
    assert pre.scaler.channelScale == pytest.approx(1.0) and pre.scaler.redBias == 0
    meta = spec.description.metadata
    assert "hot_dog" in meta.shortDescription and meta.author and meta.license and meta.versionString
    user = dict(meta.userDefined)
    assert json.loads(user["labels"]) == LABELS
    assert user["positive_label"] == "hot_dog" and float(user["threshold"]) == 0.5
    assert user["image_size"] == "96" and user["resize_mode"] == "squash"
    assert user["dataset_hash"] == "abc123" and user["precision"] == "fp32" and user["toolkit_version"]
    described = {f.name: f.shortDescription for f in [*spec.description.input, *spec.description.output]}
    assert all(described.values()) and "scaleFill" in described[INPUT_NAME]
    check_os_and_preview(spec, "neuralnetwork")


def check_os_and_preview(spec, fmt: str) -> None:
    """Xcode's Preview tab, and the minimum OS as the written specification version says."""
    user = dict(spec.description.metadata.userDefined)
    assert user["com.apple.coreml.model.preview.type"] == "imageClassifier"
    assert spec.specificationVersion == SPEC_VERSION[fmt]
    ios, macos = minimum_os(spec.specificationVersion)
    assert (user["minimum_ios"], user["minimum_macos"]) == (ios, macos)
    assert f"iOS {ios} / macOS {macos}" in spec.description.metadata.shortDescription


def test_minimum_os_follows_coremltools_table():
    # coremltools: _SPECIFICATION_VERSION_IOS_13 = 4 (= AvailableTarget.macOS10_15), iOS16 = 7 (= macOS13)
    assert minimum_os(4) == ("13", "10.15") and minimum_os(7) == ("16", "13")
    assert minimum_os(ct.target.iOS15.value) == ("15", "12") and minimum_os(ct.target.macOS14.value)[1] == "14"
    assert SPEC_VERSION == {"neuralnetwork": 4, "mlprogram": 7}


def test_export_help_states_the_real_minimum():
    r = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "400"})
    text = " ".join(r.stdout.split())
    assert "iOS 13 / macOS 10.15" in text and "iOS 16 / macOS 13" in text
    assert "iOS 11" not in text


def test_export_matches_keras_and_writes_validation_json(exported, model_dir, mirror_dataset):
    doc = json.loads((model_dir / "validation.json").read_text())
    (row,) = [r for r in doc["files"] if r["file"] == exported.name]   # stored relative to the model folder
    assert row["status"] == "VALID" and row["runtime"].startswith("reference")
    assert row["max_abs_diff"] <= TOLERANCES["fp32"].max_abs and row["agreement"] == 1.0
    assert row["samples"] == doc["samples"] > 0 and row["size_bytes"] == exported.stat().st_size
    assert row["latency_ms"] > 0 and doc["keras"]["accuracy"] is not None
    # the spread head makes the comparison meaningful: probabilities differ between images
    from toolkit.training.data import load_images
    from toolkit.runtimes.predict import open_runner

    pixels = load_images(sorted((mirror_dataset / "test").rglob("*.jpg"))[:8], ModelSpec(labels=LABELS, image_size=96))
    probs = open_runner(exported).predict(pixels)
    assert probs[:, 0].max() - probs[:, 0].min() > 0.05


def test_predict_runs_the_exported_file(exported, model_dir, mirror_dataset):
    from toolkit.runtimes.predict import predict

    images = sorted((mirror_dataset / "test").rglob("*.jpg"))[:4]
    by_keras = predict(model_dir, images)
    by_coreml = predict(exported, images)
    for a, b in zip(by_keras, by_coreml):
        assert a.label == b.label
        assert abs(a.probabilities["hot_dog"] - b.probabilities["hot_dog"]) < 1e-4


@pytest.mark.parametrize("fmt,precision", [("neuralnetwork", "fp16"), ("neuralnetwork", "int8"),
                                           ("mlprogram", "fp32"), ("mlprogram", "fp16"), ("mlprogram", "int8")])
def test_formats_and_precisions_validate(model_dir, exported, tmp_path, fmt, precision):
    suffix = ".mlmodel" if fmt == "neuralnetwork" else ".mlpackage"
    out = tmp_path / f"HotDogClassifier{suffix}"
    report = export_model(model_dir, ExportOptions(coreml=True, coreml_format=fmt, precision=precision,
                                                   output=out, samples=8))
    (row,) = report.validation.rows
    assert row.precision == precision and row.samples == 8
    assert row.valid, row.problems
    fp32_size = exported.stat().st_size
    if precision == "fp16":   # depthwise kernels and biases stay fp32: a larger share in this tiny model
        assert row.size_bytes < 0.7 * fp32_size
    if precision == "int8":
        assert row.size_bytes < 0.45 * fp32_size   # a quarter, plus per-channel scales of a tiny model
    spec = ct.utils.load_spec(str(out))
    assert dict(spec.description.metadata.userDefined)["precision"] == precision
    check_os_and_preview(spec, fmt)
    if fmt == "neuralnetwork":
        check_weight_storage(spec, precision)


def check_weight_storage(spec, precision: str) -> None:
    """Quantized NeuralNetworks keep depthwise kernels and biases in fp32 (folded BatchNorm
    makes them too large for fp16's step); pointwise kernels and the classifier are quantized."""
    quantized = {"fp16": "float16Value", "int8": "rawValue"}[precision]
    seen = {"depthwise": 0, "pointwise": 0}
    for layer in spec.neuralNetworkClassifier.layers:
        if layer.WhichOneof("layer") != "convolution":
            continue
        conv = layer.convolution
        kind = "depthwise" if conv.nGroups > 1 else "pointwise"
        seen[kind] += 1
        if kind == "depthwise":
            assert len(conv.weights.floatValue) > 0, layer.name
        else:
            assert len(getattr(conv.weights, quantized)) > 0 and not conv.weights.floatValue, layer.name
        if conv.hasBias:
            assert len(conv.bias.floatValue) > 0, layer.name
    assert seen["depthwise"] >= 10 and seen["pointwise"] >= 10


# --- validation can fail ------------------------------------------------------------------------

def test_validate_reports_a_tampered_file_invalid(exported, model_dir, tmp_path):
    """A file whose classifier bias was changed after export is caught: exit code 3."""
    spec = ct.utils.load_spec(str(exported))
    layers = spec.neuralNetworkClassifier.layers
    dense = [layer for layer in layers if layer.WhichOneof("layer") in ("innerProduct", "batchedMatmul")][-1]
    params = getattr(dense, dense.WhichOneof("layer"))
    params.bias.floatValue[0] += 0.05
    bad = tmp_path / "HotDogClassifier.mlmodel"
    bad.write_bytes(spec.SerializeToString())
    result = invoke("validate", bad, "--against", model_dir / "model.keras", "--samples", "6")
    assert result.exit_code == 3, result.output
    assert "INVALID" in result.output and "max|Δp|" in result.output
    doc = json.loads((model_dir / "validation.json").read_text())
    row = [r for r in doc["files"] if r["file"] == str(bad)][0]
    assert row["status"] == "INVALID" and doc["valid"] is False


def test_tolerances_and_accuracy_drop():
    assert tolerance_for("none") == TOLERANCES["fp32"] and tolerance_for("dynamic") == TOLERANCES["int8"]
    with pytest.raises(MlkitError, match="unknown precision"):
        tolerance_for("int4")


def test_compare_flags_an_accuracy_drop(exported, model_dir, mirror_dataset):
    """int8: agreement can be high while accuracy drops; a Keras reference that is right more
    often than the file by over one point makes the row INVALID."""
    from toolkit.training.data import load_images, read_dataset, split_files
    from toolkit.training.spec import read_model_card

    card = read_model_card(model_dir)
    files = split_files(read_dataset(mirror_dataset), "test")
    pixels = load_images(files.paths, card.spec)
    from toolkit.runtimes.predict import open_runner

    probs = open_runner(exported).predict(pixels)
    predicted = probs.argmax(1)
    # true labels chosen so the export is right on exactly half the images
    labels = np.where(np.arange(len(predicted)) % 2 == 0, predicted, 1 - predicted)
    images = ValidationImages(pixels, labels, files.paths, "test")
    keras_right = np.eye(2)[labels].astype(np.float32) * 0.98 + 0.01  # a reference right on every image
    ref = Reference(model_dir / "model.keras", keras_right, 1.0, 1.0, 1)
    row = compare(exported, card, images, ref, precision="int8")
    assert not row.valid and any("accuracy drop" in p for p in row.problems)


# --- CLI and bad input --------------------------------------------------------------------------

def test_cli_export_json_and_table(model_dir, tmp_path):
    out = tmp_path / "ios"
    result = invoke("export", model_dir, "--coreml", "--output", out, "--samples", "4", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["valid"] and doc["exports"][0]["path"] == str(out / "HotDogClassifier.mlmodel")
    assert doc["validation"]["files"][0]["status"] == "VALID"
    table = invoke("export", model_dir, "--coreml", "--output", out / "Custom.mlmodel", "--name", "Custom",
                   "--samples", "4")
    assert table.exit_code == 0, table.output
    assert "VALID" in table.output and "Custom.mlmodel" in table.output


@pytest.mark.parametrize("args,message", [
    (("--precision", "fp8"), "unknown --precision"),
    (("--coreml-format", "onnx"), "unknown Core ML format"),
    (("--name", "hot-dog"), "Swift class name"),
    (("--output", "x/Model.tflite"), "does not match"),
])
def test_bad_options_exit_2_and_write_nothing(model_dir, tmp_path, args, message):
    before = set(model_dir.iterdir())
    result = invoke("export", model_dir, "--coreml", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert set(model_dir.iterdir()) == before


def test_missing_and_non_keras_inputs(tmp_path, model_dir):
    result = invoke("export", tmp_path / "nope", "--coreml")
    assert result.exit_code == 2 and "does not exist" in result.output
    fake = tmp_path / "fake"
    fake.mkdir()
    shutil.copy(model_dir / "model.json", fake / "model.json")
    (fake / "model.keras").write_text("not a zip")
    result = invoke("export", fake, "--coreml", "--no-validate")
    assert result.exit_code == 2, result.output
    assert not list(fake.glob("*.mlmodel")) and not list(fake.glob(".*part*"))
    result = invoke("validate", model_dir / "model.keras")
    assert result.exit_code == 2 and "Keras model itself" in result.output
    result = invoke("validate", tmp_path / "Missing.mlmodel")
    assert result.exit_code == 2 and "does not exist" in result.output


@keras.saving.register_keras_serializable(package="mlkit_tests")
class Erfinv(keras.layers.Layer):
    """A layer Core ML has no conversion for (TF op Erfinv)."""

    def call(self, x):
        return keras.ops.erfinv(keras.ops.tanh(x) * 0.5)


def test_unconvertible_layer_is_a_clear_error_and_leaves_no_file(mirror_dataset, tmp_path):
    spec = ModelSpec(labels=LABELS, alpha=0.35, image_size=32)
    inp = keras.Input((32, 32, 3), name="pixels")
    x = Erfinv()(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="classifier")(x))
    folder = make_model_dir(tmp_path / "odd", mirror_dataset, model=model, spec=spec)
    with pytest.raises(MlkitError, match="Core ML cannot convert.*Erfinv"):
        export_coreml(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["labels.txt", "model.json", "model.keras"]


def test_a_failed_save_keeps_the_previous_file(exported, model_dir, tmp_path, monkeypatch):
    target = tmp_path / "HotDogClassifier.mlmodel"
    shutil.copy(exported, target)
    before = target.read_bytes()

    def broken_save(self, path):
        Path(path).write_bytes(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(ct.models.MLModel, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_coreml(model_dir, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["HotDogClassifier.mlmodel"]


def test_exported_files_are_readable_by_others(exported, model_dir, tmp_path):
    """Temporary files are private (0600); a finished export gets the usual permissions, so
    Xcode, Android Studio or a teammate can read it."""
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    for p in (exported, model_dir / "model.keras", model_dir / "validation.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
