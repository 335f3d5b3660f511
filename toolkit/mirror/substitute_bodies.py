"""Bodies the server sends in place of a file: Flickr's "photo unavailable" placeholder,
and the made-up answers of the ``garbage`` and ``md5_mismatch`` faults."""

from __future__ import annotations

import io
import random
import threading

_placeholder_lock = threading.Lock()
_placeholder: bytes | None = None


def placeholder_png() -> bytes:
    """The "photo unavailable" PNG served at ``PLACEHOLDER_PATH`` (Flickr's is 500x374, grey)."""
    global _placeholder
    with _placeholder_lock:
        if _placeholder is None:
            from PIL import Image, ImageDraw

            img = Image.new("RGB", (500, 374), (222, 222, 222))
            draw = ImageDraw.Draw(img)
            # a crossed-out photo frame and the words, as on Flickr's placeholder
            draw.rectangle((200, 120, 300, 200), outline=(160, 160, 160), width=4)
            draw.polygon([(212, 188), (240, 150), (262, 172), (276, 158), (290, 188)], fill=(175, 175, 175))
            draw.line((195, 205, 305, 115), fill=(160, 160, 160), width=5)
            draw.text((172, 230), "This photo is no longer available", fill=(120, 120, 120))
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=False)
            _placeholder = buf.getvalue()
        return _placeholder


def garbage_body(path: str, size: int) -> bytes:
    """Random bytes (at least 64, fixed by ``path``) that are not an image."""
    body = bytearray(random.Random(f"garbage:{path}").randbytes(max(size, 64)))
    body[0:2] = b"\x00\x00"  # never the JPEG start-of-image marker
    return bytes(body)


def altered_jpeg(original: bytes) -> bytes:
    """The original re-encoded and visibly nudged: still a JPEG, never the same bytes."""
    from PIL import Image, ImageDraw

    try:
        with Image.open(io.BytesIO(original)) as src:
            img = src.convert("RGB")
    except Exception:  # not an image (or no file): any small valid JPEG will do
        img = Image.new("RGB", (64, 48), (128, 96, 64))
    draw = ImageDraw.Draw(img)
    w, h = img.size
    draw.rectangle((0, 0, max(1, w // 16), max(1, h // 16)), fill=(255, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=61)
    data = buf.getvalue()
    if data == original:  # cannot really happen after the drawing, but the contract is "differs"
        data = data[:-2] + b"\x00" + data[-2:]
    return data
