"""``preview.png``: a contact sheet of sample images per class and split, so a user sees at
a glance what the model will learn from."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..fsutil import atomic_write_bytes

TILE = 112
PAD = 6
LABEL_W = 150


def contact_sheet(groups: Mapping[tuple[str, str], Sequence[Path]], out: Path, *,
                  per_row: int = 8, title: str = "") -> Path:
    """One row per (split, class): up to ``per_row`` thumbnails, labelled with the count."""
    rows = [(k, list(v)) for k, v in groups.items()]
    header = 28 if title else 0
    width = LABEL_W + per_row * (TILE + PAD) + PAD
    height = header + max(1, len(rows)) * (TILE + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((PAD, 8), title, fill=(20, 20, 20), font=font)
    for r, ((split, cls), paths) in enumerate(rows):
        y = header + PAD + r * (TILE + PAD)
        draw.text((PAD, y + TILE // 2 - 14), f"{cls}", fill=(20, 20, 20), font=font)
        draw.text((PAD, y + TILE // 2 + 2), f"{split}: {len(paths)} images", fill=(90, 90, 90), font=font)
        for c, p in enumerate(paths[:per_row]):
            x = LABEL_W + PAD + c * (TILE + PAD)
            try:
                with Image.open(p) as im:
                    tile = ImageOps.fit(im.convert("RGB"), (TILE, TILE))
            except OSError:
                continue
            sheet.paste(tile, (x, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(out, buf.getvalue())
    return out
