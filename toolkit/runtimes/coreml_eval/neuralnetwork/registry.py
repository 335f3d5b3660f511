"""What every NeuralNetwork layer module shares: the registry that maps a layer type to
its builder, the ``RunContext`` a compiled layer runs with, and ``f32``.

A builder takes the layer's parameter message and the layer itself, decodes its weights
once, and returns the function ``fn(inputs, ctx) -> outputs`` that runs it. Family modules
register theirs with ``@implements("layerType", ...)`` or by writing ``BUILDERS[name]`` for
layers built from a table; the package imports every family module, so ``BUILDERS`` is
complete once ``toolkit.runtimes.coreml_eval.neuralnetwork`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..registration import registrar

Fn = Callable[[list, "RunContext"], list]


@dataclass
class RunContext:
    """What a step may need beyond its inputs: the batch size of this run (reshapes with
    a hard-coded batch of 1 are widened to it, so ``predict_batch`` can run N images at
    once)."""

    batch: int = 1


BUILDERS: dict[str, Callable[[object, object], Fn]] = {}


# @implements("layerType", ...): register the decorated function as the builder of
# those layer types.
implements = registrar(BUILDERS)


def supported_layers() -> list[str]:
    return sorted(BUILDERS)


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)
