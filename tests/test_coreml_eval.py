"""The Core ML reference evaluator end to end: Keras models converted by coremltools to
NeuralNetwork (.mlmodel) and ML program (.mlpackage) files, run from the files alone and
compared with Keras.

Conversions are slow (seconds each on two cores), so each model is converted once per
session and cached under a temporary directory.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ct = pytest.importorskip("coremltools")
keras = pytest.importorskip("keras")

from toolkit.runtimes.coreml_eval import UnsupportedOpError, load, supported  # noqa: E402
from toolkit.errors import MlkitError  # noqa: E402

LABELS = ["hot_dog", "not_hot_dog"]
FP32_TOL = 1e-4
FP16_TOL = 1e-2
# Weight quantization (int8 / int4 / 4-bit palettes) changes the model itself, not only its
# arithmetic, by an amount that depends on the model: on these randomly initialised
# networks int8 weights move the probabilities by ~0.1 (a trained network moves far less).
# So quantized files are checked exactly instead: (1) every decoded weight lies within half
# a quantization step of the float file's weight, and (2) the quantized file gives the
# same probabilities as the float file run with those decoded weights substituted. With
# the float file matching Keras to 1e-4, that pins the evaluator down. Against Keras only
# a gross bound is kept, for a decoding error that (1) and (2) would somehow both miss.
INT8_SANITY = 0.3


def randomize(model, x, seed=0):
    """Non-trivial but well-conditioned weights.

    Fresh Keras weights make every BatchNorm an identity; after a few blocks the ReLU6s
    saturate and the output no longer depends on the image. Here each BatchNorm gets a
    random scale, a positive offset before its activation (most units stay active, which
    keeps the random network as smooth as a trained one: rounding its weights to fp16
    moves its probabilities by ~5e-3, not the ~5e-2 of zero-mean offsets) and moving
    statistics calibrated on the images ``x``; then the head is spread over them."""
    rng = np.random.default_rng(seed)
    bns = []
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            offset = (np.zeros(b.shape) if "project" in layer.name
                      else rng.uniform(0.5, 1.5, b.shape))
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), offset, mean, var])
            bns.append((layer, layer.momentum))
            layer.momentum = 0.0          # the next training-mode call sets the statistics
    model(x, training=True)
    for layer, momentum in bns:
        layer.momentum = momentum
    spread_outputs(model, x, seed)


def spread_outputs(model, x, seed=0):
    """Set the last Dense layer so its logits vary by about one unit across the images ``x``
    (a randomly initialised backbone gives nearly the same features for every image, so a
    random head would predict nearly the same probabilities for all of them)."""
    rng = np.random.default_rng(seed)
    head = model.layers[-1]
    features = keras.Model(model.inputs, head.input).predict(x, verbose=0)
    w, _ = head.get_weights()
    std = features.std(axis=0)
    std = std + 0.1 * std.mean() + 1e-6
    w = rng.normal(0, 1, w.shape) / (std[:, None] * np.sqrt(w.shape[0]))
    head.set_weights([w, -features.mean(axis=0) @ w])


def images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3))
    ramp = np.linspace(0, 255, size)
    x[0] = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                     255 - ramp[None, :].repeat(size, 0)], axis=-1)
    return np.round(x).astype(np.float32)     # integral pixels, like a decoded image


def convert(model, path, fmt, *, labels=LABELS, size, precision="fp32", **image_kw):
    kw = {}
    if fmt == "mlprogram":
        kw["compute_precision"] = (ct.precision.FLOAT32 if precision == "fp32"
                                   else ct.precision.FLOAT16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = ct.convert(model, inputs=[ct.ImageType(name="image", shape=(1, size, size, 3),
                                                    **image_kw)],
                        classifier_config=ct.ClassifierConfig(labels), convert_to=fmt, **kw)
    ml.save(str(path))
    return path


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory):
    """MobileNetV2 alpha 0.35 / 96 classifier with Rescaling inside the model (ImageType
    scale 1), as mlkit trains it: Keras model, test images, Keras probabilities, and the
    .mlmodel / fp32 and fp16 .mlpackage / int8-weight variants of both."""
    d = tmp_path_factory.mktemp("mobilenet")
    inp = keras.Input((96, 96, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False,
                                       weights=None)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inp, out)
    randomize(model, images(16, 96, seed=100))
    x = images(6, 96)
    files = {
        "nn": convert(model, d / "m.mlmodel", "neuralnetwork", size=96),
        "fp32": convert(model, d / "m.mlpackage", "mlprogram", size=96),
        "fp16": convert(model, d / "m16.mlpackage", "mlprogram", size=96, precision="fp16"),
    }
    from coremltools.models.neural_network import quantization_utils
    import coremltools.optimize.coreml as cto

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn8 = quantization_utils.quantize_weights(ct.models.MLModel(str(files["nn"])), nbits=8)
        nn8.save(str(d / "m8.mlmodel"))
        cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0))
        cto.linear_quantize_weights(ct.models.MLModel(str(files["fp32"])), cfg).save(
            str(d / "m8.mlpackage"))
    files["nn_int8"], files["int8"] = d / "m8.mlmodel", d / "m8.mlpackage"
    return model, files, x, model.predict(x, verbose=0)


def keras_probs_with_image_preprocessing(model, x, scale, bias, bgr=False):
    xin = x[..., ::-1] if bgr else x
    return model.predict(xin * scale + np.asarray(bias, np.float32), verbose=0)


def small_model(classes=3, seed=1):
    """Conv / BN / ReLU6 / depthwise / zero-padding / pooling / concat / dense: the layer
    kinds image classifiers produce, small enough to convert in a second or two."""
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    a = keras.layers.DepthwiseConv2D(3, padding="same", dilation_rate=2)(x)
    a = keras.layers.BatchNormalization()(a)
    a = keras.layers.ReLU()(a)
    b = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    b = keras.layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu")(b)
    a = keras.layers.MaxPooling2D(2)(a)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Conv2D(12, 1, activation="sigmoid")(x)
    x = keras.layers.AveragePooling2D(3, strides=1, padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="tanh")(x)
    out = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inp, out)
    randomize(model, images(16, 32, seed=100 + seed), seed)
    return model


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    """The small model with the normalisation in the Core ML ImageType instead of Keras:
    scale 1/127.5 and bias -1 (RGB), and per-channel biases with BGR colour order."""
    d = tmp_path_factory.mktemp("small")
    model = small_model()
    labels = ["a", "b", "c"]
    x = images(5, 32, seed=3)
    variants = {}
    for fmt, ext in [("neuralnetwork", "mlmodel"), ("mlprogram", "mlpackage")]:
        variants[f"{fmt}-rgb"] = (
            convert(model, d / f"rgb.{ext}", fmt, labels=labels, size=32,
                    scale=1 / 127.5, bias=[-1, -1, -1]),
            keras_probs_with_image_preprocessing(model, x, 1 / 127.5, [-1, -1, -1]))
        bias = [-1.0, -0.5, 0.25]   # in the layout's order: B, G, R
        variants[f"{fmt}-bgr"] = (
            convert(model, d / f"bgr.{ext}", fmt, labels=labels, size=32, scale=1 / 100,
                    bias=bias, color_layout=ct.colorlayout.BGR),
            keras_probs_with_image_preprocessing(model, x, 1 / 100, bias, bgr=True))
    return model, variants, x, labels


# --- MobileNetV2 -----------------------------------------------------------------------------

def _check(prog, x, want, tol):
    got = prog.predict_batch(x)
    assert got.shape == want.shape
    diff = np.abs(got - want).max()
    assert diff <= tol, f"max abs probability difference {diff} > {tol}"
    assert (got.argmax(1) == want.argmax(1)).all()
    return diff


@pytest.mark.slow
@pytest.mark.parametrize("variant,tol", [("nn", FP32_TOL), ("fp32", FP32_TOL), ("fp16", FP16_TOL)])
def test_mobilenet_probabilities_match_keras(mobilenet, variant, tol):
    model, files, x, want = mobilenet
    assert np.ptp(want[:, 0]) > 0.3, "the test model's predictions should vary with the image"
    prog = load(files[variant])
    assert prog.is_classifier and prog.class_labels == tuple(LABELS)
    assert prog.compute_dtype == ("fp16" if variant == "fp16" else "fp32")
    _check(prog, x, want, tol)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["nn_int8", "int8"])
def test_mobilenet_int8_weights_stay_close_to_keras(mobilenet, variant):
    model, files, x, want = mobilenet
    prog = load(files[variant])
    storage = set(prog.weight_storage)
    assert storage & {"linear8", "constexpr_affine_dequantize"}, storage
    got = prog.predict_batch(x)
    assert np.abs(got - want).max() <= INT8_SANITY


def with_decoded_weights(float_prog, compressed_prog):
    """``float_prog`` (an ML program) with each weight replaced by the compressed
    program's decoded version of it (coremltools names those ``<name>_quantized`` /
    ``<name>_palettized``)."""
    swapped = 0
    for name, value in compressed_prog._mil.consts.items():
        for suffix in ("_quantized", "_palettized"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and base in float_prog._mil.consts:
                float_prog._mil.consts[base] = value
                swapped += 1
    assert swapped, "no compressed weights found"
    return float_prog


@pytest.mark.slow
def test_mobilenet_int8_program_equals_float_program_with_decoded_weights(mobilenet):
    _, files, x, _ = mobilenet
    int8 = load(files["int8"])
    reference = with_decoded_weights(load(files["fp32"]), int8)
    np.testing.assert_allclose(int8.predict_batch(x), reference.predict_batch(x), atol=1e-6)


@pytest.mark.slow
def test_mobilenet_int8_neuralnetwork_equals_float_one_with_decoded_weights(mobilenet, tmp_path):
    from coremltools.proto import Model_pb2
    from toolkit.runtimes.coreml_eval.weights import nn_weights

    _, files, x, _ = mobilenet
    fp32, int8 = Model_pb2.Model(), Model_pb2.Model()
    fp32.ParseFromString(files["nn"].read_bytes())
    int8.ParseFromString(files["nn_int8"].read_bytes())
    quantized = {layer.name: layer for layer in int8.neuralNetworkClassifier.layers}
    for layer in fp32.neuralNetworkClassifier.layers:
        kind = layer.WhichOneof("layer")
        if kind not in ("convolution", "innerProduct", "batchedMatmul"):
            continue
        params, qparams = getattr(layer, kind), getattr(quantized[layer.name], kind)
        n = len(params.weights.floatValue)
        channels = {"convolution": "outputChannels", "innerProduct": "outputChannels",
                    "batchedMatmul": "weightMatrixSecondDimension"}[kind]
        cout = getattr(params, channels)
        # quantize_weights quantizes the biases too (8-bit, one scale per value)
        for field, count in (("weights", n), ("bias", len(params.bias.floatValue))):
            if count:
                decoded = nn_weights(getattr(qparams, field), count, channels=cout)
                del getattr(params, field).floatValue[:]
                getattr(params, field).floatValue.extend(decoded)
    ref_path = tmp_path / "decoded.mlmodel"
    ref_path.write_bytes(fp32.SerializeToString())
    np.testing.assert_allclose(load(files["nn_int8"]).predict_batch(x),
                               load(ref_path).predict_batch(x), atol=1e-6)


@pytest.mark.slow
def test_int8_weights_decode_to_within_half_a_step_of_the_fp32_weights(mobilenet):
    """The dequantized ML program weights, op by op, against the fp32 program's."""
    _, files, _, _ = mobilenet
    fp32, int8 = load(files["fp32"]), load(files["int8"])
    pairs = 0
    for name, value in int8._mil.consts.items():
        if not name.endswith("_quantized"):
            continue
        ref = fp32._mil.consts[name[: -len("_quantized")]]
        step = np.abs(ref).reshape(ref.shape[0], -1).max(axis=1) / 127   # symmetric, per channel
        err = np.abs(value - ref).reshape(ref.shape[0], -1).max(axis=1)
        assert (err <= step * 0.5 + 1e-7).all(), name
        pairs += 1
    assert pairs >= 50


