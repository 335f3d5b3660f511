"""The evaluator's NeuralNetwork layers and MIL ops, one small file at a time: each test
writes a tiny .mlmodel (coremltools' NeuralNetworkBuilder) or .mlpackage (a MIL program,
converted with the empty pass pipeline so the ops stay as written), runs it with the
evaluator, and compares with TensorFlow on random inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
ct = pytest.importorskip("coremltools")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from helpers_arrays import nchw, nhwc, normal_arrays  # noqa: E402
from toolkit.runtimes.coreml_eval import load  # noqa: E402

RNG = np.random.default_rng(7)
rand = normal_arrays(RNG)   # rand(*shape, scale=1.0): float32 normal draws from RNG
ATOL = 1e-5


def run_mil(tmp_path, fn, inputs, *, opset=None, name="p"):
    """Build fn(*inputs) as a MIL program, save it as .mlpackage, run it; {output: array}."""
    opset = opset or ct.target.iOS15
    specs = [mb.TensorSpec(shape=v.shape, dtype=types.fp32) for v in inputs.values()]
    prog = mb.program(input_specs=specs, opset_version=opset)(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = ct.convert(prog, convert_to="mlprogram", pass_pipeline=ct.PassPipeline.EMPTY,
                        compute_precision=ct.precision.FLOAT32, minimum_deployment_target=opset)
    path = tmp_path / f"{name}.mlpackage"
    ml.save(str(path))
    model = load(path)
    outs = model.predict(inputs)
    return model, outs


def run_nn(tmp_path, inputs, build, outputs=("out",)):
    """Build a NeuralNetwork with ``build(builder)``, save it as .mlmodel, run it."""
    b = NeuralNetworkBuilder([(n, datatypes.Array(*v.shape)) for n, v in inputs.items()],
                             [(o, None) for o in outputs], disable_rank5_shape_mapping=True)
    build(b)
    path = tmp_path / "n.mlmodel"
    path.write_bytes(b.spec.SerializeToString())
    model = load(path)
    return model, model.predict(inputs)


# --- MIL ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad_type,strides,dil,groups", [
    ("valid", [1, 1], [1, 1], 1), ("same", [2, 2], [1, 1], 1), ("same", [1, 1], [2, 2], 1),
    ("same", [2, 2], [1, 1], 4), ("custom", [2, 1], [1, 1], 2), ("same_lower", [2, 2], [1, 1], 1),
])
def test_mil_conv(tmp_path, pad_type, strides, dil, groups):
    x = rand(1, 4, 10, 9)
    w = rand(8, 4 // groups, 3, 3)
    b = rand(8)
    pad = [1, 0, 2, 1]

    def fn(x):
        kw = dict(pad=pad) if pad_type == "custom" else {}
        return mb.conv(x=x, weight=w, bias=b, strides=strides, dilations=dil, groups=groups,
                       pad_type=pad_type, name="out", **kw)

    opset = ct.target.iOS16 if pad_type == "same_lower" else None    # same_lower: iOS 16+
    _, out = run_mil(tmp_path, fn, {"x": x}, opset=opset)
    cpg, opg = 4 // groups, 8 // groups
    if pad_type == "custom":
        xin, tf_pad = np.pad(x, ((0, 0), (0, 0), (1, 0), (2, 1))), "VALID"
    elif pad_type == "same_lower":
        # height 10 -> 5 needs 1 padding row (odd: on top); width 9 -> 5 needs 2 (1 + 1)
        xin, tf_pad = np.pad(x, ((0, 0), (0, 0), (1, 0), (1, 1))), "VALID"
    else:
        xin, tf_pad = x, pad_type.upper()
    hwio = np.transpose(w, (2, 3, 1, 0))
    want = np.concatenate([
        tf.nn.conv2d(nhwc(xin)[..., g * cpg:(g + 1) * cpg], hwio[..., g * opg:(g + 1) * opg],
                     strides=[1, *strides, 1], padding=tf_pad, dilations=[1, *dil, 1]).numpy()
        for g in range(groups)], axis=-1) + b
    np.testing.assert_allclose(out["out"], nchw(want), atol=ATOL)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_mil_pad(tmp_path, mode):
    x = rand(1, 2, 5, 6)

    def fn(x):
        return mb.pad(x=x, pad=[1, 2, 2, 1], mode=mode, constant_val=0.25, name="out")

    _, out = run_mil(tmp_path, fn, {"x": x})
    if mode == "replicate":
        want = tf.gather(tf.gather(x, np.clip(np.arange(-1, 7), 0, 4), axis=2),
                         np.clip(np.arange(-2, 7), 0, 5), axis=3)
    else:
        want = tf.pad(x, [[0, 0], [0, 0], [1, 2], [2, 1]], mode=mode.upper(),
                      constant_values=0.25 if mode == "constant" else 0)
    np.testing.assert_allclose(out["out"], np.asarray(want), atol=0)


@pytest.mark.parametrize("op,pad_type,exclude", [("avg_pool", "same", True), ("avg_pool", "valid", False),
                                                 ("max_pool", "same", False), ("max_pool", "valid", False)])
def test_mil_pools(tmp_path, op, pad_type, exclude):
    x = rand(2, 3, 9, 8)

    def fn(x):
        kw = dict(exclude_padding_from_average=exclude) if op == "avg_pool" else {}
        return getattr(mb, op)(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type=pad_type,
                               name="out", **kw)

    _, out = run_mil(tmp_path, fn, {"x": x})
    f = tf.nn.avg_pool2d if op == "avg_pool" else tf.nn.max_pool2d
    want = f(nhwc(x), ksize=3, strides=2, padding=pad_type.upper())
    np.testing.assert_allclose(out["out"], nchw(want), atol=ATOL)


def test_mil_matmul_linear_reduce_softmax(tmp_path):
    x = rand(2, 3, 5)
    y = rand(4, 5)
    w, b = rand(6, 4), rand(6)

    def fn(x):
        m = mb.matmul(x=x, y=y, transpose_y=True, name="mm")            # (2, 3, 4)
        lin = mb.linear(x=m, weight=w, bias=b, name="lin")              # (2, 3, 6)
        r = mb.reduce_mean(x=lin, axes=[1], keep_dims=False, name="rm")  # (2, 6)
        k = mb.reduce_mean(x=lin, axes=[-1], keep_dims=True, name="rk")  # (2, 3, 1)
        return mb.softmax(x=r, axis=-1, name="sm"), mb.softmax(x=lin, axis=1, name="s1"), k

    _, out = run_mil(tmp_path, fn, {"x": x})
    mm = tf.linalg.matmul(x, np.broadcast_to(y, (2, 4, 5)), transpose_b=True)
    lin = tf.linalg.matmul(mm, np.broadcast_to(w.T, (2, 4, 6))) + b
    np.testing.assert_allclose(out["sm"], tf.nn.softmax(tf.reduce_mean(lin, axis=1)).numpy(), atol=ATOL)
    np.testing.assert_allclose(out["s1"], tf.nn.softmax(lin, axis=1).numpy(), atol=ATOL)
    np.testing.assert_allclose(out["rk"], tf.reduce_mean(lin, axis=-1, keepdims=True).numpy(), atol=ATOL)


def test_mil_elementwise_activations_shapes(tmp_path):
    x = rand(2, 3, 4, 5, scale=4)

    def fn(x):
        r6 = mb.relu6(x=x, name="r6")
        c = mb.clip(x=x, alpha=-1.0, beta=2.0, name="clip")
        a = mb.add(x=r6, y=np.float32(0.5), name="add")
        s = mb.sub(x=a, y=rand(1, 3, 1, 1) * 0 + np.float32(1.0), name="sub")
        m = mb.mul(x=s, y=c, name="mul")
        d = mb.real_div(x=m, y=np.float32(4.0), name="div")
        t = mb.transpose(x=d, perm=[0, 2, 3, 1], name="t")
        r = mb.reshape(x=t, shape=[2, -1, 3], name="r")
        e = mb.sigmoid(x=mb.relu(x=r), name="sig")
        cat = mb.concat(values=[e, mb.tanh(x=r)], axis=-1, name="cat")
        return cat, mb.cast(x=cat, dtype="fp16", name="half")

    model, out = run_mil(tmp_path, fn, {"x": x})
    r6 = tf.nn.relu6(x)
    d = (r6 + 0.5 - 1.0) * tf.clip_by_value(x, -1.0, 2.0) / 4.0
    r = tf.reshape(tf.transpose(d, [0, 2, 3, 1]), [2, -1, 3])
    want = tf.concat([tf.sigmoid(tf.nn.relu(r)), tf.tanh(r)], axis=-1).numpy()
    np.testing.assert_allclose(out["cat"], want, atol=ATOL)
    # An iOS 15 program cannot return fp16: coremltools casts the output back to fp32.
    assert out["half"].dtype == np.float32
    np.testing.assert_array_equal(out["half"], tf.cast(tf.cast(out["cat"], tf.float16), tf.float32).numpy())


def test_mil_fp16_program_rounds_between_ops(tmp_path):
    x = rand(1, 8, scale=3)

    def fn(x):
        h = mb.cast(x=x, dtype="fp16")
        y = mb.mul(x=h, y=np.float16(1 / 3), name="y")
        z = mb.add(x=y, y=np.float16(1000.0), name="z")
        return mb.cast(x=z, dtype="fp32", name="out")

    _, out = run_mil(tmp_path, fn, {"x": x})
    h = tf.cast(x, tf.float16)
    want = tf.cast(h * tf.constant(1 / 3, tf.float16) + tf.constant(1000.0, tf.float16), tf.float32)
    np.testing.assert_array_equal(out["out"], want.numpy())


def test_mil_constexpr_affine_dequantize(tmp_path):
    q = RNG.integers(0, 256, (4, 6)).astype(np.uint8)
    zp = RNG.integers(100, 150, 4).astype(np.uint8)
    scale = (RNG.uniform(0.01, 0.1, 4)).astype(np.float32)
    x = rand(3, 6)

    def fn(x):
        w = mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zp, scale=scale, axis=0)
        return mb.linear(x=x, weight=w, name="out")

    model, out = run_mil(tmp_path, fn, {"x": x}, opset=ct.target.iOS16)
    w = (tf.cast(q, tf.float32) - tf.cast(zp, tf.float32)[:, None]) * scale[:, None]
    np.testing.assert_allclose(out["out"], tf.linalg.matmul(x, w, transpose_b=True).numpy(), atol=ATOL)
    assert "constexpr_affine_dequantize" in model.op_types


def test_mil_ios18_blockwise_and_lut(tmp_path):
    data = RNG.integers(-8, 8, (4, 8)).astype(types.np_int4_dtype)
    scale = RNG.uniform(0.01, 0.1, (4, 2)).astype(np.float32)     # blocks of 4 columns
    offset = RNG.integers(-2, 2, (4, 2)).astype(types.np_int4_dtype)
    lut = rand(2, 1, 16, 1)                                       # two tables, 8 rows each
    idx = RNG.integers(0, 16, (16, 3)).astype(types.np_uint4_dtype)
    x = rand(2, 8)

    def fn(x):
        w1 = mb.constexpr_blockwise_shift_scale(data=data, scale=scale, offset=offset)
        w2 = mb.constexpr_lut_to_dense(indices=idx, lut=lut)
        return (mb.linear(x=x, weight=w1, name="o1"),
                mb.matmul(x=mb.reshape(x=x, shape=[1, 16]), y=w2, name="o2"))

    _, out = run_mil(tmp_path, fn, {"x": x}, opset=ct.target.iOS18)
    w1 = (data.astype(np.float32) - np.repeat(offset.astype(np.float32), 4, axis=1)) \
        * np.repeat(scale, 4, axis=1)
    np.testing.assert_allclose(out["o1"], tf.linalg.matmul(x, w1, transpose_b=True).numpy(), atol=ATOL)
    w2 = np.concatenate([lut[0, 0, :, 0][idx[:8].astype(int)], lut[1, 0, :, 0][idx[8:].astype(int)]])
    np.testing.assert_allclose(out["o2"], tf.linalg.matmul(x.reshape(1, 16), w2).numpy(), atol=ATOL)


# --- NeuralNetwork --------------------------------------------------------------------------

@pytest.mark.parametrize("border,asym", [("same", "BOTTOM_RIGHT_HEAVY"), ("same", "TOP_LEFT_HEAVY"),
                                         ("valid", None)])
def test_nn_convolution(tmp_path, border, asym):
    x = rand(1, 3, 8, 8)
    w = rand(5, 3, 3, 3)                       # [C_out, C_in, kH, kW]
    b = rand(5)

    def build(nb):
        kw = dict(padding_top=1, padding_bottom=0, padding_left=0, padding_right=2) if border == "valid" else {}
        nb.add_convolution("conv", kernel_channels=3, output_channels=5, height=3, width=3,
                           stride_height=2, stride_width=2, border_mode=border, groups=1,
                           W=np.transpose(w, (2, 3, 1, 0)), b=b, has_bias=True,
                           input_name="x", output_name="out",
                           same_padding_asymmetry_mode=asym or "BOTTOM_RIGHT_HEAVY", **kw)

    _, out = run_nn(tmp_path, {"x": x}, build)
    if border == "valid":
        xin, pad = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 2))), "VALID"
    elif asym == "TOP_LEFT_HEAVY":
        xin, pad = np.pad(x, ((0, 0), (0, 0), (1, 0), (1, 0))), "VALID"
    else:
        xin, pad = x, "SAME"
    want = tf.nn.conv2d(nhwc(xin), np.transpose(w, (2, 3, 1, 0)), strides=2, padding=pad) + b
    np.testing.assert_allclose(out["out"], nchw(want), atol=ATOL)


def test_nn_depthwise_pool_padding_activation(tmp_path):
    x = rand(1, 4, 9, 9, scale=3)
    w = rand(4, 1, 3, 3)

    def build(nb):
        nb.add_padding("pad", left=1, right=1, top=2, bottom=0, padding_type="reflection",
                       input_name="x", output_name="p")
        nb.add_convolution("dw", kernel_channels=1, output_channels=4, height=3, width=3,
                           stride_height=1, stride_width=1, border_mode="valid", groups=4,
                           W=np.transpose(w, (2, 3, 1, 0)), b=None, has_bias=False,
                           input_name="p", output_name="c")
        nb.add_activation("lrelu", "LEAKYRELU", "c", "a", params=[0.2])
        nb.add_pooling("pool", height=2, width=2, stride_height=2, stride_width=2,
                       layer_type="AVERAGE", padding_type="SAME", input_name="a",
                       output_name="out", exclude_pad_area=True)

    _, out = run_nn(tmp_path, {"x": x}, build)
    p = tf.pad(nhwc(x), [[0, 0], [2, 0], [1, 1], [0, 0]], mode="REFLECT")
    c = tf.nn.depthwise_conv2d(p, np.transpose(w, (2, 3, 0, 1)), strides=[1, 1, 1, 1], padding="VALID")
    want = tf.nn.avg_pool2d(tf.nn.leaky_relu(c, 0.2), 2, 2, "SAME")
    np.testing.assert_allclose(out["out"], nchw(want), atol=ATOL)


def test_nn_unary_and_activations(tmp_path):
    x = rand(2, 3, 4, scale=3)

    def build(nb):
        nb.add_unary("abs", "x", "a", mode="abs")
        nb.add_unary("thr", "x", "t", mode="threshold", alpha=-0.5)
        nb.add_unary("sq", "a", "s", mode="sqrt")
        nb.add_unary("pw", "a", "pw", mode="power", alpha=2.0, scale=0.5, shift=1.0)
        nb.add_activation("sig", "SIGMOID", "t", "sig")
        nb.add_activation("elu", "ELU", "x", "elu", params=1.5)
        nb.add_activation("lin", "LINEAR", "x", "lin", params=[2.0, -1.0])
        nb.add_elementwise("sum", ["sig", "elu", "lin", "s", "pw"], "out", mode="ADD")

    _, out = run_nn(tmp_path, {"x": x}, build)
    want = (tf.sigmoid(tf.maximum(x, -0.5)) + tf.where(x > 0, x, 1.5 * (tf.exp(x) - 1))
            + 2 * x - 1 + tf.sqrt(tf.abs(x)) + (0.5 * tf.abs(x) + 1) ** 2)
    np.testing.assert_allclose(out["out"], want.numpy(), atol=ATOL)


def test_nn_inner_product_batched_matmul_softmax_reduce(tmp_path):
    x = rand(2, 6)
    w1, b1 = rand(5, 6), rand(5)
    w2, b2 = rand(5, 3), rand(3)

    def build(nb):
        nb.add_inner_product("ip", W=w1, b=b1, input_channels=6, output_channels=5,
                             has_bias=True, input_name="x", output_name="h")
        nb.add_batched_mat_mul("bmm", ["h"], "z", weight_matrix_rows=5, weight_matrix_columns=3,
                               W=w2, bias=b2)
        nb.add_softmax_nd("sm", "z", "out", axis=-1)
        nb.add_reduce_mean("rm", "z", "mean", axes=[0], keepdims=False)
        nb.add_transpose("tr", [1, 0], "z", "zt")
        nb.add_batched_mat_mul("bmm2", ["z", "zt"], "zz", transpose_b=False)

    _, out = run_nn(tmp_path, {"x": x}, build)
    z = (x @ w1.T + b1) @ w2 + b2
    np.testing.assert_allclose(out["out"], tf.nn.softmax(z).numpy(), atol=ATOL)
    model = load(tmp_path / "n.mlmodel")
    extra = model.predict({"x": x}, tensors=["mean", "zz"])
    np.testing.assert_allclose(extra["mean"], tf.reduce_mean(z, axis=0).numpy(), atol=ATOL)
    np.testing.assert_allclose(extra["zz"], tf.linalg.matmul(z, z.T).numpy(), atol=1e-4)


def test_nn_scale_batchnorm_concat_reshape_clip(tmp_path):
    x = rand(1, 3, 4, 4)
    gamma, beta, mean, var = rand(3), rand(3), rand(3), np.abs(rand(3)) + 0.5
    s = rand(3)

    def build(nb):
        nb.add_batchnorm("bn", 3, gamma, beta, mean, var, input_name="x", output_name="bn",
                         epsilon=1e-3)
        nb.add_scale("sc", W=s, b=None, has_bias=False, input_name="x", output_name="sc",
                     shape_scale=[3, 1, 1])
        nb.add_concat_nd("cat", ["bn", "sc"], "cat", axis=1)
        nb.add_clip("clip", "cat", "cl", min_value=-1.0, max_value=1.5)
        nb.add_reshape_static("rs", "cl", "rs", [1, 6, 16])
        nb.add_flatten_to_2d("fl", "rs", "out", axis=1)

    _, out = run_nn(tmp_path, {"x": x}, build)
    xh = nhwc(x)
    bn = tf.nn.batch_normalization(xh, mean, var, beta, gamma, 1e-3)
    cat = tf.concat([bn, xh * s], axis=-1)
    want = tf.reshape(tf.transpose(tf.clip_by_value(cat, -1.0, 1.5), [0, 3, 1, 2]), [1, 96])
    np.testing.assert_allclose(out["out"], want.numpy(), atol=ATOL)


# --- classifiers with integer labels ------------------------------------------------------

def test_int64_class_labels_in_both_formats(tmp_path):
    x = rand(1, 4)
    w = rand(3, 4)

    def build(nb):
        nb.add_inner_product("ip", W=w, b=None, input_channels=4, output_channels=3,
                             has_bias=False, input_name="x", output_name="logits")
        nb.add_softmax_nd("sm", "logits", "probs", axis=-1)
        nb.set_class_labels([10, 20, 30], predicted_feature_name="label",
                            prediction_blob="probs")

    b = NeuralNetworkBuilder([("x", datatypes.Array(1, 4))], [("probs", None)],
                             disable_rank5_shape_mapping=True, mode="classifier")
    build(b)
    (tmp_path / "c.mlmodel").write_bytes(b.spec.SerializeToString())
    nn = load(tmp_path / "c.mlmodel")
    want = tf.nn.softmax(x @ w.T).numpy()[0]
    out = nn.predict({"x": x})
    assert nn.class_labels == (10, 20, 30)
    assert out[nn.label_output] == [10, 20, 30][int(np.argmax(want))]
    np.testing.assert_allclose([out[nn.probabilities_output][k] for k in (10, 20, 30)], want, atol=ATOL)

    prog = mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])(
        lambda x: mb.softmax(x=mb.linear(x=x, weight=w), axis=-1, name="probs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                        classifier_config=ct.ClassifierConfig([10, 20, 30]))
    ml.save(str(tmp_path / "c.mlpackage"))
    mil = load(tmp_path / "c.mlpackage")
    out = mil.predict({"x": x})
    assert mil.class_labels == (10, 20, 30)
    assert out[mil.label_output] == [10, 20, 30][int(np.argmax(want))]
    np.testing.assert_allclose([out[mil.probabilities_output][k] for k in (10, 20, 30)], want, atol=ATOL)
