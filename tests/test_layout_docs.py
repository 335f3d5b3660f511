"""The README's module list and ARCHITECTURE.md follow the tree: every package and module
of ``toolkit/`` is named there, and nothing named there is gone. The size limits the
layout keeps (modules of ~500 lines, functions of ~60) hold."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

TOOLKIT = ROOT / "toolkit"
# op families of the reference evaluator, described together ("one module per op family")
FAMILIES = ("runtimes/coreml_eval/neuralnetwork", "runtimes/coreml_eval/mlprogram")
# the compiled scanner kernel stays one function: its docstring says why
LONG_ON_PURPOSE = {("openimages/labelscan.py", "scan")}


def _module_list() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Packages, one\nstage each")
    return text[start:text.index("## Tests and benchmarks", start)]


def _modules():
    for path in sorted(TOOLKIT.rglob("*.py")):
        rel = path.relative_to(TOOLKIT)
        if path.stem in ("__init__", "__main__") or path.stem.startswith("_"):
            continue
        if any(str(rel).startswith(f) for f in FAMILIES):
            continue
        yield rel


def test_the_readme_names_every_module_and_package():
    listing = _module_list()
    missing = [str(rel) for rel in _modules() if f"`{rel.stem}`" not in listing]
    assert not missing, f"README's module list lacks {missing}"
    packages = sorted({p.parent.relative_to(TOOLKIT) for p in TOOLKIT.rglob("__init__.py")} - {TOOLKIT.relative_to(TOOLKIT)})
    unnamed = [str(p) for p in packages if f"{p.name}/`" not in listing]
    assert not unnamed, f"README's module list lacks the packages {unnamed}"


def test_the_readme_names_no_module_that_is_gone():
    listing = _module_list()
    named = {m.rstrip("/").split("/")[-1] for m in re.findall(r"`([a-z_/]+)`", listing)}
    stems = {p.stem for p in TOOLKIT.rglob("*.py")} | {p.name for p in TOOLKIT.rglob("*") if p.is_dir()}
    gone = sorted(n for n in named if n not in stems and n not in ("toolkit", "Reporter", "DatasetConfig",
                                                                    "TrainConfig"))
    assert not gone, f"README's module list names what the tree lacks: {gone}"


def test_architecture_names_the_stage_packages():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for package in ("openimages", "dataset", "training", "runtimes", "export", "mirror", "cli"):
        assert f"toolkit/{package}/" in text, package


# the pipeline's order; ARCHITECTURE.md: "A stage imports earlier stages ..., never the reverse,
# with one exception: training/evaluate runs any model format through runtimes"
STAGES = ("openimages", "dataset", "training", "runtimes", "export")
UPWARD_ON_PURPOSE = {("training", "runtimes")}


def _imports(path):
    """The toolkit modules ``path`` imports (at any depth; TYPE_CHECKING blocks left out)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
               for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[:len(package) - (node.level - 1)]
            yield ".".join(base + ([node.module] if node.module else []))
        elif node.module and node.module.startswith("toolkit"):
            yield node.module


def test_stages_import_only_earlier_stages():
    upward = []
    for path in TOOLKIT.rglob("*.py"):
        parts = path.relative_to(TOOLKIT).parts
        if len(parts) < 2 or parts[0] not in STAGES:
            continue
        for target in _imports(path):
            t = target.split(".")
            if len(t) > 1 and t[1] in STAGES and STAGES.index(t[1]) > STAGES.index(parts[0]) \
                    and (parts[0], t[1]) not in UPWARD_ON_PURPOSE:
                upward.append(f"{path.relative_to(TOOLKIT)} imports {target}")
    assert not upward, upward


def test_modules_and_functions_stay_small():
    big = [f"{p.relative_to(TOOLKIT)} ({n})" for p in TOOLKIT.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 520]
    assert not big, f"modules over ~500 lines: {big}"
    long = []
    for path in TOOLKIT.rglob("*.py"):
        rel = str(path.relative_to(TOOLKIT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (rel, node.name) not in LONG_ON_PURPOSE:
                if node.end_lineno - node.lineno + 1 > 62:
                    long.append(f"{rel}:{node.lineno} {node.name}")
    assert not long, f"functions over ~60 lines: {long}"
