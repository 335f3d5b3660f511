"""Images that cannot be read: the one error that lists them, and TensorFlow's decoder
message made short. Shared by the folder reader (``dataset.folder``) and training's
checks (``training.data``), so the dataset stage needs nothing from training."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import MlkitError

DATASET_ADVICE = ("Delete or replace them (rerunning `mlkit build-dataset` fetches missing images again), then run "
                  "this command again")


def unreadable_error(bad: Sequence[str], advice: str = DATASET_ADVICE) -> MlkitError:
    """One error for every unreadable image (the first ten named), and what to do."""
    shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
    return MlkitError(f"{len(bad)} image(s) cannot be read:\n  {shown}\n{advice}")


def decoder_message(text: str) -> str:
    """TensorFlow's message without its op and device decorations."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\]?.*$", "", text.strip().splitlines()[0] if text.strip() else "")
    return text.strip()[:160] or "cannot decode"
