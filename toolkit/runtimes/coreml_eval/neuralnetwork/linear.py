"""NeuralNetwork matrix-product layers, per ``NeuralNetwork.proto``: ``innerProduct`` (a
dense layer over the last axes of a rank 1-5 input) and ``batchedMatmul`` (two inputs, or
one input and a stored weight matrix)."""

from __future__ import annotations

from ....errors import MlkitError
from .. import ops
from ..errors import Unsupported
from ..weights import nn_weights
from .registry import Fn, f32, implements


def _inner_product_rows(x, cout: int, layer_name: str):
    """(x as a matrix of rows, the output shape) for an innerProduct input of rank 1-5."""
    shape = x.shape
    if x.ndim == 1:
        return x.reshape(1, -1), (cout,)
    if x.ndim == 2:
        return x, (shape[0], cout)
    if x.ndim == 3:
        return x.reshape(-1, shape[2]), (shape[0], shape[1], cout)
    if x.ndim == 4:
        return x.reshape(shape[0], -1), (shape[0], cout, 1, 1)
    if x.ndim == 5:
        return x.reshape(shape[0] * shape[1], -1), (shape[0], shape[1], cout, 1, 1)
    raise MlkitError(f"innerProduct '{layer_name}': input of rank {x.ndim}")


@implements("innerProduct")
def _inner_product(p, layer) -> Fn:
    if getattr(p, "int8DynamicQuantize", False):
        raise Unsupported("int8DynamicQuantize (activations quantized at run time)",
                          "innerProduct (int8DynamicQuantize)")
    cin, cout = int(p.inputChannels), int(p.outputChannels)
    w = nn_weights(p.weights, cin * cout, channels=cout, name=layer.name).reshape(cout, cin)
    b = nn_weights(p.bias, cout, channels=cout, name=layer.name) if p.hasBias else None

    def run(xs, ctx):
        m, out_shape = _inner_product_rows(f32(xs[0]), cout, layer.name)
        y = m @ w.T
        if b is not None:
            y = y + b
        return [y.reshape(out_shape)]
    return run


@implements("batchedMatmul")
def _batched_matmul(p, layer) -> Fn:
    if getattr(p, "int8DynamicQuantize", False):
        raise Unsupported("int8DynamicQuantize (activations quantized at run time)",
                          "batchedMatmul (int8DynamicQuantize)")
    if len(layer.input) == 2:
        ta, tb = bool(p.transposeA), bool(p.transposeB)
        return lambda xs, ctx: [ops.matmul(xs[0], xs[1], ta, tb)]
    x1, x2 = int(p.weightMatrixFirstDimension), int(p.weightMatrixSecondDimension)
    # Stored column-major: the flat values are W.T ([X2, X1]) in row-major order.
    w = nn_weights(p.weights, x1 * x2, channels=x2, name=layer.name).reshape(x2, x1).T
    b = nn_weights(p.bias, x2, channels=x2, name=layer.name) if p.hasBias else None

    def run(xs, ctx):
        y = f32(xs[0]) @ w
        return [y + b if b is not None else y]
    return run
