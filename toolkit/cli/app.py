"""What every command shares: the app, the consoles, common options, and how a command
runs a library call, reports progress and ends on a user error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import MlkitError, ParameterError
from ..progress import Reporter
from .reporting import RichReporter

INVALID_EXIT = 3   # an export outside its tolerance (2 is a user error)

app = typer.Typer(
    name="mlkit",
    help="From an Open Images class name to an on-device image classifier you can trust.\n\n"
         "Start with `mlkit demo` (offline), or `mlkit classes \"hot dog\"` then "
         "`mlkit build-dataset --positive \"Hot dog\"`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

SourceOpt = Annotated[Optional[str], typer.Option(
    "--source", help="Where Open Images metadata comes from: a base URL or a local folder laid out like "
                     "https://storage.googleapis.com/openimages/ (the default).")]
CacheOpt = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Where downloaded metadata and its indexes are kept. Default: $MLKIT_CACHE, "
                        "else the user cache directory (~/.cache/mlkit, ~/Library/Caches/mlkit).")]
LabelSetOpt = Annotated[str, typer.Option(
    "--label-set", help="'all': v7 human-verified labels of ~20k classes; 'boxable': v5 labels of the "
                        "600 boxable classes (smaller files).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")]


def message(exc: MlkitError) -> str:
    """The error in the words of the command line: a parameter is named by its flag."""
    return exc.command_line() if isinstance(exc, ParameterError) else str(exc)


def fail(exc: MlkitError) -> None:
    err.print(f"[bold red]error:[/] {escape(message(exc))}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def checked(make):
    """The config ``make()`` builds, validated before any work; a user error ends the command."""
    try:
        config = make()
        config.validate()
    except MlkitError as exc:
        fail(exc)
    return config


def reporter_for(json_out: bool) -> Reporter:
    """Lines and bars on stderr; with --json, only warnings there (stdout is the JSON)."""
    return RichReporter(err, bars=not json_out, lines=not json_out)


def run_library(call, json_out: bool, render, *, interrupted: str) -> None:
    """Run a library call (given the command's reporter), then print its result as JSON or
    through ``render``; user errors and Ctrl-C end the command cleanly."""
    try:
        result = call(reporter_for(json_out))
    except MlkitError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:   # the library may say what was kept (train does)
        err.print(str(exc) or interrupted, highlight=False)
        raise typer.Exit(130)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    render(result)


def _version(value: bool) -> None:
    if value:
        out.print(f"mlkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False,
          verbose: Annotated[bool, typer.Option(
              "--verbose", help="Also show TensorFlow's, absl's, LiteRT's and libjpeg's own log lines and "
                                "library warnings (hidden by default; MLKIT_VERBOSE=1 does the same).")] = False,
          ) -> None:
    pass  # --verbose is acted on in main(), before TensorFlow can load


def quiet_tensorflow() -> None:
    """TensorFlow's C++ info lines and retracing warnings mean nothing to a user; keep
    stderr for our progress and messages (set TF_CPP_MIN_LOG_LEVEL yourself to see them)."""
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # coremltools: "Failed to load _MLModelProxy" off macOS (expected: the reference evaluator runs
    # Core ML files there) and its converters' progress bars; mlkit prints its own progress.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


def default_dataset(data_dir: Path = Path("data")) -> Path:
    # hidden folders are build-dataset's generations in progress (.NAME.mlkit-next), not datasets
    found = sorted(p.parent for p in data_dir.glob("*/dataset.json")
                   if not p.parent.name.startswith(".")) if data_dir.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise MlkitError(f"no DATASET_DIR given and no dataset under {data_dir}/: build one with "
                         "`mlkit build-dataset --positive ...`, or give its folder")
    raise MlkitError(f"no DATASET_DIR given and {len(found)} datasets under {data_dir}/ "
                     f"({', '.join(p.name for p in found)}): give one")
