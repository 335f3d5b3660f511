"""MIL (``mlProgram``, ``.mlpackage``) op semantics, per coremltools' op definitions.

Modules: ``registry`` (op type -> function, ``Args``, ``RunContext``), one module per op
family — ``elementwise`` (activations, unary and binary math), ``convolution``
(convolution, pooling, padding), ``linear`` (matmul, linear), ``normalization`` (softmax,
batch / layer norm), ``reductions``, ``shapes`` (transpose, reshape, squeeze, expand_dims,
concat), ``dtypes`` (fp16 storage, cast), ``classifier`` (classify), ``constexpr`` (weight
decompression at load time) — and ``graph`` (``MILGraph``: compiling and running a
program).

The family modules register their ops when imported; importing them all here is what
makes the registry complete, so every user goes through this package.
"""

from __future__ import annotations

# The op families: each registers its ops in registry.OPS when imported.
from . import classifier, constexpr, convolution, dtypes, elementwise  # noqa: F401
from . import linear, normalization, reductions, shapes  # noqa: F401
from .graph import FORMAT, MILGraph, OutSpec, Step, supported_ops
from .registry import Args, RunContext

__all__ = ["FORMAT", "Args", "MILGraph", "OutSpec", "RunContext", "Step", "supported_ops"]
