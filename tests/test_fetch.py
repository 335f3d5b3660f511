"""fetch.py against a real HTTP server (toolkit.mirror.server) on localhost."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
from pathlib import Path

import pytest
import requests

from toolkit.errors import MlkitError
from toolkit.mirror.faults import Fault, FaultPlan
from toolkit.mirror.server import MirrorServer
from toolkit.openimages import fetch as fetch_mod
from toolkit.openimages import layout
from toolkit.openimages.fetch import MetadataSource, default_cache_dir, fetch, metadata_source

REL = "v7/oidv7-train-annotations-human-imagelabels.csv"
URL_PATH = "/" + REL
SMALL_REL = layout.CLASSES_ALL


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(fetch_mod, "CHUNK_SIZE", 64 * 1024)


def _labels_csv(n_rows: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    lines = [",".join(layout.LABEL_COLUMNS)]
    for _ in range(n_rows):
        lines.append(f"{rng.getrandbits(64):016x},verification,/m/0{rng.getrandbits(20):05x},{rng.randint(0, 1)}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    big = root / REL
    big.parent.mkdir(parents=True)
    big.write_bytes(_labels_csv(80_000))  # about 4 MB
    (root / SMALL_REL).write_bytes(b"LabelName,DisplayName\n/m/01b9xk,Hot dog\n/m/0bl9f,Entity\n")
    return root


@pytest.fixture(scope="module")
def big_bytes(mirror_root: Path) -> bytes:
    data = (mirror_root / REL).read_bytes()
    assert len(data) > 3_000_000
    return data


@pytest.fixture
def srv(mirror_root: Path):
    with MirrorServer(mirror_root) as server:
        yield server


@pytest.fixture
def source(srv: MirrorServer, tmp_path: Path) -> MetadataSource:
    return metadata_source(srv.url, cache_dir=tmp_path / "cache")


class RecordingSession(requests.Session):
    """Logs every request's headers and the answer's status / range; can sabotage bodies."""

    def __init__(self, *, interrupt_after: int | None = None, corrupt: bool = False) -> None:
        super().__init__()
        self.log: list[dict] = []
        self.interrupt_after = interrupt_after
        self.corrupt = corrupt

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        resp = super().send(request, **kwargs)
        self.log.append({
            "range": request.headers.get("Range"),
            "if_range": request.headers.get("If-Range"),
            "status": resp.status_code,
            "content_range": resp.headers.get("Content-Range"),
            "content_length": int(resp.headers.get("Content-Length", -1)),
            "etag": resp.headers.get("ETag"),
        })
        original = resp.iter_content
        limit, corrupt = self.interrupt_after, self.corrupt

        def iter_content(*args, **kw):  # type: ignore[no-untyped-def]
            seen = 0
            for chunk in original(*args, **kw):
                if corrupt and seen == 0 and chunk:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                seen += len(chunk)
                yield chunk
                if limit is not None and seen >= limit:
                    raise KeyboardInterrupt  # the user pressed Ctrl-C mid-download

        resp.iter_content = iter_content
        return resp


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --------------------------------------------------------------------------- cold / cached


def test_cold_fetch_then_cached_fetch_makes_no_request(srv, source, big_bytes):
    path = fetch(source, REL, progress=False)
    assert path.read_bytes() == big_bytes
    assert srv.requests[URL_PATH] == 1

    meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
    assert meta["url"] == srv.url + URL_PATH
    assert meta["size"] == len(big_bytes)
    assert meta["md5"] == _b64md5(big_bytes) and meta["md5_verified"] is True
    assert meta["etag"] and meta["fetched_at"]
    assert not _part(path).exists()
    assert not _part(path).with_name(_part(path).name + ".meta.json").exists()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    again = fetch(source, REL, progress=False)
    assert again == path
    assert srv.requests[URL_PATH] == 1  # no network


def test_cache_path_layout_keeps_sources_apart(srv, mirror_root, tmp_path):
    cache = tmp_path / "cache"
    a = metadata_source(srv.url, cache_dir=cache)
    path = fetch(a, SMALL_REL, progress=False)
    assert path == cache / f"127.0.0.1_{srv.port}" / SMALL_REL
    b = metadata_source(srv.url + "/nested/base", cache_dir=cache)
    assert b.base.endswith("/nested/base/")
    assert b.cache_path(SMALL_REL) == cache / f"127.0.0.1_{srv.port}" / "nested" / "base" / SMALL_REL
    real = metadata_source(None, cache_dir=cache)
    assert real.base == layout.METADATA_BASE and not real.is_local
    assert real.cache_path(SMALL_REL) == cache / "storage.googleapis.com" / "openimages" / SMALL_REL


def test_cached_file_with_wrong_size_is_fetched_again(srv, source):
    path = fetch(source, SMALL_REL, progress=False)
    good = path.read_bytes()
    path.write_bytes(good[:5])
    assert fetch(source, SMALL_REL, progress=False).read_bytes() == good
    assert srv.requests["/" + SMALL_REL] == 2


def test_progress_bar_goes_to_stderr(srv, source, capsys):
    fetch(source, SMALL_REL, progress=True)
    out = capsys.readouterr()
    assert out.out == ""


# --------------------------------------------------------------------------- resume


def test_truncated_body_resumes_from_the_bytes_on_disk(srv, source, big_bytes):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("truncate")]}))
    session = RecordingSession()
    path = fetch(source, REL, progress=False, session=session)
    assert path.read_bytes() == big_bytes
    assert srv.requests[URL_PATH] == 2

    first, second = session.log
    assert first["range"] is None and first["status"] == 200
    half = len(big_bytes) // 2  # the server sends half the body, then hangs up
    kept = int(second["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < kept <= half and half - kept < fetch_mod.CHUNK_SIZE  # at most the chunk in flight is lost
    assert second["if_range"] == first["etag"]
    assert second["status"] == 206
    assert second["content_range"] == f"bytes {kept}-{len(big_bytes) - 1}/{len(big_bytes)}"
    assert second["content_length"] == len(big_bytes) - kept  # only the rest was sent


def test_resets_and_several_truncations_each_resume(srv, source, big_bytes):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("truncate"), Fault("reset"), Fault("truncate")]}))
    session = RecordingSession()
    path = fetch(source, REL, progress=False, session=session, retries=3)
    assert path.read_bytes() == big_bytes
    offsets = [entry["range"] and int(entry["range"][6:-1]) for entry in session.log]
    assert offsets[0] is None and 0 < offsets[1] < offsets[2] < len(big_bytes)
    assert [entry["status"] for entry in session.log] == [200, 206, 206]
    assert srv.requests[URL_PATH] == 4  # the reset answered nothing requests could log


def test_part_left_by_a_killed_run_is_resumed(srv, source, big_bytes):
    killed = RecordingSession(interrupt_after=1_000_000)
    with pytest.raises(KeyboardInterrupt):
        fetch(source, REL, progress=False, session=killed)
    dest = source.cache_path(REL)
    part = _part(dest)
    assert not dest.exists()
    kept = part.stat().st_size
    assert 1_000_000 <= kept < len(big_bytes)
    assert big_bytes.startswith(part.read_bytes())

    session = RecordingSession()
    path = fetch(source, REL, progress=False, session=session)
    assert path.read_bytes() == big_bytes
    (entry,) = session.log
    assert entry["range"] == f"bytes={kept}-"
    assert entry["if_range"] == killed.log[0]["etag"]  # recorded in <file>.part.meta.json
    assert entry["status"] == 206 and entry["content_length"] == len(big_bytes) - kept


def test_part_without_sidecar_is_resumed(srv, source, big_bytes):
    dest = source.cache_path(REL)
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(big_bytes[:1_234_567])
    session = RecordingSession()
    assert fetch(source, REL, progress=False, session=session).read_bytes() == big_bytes
    (entry,) = session.log
    assert entry["range"] == "bytes=1234567-" and entry["if_range"] is None
    assert entry["status"] == 206


def test_corrupted_part_is_caught_by_md5_and_fetched_again(srv, source, big_bytes):
    dest = source.cache_path(REL)
    dest.parent.mkdir(parents=True)
    bad = bytearray(big_bytes[:2_000_000])
    bad[1000:1010] = b"XXXXXXXXXX"
    _part(dest).write_bytes(bytes(bad))
    session = RecordingSession()
    path = fetch(source, REL, progress=False, session=session)
    assert path.read_bytes() == big_bytes
    assert [(e["range"], e["status"]) for e in session.log] == [("bytes=2000000-", 206), (None, 200)]
    assert srv.requests[URL_PATH] == 2


def test_md5_mismatch_twice_is_an_error_and_leaves_nothing(srv, source):
    session = RecordingSession(corrupt=True)  # every body arrives with its first byte flipped
    with pytest.raises(MlkitError, match="MD5"):
        fetch(source, REL, progress=False, session=session)
    dest = source.cache_path(REL)
    assert len(session.log) == 2
    assert not dest.exists() and not _part(dest).exists()


def test_complete_part_answered_416_is_verified_without_download(srv, source, big_bytes):
    killed = RecordingSession(interrupt_after=len(big_bytes))  # every byte landed, then Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        fetch(source, REL, progress=False, session=killed)
    dest = source.cache_path(REL)
    assert _part(dest).stat().st_size == len(big_bytes) and not dest.exists()

    session = RecordingSession()
    assert fetch(source, REL, progress=False, session=session).read_bytes() == big_bytes
    assert [(e["range"], e["status"]) for e in session.log] == [(f"bytes={len(big_bytes)}-", 416)]


def test_part_longer_than_the_file_starts_over(srv, source, big_bytes):
    dest = source.cache_path(REL)
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(big_bytes + b"junk")
    session = RecordingSession()
    assert fetch(source, REL, progress=False, session=session).read_bytes() == big_bytes
    assert [e["status"] for e in session.log] == [416, 200]


# --------------------------------------------------------------------------- errors


def test_5xx_is_retried(srv, source, big_bytes):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("status", 503), Fault("status", 500), Fault("status", 502)]}))
    assert fetch(source, REL, progress=False).read_bytes() == big_bytes
    assert srv.requests[URL_PATH] == 4


def test_5xx_past_the_retries_is_an_error(srv, source):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("status", 503)] * 3}))
    with pytest.raises(MlkitError, match="--source"):
        fetch(source, REL, progress=False, retries=2)
    assert srv.requests[URL_PATH] == 3


def test_final_path_never_holds_a_truncated_file(srv, source, big_bytes):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("truncate")] * 3}))
    with pytest.raises(MlkitError, match="resume") as info:
        fetch(source, REL, progress=False, retries=2)
    assert srv.requests[URL_PATH] == 3
    dest = source.cache_path(REL)
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".meta.json").exists()
    part = _part(dest)
    kept = part.stat().st_size
    assert 0 < kept < len(big_bytes)
    assert big_bytes.startswith(part.read_bytes())
    assert str(part) in str(info.value)

    # The faults are used up: the next run resumes what was kept and finishes.
    session = RecordingSession()
    assert fetch(source, REL, progress=False, session=session).read_bytes() == big_bytes
    assert session.log[0]["range"] == f"bytes={kept}-" and session.log[0]["status"] == 206


def test_404_is_an_error_naming_the_url(srv, source):
    with pytest.raises(MlkitError, match=r"not found at http://127\.0\.0\.1:\d+/v5/nope\.csv; check --source"):
        fetch(source, "v5/nope.csv", progress=False)
    assert srv.requests["/v5/nope.csv"] == 1  # not retried
    assert not source.cache_path("v5/nope.csv").exists()


def test_other_4xx_is_an_error_without_retry(srv, source):
    srv.set_faults(FaultPlan(per_path={URL_PATH: [Fault("status", 403)]}))
    with pytest.raises(MlkitError, match="HTTP 403"):
        fetch(source, REL, progress=False)
    assert srv.requests[URL_PATH] == 1


def test_unreachable_host_is_an_error_suggesting_source(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    source = metadata_source(None, cache_dir=tmp_path)
    with pytest.raises(MlkitError) as info:
        fetch(source, SMALL_REL, progress=False)
    message = str(info.value)
    assert layout.METADATA_BASE + SMALL_REL in message and "--source" in message


def test_refused_connection_is_retried_then_an_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the fetch: nobody listens
    source = metadata_source(f"http://127.0.0.1:{port}/", cache_dir=tmp_path)
    with pytest.raises(MlkitError, match="could not download .*--source"):
        fetch(source, SMALL_REL, progress=False, retries=1)


# --------------------------------------------------------------------------- local folder and sources


def test_local_folder_source_is_used_in_place(mirror_root, tmp_path):
    cache = tmp_path / "cache"
    for given in (str(mirror_root), mirror_root, mirror_root.as_uri()):
        source = metadata_source(given, cache_dir=cache)
        assert source.is_local and str(mirror_root) in source.describe()
        assert fetch(source, REL, progress=False) == mirror_root / REL
    assert not cache.exists()


def test_local_folder_missing_file_names_the_layout(mirror_root):
    source = metadata_source(str(mirror_root))
    with pytest.raises(MlkitError) as info:
        fetch(source, "v5/class-descriptions-boxable.csv")
    message = str(info.value)
    assert str(mirror_root / "v5" / "class-descriptions-boxable.csv") in message
    assert "laid out like" in message and "v5/class-descriptions-boxable.csv" in message


@pytest.mark.parametrize("bad", ["ftp://example.com/openimages/", "no/such/folder", "", "http:///path", "file:///no/such/dir"])
def test_bad_source_is_an_error_saying_what_is_accepted(bad):
    with pytest.raises(MlkitError, match="folder|URL"):
        metadata_source(bad)


@pytest.mark.parametrize("bad", ["/v7/x.csv", "../x.csv", "v7//x.csv", ""])
def test_bad_relpath_is_an_error(bad, tmp_path):
    with pytest.raises(MlkitError, match="relative"):
        fetch(metadata_source(None, cache_dir=tmp_path), bad, progress=False)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MLKIT_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert metadata_source().cache_dir == tmp_path / "mine"
    monkeypatch.delenv("MLKIT_CACHE")
    monkeypatch.setattr(fetch_mod.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mlkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "mlkit"
    monkeypatch.setattr(fetch_mod.sys, "platform", "darwin")
    assert default_cache_dir() == Path.home() / "Library" / "Caches" / "mlkit"


def test_source_is_frozen_and_describable(srv, tmp_path):
    source = metadata_source(srv.url, cache_dir=str(tmp_path))
    assert source.cache_dir == tmp_path and source.base == srv.url + "/"
    assert srv.url in source.describe()
    with pytest.raises(AttributeError):
        source.base = "x"  # type: ignore[misc]


def test_timeout_is_retried(srv, source):
    srv.set_faults(FaultPlan(per_path={"/" + SMALL_REL: [Fault("slow", delay=2.0)]}))
    path = fetch(source, SMALL_REL, progress=False, timeout=0.3)
    assert path.read_bytes().startswith(b"LabelName,DisplayName")
    assert srv.requests["/" + SMALL_REL] == 2
