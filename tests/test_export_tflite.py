"""toolkit.export.tflite: every quantization mode converted once (module fixtures) from a
tiny MobileNetV2 (alpha 0.35, 96 px), run in real LiteRT and compared with Keras; the
metadata read back, embedded (tflite-support, where it imports) and as a side file; which
weights the fp16 file stores as float16; the errors, and atomicity under forced failures
(those mock the slow conversion)."""

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
from toolkit.training.spec import ModelCard, ModelSpec, labels_text

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

    from toolkit.training.model import build_classifier, save_keras

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
    from toolkit.training.spec import read_model_card

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
    from toolkit.runtimes.predict import KerasRunner

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
    from toolkit.runtimes.litert import TFLiteRunner

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
    from toolkit.runtimes.litert import TFLiteRunner

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
    # Only depthwise kernels, biases and kernels under MIN_ELEMENTS stay float32 (7.5 % of
    # this small model's weights, 3.7 % of MobileNetV2 1.0's), and the float32 copies go.
    assert size["fp16"] < 0.6 * size["none"]
    for e in exports.values():
        assert e.path.stat().st_size == e.size_bytes and e.seconds >= e.convert_seconds > 0


def test_runner_batches_equal_single_images(exports, card, eval_images):
    from toolkit.runtimes.litert import TFLiteRunner

    for mode in ("none", "int8"):
        batched = TFLiteRunner(exports[mode].path, card, batch_size=32).predict(eval_images[:5])
        single = TFLiteRunner(exports[mode].path, card, batch_size=1).predict(eval_images[:5])
        np.testing.assert_allclose(batched, single, atol=1e-6)


# --------------------------------------------------------------------------- fp16: which weights
class Graph:
    """A .tflite flatbuffer's first subgraph, parsed with TensorFlow's schema: what each
    tensor is (constant or not, dtype, size) and which op makes it."""

    def __init__(self, flat: bytes):
        from tensorflow.lite.python import schema_py_generated as fb

        self.fb = fb
        self.model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(flat, 0))
        self.sg = self.model.subgraphs[0]
        names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
        self.codes = [names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in self.model.operatorCodes]
        self.ops = [(self.codes[op.opcodeIndex], [int(i) for i in op.inputs], [int(i) for i in op.outputs])
                    for op in self.sg.operators]
        self.maker = {out: (kind, inputs) for kind, inputs, outputs in self.ops for out in outputs}

    def values(self, index: int) -> np.ndarray | None:
        """A constant tensor's values (None for a tensor without data)."""
        t = self.sg.tensors[index]
        data = self.model.buffers[t.buffer].data
        if data is None or len(data) == 0:
            return None
        raw = np.asarray(data, np.uint8).tobytes()
        dtype = {self.fb.TensorType.FLOAT32: "<f4", self.fb.TensorType.FLOAT16: "<f2",
                 self.fb.TensorType.INT32: "<i4"}.get(t.type)
        return np.frombuffer(raw, dtype).reshape(t.shape) if dtype else np.frombuffer(raw, np.uint8)

    def is_float32_constant(self, index: int) -> bool:
        return self.sg.tensors[index].type == self.fb.TensorType.FLOAT32 and self.values(index) is not None

    def fp16_source(self, index: int) -> int | None:
        """The float16 constant a float32 tensor is dequantized from, if it is."""
        kind, inputs = self.maker.get(index, (None, []))
        if kind != "DEQUANTIZE":
            return None
        source = inputs[0]
        assert self.sg.tensors[source].type == self.fb.TensorType.FLOAT16 and self.values(source) is not None
        return source

    def metadata(self, name: bytes) -> bytes:
        entry = next(m for m in self.model.metadata if m.name == name)
        return bytes(self.model.buffers[entry.buffer].data)


def test_fp16_stores_only_large_kernels_as_float16(exports):
    """CONV_2D and FULLY_CONNECTED kernels of MIN_ELEMENTS or more: float16 behind a DEQUANTIZE.
    Depthwise kernels, biases and small kernels: float32 constants, as in the float32 file."""
    from ai_edge_litert.interpreter import Interpreter

    from toolkit.export.tflite_fp16 import MIN_ELEMENTS
    from toolkit.export.validate import tflite_precision

    path = exports["fp16"].path
    g = Graph(path.read_bytes())
    halves = kept = 0
    for kind, inputs, _outputs in g.ops:
        if kind in ("CONV_2D", "FULLY_CONNECTED"):
            weight = inputs[1]
            if np.prod(g.sg.tensors[weight].shape) >= MIN_ELEMENTS:
                assert g.sg.tensors[weight].type == g.fb.TensorType.FLOAT32 and g.values(weight) is None
                assert g.fp16_source(weight) is not None, g.sg.tensors[weight].name
                halves += 1
            else:
                assert g.is_float32_constant(weight)
                kept += 1
        if kind == "DEPTHWISE_CONV_2D":
            assert g.is_float32_constant(inputs[1]), g.sg.tensors[inputs[1]].name
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(inputs) > 2 and inputs[2] >= 0:
            assert g.is_float32_constant(inputs[2]), "biases stay float32"
    assert halves >= 20 and kept >= 1   # this model: 28 float16 kernels, 8 small ones left float32
    fp16 = [i for i, t in enumerate(g.sg.tensors) if t.type == g.fb.TensorType.FLOAT16]
    readers = [kind for kind, inputs, _ in g.ops for i in inputs if i in fp16]
    assert len(fp16) == halves and readers == ["DEQUANTIZE"] * halves
    # The DEQUANTIZE ops come first, so every weight exists before its op runs.
    assert [kind for kind, _, _ in g.ops[:halves]] == ["DEQUANTIZE"] * halves
    assert "DEQUANTIZE" not in [kind for kind, _, _ in g.ops[halves:]]
    dequantize = g.model.operatorCodes[g.codes.index("DEQUANTIZE")]
    assert (dequantize.builtinCode, dequantize.deprecatedBuiltinCode, dequantize.version) == (6, 6, 3)
    assert g.metadata(b"min_runtime_version").rstrip(b"\0") == b"1.15.0"
    # LiteRT sees the same: float16 tensors, the signature intact, the file read as fp16.
    interp = Interpreter(model_path=str(path))
    assert sum(d["dtype"] == np.float16 for d in interp.get_tensor_details()) == halves
    assert interp.get_signature_list() == {"serving_default": {"inputs": ["pixels"], "outputs": ["output_0"]}}
    assert tflite_precision(path) == "fp16"