@pytest.mark.slow
def test_neuralnetwork_int8_weights_decode_to_within_half_a_step(mobilenet):
    """Each quantized convolution of the .mlmodel, decoded, against the fp32 file's."""
    from coremltools.proto import Model_pb2
    from toolkit.runtimes.coreml_eval.weights import nn_weights

    _, files, _, _ = mobilenet
    specs = []
    for key in ("nn", "nn_int8"):
        spec = Model_pb2.Model()
        spec.ParseFromString(files[key].read_bytes())
        specs.append({layer.name: layer for layer in spec.neuralNetworkClassifier.layers})
    checked = 0
    for name, layer in specs[1].items():
        if layer.WhichOneof("layer") != "convolution":
            continue
        conv, ref_conv = layer.convolution, specs[0][name].convolution
        n = len(ref_conv.weights.floatValue)
        cout = conv.outputChannels
        got = nn_weights(conv.weights, n, channels=cout).reshape(cout, -1)
        ref = np.asarray(ref_conv.weights.floatValue, np.float32).reshape(cout, -1)
        step = np.asarray(conv.weights.quantization.linearQuantization.scale, np.float32)
        assert conv.weights.quantization.numberOfBits == 8
        assert (np.abs(got - ref).max(axis=1) <= step * 0.5 + 1e-6).all(), name
        checked += 1
    assert checked >= 50


