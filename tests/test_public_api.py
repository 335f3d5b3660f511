"""The public API (``toolkit/__init__.py``): its names, lazy loading, and the README's
"From Python" example run as written against the embedded mirror."""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import re
import subprocess
import sys

import pytest

import toolkit
from conftest import ROOT, shared_path

PUBLIC = {"build_dataset", "DatasetConfig", "train", "TrainConfig", "evaluate", "predict", "export_model",
          "ExportOptions", "validate", "MlkitError", "ParameterError", "Reporter"}


def test_import_toolkit_does_not_load_tensorflow():
    code = "import sys, toolkit; print(sorted(m for m in ('tensorflow', 'keras', 'coremltools') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_names_are_the_functions_and_classes():
    assert PUBLIC <= set(toolkit.__all__) and PUBLIC <= set(dir(toolkit))
    for module in ("toolkit.runtimes.predict", "toolkit.training.train", "toolkit.training.evaluate",
                   "toolkit.export.validate", "toolkit.dataset.build"):
        importlib.import_module(module)   # a submodule import must not shadow a public name

    for name in PUBLIC:
        value = getattr(toolkit, name)
        assert callable(value) and value.__name__ == name, name
    assert issubclass(toolkit.MlkitError, Exception)
    with pytest.raises(AttributeError, match="public names are"):
        toolkit.no_such_thing  # noqa: B018


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's From Python section has no python block"
    return match.group(1)


def test_the_readme_example_uses_only_public_names():
    code = readme_example()
    imports = re.findall(r"^from (\S+) import (.+)$", code, re.M)
    assert imports and all(module == "toolkit" for module, _ in imports)
    assert {n.strip() for _, names in imports for n in names.split(",")} <= PUBLIC


@pytest.mark.slow
def test_the_readme_example_runs(mirror, tmp_path, monkeypatch):
    """The example as written; only where it reads from and writes to is pointed at the
    mirror and a temporary folder (the defaults are the real Open Images and ./data)."""
    server, info = mirror
    server.set_faults(None)
    monkeypatch.setenv("KERAS_HOME", str(shared_path("keras")))
    monkeypatch.setattr(toolkit, "DatasetConfig", functools.partial(
        toolkit.DatasetConfig, data_dir=tmp_path / "data", source=info.metadata_base,
        image_source=info.images_base, cache_dir=tmp_path / "cache", max_size=128))
    monkeypatch.setattr(toolkit, "TrainConfig", functools.partial(
        toolkit.TrainConfig, output_dir=tmp_path / "models", epochs=3))
    monkeypatch.setattr(toolkit, "ExportOptions", functools.partial(toolkit.ExportOptions, samples=16))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("True"), lines          # every export validated against Keras
    assert {line.split()[0] for line in lines[2:]} <= {"hot_dog", "not_hot_dog"} and len(lines) == 5
    model = tmp_path / "models" / "hot_dog"
    assert {"model.keras", "model.json", "validation.json"} <= set(os.listdir(model))
    assert any(p.endswith(".mlmodel") for p in os.listdir(model)) and any(p.endswith(".tflite") for p in os.listdir(model))
