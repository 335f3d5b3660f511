"""toolkit.netutil: the retry pause, the cause walk and the MD5 forms both HTTP clients share."""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest
import requests
import urllib3

from toolkit.netutil import b64_from_md5_hex, exception_chain, is_name_resolution_error, md5_from_b64, retry_pause


def test_retry_pause_doubles_up_to_the_cap_with_equal_jitter():
    assert [retry_pause(n, 0.5, 10.0, jitter=False) for n in (1, 2, 3, 6, 9)] == [0.5, 1.0, 2.0, 10.0, 10.0]
    pauses = [retry_pause(3, 0.5, 10.0) for _ in range(200)]
    assert all(1.0 <= p <= 2.0 for p in pauses) and max(pauses) - min(pauses) > 0.2   # half fixed, half random
    assert retry_pause(1, 0.5, 10.0, retry_after=4.0) == 4.0       # the server's Retry-After wins...
    assert retry_pause(1, 0.5, 10.0, retry_after=600.0) == 10.0    # ...up to the cap
    with pytest.raises(ValueError, match="Received: attempt=0"):
        retry_pause(0, 0.5, 10.0)


def test_the_cause_walk_finds_a_socket_error_however_it_is_wrapped():
    dns = socket.gaierror(-2, "Name or service not known")
    inner = urllib3.exceptions.NewConnectionError(None, "failed")
    inner.__cause__ = dns
    outer = urllib3.exceptions.MaxRetryError(None, "http://x.invalid/", reason=inner)
    wrapped = requests.ConnectionError(outer)
    chain = exception_chain(wrapped)
    assert dns in chain and inner in chain and outer in chain
    assert is_name_resolution_error(wrapped)
    assert not is_name_resolution_error(requests.ConnectionError(ConnectionResetError(104, "reset")))

    loop = ValueError("a")
    loop.__context__ = loop               # cycles are walked once
    assert exception_chain(loop) == [loop, "a"]


def test_md5_forms_round_trip():
    data = b"Open Images"
    b64 = b64_from_md5_hex(hashlib.md5(data).hexdigest())
    assert b64 == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert md5_from_b64(b64) == hashlib.md5(data).digest()
    assert md5_from_b64(b64.rstrip("=")) == hashlib.md5(data).digest()   # padding optional
    assert md5_from_b64("not base64!") is None and md5_from_b64(base64.b64encode(b"short").decode()) is None
