"""toolkit.export.tflite: every quantization mode converted once (module fixtures) from a
tiny MobileNetV2 (alpha 0.35, 96 px), run in real LiteRT and compared with Keras; the
metadata read back, embedded (tflite-support, where it imports) and as a side file; the
errors, and atomicity under forced failures (those mock the slow conversion)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit import __version__
from toolkit.errors import MlkitError
from toolkit.export import tflite as tflite_mod
from toolkit.export import tflite_metadata as md
from toolkit.export.tflite import QUANTIZE_MODES, TFLiteExport, export_tflite
from toolkit.model_spec import ModelCard, ModelSpec, labels_text

LABELS = ["hot_dog", "not_hot_dog"]
DATASET_HASH = "3f2a9c0d1e4b5a6978cdef0123456789"
WRITERS, WRITERS_WHY = md.metadata_writers_available()
needs_writers = pytest.mark.skipif(not WRITERS, reason=f"tflite-support metadata writers unavailable: {WRITERS_WHY}")
# How each mode's file is written: one goes through the side file, so both paths are real.
EMBED = {"none": None, "fp16": None, "dynamic": False, "int8": None}


def _well_scaled_random_weights(model, seed: int = 0) -> None:
    """Redraw the backbone's convolution kernels with He scaling (std sqrt(gain / fan_in)).

    Keras' default Glorot init counts a depthwise kernel's fan-in as 9 x channels, not 9,
    so with random weights the activations shrink by ~1e-10 over MobileNetV2's 17 blocks
    and every image gets exactly [0.5, 0.5]: useless for comparing runtimes. With these
    kernels the pooled features have std ~1 and the outputs differ per image."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.get_layer("mobilenet_v2").layers:
        if isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv2D)):
            shape = tuple(layer.kernel.shape)
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            fan_in = shape[0] * shape[1] * (1 if depthwise else shape[2])
            gain = 1.0 if layer.name.endswith("project") else 2.0   # project convs are linear
            layer.kernel.assign(rng.normal(0.0, np.sqrt(gain / fan_in), shape).astype(np.float32))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """models/<name>/ as train writes it: model.keras, model.json, labels.txt."""
    import keras

    from toolkit.model import build_classifier, save_keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("models") / "hot_dog"
    spec = ModelSpec(labels=LABELS, alpha=0.35, image_size=96)
    model = build_classifier(spec, "none")
    _well_scaled_random_weights(model)
    save_keras(model, folder / "model.keras")
    ModelCard(spec=spec, name="hot_dog", dataset={"name": "hot_dog", "content_hash": DATASET_HASH}).write(folder)
    (folder / "labels.txt").write_text(labels_text(LABELS))
    return folder


@pytest.fixture(scope="module")
def card(model_dir) -> ModelCard:
    from toolkit.model_spec import read_model_card

    return read_model_card(model_dir)


