"""The ``mlkit`` command: help, ``classes``, ``build-dataset``, user errors and ``demo``.

In-process with typer's CliRunner where the output format does not depend on a terminal,
in a subprocess (the real entry point, pipes, no TTY) where it does.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import toolkit
from toolkit.cli import app
from toolkit.mirror import HOT_DOG, HOT_DOG_RELATED, MOUSE_MIDS

REPO = Path(__file__).resolve().parent.parent
POS, NEG = "hot_dog", "not_hot_dog"
ISSUE_OPTIONS = ("--positive", "--negatives", "--negative-classes", "--verified-negatives", "--include-related",
                 "--max-positives", "--balance", "--split", "--val", "--test", "--seed", "--dry-run", "--workers",
                 "--max-size", "--crop", "--source", "--cache-dir", "--data-dir", "--name", "--json")


def invoke(*args: object, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def flat(text: str) -> str:
    """Whitespace-normalised text: rich wraps long lines at the console width."""
    return " ".join(text.split())


def run_mlkit(*args: object, cache: Path) -> subprocess.CompletedProcess:
    """The real command in a child process, with pipes (no terminal) and no COLUMNS."""
    env = dict(os.environ, MLKIT_CACHE=str(cache))
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "toolkit.cli", *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=REPO, env=env, timeout=120)


@pytest.fixture(scope="module")
def cli_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture
def src(mirror, cli_cache) -> list[str]:
    """Options that point a command at the session mirror (and reset its faults)."""
    server, info = mirror
    server.set_faults(None)
    return ["--source", info.metadata_base, "--cache-dir", str(cli_cache)]


@pytest.fixture
def img_src(mirror, src) -> list[str]:
    return [*src, "--image-source", mirror[1].images_base]


def verified_counts(info, mid: str) -> dict[str, int]:
    return dict(Counter(im.split for im in info.images if im.confidence(mid) == 1))


# ============================================================================ help and version


def test_help_lists_the_commands():
    r = invoke("--help", env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for word in ("classes", "build-dataset", "mirror", "demo", "--version"):
        assert word in r.stdout


def test_build_dataset_help_mentions_every_option():
    r = invoke("build-dataset", "--help", env={"COLUMNS": "240"})
    assert r.exit_code == 0, r.output
    command = typer.main.get_command(app).commands["build-dataset"]
    options = [opt for p in command.params for opt in p.opts if opt.startswith("--")]
    assert set(ISSUE_OPTIONS) <= set(options)
    for opt in options:
        assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", r.stdout), f"{opt} missing from --help"
    assert "manifest.csv" in r.stdout and "resume" in r.stdout


def test_classes_help_mentions_its_options():
    r = invoke("classes", "--help", env={"COLUMNS": "240"})
    assert r.exit_code == 0
    for opt in ("--source", "--cache-dir", "--counts", "--split", "--limit", "--json", "--label-set"):
        assert opt in r.stdout


def test_version(cli_cache):
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"mlkit {toolkit.__version__}"
    script = Path(sys.executable).parent / "mlkit"
    if script.exists():  # the installed console script, as a user runs it
        p = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == f"mlkit {toolkit.__version__}"


# ============================================================================ classes


def test_classes_lists_hot_dog_and_its_related_classes_with_counts(src, mirror):
    _, info = mirror
    r = invoke("classes", "hot dog", *src, "--counts", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    found = {m["mid"]: m for m in out["matches"]}
    assert out["matches"][0]["mid"] == HOT_DOG and out["matches"][0]["name"] == "Hot dog"
    assert set(HOT_DOG_RELATED) <= set(found)
    assert {found[m]["name"] for m in HOT_DOG_RELATED} == {
        "Chicago-style hot dog", "Michigan hot dog", "Coney island hot dog", "Hot dog bun", "Hot dog stand"}
    assert out["counted_splits"] == ["train", "validation", "test"]
    for mid in (HOT_DOG, *HOT_DOG_RELATED):
        expected = verified_counts(info, mid)
        assert found[mid]["images"] == {s: expected.get(s, 0) for s in ("train", "validation", "test")}, mid


def test_classes_table_output(src):
    r = invoke("classes", "hot dog", *src, "--counts")
    assert r.exit_code == 0, r.output
    assert "/m/01b9xk" in r.stdout and "Hot dog" in r.stdout and "Hot dog stand" in r.stdout


def test_classes_finds_hot_dog_from_a_typo(src):
    r = invoke("classes", "Hotdog", *src, "--no-counts", "--json")
    assert r.exit_code == 0, r.output
    assert HOT_DOG in [m["mid"] for m in json.loads(r.stdout)["matches"]]


def test_classes_lists_both_mice(src):
    r = invoke("classes", "mouse", *src, "--no-counts", "--json")
    assert {m["mid"] for m in json.loads(r.stdout)["matches"]} >= set(MOUSE_MIDS)


def test_classes_without_a_match_exits_1(src):
    r = invoke("classes", "zzzz", *src)
    assert r.exit_code == 1
    assert "zzzz" in r.output and "No class" in r.output
    assert "Traceback" not in r.output


# ============================================================================ build-dataset


def test_build_dataset_json(img_src, tmp_path, mirror):
    _, info = mirror
    data = tmp_path / "data"
    r = invoke("build-dataset", "--positive", "hot dog", *img_src, "--data-dir", data, "--split", "validation",
               "--negatives", "10", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    root = data / "hot_dog"
    assert out["path"] == str(root) and out["dry_run"] is False
    assert out["positive"] == {"mid": HOT_DOG, "name": "Hot dog"}
    assert {x["mid"] for x in out["related"]} == set(HOT_DOG_RELATED)
    assert sum(out["planned"][NEG].values()) == 10
    on_disk = Counter(p.relative_to(root).parts[:2] for p in root.glob("*/*/*.jpg"))
    assert out["counts"] == {c: {s: on_disk[(s, c)] for s in ("train", "val", "test")} for c in (POS, NEG)}
    assert out["downloaded"] == sum(on_disk.values()) > 0
    assert re.fullmatch(r"[0-9a-f]{64}", out["content_hash"])
    assert json.loads((root / "dataset.json").read_text())["content_hash"] == out["content_hash"]
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == sum(sum(v.values()) for v in out["planned"].values())


def test_build_dataset_table_output(img_src, tmp_path):
    r = invoke("build-dataset", "--positive", "Hot dog", *img_src, "--data-dir", tmp_path, "--split", "test",
               "--max-positives", "4", "--negatives", "4")
    assert r.exit_code == 0, r.output
    assert "hot_dog" in r.stdout and "not_hot_dog" in r.stdout
    assert "downloaded" in r.stdout and "ATTRIBUTION.md" in r.stdout
    assert "Related classes" in r.stderr  # listed to the user


def test_build_dataset_dry_run(img_src, tmp_path, mirror, cli_cache):
    # a dry run downloads nothing: it lists images once the metadata is cached (test_plan.py
    # covers the dry run of an empty cache)
    from toolkit.openimages import layout
    from toolkit.openimages.fetch import fetch, metadata_source
    from toolkit.openimages.plan import metadata_files

    source = metadata_source(mirror[1].metadata_base, cli_cache)
    for rel, _, _ in metadata_files("all", layout.SPLITS, crop=False):
        fetch(source, rel)
    data = tmp_path / "data"
    r = invoke("build-dataset", "--positive", "Hot dog", *img_src, "--data-dir", data, "--negatives", "50",
               "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dry_run"] is True and out["downloaded"] == 0
    assert sum(out["planned"][NEG].values()) == 50
    assert out["estimated_bytes"] > 0
    total = sum(sum(v.values()) for v in out["planned"].values())
    assert len(out["plan"]) == len({i["ImageID"] for i in out["plan"]}) == total
    assert Counter(i["class"] for i in out["plan"]) == {c: sum(out["planned"][c].values()) for c in (POS, NEG)}
    assert all(i["url"].startswith(img_src[img_src.index("--image-source") + 1]) for i in out["plan"])
    assert not data.exists()
    text = invoke("build-dataset", "--positive", "Hot dog", *img_src, "--data-dir", data, "--negatives", "50",
                  "--dry-run")
    assert text.exit_code == 0, text.output
    first = out["plan"][0]
    assert f"{first['split']}/{first['class']}/{first['ImageID']}.jpg" in text.stdout
    assert re.search(rf"Would download {total} images, about [0-9.]+ MB", flat(text.stdout)), text.stdout
    assert not data.exists()


# ============================================================================ user errors


def _meta_copy(info, dest: Path) -> Path:
    shutil.copytree(info.root, dest, ignore=shutil.ignore_patterns("cvdf", "flickr"))
    return dest


def _ragged_labels(info, tmp_path: Path) -> str:
    meta = _meta_copy(info, tmp_path / "meta")
    path = meta / "v7/oidv7-train-annotations-human-imagelabels.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3] + ["0123456789abcdef,verification\n"] + lines[3:]), encoding="utf-8")
    return str(meta)


def _no_url_column(info, tmp_path: Path) -> str:
    meta = _meta_copy(info, tmp_path / "meta")
    path = meta / "v6/oidv6-train-images-with-labels-with-rotation.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    i = rows[0].index("OriginalURL")
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(r[:i] + r[i + 1:] for r in rows)
    return str(meta)


ERRORS = {
    # name: (extra args, callable(info, tmp_path) -> --source override or None, phrases)
    "unknown class": (["--positive", "Hotdog"], None, ['Did you mean "Hot dog"']),
    "ambiguous class": (["--positive", "Mouse"], None, list(MOUSE_MIDS)),
    "unknown balance": (["--positive", "Hot dog", "--balance", "bogus"], None, ["bogus", "undersample"]),
    "unknown split": (["--positive", "Hot dog", "--split", "nope"], None, ["nope", "train, validation, test"]),
    "fractions": (["--positive", "Hot dog", "--val", "0.6", "--test", "0.5"], None, ["--val", "--test"]),
    "related negative class": (["--positive", "Hot dog", "--negative-classes", "Pizza, Hot dog bun"], None,
                               ["Hot dog bun", "related"]),
    "empty selection": (["--positive", "Table"], None, ["no image", "Table"]),
    "missing source folder": (["--positive", "Hot dog"], lambda info, tmp: str(tmp / "no-such-folder"),
                              ["no-such-folder"]),
    "malformed CSV": (["--positive", "Hot dog"], _ragged_labels, ["malformed", "Expected 4 columns"]),
    "missing column": (["--positive", "Hot dog"], _no_url_column, ["missing column(s) OriginalURL"]),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_user_errors_exit_2_with_an_error_message(name, img_src, mirror, tmp_path):
    _, info = mirror
    args, source, phrases = ERRORS[name]
    opts = list(img_src)
    if source is not None:
        opts[opts.index("--source") + 1] = source(info, tmp_path)
    data = tmp_path / "data"
    r = invoke("build-dataset", *args, *opts, "--data-dir", data)
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    assert r.stdout == ""
    # exactly one error line; notes printed before it (e.g. the related classes) may precede it
    starts = [i for i, line in enumerate(r.stderr.splitlines()) if line.startswith("error: ")]
    assert len(starts) == 1, r.stderr
    message = flat("\n".join(r.stderr.splitlines()[starts[0]:]))
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {r.stderr!r}"
    assert not data.exists()


def test_negative_count_exits_2_without_a_traceback(img_src, tmp_path):
    r = invoke("build-dataset", "--positive", "Hot dog", "--negatives", "-1", *img_src, "--data-dir", tmp_path / "d")
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert "--negatives" in r.output
    assert not (tmp_path / "d").exists()


def test_user_error_from_the_real_entry_point(mirror, cli_cache, tmp_path):
    _, info = mirror
    p = run_mlkit("build-dataset", "--positive", "Mouse", "--source", info.metadata_base, "--cache-dir", cli_cache,
                  "--data-dir", tmp_path, cache=cli_cache)
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr + p.stdout
    assert all(mid in p.stderr for mid in MOUSE_MIDS)


@pytest.mark.parametrize("args", [
    ["--positive", "Hotdog"],
    ["--positive", "Hot dog", "--balance", "bogus"],
    ["--positive", "Hot dog", "--split", "nope"],
], ids=["unknown-class", "unknown-balance", "unknown-split"])
def test_user_error_is_one_line_when_piped(mirror, cli_cache, tmp_path, args):
    _, info = mirror
    p = run_mlkit("build-dataset", *args, "--source", info.metadata_base, "--cache-dir", cli_cache,
                  "--data-dir", tmp_path, cache=cli_cache)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr


def test_negative_count_gets_the_error_line(img_src, tmp_path):
    r = invoke("build-dataset", "--positive", "Hot dog", "--negatives", "-1", *img_src, "--data-dir", tmp_path)
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "--negatives" in r.stderr, r.stderr


# ============================================================================ demo


def test_demo_runs_end_to_end_offline(tmp_path):
    r = invoke("demo", "--workdir", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["workdir"] == str(tmp_path)
    ds = out["dataset"]
    root = Path(ds["path"])
    assert root == tmp_path / "data" / "hot_dog"
    assert ds["positive"]["mid"] == HOT_DOG
    assert sum(ds["planned"][NEG].values()) == 120
    on_disk = Counter(p.relative_to(root).parts[:2] for p in root.glob("*/*/*.jpg"))
    assert ds["counts"] == {c: {s: on_disk[(s, c)] for s in ("train", "val", "test")} for c in (POS, NEG)}
    assert sum(on_disk.values()) > 150
    assert set(ds["failures"]) <= {"placeholder"}, ds["failures"]
    for name in ("manifest.csv", "ATTRIBUTION.md", "dataset.json", "preview.png"):
        assert (root / name).is_file(), name
    # the demo served its own mirror on 127.0.0.1
    assert json.loads((root / "dataset.json").read_text())["source"]["images"].startswith("http://127.0.0.1:")
    # then trained, exported both formats and validated each against Keras
    model_dir = Path(out["training"]["path"])
    assert (model_dir / "model.keras").is_file()
    export = out["export"]
    assert export["valid"] is True
    files = sorted(Path(e["path"]).name for e in export["exports"])
    assert files == ["HotDogClassifier.mlmodel", "hot_dog.tflite"]
    rows = export["validation"]["files"]
    assert [r["status"] for r in rows] == ["VALID", "VALID"]
    assert all(r["samples"] == export["validation"]["samples"] > 0 for r in rows)
    assert json.loads((model_dir / "validation.json").read_text())["valid"] is True
    assert set(out["seconds"]) == {"dataset", "train", "export"}
