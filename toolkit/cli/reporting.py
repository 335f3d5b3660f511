"""The command line's ``Reporter``: rich bars and lines on stderr.

Bars are drawn only when stderr is a terminal (piped or in CI, rich would leave blank
lines); lines are always written, unless ``lines=False`` (``--json``: then only warnings).
While bars are live, lines are printed above them.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.text import Text

from ..progress import Bar, Reporter

_BYTES = "B"


class _Amount(ProgressColumn):
    """``12.3/45.0 MB`` for bytes, ``12/45`` for anything else."""

    _sizes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == _BYTES:
            return self._sizes.render(task)
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(f"{task.completed:.0f}/{total}", style="progress.download")


class _Rate(ProgressColumn):
    """``2.1 MB/s`` for bytes, ``14.2 img/s`` for images; nothing for slow units (epochs)."""

    _transfer = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit") or ""
        if unit == _BYTES:
            return self._transfer.render(task)
        if unit != "img":
            return Text("")
        speed = task.finished_speed or task.speed
        return Text(f"-- {unit}/s" if speed is None else f"{speed:.1f} {unit}/s", style="progress.data.speed")


class _RichBar(Bar):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    def restart(self, total: float | None, completed: float = 0) -> None:
        self._progress.reset(self._task, total=total, completed=completed)

    def describe(self, text: str) -> None:
        self._progress.update(self._task, status=text)


class RichReporter(Reporter):
    """Lines and bars on stderr, as the ``mlkit`` commands show them."""

    def __init__(self, console: Console | None = None, *, bars: bool = True, lines: bool = True) -> None:
        super().__init__()
        self.console = console or Console(stderr=True)
        self._bars = bars and self.console.is_terminal
        self._lines = lines
        self._lock = threading.Lock()
        self._live: Progress | None = None
        self._open = 0

    def note(self, message: str) -> None:
        if self._lines:
            self._print(message)

    def warn(self, message: str) -> None:
        self._print(message)

    def _print(self, message: str) -> None:
        live = self._live
        (live.console if live is not None else self.console).print(message, markup=False, highlight=False,
                                                                   soft_wrap=True)

    @contextmanager
    def bar(self, label: str, total: float | None = None, *, unit: str = "") -> Iterator[Bar]:
        if not self._bars:
            yield Bar()
            return
        progress = self._enter()
        task = progress.add_task(label, total=total, unit=unit, status="")
        try:
            yield _RichBar(progress, task)
        finally:
            self._leave()

    def _enter(self) -> Progress:
        with self._lock:
            if self._live is None:
                self._live = Progress(TextColumn("{task.description:<10}"), BarColumn(), _Amount(), _Rate(),
                                      TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                      TimeRemainingColumn(), console=self.console)
                self._live.start()
            self._open += 1
            return self._live

    def _leave(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and self._live is not None:
                self._live.stop()
                self._live = None
