"""What every HTTP client in mlkit shares: one retry pause policy, one walk over an
exception's causes, and the MD5 forms Open Images' servers use.

Open Images' files on Google Cloud Storage announce their MD5 base64-encoded in an
``x-goog-hash: crc32c=...,md5=...`` header, and its image lists give ``OriginalMD5`` in
the same encoding (https://cloud.google.com/storage/docs/hashes-etags); the metadata
fetcher (``openimages/fetch.py``) and the image downloader (``dataset/download/``) both check
against it.
"""

from __future__ import annotations

import base64
import binascii
import random
import socket


def retry_pause(attempt: int, base: float, cap: float, retry_after: float | None = None, *,
                jitter: bool = True) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential backoff from ``base`` doubling up to ``cap``, with "equal jitter" (half the
    pause fixed, half random) so that many workers retrying together spread out; a server's
    ``Retry-After`` is honoured up to ``cap``."""
    if attempt < 1:
        raise ValueError(f"`attempt` counts retries from 1. Received: attempt={attempt}")
    ceiling = min(cap, base * 2 ** (attempt - 1))
    pause = ceiling / 2 + random.uniform(0, ceiling / 2) if jitter else ceiling
    if retry_after is not None:
        pause = max(pause, min(retry_after, cap))
    return pause


def exception_chain(exc: BaseException, limit: int = 32) -> list[object]:
    """``exc``, its args, ``reason``, ``__cause__`` and ``__context__``, recursively, each
    once (urllib3 nests the socket error in args; requests wraps urllib3's)."""
    seen: list[object] = []
    stack: list[object] = [exc]
    while stack and len(seen) < limit:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        if isinstance(item, BaseException):
            stack.extend(item.args)
            for nxt in (getattr(item, "reason", None), item.__cause__, item.__context__):
                if nxt is not None:
                    stack.append(nxt)
    return seen


def is_name_resolution_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a DNS failure: no network, or no such host."""
    return any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError"
               for c in exception_chain(exc))


def md5_from_b64(value: str) -> bytes | None:
    """The 16 digest bytes of a base64 MD5 (padding optional), or None if it is not one."""
    text = value.strip()
    try:
        digest = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 16 else None


def b64_from_md5_hex(md5_hex: str) -> str:
    """A hex MD5 (``hashlib``'s ``hexdigest``) as Open Images writes it: base64."""
    return base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")
