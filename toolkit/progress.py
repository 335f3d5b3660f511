"""The one progress seam: library code reports through the ``Reporter`` it is given.

Every stage that takes long (fetching metadata, indexing label files, downloading images,
training, exporting) and every stage with something to tell the user (a damaged cache
rebuilt, a lock waited for, the plan of a dry run) takes ``reporter=`` and reports only
through it: ``reporter.note(text)`` for a line, ``with reporter.bar(label, total) as bar:``
for a bar, ``reporter.warn(text)`` for what the user should see even when they asked for
quiet output (a damaged cache rebuilt, a wait for another run's lock). No library module
prints to stderr by itself.

The default, ``SILENT``, shows nothing, so a script that calls the library sees nothing it
did not ask for. ``Reporter(print)`` shows the lines and no bars; the command line passes
a rich one (``toolkit.cli.reporting.RichReporter``). A reporter of your own subclasses
``Reporter`` and overrides ``note`` and ``bar``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Bar", "Reporter", "SILENT"]


class Bar:
    """One bar, as the library drives it. This base shows nothing."""

    def advance(self, amount: float = 1) -> None:
        """``amount`` more units are done."""

    def restart(self, total: float | None, completed: float = 0) -> None:
        """Start over at ``completed`` of ``total`` (a download resumed or begun again)."""

    def describe(self, text: str) -> None:
        """A short status shown beside the bar, e.g. ``"val_acc 0.9125"`` or ``"3 failed"``."""


class Reporter:
    """Receives what the library has to say while it works; by default, nothing is shown.

    ``note``: a function given each line (``print``, ``list.append``, a logger's method),
    or None to drop them.
    """

    def __init__(self, note: Callable[[str], None] | None = None) -> None:
        self._note = note

    def note(self, message: str) -> None:
        """One line for the user: what happened or what is being done."""
        if self._note is not None:
            self._note(message)

    def warn(self, message: str) -> None:
        """A line the user should see even in quiet output (``--json``); by default a note."""
        self.note(message)

    @contextmanager
    def bar(self, label: str, total: float | None = None, *, unit: str = "") -> Iterator[Bar]:
        """A bar for work of ``total`` units (None: not known yet) while the block runs.

        ``unit``: ``"B"`` for bytes (shown as sizes and a transfer rate), else a word such as
        ``"img"`` or ``"epoch"`` (shown as a count and, for ``"img"``, a rate)."""
        yield Bar()


SILENT = Reporter()
