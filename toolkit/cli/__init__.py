"""The ``mlkit`` command line: thin commands over the library.

Each command parses and checks its options, builds the library's config from them (the
defaults are the config's: ``configs.py``), calls one library function with a reporter
for progress (``reporting.py``), and renders its result (a table, or JSON with ``--json``).
A user error (``MlkitError``) prints its message, in the words of the flags, and exits
with code 2, never a traceback. One module per group of commands:

- ``app.py``: the app, consoles, common options, running a library call;
- ``dataset.py``: classes, build-dataset, mirror; ``training.py``: train, review,
  evaluate, predict; ``export.py``: export, validate; ``demo.py``: demo.
"""

from __future__ import annotations

import sys

from ..errors import MlkitError
# each module registers its commands on the app, in the order --help lists them
from . import dataset, training, export, demo  # noqa: F401,I001
from .app import app, err, message

__all__ = ["app", "main"]


def main() -> None:
    from ..quiet import quiet_unless_verbose

    quiet_unless_verbose(sys.argv[1:])
    try:
        app()
    except MlkitError as exc:  # a library error raised outside a command's own handler
        err.print(f"error: {message(exc)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
