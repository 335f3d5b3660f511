"""How an op / layer type name maps to its implementation: a plain dict per format
(``mlprogram.registry.OPS``, ``neuralnetwork.registry.BUILDERS``) that modules fill at
import time through a decorator made here."""

from __future__ import annotations

from collections.abc import Callable


def registrar(table: dict[str, Callable]) -> Callable:
    """The decorator factory for ``table``: ``@implements("a", "b")`` stores the decorated
    function under each name and returns it unchanged."""
    def implements(*names: str):
        def register(fn):
            for n in names:
                table[n] = fn
            return fn
        return register
    return implements
