"""The Core ML reference evaluator's kernels and weight formats, each checked against
TensorFlow (or coremltools' own writer) on random inputs. No model conversion here."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from helpers_arrays import nchw, nhwc, normal_arrays  # noqa: E402
from toolkit.runtimes.coreml_eval import ops  # noqa: E402
from toolkit.runtimes.coreml_eval.weights import BlobFile, nn_weights, unpack_bits  # noqa: E402

RNG = np.random.default_rng(1234)
rand = normal_arrays(RNG)   # rand(*shape, scale=1.0): float32 normal draws from RNG
ATOL = 1e-5


def tf_conv(x_nchw, w_oihw, strides, dilations, padding, groups=1):
    """TensorFlow reference: NHWC conv2d, grouped convs as one conv per group."""
    x = tf.constant(nhwc(x_nchw))
    w = np.transpose(w_oihw, (2, 3, 1, 0))          # HWIO
    cin = x_nchw.shape[1]
    cpg, opg = cin // groups, w_oihw.shape[0] // groups
    outs = []
    for g in range(groups):
        outs.append(tf.nn.conv2d(x[..., g * cpg:(g + 1) * cpg], w[..., g * opg:(g + 1) * opg],
                                 strides=[1, *strides, 1], padding=padding,
                                 dilations=[1, *dilations, 1]))
    return nchw(tf.concat(outs, axis=-1).numpy())


# --- convolution ---------------------------------------------------------------------------

@pytest.mark.parametrize("k,stride,dil,padding", [
    (3, 1, 1, "VALID"), (3, 1, 1, "SAME"), (3, 2, 1, "SAME"), (3, 2, 1, "VALID"),
    (1, 1, 1, "VALID"), (1, 2, 1, "SAME"), (5, 2, 1, "SAME"), (3, 1, 2, "SAME"),
    (2, 2, 1, "SAME"), (4, 3, 1, "SAME"),
])
def test_conv2d_matches_tensorflow(k, stride, dil, padding):
    x = rand(2, 5, 13, 12)
    w = rand(7, 5, k, k)
    b = rand(7)
    pads = (ops.same_pads(x.shape[2:], (k, k), (stride, stride), (dil, dil))
            if padding == "SAME" else (0, 0, 0, 0))
    got = ops.conv2d(x, w, b, strides=(stride, stride), dilations=(dil, dil), pads=pads)
    want = tf_conv(x, w, (stride, stride), (dil, dil), padding) + b.reshape(1, -1, 1, 1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5)


def test_conv2d_explicit_asymmetric_padding_matches_tensorflow():
    x, w = rand(1, 3, 10, 9), rand(4, 3, 3, 3)
    pads = (0, 1, 2, 0)
    got = ops.conv2d(x, w, strides=(2, 1), pads=pads)
    want = tf_conv(x, w, (2, 1), (1, 1), [[0, 0], [0, 1], [2, 0], [0, 0]])
    np.testing.assert_allclose(got, want, atol=ATOL)


@pytest.mark.parametrize("stride,mult,padding", [(1, 1, "SAME"), (2, 1, "SAME"), (2, 1, "VALID"),
                                                 (1, 2, "SAME"), (2, 3, "VALID")])
def test_depthwise_conv_matches_tensorflow(stride, mult, padding):
    c = 6
    x = rand(2, c, 11, 14)
    w = rand(c * mult, 1, 3, 3)       # Core ML layout: [C_out, C_in / groups = 1, kH, kW]
    pads = ops.same_pads(x.shape[2:], (3, 3), (stride, stride)) if padding == "SAME" else (0,) * 4
    got = ops.conv2d(x, w, strides=(stride, stride), pads=pads, groups=c)
    tf_w = np.transpose(w.reshape(c, mult, 3, 3), (2, 3, 0, 1))   # [kH, kW, C, mult]
    want = tf.nn.depthwise_conv2d(nhwc(x), tf_w, strides=[1, stride, stride, 1], padding=padding)
    np.testing.assert_allclose(got, nchw(want.numpy()), atol=ATOL)


def test_grouped_conv_matches_tensorflow():
    x, w = rand(1, 8, 9, 9), rand(6, 4, 3, 3)
    got = ops.conv2d(x, w, pads=ops.same_pads((9, 9), (3, 3), (1, 1)), groups=2)
    np.testing.assert_allclose(got, tf_conv(x, w, (1, 1), (1, 1), "SAME", groups=2), atol=ATOL)


def test_same_pads_heavy_side():
    # 96 -> 48 with a 3x3 stride-2 kernel needs one padding row: TF puts it at the bottom.
    assert ops.same_pads((96, 96), (3, 3), (2, 2)) == (0, 1, 0, 1)
    assert ops.same_pads((96, 96), (3, 3), (2, 2), lower=True) == (1, 0, 1, 0)
    assert ops.same_pads((7, 8), (3, 3), (1, 1)) == (1, 1, 1, 1)


# --- padding, pooling ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_matches_tensorflow(mode):
    x = rand(2, 3, 5, 6)
    widths = [(1, 2), (3, 0)]
    got = ops.pad(x, widths, mode, value=0.5 if mode == "constant" else 0.0)
    tf_mode = {"constant": "CONSTANT", "reflect": "REFLECT"}[mode]
    want = tf.pad(x, [[0, 0], [0, 0], *widths], mode=tf_mode,
                  constant_values=0.5 if mode == "constant" else 0)
    np.testing.assert_allclose(got, want.numpy(), atol=0)


def test_pad_replicate_matches_tensorflow_gather():
    # tf.pad has no edge mode; replicate == gathering with indices clamped to the edges.
    x = rand(1, 2, 4, 5)
    got = ops.pad(x, [(2, 1), (0, 3)], "replicate")
    rows = np.clip(np.arange(-2, 4 + 1), 0, 3)
    cols = np.clip(np.arange(0, 5 + 3), 0, 4)
    want = tf.gather(tf.gather(x, rows, axis=2), cols, axis=3)
    np.testing.assert_allclose(got, want.numpy(), atol=0)


@pytest.mark.parametrize("mode,k,s,padding", [("max", 2, 2, "VALID"), ("max", 3, 2, "SAME"),
                                              ("avg", 2, 2, "VALID"), ("avg", 3, 2, "SAME"),
                                              ("avg", 3, 1, "SAME"), ("max", 3, 1, "SAME")])
def test_pool_matches_tensorflow(mode, k, s, padding):
    x = rand(2, 4, 9, 10)
    pads = ops.same_pads(x.shape[2:], (k, k), (s, s)) if padding == "SAME" else (0,) * 4
    # TF's SAME average pooling divides by the real pixels only: exclude_padding=True.
    got = ops.pool2d(x, (k, k), mode=mode, strides=(s, s), pads=pads, exclude_padding=True)
    f = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
    want = f(nhwc(x), ksize=k, strides=s, padding=padding)
    np.testing.assert_allclose(got, nchw(want.numpy()), atol=ATOL)


def test_avg_pool_counting_padding_matches_tensorflow_on_zero_padded_input():
    x = rand(1, 2, 6, 7)
    got = ops.pool2d(x, (3, 3), mode="avg", strides=(2, 2), pads=(1, 1, 1, 1))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = tf.nn.avg_pool2d(nhwc(padded), ksize=3, strides=2, padding="VALID")
    np.testing.assert_allclose(got, nchw(want.numpy()), atol=ATOL)


def test_pool_ceil_mode_adds_a_partial_window():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    got = ops.pool2d(x, (2, 2), mode="max", strides=(2, 2), ceil_mode=True)
    assert got.shape == (1, 1, 3, 3)
    assert got[0, 0, 2, 2] == 24 and got[0, 0, 0, 0] == 6
    avg = ops.pool2d(x, (2, 2), mode="avg", strides=(2, 2), ceil_mode=True)
    assert avg[0, 0, 2, 2] == 24     # the overhanging window averages its one real pixel


def test_global_mean_matches_tensorflow_reduce_mean():
    x = rand(2, 3, 4, 5)
    for axes, keep in [((2, 3), False), ((1, 2), True), ((-1,), False)]:
        np.testing.assert_allclose(np.mean(x, axis=axes, keepdims=keep),
                                   tf.reduce_mean(x, axis=axes, keepdims=keep).numpy(), atol=ATOL)


# --- matmul, softmax, activations, reshape ------------------------------------------------

@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_tensorflow(ta, tb):
    a = rand(3, 5, 4) if not ta else rand(3, 4, 5)
    b = rand(4, 6) if not tb else rand(6, 4)
    got = ops.matmul(a, b, ta, tb)
    want = tf.linalg.matmul(a, np.broadcast_to(b, (3,) + b.shape), transpose_a=ta, transpose_b=tb)
    np.testing.assert_allclose(got, want.numpy(), atol=ATOL)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_matches_tensorflow(axis):
    x = rand(3, 4, 5, scale=5)
    np.testing.assert_allclose(ops.softmax(x, axis), tf.nn.softmax(x, axis=axis).numpy(), atol=1e-6)


def test_activations_match_tensorflow():
    x = rand(1000, scale=5)
    np.testing.assert_allclose(np.clip(x, 0, 6), tf.nn.relu6(x).numpy(), atol=0)
    np.testing.assert_allclose(ops.sigmoid(x), tf.sigmoid(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(ops.softplus(x), tf.nn.softplus(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(ops.gelu(x), tf.nn.gelu(x, approximate=False).numpy(), atol=1e-5)
    np.testing.assert_allclose(ops.gelu(x, "TANH_APPROXIMATION"),
                               tf.nn.gelu(x, approximate=True).numpy(), atol=1e-5)
    np.testing.assert_allclose(np.clip(x, -1.5, 2.5), tf.clip_by_value(x, -1.5, 2.5).numpy(), atol=0)


def test_neuralnetwork_relu6_encoding_equals_relu6():
    # coremltools writes relu6 for a NeuralNetwork as ReLU, linear(-1), unary THRESHOLD
    # (alpha -6: max(x, -6)), linear(-1): min(relu(x), 6).
    x = rand(1000, scale=8)
    encoded = -np.maximum(-np.maximum(x, 0), -6)
    np.testing.assert_allclose(encoded, tf.nn.relu6(x).numpy(), atol=0)


def test_reshape_and_transpose_match_tensorflow():
    x = rand(2, 3, 4, 5)
    np.testing.assert_array_equal(np.transpose(x, (0, 2, 3, 1)),
                                  tf.transpose(x, (0, 2, 3, 1)).numpy())
    for target in ([2, -1], [0, 12, 5], [-1, 4, 5]):
        shape = ops.resolve_reshape(x.shape, target)
        tf_target = [x.shape[i] if t == 0 else t for i, t in enumerate(target)]
        np.testing.assert_array_equal(x.reshape(shape), tf.reshape(x, tf_target).numpy())
    with pytest.raises(ValueError):
        ops.resolve_reshape(x.shape, [7, -1])


def test_fp16_rounding_matches_tensorflow_cast():
    x = rand(10000, scale=100)
    np.testing.assert_array_equal(x.astype(np.float16), tf.cast(x, tf.float16).numpy())
    np.testing.assert_array_equal(x.astype(np.float16).astype(np.float32),
                                  tf.cast(tf.cast(x, tf.float16), tf.float32).numpy())


# --- weight storage ------------------------------------------------------------------------

def test_unpack_bits_both_bit_orders():
    # MIL packs from the least significant bit: values 1, 7, 2 in 3 bits -> 0b10_111_001, 0b0.
    assert unpack_bits(bytes([0b10111001, 0]), 3, 3).tolist() == [1, 7, 2]
    # int4 two's complement, LSB first: [-8, 7, 1] -> 0x78, 0x01
    assert unpack_bits(bytes([0x78, 0x01]), 4, 3, signed=True).tolist() == [-8, 7, 1]
    # NeuralNetwork packs from the most significant bit: 2-bit [1, 2, 3, 0] -> 0b01_10_11_00
    assert unpack_bits(bytes([0b01101100]), 2, 4, msb_first=True).tolist() == [1, 2, 3, 0]


def test_blob_file_reads_what_coremltools_writes(tmp_path):
    storage = pytest.importorskip("coremltools.libmilstoragepython")
    from coremltools.converters.mil.mil import types

    arrays = {
        "write_float_data": rand(37),
        "write_fp16_data": rand(9).astype(np.float16),
        "write_int8_data": RNG.integers(-128, 128, 11).astype(np.int8),
        "write_uint8_data": RNG.integers(0, 256, 13).astype(np.uint8),
        "write_int4_data": RNG.integers(-8, 8, 7).astype(types.np_int4_dtype),
        "write_uint4_data": RNG.integers(0, 16, 9).astype(types.np_uint4_dtype),
        "write_uint2_data": RNG.integers(0, 4, 10).astype(types.string_to_nptype("uint2")),
        "write_int32_data": RNG.integers(-1000, 1000, 5).astype(np.int32),
    }
    path = tmp_path / "weight.bin"
    writer = storage._BlobStorageWriter(str(path))
    offsets = {}
    for method, arr in arrays.items():
        data = arr.view(np.uint16) if arr.dtype == np.float16 else arr
        offsets[method] = getattr(writer, method)(np.ascontiguousarray(data).ravel())
    del writer
    blob = BlobFile(path)
    assert blob.count == len(arrays)
    for method, arr in arrays.items():
        got = blob.read(offsets[method], arr.size)
        np.testing.assert_array_equal(got.astype(np.float64), arr.astype(np.float64), err_msg=method)


def test_blob_file_rejects_a_wrong_offset(tmp_path):
    from toolkit.errors import MlkitError

    path = tmp_path / "weight.bin"
    path.write_bytes(np.array([1, 2], np.uint32).tobytes() + bytes(62 + 64))
    with pytest.raises(MlkitError, match="bad sentinel"):
        BlobFile(path).read(64, 1)


def test_nn_weights_fp16_and_linear_and_lut():
    from coremltools.proto import NeuralNetwork_pb2

    w = rand(4, 3)
    wp = NeuralNetwork_pb2.WeightParams()
    wp.float16Value = w.astype(np.float16).tobytes()
    np.testing.assert_array_equal(nn_weights(wp, 12), w.astype(np.float16).astype(np.float32).ravel())

    q = RNG.integers(0, 256, (4, 3)).astype(np.uint8)
    scale, bias = rand(4), rand(4)
    wp = NeuralNetwork_pb2.WeightParams()
    wp.rawValue = q.tobytes()
    wp.quantization.numberOfBits = 8
    wp.quantization.linearQuantization.scale.extend(scale)
    wp.quantization.linearQuantization.bias.extend(bias)
    want = q * scale[:, None] + bias[:, None]
    np.testing.assert_allclose(nn_weights(wp, 12, channels=4), want.ravel(), atol=1e-6)

    lut = rand(4)
    idx = RNG.integers(0, 4, 12)
    packed = np.packbits(((idx[:, None] >> np.array([1, 0])) & 1).ravel())   # MSB first
    wp = NeuralNetwork_pb2.WeightParams()
    wp.rawValue = packed.tobytes()
    wp.quantization.numberOfBits = 2
    wp.quantization.lookupTableQuantization.floatValue.extend(lut)
    np.testing.assert_array_equal(nn_weights(wp, 12), lut[idx])
