"""``mlkit train`` / ``evaluate`` / ``predict`` on the embedded mirror's dataset.

A tiny configuration (MobileNetV2 alpha 0.35, 96 px, random weights, 1-3 epochs) trains in
seconds; it learns nothing useful (random features), so these tests check the machinery:
outputs and their consistency, resume, determinism, strategies, and bad input. One test
trains with the real ImageNet weights (../shared/data/keras, skipped where absent) and
checks that the model learns.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from helpers_datasets import copy_subset
from toolkit.training import model as model_mod
from toolkit.cli import app
from toolkit.errors import MlkitError
from toolkit.progress import Reporter
from toolkit.training.train import PLOT_FILES, TrainConfig, train

TINY_ARGS = ("--alpha", "0.35", "--image-size", "96", "--weights", "none", "--epochs", "2", "--batch-size", "8")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def tiny(dataset: Path, output: Path, **kw) -> TrainConfig:
    base = dict(dataset_dir=dataset, output_dir=output, alpha=0.35, image_size=96, weights="none", epochs=2,
                batch_size=8)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def dataset(mirror_dataset) -> Path:
    """The mirror's 'Hot dog' dataset (about 190 images, 128 px), shared by the session; read only."""
    return mirror_dataset


@pytest.fixture(scope="module")
def small(dataset, tmp_path_factory) -> Path:
    """A copy of ``dataset`` with 12 train, 3 val and 3 test images per class (faster)."""
    return copy_subset(dataset, tmp_path_factory.mktemp("small"), {"train": 12, "val": 3, "test": 3})


@pytest.fixture(scope="module")
def trained(small, tmp_path_factory):
    """One tiny model trained through the CLI: (what it printed, its folder)."""
    out = tmp_path_factory.mktemp("models")
    r = invoke("train", small, "--output", out, *TINY_ARGS)
    assert r.exit_code == 0, r.output
    return r.stdout, out / "hot_dog"


def _model_weights(folder: Path) -> list[np.ndarray]:
    from toolkit.training.model import load_keras_model

    return load_keras_model(folder / "model.keras").get_weights()


# ------------------------------------------------------------------------------ outputs

def test_outputs_are_complete_and_consistent(trained, small):
    printed, folder = trained
    ds = json.loads((small / "dataset.json").read_text())
    files = {"model.keras", "labels.txt", "model.json", "training.json", *PLOT_FILES.values()}
    assert {p.name for p in folder.iterdir()} == files           # nothing else: no temp files
    assert sorted(p.name for p in folder.parent.iterdir()) == ["hot_dog"]  # no checkpoint or staging left
    for name in PLOT_FILES.values():
        assert (folder / name).read_bytes().startswith(PNG_MAGIC), name

    card = json.loads((folder / "model.json").read_text())
    assert card["labels"] == ds["classes"] == ["hot_dog", "not_hot_dog"]
    assert card["positive_label"] == "hot_dog" and card["threshold"] == 0.5
    assert card["image_size"] == 96 and card["alpha"] == 0.35 and card["backbone"] == "mobilenet_v2"
    assert card["input"]["pixel_range"] == [0.0, 255.0] and card["input"]["resize_mode"] == "squash"
    assert card["normalization"]["in_model"] is True
    assert card["dataset"]["content_hash"] == ds["content_hash"]
    assert card["dataset"]["path"] == str(small.resolve())
    assert card["weights"]["kind"] == "none"
    assert {"toolkit", "tensorflow", "keras"} <= set(card["versions"])
    assert card["files"] == {"keras": "model.keras", "labels": "labels.txt"}
    assert (folder / "labels.txt").read_text().splitlines() == ds["classes"]

    training = json.loads((folder / "training.json").read_text())
    assert [(h["phase"], h["epoch"]) for h in training["history"]] == [("head", 1), ("head", 2)]
    assert training["settings"]["fast"] is True and training["settings"]["seed"] == 0
    assert training["settings"]["epochs"] == 2 and training["settings"]["l2"] == 0.1
    for key in ("features_seconds", "features_images_per_second", "head_seconds", "head_images_per_second",
                "total_seconds"):
        assert training["timings"][key] > 0, key
    ev = training["evaluation"]
    n_test = sum(c["test"] for c in ds["counts"].values())
    assert ev["split"] == "test" and ev["images"] == n_test and sum(map(sum, ev["confusion_matrix"])) == n_test
    # the printed report: precision, recall, F1 per class and accuracy
    for words in ("precision", "recall", "f1-score", "accuracy", "hot_dog", "not_hot_dog", "features", "head"):
        assert words in printed, words


