"""NeuralNetwork (``.mlmodel``) layer semantics, per ``NeuralNetwork.proto``.

Tensor layout: from specification version 4 on, coremltools writes
``arrayInputShapeMapping = EXACT_ARRAY_MAPPING`` and ``imageInputShapeMapping =
RANK4_IMAGE_MAPPING``: an image is a rank-4 ``[batch, C, H, W]`` tensor and the "ND"
layers (``batchedMatmul``, ``reduceMean``, ``softmaxND``, ``transpose`` ...) see tensors of
their true rank. Older files map everything to rank 5 ``[seq, batch, C, H, W]``; the
legacy layers here read their axes from the end (``C`` = -3, ``H`` = -2, ``W`` = -1), as the
spec defines, so both mappings run.

Modules: ``registry`` (layer type -> builder, ``RunContext``), one module per layer
family — ``convolution`` (convolution, pooling, padding), ``activations``, ``elementwise``
(unary math, multi-input arithmetic, scale, bias), ``normalization`` (batchnorm,
softmax), ``linear`` (innerProduct, batchedMatmul), ``reductions``, ``shapes``
(transpose, reshape, flatten, squeeze, concat, split, slice), ``constants`` — and
``graph`` (``NNGraph``: compiling and running a network).

The family modules register their builders when imported; importing them all here is
what makes the registry complete, so every user goes through this package.
"""

from __future__ import annotations

# The layer families: each registers its builders in registry.BUILDERS when imported.
from . import activations, constants, convolution, elementwise  # noqa: F401
from . import linear, normalization, reductions, shapes  # noqa: F401
from .graph import FORMAT, NNGraph, Step
from .registry import RunContext, supported_layers

__all__ = ["FORMAT", "NNGraph", "RunContext", "Step", "supported_layers"]
