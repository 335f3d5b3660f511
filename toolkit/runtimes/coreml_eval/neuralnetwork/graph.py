"""``NNGraph``: a ``NeuralNetwork`` / ``NeuralNetworkClassifier`` message compiled into a
list of steps (decoding every weight once) and run in file order, which the spec
guarantees is topological."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....errors import MlkitError
from ..errors import Unsupported, UnsupportedOpError
from .registry import BUILDERS, Fn, RunContext

FORMAT = "neuralnetwork"


@dataclass
class Step:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    fn: Fn


def _scalers(nn) -> dict[str, tuple[float, dict[str, float]]]:
    """{input name: (channel scale, {colour: bias})} of the network's image ``scaler``
    preprocessing; ``UnsupportedOpError`` for a ``meanImage`` one."""
    scalers: dict[str, tuple[float, dict[str, float]]] = {}
    for pre in nn.preprocessing:
        which = pre.WhichOneof("preprocessor")
        if which == "scaler":
            s = pre.scaler
            scalers[pre.featureName] = (
                s.channelScale, {"red": s.redBias, "green": s.greenBias,
                                 "blue": s.blueBias, "gray": s.grayBias})
        elif which == "meanImage":
            raise UnsupportedOpError("meanImage preprocessing", pre.featureName, FORMAT)
    return scalers


def _compile_layers(layers) -> list[Step]:
    """One step per layer, in file order; ``UnsupportedOpError`` naming the first layer
    no builder knows (or whose builder refuses it)."""
    steps: list[Step] = []
    problems: list[tuple[str, str, str]] = []
    for layer in layers:
        kind = layer.WhichOneof("layer")
        builder = BUILDERS.get(kind)
        try:
            if builder is None:
                raise Unsupported()
            fn = builder(getattr(layer, kind), layer)
        except Unsupported as e:
            problems.append((e.op_type or kind, layer.name, e.detail))
            continue
        steps.append(Step(kind, layer.name, list(layer.input), list(layer.output), fn))
    if problems:
        op_type, name, detail = problems[0]
        raise UnsupportedOpError(op_type, name, FORMAT, detail, others=len(problems) - 1)
    return steps


class NNGraph:
    """A compiled NeuralNetwork: preprocessing, steps in order, classifier facts."""

    def __init__(self, nn, *, spec_version: int):
        self.spec_version = spec_version
        self.image_rank = 4 if nn.imageInputShapeMapping == 1 else 5
        self.exact_arrays = nn.arrayInputShapeMapping == 1
        self.scalers = _scalers(nn)
        self.steps = _compile_layers(nn.layers)
        self.layer_types = sorted({s.type for s in self.steps})
        self.produced = {o for s in self.steps for o in s.outputs}
        self._last_use = {}
        for i, s in enumerate(self.steps):
            for name in s.inputs:
                self._last_use[name] = i

    def preprocess_image(self, name: str, chw: np.ndarray, color_space: str) -> np.ndarray:
        """Apply the spec's scaler to an image tensor (N, C, H, W) in the model's colour
        order, then map it to the network's input rank."""
        if name in self.scalers:
            scale, bias = self.scalers[name]
            x = chw * np.float32(scale)
            if color_space == "GRAYSCALE":
                x = x + np.float32(bias["gray"])
            else:
                order = ["blue", "green", "red"] if color_space == "BGR" else ["red", "green", "blue"]
                x = x + np.array([bias[c] for c in order], np.float32).reshape(1, 3, 1, 1)
        else:
            x = chw
        x = x.astype(np.float32)
        return x if self.image_rank == 4 else x[None]

    def run(self, feeds: dict[str, np.ndarray], fetch: set[str], ctx: RunContext) -> dict:
        env = dict(feeds)
        keep = set(fetch)
        for i, step in enumerate(self.steps):
            try:
                xs = [env[n] for n in step.inputs]
            except KeyError as e:
                raise MlkitError(f"layer '{step.name}' reads '{e.args[0]}', which no input or "
                                 "earlier layer produces; the model file is broken") from None
            try:
                ys = step.fn(xs, ctx)
            except (ValueError, FloatingPointError) as e:
                raise MlkitError(f"{step.type} layer '{step.name}' failed on inputs of shape "
                                 f"{[np.shape(x) for x in xs]}: {e}") from None
            for name, y in zip(step.outputs, ys):
                env[name] = y
            for name in step.inputs:
                if self._last_use.get(name) == i and name not in keep:
                    env.pop(name, None)
        missing = [n for n in fetch if n not in env]
        if missing:
            raise MlkitError(f"no layer produces {missing}; the model file is broken")
        return {n: env[n] for n in fetch}
