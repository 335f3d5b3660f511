"""Issue 13's whole path on the embedded mirror, through the CLI as a user runs it:
`build-dataset --classes "Hamburger, Sandwich, Pizza" --no-descendants --other 40` ->
`train` (MobileNetV2 0.35 / 96 px, a conditioned random backbone, see test_export_coreml)
-> `evaluate` (4 x 4) -> `export` (Core ML and TFLite) -> `validate`, with the labels in
every file equal to the dataset's classes in its order.

(In Open Images' hierarchy Hamburger is a Sandwich, so without --no-descendants the two
cannot be told apart and the build is refused; test_multiclass_dataset.py covers that.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_models import save_conditioned_backbone
from toolkit.cli import app

CLASSES = ["hamburger", "sandwich", "pizza", "other"]


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def dataset(mirror, tmp_path_factory) -> Path:
    server, info = mirror
    server.set_faults(None)
    root = tmp_path_factory.mktemp("e2e")
    r = invoke("build-dataset", "--classes", "Hamburger, Sandwich, Pizza", "--no-descendants", "--other", "40",
               "--max-size", "96", "--source", info.metadata_base, "--image-source", info.images_base,
               "--cache-dir", root / "cache", "--data-dir", root / "data", "--json")
    assert r.exit_code == 0, r.output
    return Path(json.loads(r.stdout)["path"])


@pytest.fixture(scope="module")
def model(dataset, tmp_path_factory) -> Path:
    pytest.importorskip("keras")
    weights = save_conditioned_backbone(sorted((dataset / "train").rglob("*.jpg"))[::3],
                                        tmp_path_factory.mktemp("backbone") / "conditioned.keras")
    out = tmp_path_factory.mktemp("models")
    r = invoke("train", dataset, "--output", out, "--weights", weights, "--alpha", "0.35", "--image-size", "96",
               "--epochs", "5", "--batch-size", "16")
    assert r.exit_code == 0, r.output
    return out / dataset.name


def test_the_dataset_lists_the_classes_in_the_order_given(dataset):
    doc = json.loads((dataset / "dataset.json").read_text())
    assert doc["classes"] == CLASSES and doc["task"] == "multiclass"


def test_train_and_evaluate_over_four_classes(model, dataset):
    card = json.loads((model / "model.json").read_text())
    assert card["labels"] == CLASSES and (model / "labels.txt").read_text().split() == CLASSES
    r = invoke("evaluate", model, "--json")
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    cm = np.array(ev["confusion_matrix"])
    test_counts = json.loads((dataset / "dataset.json").read_text())["counts"]
    assert cm.shape == (4, 4) and cm.sum(axis=1).tolist() == [test_counts[c]["test"] for c in CLASSES]
    assert [c["label"] for c in ev["classes"]] == CLASSES and set(ev["roc_auc_per_class"]) == set(CLASSES)


def test_both_exports_carry_the_dataset_labels_and_validate(model):
    import coremltools as ct

    from toolkit.export import tflite_metadata as md

    r = invoke("export", model, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["valid"] and {f["status"] for f in report["validation"]["files"]} == {"VALID"}
    paths = {Path(e["path"]).suffix: Path(e["path"]) for e in report["exports"]}
    assert paths[".mlmodel"].name == "HamburgerSandwichPizzaClassifier.mlmodel"   # the classes, "other" left out
    spec = ct.utils.load_spec(str(paths[".mlmodel"]))
    assert list(spec.neuralNetworkClassifier.stringClassLabels.vector) == CLASSES
    assert json.loads(dict(spec.description.metadata.userDefined)["labels"]) == CLASSES
    meta = md.read_metadata(paths[".tflite"])
    assert meta is not None and meta["labels"] == CLASSES
    assert (paths[".tflite"].parent / "labels.txt").read_text().split() == CLASSES
    for path in paths.values():
        r = invoke("validate", path, "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)["files"][0]["status"] == "VALID", r.output
