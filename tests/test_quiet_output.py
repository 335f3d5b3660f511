"""What a user sees on stderr (issue 11), through the real ``mlkit`` program in subprocesses
whose stdout and stderr are pipes (as in CI): no TensorFlow / absl / oneDNN / XNNPACK log
lines, Keras warnings or libjpeg messages unless ``--verbose``; no progress bar turned into
runs of blank lines or cursor codes. Against the embedded mirror over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

MLKIT = Path(sys.executable).with_name("mlkit")
NOISE = re.compile(r"I0000|W0000|E0000|absl|oneDNN|cpu_feature_guard|To enable the following instructions|XNNPACK"
                   r"|TensorFlow Lite|UserWarning|DeprecationWarning|WARNING:tensorflow|Corrupt JPEG data")
TINY = ("--alpha", "0.35", "--image-size", "96", "--weights", "none", "--epochs", "1", "--batch-size", "8")


def mlkit(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed program with piped stdout / stderr, as CI does."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLKIT_VERBOSE")}
    env.update(CI="true", COLUMNS="100")
    done = subprocess.run([str(MLKIT), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_clean(stderr: str, what: str) -> None:
    noise = [line for line in stderr.splitlines() if NOISE.search(line)]
    assert noise == [], f"{what}: {noise[:5]}"
    assert "\x1b[" not in stderr, f"{what}: terminal control codes in piped output"
    assert "\n\n\n" not in stderr, f"{what}: a run of blank lines:\n{stderr}"


@pytest.fixture(scope="module")
def program() -> Path:
    if not MLKIT.exists():
        pytest.skip(f"the mlkit program is not installed beside {sys.executable}")
    return MLKIT


def test_piped_commands_show_only_mlkit_output(program, mirror, tmp_path):
    _, info = mirror
    built = mlkit("build-dataset", "--positive", "Hot dog", "--source", info.metadata_base, "--image-source",
                  info.images_base, "--data-dir", tmp_path / "data", "--cache-dir", tmp_path / "cache",
                  "--max-size", "64", cwd=tmp_path)
    assert_clean(built.stderr, "build-dataset")
    assert "Selected" in built.stderr and "downloaded" in built.stdout and "came from Flickr" in built.stdout

    trained = mlkit("train", tmp_path / "data" / "hot_dog", "--output", tmp_path / "models", *TINY, cwd=tmp_path)
    assert_clean(trained.stderr, "train")
    assert "head epoch 1" in trained.stderr and "Classification report" in trained.stdout
    model = tmp_path / "models" / "hot_dog"

    exported = mlkit("export", model, "--tflite", "--samples", "4", cwd=tmp_path)
    assert_clean(exported.stderr, "export")
    assert "VALID" in exported.stdout

    # a JPEG with stray bytes before its end marker: libjpeg warns, the image is fine
    photo = sorted((tmp_path / "data" / "hot_dog" / "test").rglob("*.jpg"))[0]
    data = photo.read_bytes()
    odd = tmp_path / "odd.jpg"
    odd.write_bytes(data[:-2] + b"\x00\x00\x00" + data[-2:])
    predicted = mlkit("predict", model, odd, cwd=tmp_path)
    assert_clean(predicted.stderr, "predict")
    assert "odd.jpg" in predicted.stdout

    # the same run with --verbose shows what was hidden: the filter hides it, nothing else does
    verbose = mlkit("--verbose", "predict", model, odd, cwd=tmp_path)
    assert "Corrupt JPEG data" in verbose.stderr and re.search(r"oneDNN|absl", verbose.stderr), verbose.stderr