@pytest.mark.slow
def test_predict_gives_core_ml_outputs_and_matches_predict_batch(mobilenet):
    from PIL import Image

    _, files, x, want = mobilenet
    for variant, prob_name in [("nn", None), ("fp32", "classLabel_probs")]:
        prog = load(files[variant])
        assert prog.label_output == "classLabel"
        prob_name = prob_name or prog.probabilities_output
        assert prog.probabilities_output == prob_name
        batch = prog.predict_batch(x)
        for i in range(2):
            out = prog.predict({"image": Image.fromarray(x[i].astype(np.uint8))})
            assert set(out) == {"classLabel", prob_name}
            assert out["classLabel"] == LABELS[int(np.argmax(want[i]))]
            probs = np.array([out[prob_name][label] for label in LABELS])
            np.testing.assert_allclose(probs, batch[i], atol=1e-5)


@pytest.mark.slow
def test_predict_can_return_intermediate_tensors(mobilenet):
    _, files, x, _ = mobilenet
    prog = load(files["fp32"])
    name = "functional_1_global_average_pooling2d_1_Mean"
    if name not in {o.name for s in prog._mil.steps for o in s.outputs}:
        name = next(o.name for s in prog._mil.steps if s.type == "reduce_mean" for o in s.outputs)
    out = prog.predict({"image": x[0]}, tensors=[name])
    assert out[name].shape == (1, 1280)