def test_saved_model_takes_raw_pixels(trained):
    import keras

    _, folder = trained
    model = keras.saving.load_model(folder / "model.keras")
    assert "augmentation" not in [layer.name for layer in model.layers]  # training-only, never saved
    assert model.get_layer("classifier").get_config()["kernel_regularizer"] is None and not model.losses
    x = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3)).astype("float32")
    p = np.asarray(model(x, training=False))
    assert p.shape == (5, 2) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and (p >= 0).all()


def test_head_epochs_default_to_the_path_taken(tmp_path):
    from toolkit.training.train import FAST_HEAD_EPOCHS, HEAD_EPOCHS

    assert TrainConfig(tmp_path).head_epochs == FAST_HEAD_EPOCHS == 30      # features computed once: cheap
    assert TrainConfig(tmp_path, augment=True).head_epochs == HEAD_EPOCHS == 10
    assert TrainConfig(tmp_path, fast=False).head_epochs == HEAD_EPOCHS
    assert TrainConfig(tmp_path, epochs=4).head_epochs == 4
    assert TrainConfig(tmp_path).settings()["epochs"] == 30
    for bad in (-0.1, float("nan"), 1e3):
        with pytest.raises(MlkitError, match="--l2"):
            TrainConfig(tmp_path, l2=bad).validate()
    TrainConfig(tmp_path, l2=0.0).validate()


# ------------------------------------------------------------------------------ determinism, resume