def synthetic_images(n: int, seed: int, size: int = 96) -> np.ndarray:
    """Photo-like float32 RGB 0..255: a colour gradient, a bright blob, some noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        base = rng.uniform(0, 255, 3) * (1 - yy[..., None]) + rng.uniform(0, 255, 3) * xx[..., None]
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rng.uniform(-120, 120, 3)
        out[i] = np.clip(base + blob + rng.normal(0, 12, (size, size, 3)), 0, 255).round()
    return out


@pytest.fixture(scope="module")
def calibration() -> np.ndarray:
    return synthetic_images(16, seed=1)


@pytest.fixture(scope="module")
def eval_images() -> np.ndarray:
    return synthetic_images(32, seed=2)


@pytest.fixture(scope="module")
def keras_probs(model_dir, card, eval_images) -> np.ndarray:
    from toolkit.predict import KerasRunner

    return KerasRunner(model_dir / "model.keras", card).predict(eval_images)


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory) -> Path:
    """A folder apart from the model's (so labels.txt is the export's own), with model.json
    beside the .tflite files as `mlkit predict` needs."""
    folder = tmp_path_factory.mktemp("exports")
    shutil.copy(model_dir / "model.json", folder / "model.json")
    return folder


@pytest.fixture(scope="module")
def exports(model_dir, card, calibration, export_dir) -> dict[str, TFLiteExport]:
    """Each quantization mode converted once (a few seconds each)."""
    return {mode: export_tflite(model_dir / "model.keras", card, export_dir / f"hot_dog_{mode}.tflite",
                                quantize=mode, calibration=calibration if mode == "int8" else None,
                                embed=EMBED[mode])
            for mode in QUANTIZE_MODES}


# --------------------------------------------------------------------------- numbers
def _compare(exports, card, eval_images, keras_probs, mode):
    from toolkit.export.tflite_runtime import TFLiteRunner

    probs = TFLiteRunner(exports[mode].path, card).predict(eval_images)
    assert probs.shape == keras_probs.shape and probs.dtype == np.float32
    return probs, np.abs(probs.astype(np.float64) - keras_probs)


@pytest.mark.parametrize("mode,bound", [("none", 1e-4), ("fp16", 1e-2)])
def test_float_modes_match_keras(exports, card, eval_images, keras_probs, mode, bound):
    probs, diff = _compare(exports, card, eval_images, keras_probs, mode)
    print(f"{mode}: max|Δp| {diff.max():.2e}, mean {diff.mean():.2e}")
    assert diff.max() <= bound
    assert (probs.argmax(1) == keras_probs.argmax(1)).all()


# Measured on this model and these 32 images (TF 2.21, LiteRT 2.3): dynamic max|Δp| 0.032,
# mean 0.0096, top-1 agreement 97%; int8 max 0.068, mean 0.022, agreement 88% (the
# disagreements are images Keras itself scores near 50/50). Bounds: ~2x the measurement.
QUANTIZED_BOUNDS = {"dynamic": (0.06, 0.02), "int8": (0.12, 0.04)}   # (max, mean) |Δp|
CLEAR_MARGIN = 0.25   # Keras' top-1 minus its second: far beyond either mode's max error


@pytest.mark.parametrize("mode", ["dynamic", "int8"])
def test_quantized_modes_track_keras(exports, card, eval_images, keras_probs, mode):
    """Quantized probabilities stay near Keras', and where Keras is sure, the class is the same."""
    probs, diff = _compare(exports, card, eval_images, keras_probs, mode)
    sorted_p = np.sort(keras_probs, axis=1)
    clear = sorted_p[:, -1] - sorted_p[:, -2] >= CLEAR_MARGIN
    print(f"{mode}: max|Δp| {diff.max():.3f}, mean {diff.mean():.4f}, "
          f"agreement {(probs.argmax(1) == keras_probs.argmax(1)).mean():.2%}, clear-margin images {clear.sum()}")
    max_bound, mean_bound = QUANTIZED_BOUNDS[mode]
    assert diff.max() <= max_bound and diff.mean() <= mean_bound
    assert clear.sum() >= 8, "the test model should give some confident answers"
    assert (probs.argmax(1)[clear] == keras_probs.argmax(1)[clear]).all()
    assert np.allclose(probs.sum(1), 1.0, atol=0.02)


def test_int8_takes_and_gives_uint8_with_pixel_scale(exports, card):
    from toolkit.export.tflite_runtime import TFLiteRunner

    e = exports["int8"]
    assert (e.input_dtype, e.output_dtype) == ("uint8", "uint8")
    assert e.calibration_images == 16 and e.warnings == []
    # Raw pixels in, normalised inside: uint8 v means pixel v.
    assert e.input_quantization["zero_point"] == 0
    assert e.input_quantization["scale"] == pytest.approx(1.0, abs=1e-3)
    assert e.output_quantization == {"scale": pytest.approx(1 / 256), "zero_point": 0}
    runner = TFLiteRunner(e.path, card)
    assert runner.input_details.dtype == "uint8" and runner.input_details.quantized
    assert runner.input_details.shape == (-1, 96, 96, 3)
    assert runner.describe()["output"]["quantization"]["zero_point"] == 0
    for mode in ("none", "fp16", "dynamic"):
        assert (exports[mode].input_dtype, exports[mode].output_dtype) == ("float32", "float32")
        assert exports[mode].input_quantization is None


