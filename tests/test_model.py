"""The model (toolkit.training.model), its spec (toolkit.training.spec) and how images become its input
(toolkit.training.data): layer names, preprocessing inside the model, BatchNorm in inference mode,
weights (including the real ImageNet weights from ../shared/data/keras, offline)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from toolkit.training import model as model_mod
from toolkit.training.data import check_image_files, load_images
from toolkit.errors import MlkitError
from toolkit.training.model import (BACKBONE_LAYER, build_classifier, build_head, copy_head, drop_weight_penalties,
                           feature_extractor, load_keras_model, resolve_weights, save_keras, unfreeze_top)
from toolkit.training.spec import NORM_OFFSET, NORM_SCALE, ModelCard, ModelSpec

TINY = dict(alpha=0.35, image_size=96)
HOTDOG_IMAGENET_CLASS = 934


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    keras.utils.set_random_seed(0)
    return build_classifier(ModelSpec(labels=["hot_dog", "not_hot_dog"], **TINY), "none")


def _perturb_batchnorm(model) -> None:
    """Moving statistics unlike any batch's, so batch statistics would show."""
    import keras

    rng = np.random.default_rng(0)
    for layer in model.get_layer(BACKBONE_LAYER).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype("float32"))


# ------------------------------------------------------------------------------ spec

def test_spec_defaults_and_json_round_trip():
    spec = ModelSpec(labels=["hot_dog", "not_hot_dog"], alpha=0.5, image_size=128, resize_mode="squash")
    assert spec.positive_label == "hot_dog" and spec.positive_index == 0 and spec.threshold == 0.5
    card = ModelCard(spec=spec, name="hot_dog", dataset={"content_hash": "abc"})
    doc = json.loads(json.dumps(card.to_json()))
    assert doc["input"]["pixel_range"] == [0.0, 255.0] and doc["input"]["color"] == "RGB"
    assert doc["input"]["resize_mode"] == "squash" and doc["input"]["shape"] == [1, 128, 128, 3]
    assert doc["normalization"]["scale"] == pytest.approx(1 / 127.5) and doc["normalization"]["offset"] == -1.0
    assert {"toolkit", "tensorflow", "keras"} <= set(doc["versions"])
    back = ModelCard.from_json(doc)
    assert back.spec == spec and back.dataset == {"content_hash": "abc"}


@pytest.mark.parametrize("kw, words", [
    (dict(labels=["only"]), "two classes"),
    (dict(labels=["a", "a"]), "distinct"),
    (dict(labels=["a", "b"], resize_mode="stretch"), "--resize"),
    (dict(labels=["a", "b"], image_size=16), "--image-size"),
    (dict(labels=["a", "b"], alpha=0), "--alpha"),
    (dict(labels=["a", "b"], positive_label="c"), "positive label"),
])
def test_spec_rejects_nonsense(kw, words):
    with pytest.raises(MlkitError, match=words):
        ModelSpec(**kw)


def test_model_card_from_another_format_is_refused():
    with pytest.raises(MlkitError, match="format"):
        ModelCard.from_json({"format": 99, "labels": ["a", "b"]})


# ------------------------------------------------------------------------------ model

def test_layers_are_named_and_preprocessing_is_inside(tiny_model):
    m = tiny_model
    names = [layer.name for layer in m.layers]
    assert names == ["pixels", "normalize", BACKBONE_LAYER, "pool", "dropout", "classifier"]
    assert tuple(m.input_shape) == (None, 96, 96, 3) and tuple(m.output_shape) == (None, 2)
    norm = m.get_layer("normalize")
    assert norm.scale == pytest.approx(NORM_SCALE) and norm.offset == pytest.approx(NORM_OFFSET)
    x = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3)).astype("float32")  # raw pixels
    p = np.asarray(m(x, training=False))
    assert p.shape == (3, 2) and np.allclose(p.sum(axis=1), 1, atol=1e-6)
    assert not m.get_layer(BACKBONE_LAYER).trainable