def test_same_seed_gives_the_same_model(trained, small, tmp_path):
    _, folder = trained
    again = train(tiny(small, tmp_path))
    for a, b in zip(_model_weights(folder), _model_weights(again.path)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    first = json.loads((folder / "training.json").read_text())
    assert [h["loss"] for h in again.history] == pytest.approx([h["loss"] for h in first["history"]], abs=1e-6)
    assert again.evaluation.to_json() == first["evaluation"] | {"model": str(again.path / "model.keras")}


def test_an_interrupted_run_resumes_where_it_stopped(small, tmp_path):
    seen = []

    def stop_after_first_epoch(phase, epoch, row):
        seen.append((phase, epoch, row))
        if epoch == 1:
            raise KeyboardInterrupt

    config = tiny(small, tmp_path, epochs=3, patience=5)
    with pytest.raises(KeyboardInterrupt):
        train(config, on_epoch_end=stop_after_first_epoch)
    checkpoint = tmp_path / ".hot_dog.checkpoint"
    assert (checkpoint / "state.json").is_file()
    assert not (tmp_path / "hot_dog").exists()  # no half-written model

    # other settings: --resume insists and refuses; nothing is touched
    with pytest.raises(MlkitError, match="learning_rate"):
        train(tiny(small, tmp_path, epochs=3, learning_rate=0.01, resume=True))
    assert (checkpoint / "state.json").is_file()

    logs: list[str] = []
    result = train(config, reporter=Reporter(logs.append), on_epoch_end=lambda *a: seen.append(a))
    assert result.resumed_from == "head epoch 1"
    assert not any("Computing backbone features" in m for m in logs)  # features came from the checkpoint
    assert [(h["phase"], h["epoch"]) for h in result.history] == [("head", 1), ("head", 2), ("head", 3)]
    assert result.history[0] == seen[0][2]                             # epoch 1 kept, not redone
    assert [(p, e) for p, e, _ in seen] == [("head", 1), ("head", 2), ("head", 3)]
    assert not checkpoint.exists() and (tmp_path / "hot_dog" / "model.keras").is_file()
    with pytest.raises(MlkitError, match="no interrupted run"):
        train(tiny(small, tmp_path, resume=True, overwrite=True))   # (without --overwrite: the model is refused)


def test_fine_tuning_resumes_under_a_mirrored_strategy(small, tmp_path):
    """The tutorial's path (augmented images through the frozen backbone every epoch), then
    fine-tuning, under tf.distribute's MirroredStrategy (here over the one CPU), interrupted
    during fine-tuning and resumed from its checkpoint (model and optimizer state)."""
    import keras

    def stop(phase, epoch, row):
        if phase == "fine_tune" and epoch == 1:
            raise KeyboardInterrupt

    config = tiny(small, tmp_path, augment=True, epochs=1, fine_tune_layers=6, fine_tune_epochs=2, patience=5,
                  strategy="mirrored")
    assert not config.use_fast_path
    with pytest.raises(KeyboardInterrupt):
        train(config, on_epoch_end=stop)
    assert not (tmp_path / "hot_dog").exists()
    result = train(config)
    assert result.resumed_from == "fine_tune epoch 1"
    assert [(h["phase"], h["epoch"]) for h in result.history] == [("head", 1), ("fine_tune", 1), ("fine_tune", 2)]
    assert any("mirroring over the CPU" in n for n in result.notes)
    t = result.timings
    assert "features_seconds" not in t and t["head_epochs"] == 1 and t["fine_tune_epochs"] == 2
    settings = json.loads((result.path / "training.json").read_text())["settings"]
    assert (settings["strategy"], settings["fast"], settings["augment"]) == ("mirrored", False, True)
    model = keras.saving.load_model(result.path / "model.keras")
    assert "augmentation" not in [layer.name for layer in model.layers]  # training only
    backbone = model.get_layer("mobilenet_v2")
    assert not any(layer.trainable for layer in backbone.layers
                   if isinstance(layer, keras.layers.BatchNormalization))
    trainable = [layer.name for layer in backbone.layers if layer.trainable and layer.weights]
    assert trainable == ["block_16_project", "Conv_1"]  # the top 6 layers, less BatchNorm and weightless ones


def test_imagenet_weights_learn_the_mirror_dataset(dataset, tmp_path, monkeypatch):
    """With the real ImageNet weights the same small dataset is learned well."""
    monkeypatch.setenv("KERAS_HOME", str(shared_path("keras")))
    result = train(TrainConfig(dataset_dir=dataset, output_dir=tmp_path, alpha=1.0, image_size=128,
                               weights="imagenet", epochs=10))
    assert result.evaluation.accuracy >= 0.85, result.report
    assert result.evaluation.roc_auc >= 0.95
    assert result.card.weights["kind"] == "imagenet"


# ------------------------------------------------------------------------------ evaluate, predict

def test_evaluate_reproduces_the_training_report(trained):
    _, folder = trained
    result = json.loads((folder / "training.json").read_text())
    r = invoke("evaluate", folder, "--json", "--target-precision", "0.5")
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    assert ev["confusion_matrix"] == result["evaluation"]["confusion_matrix"]
    assert ev["accuracy"] == pytest.approx(result["evaluation"]["accuracy"])
    assert ev["roc_auc"] == pytest.approx(result["evaluation"]["roc_auc"], abs=1e-6)
    assert ev["labels"] == ["hot_dog", "not_hot_dog"] and ev["target_precision"] == 0.5
    assert ev["threshold"] is None or ev["threshold"]["precision"] >= 0.5
    assert set(ev["classes"][0]) == {"label", "precision", "recall", "f1", "support"}


def test_evaluate_prints_a_report(monkeypatch):
    import toolkit.training.evaluate as evaluate_mod
    from toolkit.training.spec import ModelSpec

    spec = ModelSpec(labels=["hot_dog", "not_hot_dog"])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    canned = evaluate_mod.score(spec, np.array([0, 0, 1, 1]), probs, target_precision=0.9, model="m/model.keras",
                                data="d", split="test")
    monkeypatch.setattr(evaluate_mod, "evaluate", lambda *a, **k: canned)
    r = invoke("evaluate", "m", "--target-precision", "0.9")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    for words in ("precision recall f1-score support", "accuracy 0.750", "ROC AUC (hot_dog): 1.0000",
                  "Confusion matrix", "probability >= 0.4000 (precision 1.000, recall 1.000)"):
        assert words in text, words


def test_predict_gives_label_and_probability(trained, small):
    _, folder = trained
    images = sorted((small / "test" / "hot_dog").glob("*.jpg"))[:2]
    r = invoke("predict", folder, *images, "--json")
    assert r.exit_code == 0, r.output
    preds = json.loads(r.stdout)
    assert [p["path"] for p in preds] == [str(p) for p in images]
    for p in preds:
        assert p["label"] in ("hot_dog", "not_hot_dog")
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert p["probability"] == p["probabilities"][p["label"]]
    r = invoke("predict", folder, images[0])
    assert r.exit_code == 0 and f"{preds[0]['probability']:.4f}" in r.stdout and preds[0]["label"] in r.stdout


def test_a_broken_exported_file_is_a_clear_error(trained, tmp_path):
    _, folder = trained
    shutil.copy(folder / "model.json", tmp_path / "model.json")
    (tmp_path / "HotDog.tflite").write_bytes(b"TFL3")
    image = next((folder.parent.parent).rglob("*.jpg"), None) or tmp_path / "x.jpg"
    r = invoke("predict", tmp_path / "HotDog.tflite", image)
    message = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "HotDog.tflite" in message and "export it again" in message


# ------------------------------------------------------------------------------ bad input

def _copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "data" / dataset.name))