def test_calibration_spans_the_whole_pixel_range():
    """The uint8 input's range is what calibration saw. Measured: 8 images of pixels 50..200
    alone gave input scale 0.784 (pixel 255 would clip to 200, and raw bytes fed by an app
    would be read 22% too dark); with the 0 / 255 anchor pixels the scale is 1.0, zero point 0."""
    dim = np.full((3, 96, 96, 3), 120.0, np.float32)
    seen = [batch[0] for batch in tflite_mod._representative(dim)()]
    assert len(seen) == 3 and all(x.shape == (1, 96, 96, 3) for x in seen)
    assert (seen[0].min(), seen[0].max()) == (0.0, 255.0)
    assert (seen[0] == 120.0).mean() > 0.999 and all((x == 120.0).all() for x in seen[1:])
    assert (dim == 120.0).all()   # the caller's array is left alone


def test_sizes_shrink_with_quantization(exports):
    size = {m: e.size_bytes for m, e in exports.items()}
    print(size)
    assert size["fp16"] < size["none"] and size["int8"] < size["fp16"] and size["dynamic"] < size["fp16"]
    for e in exports.values():
        assert e.path.stat().st_size == e.size_bytes and e.seconds >= e.convert_seconds > 0


def test_runner_batches_equal_single_images(exports, card, eval_images):
    from toolkit.export.tflite_runtime import TFLiteRunner

    for mode in ("none", "int8"):
        batched = TFLiteRunner(exports[mode].path, card, batch_size=32).predict(eval_images[:5])
        single = TFLiteRunner(exports[mode].path, card, batch_size=1).predict(eval_images[:5])
        np.testing.assert_allclose(batched, single, atol=1e-6)