@pytest.mark.slow
def test_mobilenet_files_use_the_op_sets_seen_in_the_docs(mobilenet):
    _, files, _, _ = mobilenet
    # A Dense layer with a non-zero bias (any trained one) becomes innerProduct / linear;
    # with an all-zero bias, batchedMatmul / matmul.
    nn_ops = set(load(files["nn"]).op_types)
    assert {"convolution", "activation", "unary", "padding", "softmaxND"} <= nn_ops
    assert nn_ops & {"innerProduct", "batchedMatmul"}
    mil_ops = set(load(files["fp16"]).op_types)
    assert {"conv", "relu6", "pad", "softmax", "classify", "cast"} <= mil_ops
    assert mil_ops & {"linear", "matmul"}


# --- preprocessing in the ImageType ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("variant", ["neuralnetwork-rgb", "neuralnetwork-bgr",
                                     "mlprogram-rgb", "mlprogram-bgr"])
def test_image_type_scale_bias_and_colour_order(small, variant):
    _, variants, x, labels = small
    path, want = variants[variant]
    prog = load(path)
    assert prog.class_labels == tuple(labels)
    assert prog.image_input.color_space == ("BGR" if variant.endswith("bgr") else "RGB")
    _check(prog, x, want, FP32_TOL)


@pytest.mark.slow
def test_batches_equal_single_images(small):
    _, variants, x, _ = small
    for key in ("neuralnetwork-rgb", "mlprogram-bgr"):
        prog = load(variants[key][0])
        whole = prog.predict_batch(x)
        parts = np.concatenate([prog.predict_batch(x[i:i + 1]) for i in range(len(x))])
        np.testing.assert_allclose(whole, parts, atol=1e-5)
        np.testing.assert_allclose(prog.predict_batch(x, batch_size=2), whole, atol=1e-5)