def _run(flat: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flat)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    probs = []
    for image in images:
        interp.set_tensor(inp, image[None])
        interp.invoke()
        probs.append(interp.get_tensor(out)[0].copy())
    return np.array(probs)


@pytest.fixture(scope="module")
def float32_flatbuffer(keras_model) -> bytes:
    return tflite_mod.convert(keras_model, "none")


def test_fp16_rewrite_rounds_the_kernels_and_nothing_else(float32_flatbuffer, eval_images):
    """Against the float32 conversion it starts from: each float16 kernel is its float32
    kernel rounded, every other tensor and its data unchanged, indices kept."""
    from toolkit.export.tflite_fp16 import large_weights_to_fp16

    before = Graph(float32_flatbuffer)
    rewritten = large_weights_to_fp16(float32_flatbuffer)
    after = Graph(rewritten)
    n = len(before.sg.tensors)
    dequantized = {outputs[0]: inputs[0] for kind, inputs, outputs in after.ops if kind == "DEQUANTIZE"}
    assert dequantized and sorted(dequantized.values()) == list(range(n, len(after.sg.tensors)))
    for i in range(n):
        b, a = before.sg.tensors[i], after.sg.tensors[i]
        assert (a.name, a.type, list(a.shape)) == (b.name, b.type, list(b.shape))
        if i in dequantized:
            np.testing.assert_array_equal(after.values(dequantized[i]), before.values(i).astype(np.float16))
            assert after.values(i) is None
        elif before.values(i) is None:
            assert after.values(i) is None
        else:
            np.testing.assert_array_equal(after.values(i), before.values(i))
    assert after.ops[len(dequantized):] == before.ops
    assert after.model.signatureDefs[0].signatureKey == before.model.signatureDefs[0].signatureKey
    # Only the float16 rounding moves the probabilities.
    diff = np.abs(_run(rewritten, eval_images[:8]) - _run(float32_flatbuffer, eval_images[:8]))
    assert diff.max() < 2e-3
    # Nothing is left to rewrite; with a higher threshold, nothing is rewritten at all.
    assert large_weights_to_fp16(rewritten) == rewritten
    assert large_weights_to_fp16(float32_flatbuffer, min_elements=10**9) == float32_flatbuffer


def test_fp16_rewrite_keeps_a_shared_buffer_for_its_other_readers(float32_flatbuffer, eval_images):
    """Two kernels reading one buffer (the converter shares identical constants): each gets
    its own float16 copy, and the model computes what it did before."""
    import flatbuffers

    from toolkit.export.tflite_fp16 import large_weights_to_fp16

    g = Graph(float32_flatbuffer)
    kernels = [inputs[1] for kind, inputs, _ in g.ops if kind == "CONV_2D"]
    shape = lambda i: tuple(g.sg.tensors[i].shape)   # noqa: E731
    first, second = next((a, b) for a in kernels for b in kernels
                         if a < b and shape(a) == shape(b) and np.prod(shape(a)) >= 1024)
    g.sg.tensors[second].buffer = g.sg.tensors[first].buffer
    builder = flatbuffers.Builder(len(float32_flatbuffer))
    builder.Finish(g.model.Pack(builder), file_identifier=b"TFL3")
    shared = bytes(builder.Output())
    rewritten = large_weights_to_fp16(shared)
    after = Graph(rewritten)
    for kernel in (first, second):
        np.testing.assert_array_equal(after.values(after.fp16_source(kernel)),
                                      g.values(first).astype(np.float16))
    diff = np.abs(_run(rewritten, eval_images[:4]) - _run(shared, eval_images[:4]))
    assert diff.max() < 2e-3


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
@pytest.mark.parametrize("mode", ["none", "fp16", "int8"])
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
    from toolkit.training.data import load_images
    from toolkit.runtimes.litert import TFLiteRunner
    from toolkit.runtimes.predict import open_runner, predict

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
    from toolkit.runtimes.litert import TFLiteRunner
    from toolkit.runtimes.predict import open_runner

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
    from toolkit.training.model import load_keras_model

    return load_keras_model(model_dir / "model.keras")


@pytest.fixture
def mocked_conversion(keras_model, monkeypatch, plain_flatbuffer):
    """export_tflite with its slow parts replaced: the Keras model loaded once, the
    conversion returning real converted bytes. Everything after it runs for real."""
    import toolkit.training.model

    monkeypatch.setattr(toolkit.training.model, "load_keras_model", lambda *_a, **_k: keras_model)
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
