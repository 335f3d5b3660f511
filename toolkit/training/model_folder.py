"""The model folder ``OUTPUT/NAME/`` that ``train`` writes: refused when it would replace an
earlier model unasked, checked for writability before any work, and swapped in whole.

A folder is replaced only with ``overwrite`` (``--overwrite``), and only when it is one
``train`` wrote (it has ``model.json``): a user's own folder of the same name is never
deleted. The new folder is built beside the old one and exchanged with it in one step
(``fsutil.atomic_folder``, used by ``toolkit.training.outputs``), so ``OUTPUT/NAME`` is at
every instant the old complete model (with its exports) or the new complete one, never a
mix.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from ..errors import MlkitError
from ..fsutil import check_writable, describe_write_error, recover_exchange
from .spec import MODEL_JSON

SHOWN = 16  # names listed in the refusal before "... and N more"


def check_output(folder: Path, overwrite: bool) -> None:
    """Before any work: ``folder``'s parent can be written, and ``folder`` holds no earlier
    model unless ``overwrite`` (then it must be a model folder mlkit wrote)."""
    folder = Path(folder)
    check_writable(folder.parent, "--output")
    recover_exchange(folder)       # a swap cut short by a kill (two-rename fallback) is put back first
    if not folder.exists():
        return
    if not folder.is_dir():
        raise MlkitError(f"{folder} exists and is not a folder: give another --name or --output")
    names = sorted((p.name for p in folder.iterdir()), key=_importance)
    if not names:
        return
    if not (folder / MODEL_JSON).is_file():
        raise MlkitError(f"{folder} already exists and is not a model folder written by `mlkit train` (no "
                         f"{MODEL_JSON}); mlkit does not replace it, even with --overwrite: give another --name "
                         "or --output, or move it away")
    if not overwrite:
        shown = ", ".join(names[:SHOWN]) + (f" ... and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
        raise MlkitError(f"{folder} already holds a trained model; training would replace {shown}. Rerun with "
                         "--overwrite to replace them, or give another --name or --output to keep them")


def _importance(name: str) -> tuple[int, str]:
    """The model and its exports first in the refusal, then the rest."""
    suffix = Path(name).suffix.lower()
    rank = 0 if suffix == ".keras" else 1 if suffix in (".mlmodel", ".mlpackage", ".tflite") else \
        2 if name == "validation.json" else 3
    return rank, name


WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(path: Path, exc: OSError, model=None) -> MlkitError | None:
    """A failed write (full disk, read-only or forbidden folder) as a user error naming the
    path and, for a full disk, about the space needed (the model's weights, with a margin
    for the other files); None for other errors."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    needed = None
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and model is not None:
        needed = int(sum(w.size * w.dtype.itemsize for w in model.get_weights()) * 1.1) + (1 << 20)
    where = _final_name(Path(exc.filename)) if exc.filename else path
    return MlkitError(describe_write_error(where, exc, needed) + ". Nothing half-written was left behind, and "
                      "what was there before is unchanged")


def _final_name(path: Path) -> Path:
    """The path a temporary one stands for: ``.model.keras.ab12cd34.part.keras`` in
    ``.NAME.partial-xyz/`` -> ``NAME/model.keras`` (what the user knows)."""
    m = re.match(r"^\.(.+)\.[A-Za-z0-9_]{8}\.part", path.name)
    if m:
        path = path.with_name(m.group(1))
    m = re.match(r"^\.(.+)\.partial-", path.parent.name)
    if m:
        path = path.parent.with_name(m.group(1)) / path.name
    return path
