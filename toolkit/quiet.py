"""Keep the native libraries' log lines off a normal ``mlkit`` run's stderr.

TensorFlow 2.21 logs through absl from C++ as soon as it loads ("WARNING: All log messages
before absl::InitializeLog() ...", "I0000 ... port.cc] oneDNN custom operations are on",
CPU-instruction notices; once per shared library, so twice a command), LiteRT announces
its XNNPACK delegate, and libjpeg complains about harmless trailing bytes. They are written
straight to file descriptor 2, before and regardless of ``TF_CPP_MIN_LOG_LEVEL``, so no
Python setting removes them. For the command-line program (never for a library user's
process) fd 2 is therefore a pipe read by a thread that drops those lines and passes every
other line (a fatal ``F...`` log line, a crash message) through unchanged. Python's own
``sys.stderr`` keeps writing to the real stream, so rich still sees a terminal when there
is one. ``mlkit --verbose`` (or ``MLKIT_VERBOSE=1``) shows everything.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

NOISE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"     # absl / glog lines below fatal
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions:"                      # the second line of the CPU notice
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|Corrupt JPEG data:|Premature end of JPEG file|Warning: unknown JFIF revision"
    rb"|WARNING:absl:|WARNING:tensorflow:)")

_installed = False


def verbose_requested(argv: list[str]) -> bool:
    """``--verbose`` before the command, or MLKIT_VERBOSE set to something true."""
    flag = os.environ.get("MLKIT_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")
    return flag or "--verbose" in argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]


def quiet_python() -> None:
    """Python-side noise: TensorFlow's and absl's loggers, Keras' and coremltools' warnings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "h5py", "coremltools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def filter_native_stderr() -> None:
    """Route fd 2 through the filter thread (POSIX; once per process)."""
    global _installed
    if _installed or os.name != "posix":
        return
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
        sys.stderr.flush()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return
    _installed = True
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stderr = open(real, "w", buffering=1, encoding=encoding,  # noqa: SIM115 - lives as long as the process
                      errors="backslashreplace", closefd=False)

    def pump() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
            if kept:
                os.write(real, kept)
        if pending and not NOISE.match(pending):
            os.write(real, pending)

    thread = threading.Thread(target=pump, name="mlkit-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
            os.dup2(real, 2)           # closes the pipe's last write end: the thread drains it and stops
        except OSError:
            return
        thread.join(timeout=2)

    atexit.register(restore)


def quiet_unless_verbose(argv: list[str]) -> bool:
    """Quiet the process unless --verbose / MLKIT_VERBOSE; True when quieted."""
    if verbose_requested(argv):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return False
    quiet_python()
    filter_native_stderr()
    return True
