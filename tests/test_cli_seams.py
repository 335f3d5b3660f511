"""The seams between the library and the command line: configs built from the dataclass
fields (every default written once), errors that name the parameter, and the one
progress reporter."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
import typer
from rich.console import Console

from toolkit.cli import app
from toolkit.cli.configs import comma_list, config_from, defaults
from toolkit.cli.reporting import RichReporter
from toolkit.errors import MlkitError, ParameterError
from toolkit.progress import SILENT, Reporter

# command -> (config class, {CLI parameter: config field} where the names differ)
COMMANDS = {
    "build-dataset": ("toolkit.dataset.build:DatasetConfig", {"split": "splits"}),
    "train": ("toolkit.training.train:TrainConfig", {"output": "output_dir", "resize": "resize_mode"}),
    "review": ("toolkit.training.review:ReviewConfig", {"output": "output_dir"}),
    "export": ("toolkit.export:ExportOptions", {"data": "data_dir"}),
}
# how a CLI default is typed for a field of another type
AS_TYPED = {"splits": ",".join, "negative_classes": ", ".join, "other_classes": ", ".join,
            "resize_mode": lambda v: v.replace("_", "-")}


def _config_class(dotted: str) -> type:
    import importlib

    module, name = dotted.split(":")
    return getattr(importlib.import_module(module), name)


def _params(command: str) -> dict:
    click_app = typer.main.get_command(app)
    return {p.name: p for p in click_app.commands[command].params}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_default_is_the_configs(command):
    cls, renamed = COMMANDS[command]
    cls = _config_class(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    want = defaults(cls)
    checked = 0
    for name, param in _params(command).items():
        field = renamed.get(name, name)
        if field not in fields or not hasattr(want, field):
            continue
        expected = getattr(want, field)
        expected = AS_TYPED[field](expected) if field in AS_TYPED else expected
        if param.default is None and expected in ("", ()):   # not given on the command line: empty
            continue
        assert param.default == expected, f"{command} --{name}: default {param.default!r}, config {expected!r}"
        checked += 1
    assert checked >= 5, f"{command}: only {checked} options matched config fields"


def test_evaluate_defaults_are_the_functions():
    import inspect

    from toolkit.training.evaluate import evaluate

    params = _params("evaluate")
    for name in ("split", "batch_size"):
        assert params[name].default == inspect.signature(evaluate).parameters[name].default, name


def test_no_validate_default_follows_export_options():
    from toolkit.export import ExportOptions

    assert _params("export")["no_validate"].default is (not ExportOptions().validate)


def test_config_from_takes_the_fields_and_the_given_values():
    @dataclasses.dataclass
    class Config:
        a: int = 1
        b: str = "x"
        c: tuple = ()

    params = {"a": 5, "b": "y", "json_out": True, "c": "p, q"}
    assert config_from(Config, params, c=comma_list(params["c"])) == Config(5, "y", ("p", "q"))
    with pytest.raises(TypeError, match="no field d"):
        config_from(Config, params, d=1)


def test_comma_list_drops_blanks():
    assert comma_list(" Hamburger, ,Pizza ,") == ("Hamburger", "Pizza")
    assert comma_list(None) == () == comma_list("")


def test_parameter_error_names_the_parameter_and_the_value():
    e = ParameterError("workers", 0, "must be at least 1")
    assert isinstance(e, MlkitError) and isinstance(e, ValueError)
    assert str(e) == "`workers` (--workers) must be at least 1. Received: workers=0"
    assert e.command_line() == "--workers must be at least 1. Received: --workers 0"
    assert ParameterError("top_k", -1, "must be 0 or more").command_line().startswith("--top-k must")
    no_flag = ParameterError("calibration", "x", "must be an array", flag="")
    assert no_flag.command_line() == str(no_flag) == "`calibration` must be an array. Received: calibration='x'"


def test_the_cli_shows_a_parameter_error_by_its_flag(tmp_path: Path):
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["export", str(tmp_path), "--samples", "0"])
    # export checks its options before it looks for a model
    assert r.exit_code == 2, r.output
    assert "--samples must be at least 1. Received: --samples 0" in r.output.replace("\n", " ")


# ------------------------------------------------------------------------------ reporting

def test_the_default_reporter_is_silent(capsys):
    SILENT.note("nothing")
    with SILENT.bar("work", 3, unit="img") as bar:
        bar.advance()
        bar.restart(10, 2)
        bar.describe("1 failed")
    assert capsys.readouterr() == ("", "")


def test_a_reporter_passes_lines_to_its_function():
    lines: list[str] = []
    reporter = Reporter(lines.append)
    reporter.note("one")
    with reporter.bar("work", 2) as bar:
        bar.advance(2)
    assert lines == ["one"]


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=100, color_system=None), buf


def test_rich_reporter_draws_bars_on_a_terminal_and_lines_everywhere():
    console, buf = _console(terminal=True)
    reporter = RichReporter(console)
    with reporter.bar("download", 4, unit="img") as bar:
        bar.advance(3)
        bar.describe("1 failed")
        reporter.note("a line above the bar")
        with reporter.bar("indexing", 2048, unit="B") as inner:   # two at once share one display
            inner.advance(1024)
    shown = buf.getvalue()
    assert "download" in shown and "3/4" in shown and "1 failed" in shown and "img/s" in shown
    assert "indexing" in shown and "a line above the bar" in shown

    console, buf = _console(terminal=False)
    reporter = RichReporter(console)
    with reporter.bar("download", 4, unit="img") as bar:
        bar.advance(4)
    reporter.note("plain line")
    assert buf.getvalue() == "plain line\n"      # piped: no bar (rich would leave blank lines)

    console, buf = _console(terminal=True)
    reporter = RichReporter(console, bars=False, lines=False)   # --json: warnings only
    with reporter.bar("download", 4, unit="img") as bar:
        bar.advance(4)
    reporter.note("progress line")
    reporter.warn("the cache was damaged")
    assert buf.getvalue() == "the cache was damaged\n"


def test_a_plain_reporter_warns_as_it_notes():
    lines: list[str] = []
    Reporter(lines.append).warn("damaged")
    assert lines == ["damaged"]
    SILENT.warn("nothing")