# --------------------------------------------------------------------------- metadata & files
def _assert_facts(meta: dict, source: str):
    assert meta["source"] == source
    assert meta["labels"] == LABELS
    assert meta["normalization"] == {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    assert "labels.txt" in meta["associated_files"]
    assert meta["name"] == "hot_dog" and meta["author"] == "mlkit"
    assert meta["version"] == f"{__version__}+{DATASET_HASH[:12]}"
    desc = meta["description"]
    for fact in ("'hot_dog'", "96x96", f"mlkit {__version__}", DATASET_HASH, "raw pixels 0..255"):
        assert fact in desc, fact
    assert meta["license"]


@needs_writers
@pytest.mark.parametrize("mode", ["none", "int8"])
def test_embedded_metadata_reads_back(exports, mode):
    e = exports[mode]
    assert e.metadata == "embedded" and e.metadata_note == "" and e.side_file is None
    assert not md.side_file_path(e.path).exists()
    meta = md.read_metadata(e.path)
    _assert_facts(meta, "embedded")
    inp = meta["json"]["subgraph_metadata"][0]["input_tensor_metadata"][0]
    out = meta["json"]["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert inp["content"]["content_properties"]["color_space"] == "RGB"
    assert inp["stats"] == {"max": [255.0] * (1 if mode == "int8" else 3), "min": [0.0] * (1 if mode == "int8" else 3)}
    label_file = out["associated_files"][0]
    assert (label_file["name"], label_file["type"]) == ("labels.txt", "TENSOR_AXIS_LABELS")


def test_side_file_metadata_reads_back(exports):
    e = exports["dynamic"]
    assert e.metadata == "side-file" and e.side_file == md.side_file_path(e.path) and e.side_file.is_file()
    assert e.metadata_note.startswith("embedded TFLite metadata skipped: ")
    meta = md.read_metadata(e.path)
    _assert_facts(meta, "side-file")
    assert meta["json"]["input"]["shape"] == [1, 96, 96, 3] and meta["json"]["output"]["dtype"] == "float32"


def test_labels_txt_written_beside_the_model(exports, export_dir):
    assert (export_dir / "labels.txt").read_text() == "hot_dog\nnot_hot_dog\n"
    assert all(e.labels_path == export_dir / "labels.txt" for e in exports.values())


def test_predict_on_a_tflite_file(exports, card, export_dir, tmp_path):
    from toolkit.data import load_images
    from toolkit.export.tflite_runtime import TFLiteRunner
    from toolkit.predict import open_runner, predict

    photos = []
    for i, img in enumerate(synthetic_images(3, seed=3, size=120)):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(img.astype(np.uint8)).save(photos[-1])
    path = exports["int8"].path
    assert isinstance(open_runner(path), TFLiteRunner)
    preds = predict(path, photos)
    expected = TFLiteRunner(path, card).predict(load_images(photos, card.spec))
    for p, row in zip(preds, expected):
        assert [p.probabilities[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-7)


# --------------------------------------------------------------------------- errors
def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_bad_arguments_raise_and_write_nothing(model_dir, card, tmp_path, calibration):
    keras_path = model_dir / "model.keras"
    out = tmp_path / "x.tflite"
    cases = [
        (dict(keras_path=keras_path, quantize="int4"), "unknown --quantize 'int4'"),
        (dict(keras_path=tmp_path / "missing.keras"), "does not exist"),
        (dict(keras_path=model_dir / "model.json"), "is not a Keras model"),
        (dict(keras_path=keras_path, quantize="int8"), "needs calibration|none were given"),
        (dict(keras_path=keras_path, quantize="int8", calibration=calibration[:0]), "none were given"),
        (dict(keras_path=keras_path, quantize="int8", calibration=calibration / 255.0), "within 0..1"),
        (dict(keras_path=keras_path, quantize="int8", calibration=calibration[:, :64]), "shape"),
    ]
    for kwargs, message in cases:
        with pytest.raises(MlkitError, match=message):
            export_tflite(card=card, out_path=out, **kwargs)
        assert _listing(tmp_path) == [], kwargs
    with pytest.raises(MlkitError, match="must end in .tflite"):
        export_tflite(keras_path, card, tmp_path / "x.tfl")
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip")
    with pytest.raises(MlkitError, match="cannot load"):
        export_tflite(fake, card, out)
    assert _listing(tmp_path) == ["fake.keras"]


def test_runner_refuses_wrong_files(exports, tmp_path, model_dir):
    from toolkit.export.tflite_runtime import TFLiteRunner
    from toolkit.predict import open_runner

    shutil.copy(model_dir / "model.json", tmp_path / "model.json")
    (tmp_path / "junk.tflite").write_bytes(b"x" * 64)
    with pytest.raises(MlkitError, match="not a TFLite model"):
        open_runner(tmp_path / "junk.tflite")
    three = ModelCard(spec=ModelSpec(labels=["a", "b", "c"], alpha=0.35, image_size=96), name="x")
    with pytest.raises(MlkitError, match=r"gives 2 classes.*3 labels \(a, b, c\)"):
        TFLiteRunner(exports["none"].path, three)
    big = ModelCard(spec=ModelSpec(labels=LABELS, alpha=0.35, image_size=128), name="x")
    with pytest.raises(MlkitError, match=r"takes \(96, 96, 3\).*\(128, 128, 3\)"):
        TFLiteRunner(exports["none"].path, big)


@pytest.fixture(scope="module")
def plain_flatbuffer(exports) -> bytes:
    """A converted model without metadata (the side-file export's bytes)."""
    return exports["dynamic"].path.read_bytes()


@pytest.fixture(scope="module")
def keras_model(model_dir):
    from toolkit.model import load_keras_model

    return load_keras_model(model_dir / "model.keras")


@pytest.fixture
def mocked_conversion(keras_model, monkeypatch, plain_flatbuffer):
    """export_tflite with its slow parts replaced: the Keras model loaded once, the
    conversion returning real converted bytes. Everything after it runs for real."""
    import toolkit.model

    monkeypatch.setattr(toolkit.model, "load_keras_model", lambda *_a, **_k: keras_model)
    monkeypatch.setattr(tflite_mod, "convert", lambda *_a, **_k: plain_flatbuffer)


@pytest.mark.parametrize("fail_in", ["embed_metadata", "verify"])
def test_a_failure_leaves_no_file(model_dir, card, tmp_path, monkeypatch, mocked_conversion, fail_in):
    """A step after the conversion fails: the previous file stays, nothing else appears."""
    def boom(*_a, **_k):
        raise RuntimeError(f"forced failure in {fail_in}")

    if fail_in == "embed_metadata":
        monkeypatch.setattr(md, "embed_metadata", boom)
        embed = True
        monkeypatch.setattr(md, "metadata_writers_available", lambda: (True, ""))
    else:
        monkeypatch.setattr(tflite_mod, "verify", boom)
        embed = False
    out = tmp_path / "m.tflite"
    out.write_bytes(b"the previous export")
    with pytest.raises(RuntimeError, match="forced failure"):
        export_tflite(model_dir / "model.keras", card, out, embed=embed)
    assert out.read_bytes() == b"the previous export"
    assert _listing(tmp_path) == ["m.tflite"]   # no temp file, no side file, no labels


def test_mocked_conversion_writes_side_file_and_replaces(model_dir, card, tmp_path, mocked_conversion,
                                                         plain_flatbuffer):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old")
    e = export_tflite(model_dir / "model.keras", card, out, embed=False)
    assert out.read_bytes() == plain_flatbuffer and e.metadata == "side-file"
    assert _listing(tmp_path) == ["labels.txt", "m.tflite", "m.tflite.json"]
    if WRITERS:   # embedding now removes the stale side file
        e = export_tflite(model_dir / "model.keras", card, out, embed=True)
        assert e.metadata == "embedded" and _listing(tmp_path) == ["labels.txt", "m.tflite"]
        assert md.read_metadata(out)["labels"] == LABELS


def test_embed_refuses_labels_that_are_not_the_cards(card, plain_flatbuffer):
    if not WRITERS:
        with pytest.raises(MlkitError, match="cannot embed"):
            md.embed_metadata(plain_flatbuffer, card, "hot_dog\nnot_hot_dog\n")
        return
    with pytest.raises(MlkitError, match="not model.json's"):
        md.embed_metadata(plain_flatbuffer, card, "not_hot_dog\nhot_dog\n")


def test_read_metadata_of_a_bare_model(tmp_path, plain_flatbuffer):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(plain_flatbuffer)
    assert md.read_metadata(bare) is None
    with pytest.raises(MlkitError, match="does not exist"):
        md.read_metadata(tmp_path / "none.tflite")


def test_without_tflite_support_the_side_file_says_why(model_dir, card, tmp_path, monkeypatch, mocked_conversion,
                                                       exports):
    """As on an Apple Silicon Mac: auto mode falls back to the side file with the reason;
    asking to embed is a clear error; embedded labels are still readable from the zip."""
    why = "tflite-support publishes no wheel for Darwin arm64, Python 3.12 (only x86_64, Python <= 3.11)"
    monkeypatch.setattr(md, "metadata_writers_available", lambda: (False, why))
    e = export_tflite(model_dir / "model.keras", card, tmp_path / "m.tflite")
    assert e.metadata == "side-file" and e.metadata_note.startswith(f"embedded TFLite metadata skipped: {why}")
    assert md.read_metadata(e.path)["labels"] == LABELS
    with pytest.raises(MlkitError, match="cannot embed TFLite metadata: tflite-support publishes no wheel"):
        export_tflite(model_dir / "model.keras", card, tmp_path / "n.tflite", embed=True)
    assert not (tmp_path / "n.tflite").exists()
    if exports["none"].metadata == "embedded":
        meta = md.read_metadata(exports["none"].path)
        assert meta["source"] == "embedded" and meta["labels"] == LABELS and why in meta["note"]
