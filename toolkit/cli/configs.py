"""Configs built from a command's parameters, so that every default is written once: in
the library's dataclass (or, for a command over a plain function, in its signature). A
command's option defaults read ``defaults(Config)`` or ``parameter_defaults(function)``, and
``config_from`` passes on each parameter named like one of the config's fields."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, TypeVar

C = TypeVar("C")


def defaults(cls: type) -> SimpleNamespace:
    """The default of each field of the dataclass ``cls`` that has one, by name."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return SimpleNamespace(**values)


def parameter_defaults(func) -> SimpleNamespace:
    """The default of each parameter of the library function ``func`` that has one."""
    params = inspect.signature(func).parameters.values()
    return SimpleNamespace(**{p.name: p.default for p in params if p.default is not inspect.Parameter.empty})


def config_from(cls: type[C], params: Mapping[str, Any], **given: Any) -> C:
    """``cls`` from the command's ``params`` (its ``locals()``) whose names are fields of it,
    with ``given`` (renamed or converted values) on top."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    return cls(**{k: v for k, v in params.items() if k in names and k not in given}, **given)


def comma_list(text: str | None) -> tuple[str, ...]:
    """A comma list typed on the command line ('Hamburger, Pizza'), blanks dropped."""
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())