def test_batchnorm_stays_in_inference_mode_while_training(tiny_model):
    import keras

    model = keras.models.clone_model(tiny_model)
    model.set_weights(tiny_model.get_weights())
    _perturb_batchnorm(model)
    features = feature_extractor(model)
    x = np.random.default_rng(1).uniform(0, 255, (4, 96, 96, 3)).astype("float32")
    for trainable_top in (0, 40):   # frozen backbone, then fine-tuning its top 40 layers
        if trainable_top:
            assert unfreeze_top(model, trainable_top) > 0
        bn = [layer for layer in model.get_layer(BACKBONE_LAYER).layers
              if isinstance(layer, keras.layers.BatchNormalization)]
        assert bn and not any(layer.trainable for layer in bn)
        # fit() calls the model with training=True; BatchNorm must still use its moving statistics
        np.testing.assert_allclose(np.asarray(features(x, training=True)), np.asarray(features(x, training=False)),
                                   rtol=0, atol=1e-6)
    assert any(w.trainable for w in model.get_layer(BACKBONE_LAYER).weights)


def test_head_weights_copy_into_the_model(tiny_model):
    import keras

    model = keras.models.clone_model(tiny_model)
    head = build_head(ModelSpec(labels=["hot_dog", "not_hot_dog"], **TINY), 1280)
    head.get_layer("classifier").set_weights([np.full((1280, 2), 0.01, "float32"), np.array([0.3, -0.3], "float32")])
    copy_head(head, model)
    k, b = model.get_layer("classifier").get_weights()
    assert np.all(k == 0.01) and b.tolist() == pytest.approx([0.3, -0.3])


def test_the_l2_penalty_trains_the_head_and_is_not_saved(tiny_model, tmp_path):
    spec = ModelSpec(labels=["hot_dog", "not_hot_dog"], **TINY)
    head = build_head(spec, 1280, l2=0.1)
    kernel = np.full((1280, 2), 0.01, "float32")
    head.get_layer("classifier").set_weights([kernel, np.zeros(2, "float32")])
    assert float(sum(head.losses)) == pytest.approx(0.1 * float((kernel ** 2).sum()), rel=1e-5)
    assert not build_head(spec, 1280).losses                          # l2=0: no penalty at all

    penalised = build_classifier(spec, "none", l2=0.1)
    penalised.set_weights(tiny_model.get_weights())
    assert penalised.losses and penalised.get_layer("classifier").get_config()["kernel_regularizer"]
    drop_weight_penalties(penalised)
    assert not penalised.losses and penalised.get_layer("classifier").get_config()["kernel_regularizer"] is None
    back = load_keras_model(save_keras(penalised, tmp_path / "model.keras"))
    assert back.get_layer("classifier").get_config()["kernel_regularizer"] is None
    x = np.full((2, 96, 96, 3), 99, "float32")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(tiny_model(x)), atol=1e-6)


def test_save_is_atomic_and_loads_back(tiny_model, tmp_path):
    path = save_keras(tiny_model, tmp_path / "m" / "model.keras")
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.keras"]
    back = load_keras_model(path)
    x = np.full((1, 96, 96, 3), 128, "float32")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(tiny_model(x)), atol=1e-6)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(MlkitError, match="cannot load"):
        load_keras_model(tmp_path / "junk.keras")
    with pytest.raises(MlkitError, match="does not exist"):
        load_keras_model(tmp_path / "nope.keras")


# ------------------------------------------------------------------------------ weights

def test_weights_values_are_checked_before_any_work(tmp_path):
    spec = ModelSpec(labels=["a", "b"], alpha=0.6, image_size=96)
    with pytest.raises(MlkitError, match="ImageNet weights exist for --alpha"):
        resolve_weights("imagenet", spec)
    assert resolve_weights("none", spec).kind == "none"
    with pytest.raises(MlkitError, match="no such file"):
        resolve_weights(tmp_path / "missing.h5", spec)
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(MlkitError, match="expected an .h5"):
        resolve_weights(tmp_path / "w.bin", spec)
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(MlkitError, match="cannot load backbone weights"):
        build_classifier(ModelSpec(labels=["a", "b"], **TINY), tmp_path / "bad.h5")