def _no_dataset_json(ds: Path) -> None:
    """An unfinished build: its manifest is there, dataset.json not yet. (Without any mlkit
    file, train/val/test of class folders is a plain folder that trains: test_multiclass_model.)"""
    (ds / "dataset.json").unlink()
    (ds / "manifest.csv").write_text("path,class,split,status\n")


def _one_class(ds: Path) -> None:
    doc = json.loads((ds / "dataset.json").read_text())
    doc["classes"] = doc["classes"][:1]
    (ds / "dataset.json").write_text(json.dumps(doc))


def _empty_val(ds: Path) -> None:
    for p in (ds / "val").rglob("*.jpg"):
        p.unlink()


def _garbage_image(ds: Path) -> str:
    victim = sorted((ds / "train" / "not_hot_dog").glob("*.jpg"))[3]
    victim.write_text("<html>404</html>")
    return f"{victim.name} (not a JPEG"


def _truncated_image(ds: Path) -> str:
    """A JPEG header, then nothing: passes the quick check, fails in the decoder."""
    victim = sorted((ds / "test" / "hot_dog").glob("*.jpg"))[1]
    victim.write_bytes(victim.read_bytes()[:200])
    return victim.name


@pytest.mark.parametrize("damage, extra, words", [
    (_no_dataset_json, (), "dataset.json"),
    (_one_class, (), "class"),
    (_empty_val, (), "val split"),
    (_garbage_image, (), None),
    (_truncated_image, (), None),
    (None, ("--batch-size", "1000"), "--batch-size"),
    (None, ("--strategy", "cluster"), "--strategy"),
    (None, ("--epochs", "0"), "--epochs"),
    (None, ("--l2", "-1"), "--l2"),
    (None, ("--resize", "stretch"), "--resize"),
    (None, ("--alpha", "0.6", "--weights", "imagenet"), "--alpha"),
], ids=["no-dataset-json", "one-class", "empty-split", "garbage-image", "truncated-image", "batch-too-big",
        "bad-strategy", "zero-epochs", "negative-l2", "bad-resize", "alpha-without-imagenet"])
def test_bad_input_exits_2_and_writes_nothing(small, tmp_path, damage, extra, words):
    ds = _copy(small, tmp_path)
    if damage:
        words = damage(ds) or words
    out = tmp_path / "models"
    r = invoke("train", ds, "--output", out, *TINY_ARGS, *extra)
    assert r.exit_code == 2, r.output
    assert "error:" in r.stderr and words in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.output
    assert not out.exists()


def test_missing_things_are_clear_errors(small, tmp_path, monkeypatch):
    r = invoke("train", tmp_path / "nowhere", "--output", tmp_path / "m")
    assert r.exit_code == 2 and "no dataset folder" in r.stderr
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(model_mod, "IMAGENET_BASE_URL", "http://127.0.0.1:9/")
    r = invoke("train", small, "--output", tmp_path / "m", "--alpha", "0.35", "--image-size", "96", "--batch-size", "8")
    assert r.exit_code == 2 and "KERAS_HOME" in r.stderr and "--weights none" in " ".join(r.stderr.split())
    assert not (tmp_path / "m").exists()
    for command in (("evaluate", tmp_path / "no-model"), ("predict", tmp_path / "no-model", tmp_path / "x.jpg")):
        r = invoke(*command)
        assert r.exit_code == 2 and "does not exist" in r.stderr, r.output


def test_multi_worker_clusters_are_refused_clearly(small, tmp_path, monkeypatch):
    cluster = {"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    r = invoke("train", small, "--output", tmp_path / "m", *TINY_ARGS, "--strategy", "multi-worker")
    assert r.exit_code == 2 and "keras-team/keras#20585" in " ".join(r.stderr.split()), r.output
    assert not (tmp_path / "m").exists()


def test_train_finds_the_only_dataset_under_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("train", "--epochs", "1")
    assert r.exit_code == 2 and "no dataset under data/" in " ".join(r.stderr.split())
