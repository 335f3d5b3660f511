"""toolkit.runtimes.predict: the decision rule, the runner registry (one runner per model format)
and its errors, on a tiny untrained model saved by hand (no dataset needed)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers_models import save_untrained_model
from toolkit.runtimes import predict as predict_mod
from toolkit.errors import MlkitError
from toolkit.training.spec import ModelCard, ModelSpec
from toolkit.runtimes.predict import Prediction, decide, open_runner, predict, register_runner, resolve_model_file

LABELS = ["hot_dog", "not_hot_dog"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """models/<name>/ as train writes it: model.keras, model.json, labels.txt."""
    return save_untrained_model(tmp_path_factory.mktemp("models") / "hot_dog", LABELS)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("photos")
    out = []
    for i, (size, fmt) in enumerate((((200, 120), "JPEG"), ((64, 64), "PNG"), ((90, 160), "BMP"))):
        p = root / f"p{i}.{fmt.lower()}"
        Image.new("RGB", size, (40 * i, 200, 90)).save(p, format=fmt)
        out.append(p)
    return out


def test_decide_uses_the_positive_threshold():
    spec = ModelSpec(labels=LABELS, threshold=0.8)
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.8, 0.2], [0.1, 0.9]])
    assert decide(probs, spec).tolist() == [0, 1, 0, 1]
    assert decide(probs, ModelSpec(labels=LABELS)).tolist() == [0, 0, 0, 1]  # 0.5: the argmax
    # More than two classes: the most probable, whatever the threshold (issue 13: the threshold
    # rule is the two-class rule); the first of equals in label order.
    three = ModelSpec(labels=["cat", "dog", "other"], positive_label="dog", threshold=0.6)
    p3 = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.4, 0.2, 0.4]])
    assert decide(p3, three).tolist() == [0, 1, 1, 0]
    assert decide(np.zeros((0, 2)), spec).tolist() == []


def test_predict_each_image_format(model_dir, photos):
    preds = predict(model_dir, photos)
    assert [p.path for p in preds] == photos
    for p in preds:
        assert isinstance(p, Prediction) and p.label in LABELS
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.probability == p.probabilities[p.label]
        assert set(p.to_json()) == {"path", "label", "probability", "probabilities"}


def test_model_paths_and_their_errors(model_dir, tmp_path, photos):
    assert resolve_model_file(model_dir) == model_dir / "model.keras"
    with pytest.raises(MlkitError, match="does not exist"):
        open_runner(tmp_path / "missing")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(model_dir / "model.keras", lonely / "model.keras")
    with pytest.raises(MlkitError, match="no model.json beside"):
        open_runner(lonely / "model.keras")
    shutil.copy(model_dir / "model.json", lonely / "model.json")
    (lonely / "model.onnx").write_bytes(b"x")
    with pytest.raises(MlkitError, match="unknown model format .onnx"):
        open_runner(lonely / "model.onnx")
    with pytest.raises(MlkitError, match="at least one image"):
        predict(model_dir, [])
    with pytest.raises(MlkitError, match="no such image"):
        predict(model_dir, [tmp_path / "nope.jpg"])


def test_model_json_of_another_model_is_refused(model_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(model_dir / "model.keras", other / "model.keras")
    ModelCard(spec=ModelSpec(labels=["a", "b", "c"], alpha=0.35, image_size=96), name="x").write(other)
    with pytest.raises(MlkitError, match="different models"):
        open_runner(other)


@pytest.mark.parametrize("name", ["HotDog.tflite", "HotDog.mlmodel", "HotDog.mlpackage"])
def test_a_broken_exported_file_is_a_clear_error(model_dir, tmp_path, name):
    """Each exported format has its runner now; a file it cannot read is an MlkitError
    naming the file (the runners' own tests check the wording)."""
    shutil.copy(model_dir / "model.json", tmp_path / "model.json")
    target = tmp_path / name
    if name.endswith(".mlpackage"):  # a folder, and still a model file
        (target / "Data").mkdir(parents=True)
    else:
        target.write_bytes(b"x")
    assert resolve_model_file(target) == target
    with pytest.raises(MlkitError, match=re.escape(name)):
        open_runner(target)


def test_a_runner_plugs_in_per_format(model_dir, tmp_path, photos, monkeypatch):
    """What `mlkit export` will do for .tflite: register a runner; predict then uses it."""

    class Constant:
        def __init__(self, path, card):
            self.path, self.card = path, card

        def predict(self, images):
            assert images.shape[1:] == (96, 96, 3) and images.max() <= 255
            return np.tile([0.25, 0.75], (len(images), 1)).astype(np.float32)

    monkeypatch.setattr(predict_mod, "_RUNNERS", dict(predict_mod._RUNNERS))
    register_runner(".tflite", "TFLite", Constant)
    shutil.copy(model_dir / "model.json", tmp_path / "model.json")
    (tmp_path / "HotDog.tflite").write_bytes(b"x")
    preds = predict(tmp_path / "HotDog.tflite", photos[:2])
    assert [(p.label, p.probability) for p in preds] == [("not_hot_dog", 0.75)] * 2