def test_wrong_image_size_says_to_resize(small):
    _, variants, x, _ = small
    prog = load(variants["mlprogram-rgb"][0])
    with pytest.raises(MlkitError, match="resize"):
        prog.predict({"image": np.zeros((40, 32, 3), np.uint8)})
    with pytest.raises(MlkitError, match="missing input 'image'"):
        prog.predict({})


# --- iOS 18 weight compression ---------------------------------------------------------------

@pytest.fixture(scope="session")
def small_ios18(tmp_path_factory):
    """The small model as an iOS 18 fp16 ML program, plus its weights compressed the
    ways coremltools.optimize can: per-block int8 / int4 and 4-bit palettization."""
    import coremltools.optimize.coreml as cto

    d = tmp_path_factory.mktemp("ios18")
    model = small_model(classes=2, seed=5)
    x = images(4, 32, seed=9)
    want = keras_probs_with_image_preprocessing(model, x, 1 / 127.5, [-1, -1, -1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = ct.convert(model, inputs=[ct.ImageType(name="image", shape=(1, 32, 32, 3),
                                                    scale=1 / 127.5, bias=[-1, -1, -1])],
                        classifier_config=ct.ClassifierConfig(LABELS), convert_to="mlprogram",
                        minimum_deployment_target=ct.target.iOS18)
        ml.save(str(d / "fp16.mlpackage"))
        files = {"fp16": d / "fp16.mlpackage"}
        configs = {
            "int8-block": cto.OpLinearQuantizerConfig(mode="linear", dtype="int8",
                                                      granularity="per_block", block_size=4,
                                                      weight_threshold=0),
            "int4-block": cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4",
                                                      granularity="per_block", block_size=4,
                                                      weight_threshold=0),
            "int8-channel": cto.OpLinearQuantizerConfig(mode="linear", dtype="int8",
                                                        granularity="per_channel",
                                                        weight_threshold=0),
        }
        for name, cfg in configs.items():
            q = cto.linear_quantize_weights(ml, cto.OptimizationConfig(global_config=cfg))
            q.save(str(d / f"{name}.mlpackage"))
            files[name] = d / f"{name}.mlpackage"
        lut = cto.palettize_weights(ml, cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
            mode="uniform", nbits=4, weight_threshold=0)))
        lut.save(str(d / "lut4.mlpackage"))
        files["lut4"] = d / "lut4.mlpackage"
    return files, x, want


