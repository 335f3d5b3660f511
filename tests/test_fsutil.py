"""toolkit.fsutil: atomic files and folders, checked with real kills (SIGKILL) of a writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
from toolkit.fsutil import atomic_folder, remove_partial_folders


def test_atomic_folder_replaces_the_old_version_whole(tmp_path):
    out = tmp_path / "model"
    with atomic_folder(out) as staging:
        (staging / "a.txt").write_text("one")
    assert (out / "a.txt").read_text() == "one"
    with atomic_folder(out) as staging:
        assert staging.parent == out.parent and staging.name.startswith(".model.partial-")
        (staging / "b.txt").write_text("two")
        assert (out / "a.txt").read_text() == "one"      # the old version until the block ends
    assert sorted(os.listdir(out)) == ["b.txt"]
    assert os.listdir(tmp_path) == ["model"]              # nothing left beside it
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # not tempfile's private mode


def test_a_failed_build_leaves_the_old_folder_and_nothing_else(tmp_path):
    out = tmp_path / "index"
    with atomic_folder(out, tag="tmp") as staging:
        (staging / "x").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out, tag="tmp") as staging:
        (staging / "x").write_text("half")
        raise RuntimeError("disk full")
    assert (out / "x").read_text() == "old" and os.listdir(tmp_path) == ["index"]


def test_a_package_keeps_its_suffix_while_staged(tmp_path):
    out = tmp_path / "Model.mlpackage"
    with atomic_folder(out, suffix=".mlpackage") as staging:
        assert staging.suffix == ".mlpackage"
        (staging / "Manifest.json").write_text("{}")
    assert (out / "Manifest.json").is_file()


KILLED_WRITER = """
import sys, time
from pathlib import Path
from toolkit.fsutil import atomic_folder, atomic_path
out = Path(sys.argv[1])
with atomic_folder(out / "folder") as staging:
    (staging / "new").write_text("new")
    with atomic_path(out / "file.bin") as tmp:
        tmp.write_bytes(b"new" * 1000)
        print("ready", flush=True)
        time.sleep(60)
"""


def test_a_killed_writer_leaves_the_old_versions(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "old").write_text("old")
    (tmp_path / "file.bin").write_bytes(b"old")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert os.listdir(tmp_path / "folder") == ["old"] and (tmp_path / "file.bin").read_bytes() == b"old"
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers and all(".partial-" in n or n.endswith(".part") for n in leftovers)
    remove_partial_folders(tmp_path / "folder")
    assert not any(".partial-" in p.name for p in tmp_path.iterdir())
