"""What every MIL op module shares: the registry that maps an op type to the function that
runs it, the ``Args`` an op reads its parameters through, and the ``RunContext``.

An op function takes one ``Args`` and returns its output value (a tuple for several
outputs). Family modules register theirs with ``@implements("name", ...)`` or by writing
``OPS[name]`` for ops built from a table; the package imports every family module, so
``OPS`` is complete once ``toolkit.runtimes.coreml_eval.mlprogram`` is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ....errors import MlkitError
from ..registration import registrar


@dataclass
class RunContext:
    batch: int = 1


class Args:
    """An op's parameters: bound names resolved in the environment, inline values
    decoded, attributes as a fallback (iOS16 constexpr ops keep parameters there).

    ``graph`` is the ``MILGraph`` the op belongs to (its constants, value decoder and op
    names)."""

    def __init__(self, op, graph, env: dict, ctx: RunContext):
        self.op, self.graph, self.env, self.ctx = op, graph, env, ctx

    def _resolve(self, binding):
        if binding.WhichOneof("binding") == "name":
            name = binding.name
            if name in self.env:
                return self.env[name]
            if name in self.graph.consts:
                return self.graph.consts[name]
            raise MlkitError(f"op '{self.graph.op_name(self.op)}' reads '{name}', which nothing "
                             "defines before it; the program is broken")
        return self.graph.decode(binding.value)

    def has(self, key: str) -> bool:
        return key in self.op.inputs or key in self.op.attributes

    def list(self, key: str) -> list:
        if key in self.op.inputs:
            return [self._resolve(b) for b in self.op.inputs[key].arguments]
        if key in self.op.attributes:
            return [self.graph.decode(self.op.attributes[key])]
        raise MlkitError(f"op '{self.graph.op_name(self.op)}' ({self.op.type}) lacks its "
                         f"required parameter '{key}'")

    def get(self, key: str, default=None):
        if not self.has(key):
            return default
        vals = self.list(key)
        return vals[0] if len(vals) == 1 else vals

    def f32(self, key: str = "x") -> np.ndarray:
        return np.asarray(self.get(key), dtype=np.float32)

    def scalar(self, key: str, default=None):
        v = self.get(key, default)
        if isinstance(v, np.ndarray):
            return v.item() if v.size == 1 else v
        return v

    def ints(self, key: str, default=None) -> list[int] | None:
        v = self.get(key, None)
        if v is None:
            return default
        return [int(i) for i in np.asarray(v).reshape(-1)]


OpFn = Callable[[Args], object]

OPS: dict[str, OpFn] = {}


# @implements("name", ...): register the decorated function as the implementation of
# those ops.
implements = registrar(OPS)
