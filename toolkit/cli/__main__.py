"""``python -m toolkit.cli``: the same as the ``mlkit`` command."""

from . import main

main()