@pytest.mark.slow
@pytest.mark.parametrize("variant,op", [
    ("fp16", None),
    ("int8-channel", "constexpr_blockwise_shift_scale"),
    ("int8-block", "constexpr_blockwise_shift_scale"),
    ("int4-block", "constexpr_blockwise_shift_scale"),
    ("lut4", "constexpr_lut_to_dense"),
])
def test_ios18_compressed_weights(small_ios18, variant, op):
    """fp16 against Keras; each compressed file against the fp16 one with its decoded
    weights substituted (same evaluator, same fp16 arithmetic: equal to fp16 rounding)."""
    files, x, want = small_ios18
    prog = load(files[variant])
    assert prog.compute_dtype == "fp16"
    got = prog.predict_batch(x)
    if op is None:
        assert np.abs(got - want).max() <= FP16_TOL
        return
    assert op in prog.op_types
    reference = with_decoded_weights(load(files["fp16"]), prog)
    np.testing.assert_allclose(got, reference.predict_batch(x), atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("variant,bits", [("int8-channel", 8), ("int8-block", 8),
                                          ("int4-block", 4), ("lut4", 4)])
def test_ios18_weights_decode_close_to_the_fp16_weights(small_ios18, variant, bits):
    files, _, _ = small_ios18
    base, prog = load(files["fp16"]), load(files[variant])
    checked = 0
    for name, value in prog._mil.consts.items():
        for suffix in ("_quantized", "_palettized"):
            if name.endswith(suffix):
                ref = base._mil.consts[name[: -len(suffix)]].astype(np.float32)
                # per-tensor bound: half a step of symmetric levels (the coarsest the
                # quantizers use: max|w| / (2**(bits-1) - 1)), plus fp16 rounding
                half_step = np.abs(ref).max() / (2 ** (bits - 1) - 1) / 2
                err = np.abs(value.astype(np.float32) - ref).max()
                assert err <= half_step * 1.01 + np.abs(ref).max() * 2e-3, name
                checked += 1
    assert checked >= 1


# --- errors --------------------------------------------------------------------------------

def test_unknown_neuralnetwork_layer_is_named(small, tmp_path):
    from coremltools.proto import Model_pb2

    path = small[1]["neuralnetwork-rgb"][0]
    spec = Model_pb2.Model()
    spec.ParseFromString(path.read_bytes())
    layers = spec.neuralNetworkClassifier.layers
    victim = next(layer for layer in layers if layer.WhichOneof("layer") == "activation")
    victim.l2normalize.epsilon = 1e-6        # setting another oneof member replaces it
    bad = tmp_path / "bad.mlmodel"
    bad.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedOpError) as err:
        load(bad)
    assert err.value.op_type == "l2normalize" and err.value.op_name == victim.name
    assert "l2normalize" in str(err.value) and victim.name in str(err.value)
    assert isinstance(err.value, MlkitError)


def test_unknown_mil_op_is_named(small, tmp_path):
    from coremltools.proto import Model_pb2

    src = small[1]["mlprogram-rgb"][0]
    pkg = tmp_path / "bad.mlpackage"
    shutil.copytree(src, pkg)
    model_file = pkg / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    ops = spec.mlProgram.functions["main"].block_specializations[
        spec.mlProgram.functions["main"].opset].operations
    victim = next(op for op in ops if op.type == "reduce_mean")
    victim.type = "non_maximum_suppression"
    model_file.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedOpError, match="non_maximum_suppression") as err:
        load(pkg)
    assert err.value.op_name in str(err.value) and "reduce_mean" not in err.value.op_type


def test_bad_files_raise_mlkit_errors(small, tmp_path):
    junk = tmp_path / "junk.mlmodel"
    junk.write_bytes(b"this is not a protobuf at all \xff\xfe" * 10)
    with pytest.raises(MlkitError, match="not a Core ML model"):
        load(junk)
    with pytest.raises(MlkitError, match="no such Core ML file"):
        load(tmp_path / "absent.mlmodel")
    pkg = tmp_path / "noweights.mlpackage"
    shutil.copytree(small[1]["mlprogram-rgb"][0], pkg)
    (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").unlink()
    with pytest.raises(MlkitError, match="missing its weight file"):
        load(pkg)
    empty = tmp_path / "empty.mlpackage"
    empty.mkdir()
    with pytest.raises(MlkitError, match="not a complete .mlpackage"):
        load(empty)


def test_supported_lists_both_formats():
    names = supported()
    assert {"convolution", "batchedMatmul", "softmaxND", "unary"} <= set(names["neuralnetwork"])
    assert {"conv", "constexpr_affine_dequantize", "classify", "cast"} <= set(names["mlprogram"])