def test_weights_from_a_trained_model(tiny_model, tmp_path):
    """--weights PATH of an mlkit model.keras starts from its backbone (same alpha only)."""
    path = save_keras(tiny_model, tmp_path / "model.keras")
    model = build_classifier(ModelSpec(labels=["x", "y"], **TINY), path)
    for a, b in zip(model.get_layer(BACKBONE_LAYER).get_weights(), tiny_model.get_layer(BACKBONE_LAYER).get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(MlkitError, match="alpha 0.5"):
        build_classifier(ModelSpec(labels=["x", "y"], alpha=0.5, image_size=96), path)


def test_imagenet_weights_that_cannot_be_fetched_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    monkeypatch.setattr(model_mod, "IMAGENET_BASE_URL", "http://127.0.0.1:9/")  # nothing listens: no network
    spec = ModelSpec(labels=["a", "b"], **TINY)
    with pytest.raises(MlkitError) as info:
        resolve_weights("imagenet", spec)
    msg = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in msg
    assert "KERAS_HOME" in msg and "--weights none" in msg
    assert not list((tmp_path / "empty-keras-home").rglob("*.h5"))  # no partial download left
    with pytest.raises(MlkitError, match="KERAS_HOME"):
        resolve_weights("imagenet", spec, download=False)


def test_imagenet_weights_load_offline_and_match_keras_preprocessing(monkeypatch):
    """The real ImageNet weights (../shared/data/keras) load without the network, and our
    input path (decode, centre crop, 0..255 pixels, x / 127.5 - 1 in the model) is the one
    they were trained with: Keras' own ImageNet top ranks 'hotdog' in the top 5 of a real
    hot dog photo fed through it."""
    import keras

    keras_home = shared_path("keras")
    photo = shared_path("openimages", "photos", "hot_dog.jpg")
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    spec = ModelSpec(labels=["hot_dog", "not_hot_dog"], alpha=1.0, image_size=224)
    choice = resolve_weights("imagenet", spec, download=False)
    assert choice.path == keras_home / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    model = build_classifier(spec, choice)
    reference = keras.applications.MobileNetV2(include_top=False, weights=str(choice.path), input_shape=(224, 224, 3))
    for ours, ref in zip(model.get_layer(BACKBONE_LAYER).get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(ours, ref)
    top = keras.applications.MobileNetV2(
        weights=str(keras_home / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"))
    x = load_images([photo], spec)
    probs = np.asarray(top(x * NORM_SCALE + NORM_OFFSET, training=False))[0]
    assert HOTDOG_IMAGENET_CLASS in np.argsort(-probs)[:5]
    # Another input size of the same alpha uses the cached 224 px file, and says so.
    other = resolve_weights("imagenet", ModelSpec(labels=["a", "b"], alpha=1.0, image_size=128), download=False)
    assert other.path == choice.path and "224 px used at 128 px" in other.note


# ------------------------------------------------------------------------------ images

def _stripes(path: Path, fmt: str = "PNG") -> Path:
    """200x100: red left quarter, blue middle half, green right quarter."""
    a = np.zeros((100, 200, 3), np.uint8)
    a[:, :50] = (255, 0, 0)
    a[:, 50:150] = (0, 0, 255)
    a[:, 150:] = (0, 255, 0)
    Image.fromarray(a).save(path, format=fmt)
    return path


def test_center_crop_and_squash(tmp_path):
    png = _stripes(tmp_path / "s.png")
    bmp = _stripes(tmp_path / "s.bmp", "BMP")
    crop = load_images([png, bmp], ModelSpec(labels=["a", "b"], image_size=32, resize_mode="center_crop"))
    assert crop.shape == (2, 32, 32, 3) and crop.dtype == np.float32
    assert np.array_equal(crop[0], crop[1]) and np.array_equal(crop, np.round(crop))
    assert (crop[0][..., 2] == 255).all() and crop[0][..., :2].max() == 0  # only the blue middle
    squash = load_images([png], ModelSpec(labels=["a", "b"], image_size=32, resize_mode="squash"))[0]
    assert squash[:, 0, 0].min() == 255 and squash[:, -1, 1].min() == 255  # red left, green right edges kept
    assert 0 <= squash.min() and squash.max() <= 255


def test_unreadable_images_are_named(tmp_path):
    spec = ModelSpec(labels=["a", "b"], image_size=32)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "page.jpg").write_text("<html>not found</html>")
    with pytest.raises(MlkitError) as info:
        check_image_files([tmp_path / "empty.jpg", tmp_path / "page.jpg"])
    assert "empty.jpg (empty file)" in str(info.value) and "page.jpg (not a JPEG" in str(info.value)
    Image.new("RGB", (64, 64), (200, 100, 0)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # a JPEG header, then nothing
    with pytest.raises(MlkitError, match=r"cut\.jpg"):
        load_images([tmp_path / "ok.jpg", tmp_path / "cut.jpg"], spec)
    with pytest.raises(MlkitError, match="no such image"):
        load_images([tmp_path / "missing.jpg"], spec)
    assert os.listdir(tmp_path)  # nothing removed
