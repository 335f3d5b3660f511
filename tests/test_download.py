"""download_images against a real local HTTP server (MirrorServer) with injected faults."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from toolkit.dataset.download import (
    DownloadJob,
    DownloadOptions,
    DownloadReport,
    ImageSource,
    download_images,
    runner,
    transport,
)
from toolkit.cli.reporting import RichReporter
from toolkit.dataset.download.jobs import Cancelled
from toolkit.errors import MlkitError
from toolkit.mirror.faults import Fault, FaultPlan
from toolkit.mirror.server import MirrorServer
from toolkit.progress import SILENT, Reporter

REPO = Path(__file__).resolve().parent.parent
RED, BLUE = (255, 0, 0), (0, 0, 255)


def fast(**overrides) -> DownloadOptions:
    base = dict(workers=4, retries=2, backoff=0.01, connect_timeout=2.0, read_timeout=2.0)
    base.update(overrides)
    return DownloadOptions(**base)


# --------------------------------------------------------------------------- fixtures


def two_colour(width: int = 60, height: int = 40) -> Image.Image:
    """Left half red, right half blue: any rotation or mirror shows in the pixels."""
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, width // 2, height))
    return img


def save_jpeg(path: Path, img: Image.Image, orientation: int | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    img.save(path, "JPEG", quality=95, **kwargs)
    return path.read_bytes()


def noise_jpeg(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.frombytes("RGB", size, hashlib.sha256(str(seed).encode()).digest() * (size[0] * size[1] * 3 // 32 + 1))
    return save_jpeg(path, img)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def colour(img: Image.Image, fx: float, fy: float) -> str:
    r, g, b = img.convert("RGB").getpixel((int(fx * (img.width - 1)), int(fy * (img.height - 1))))
    if r > 180 and g < 80 and b < 80:
        return "red"
    if b > 180 and r < 80 and g < 80:
        return "blue"
    return f"other{(r, g, b)}"


def decodes(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:
        return False


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.part-*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def srv(root: Path):
    with MirrorServer(root) as server:
        yield server


def src(srv: MirrorServer, path: str, kind: str = "cvdf", md5: str | None = None) -> ImageSource:
    return ImageSource(f"{srv.url}{path}", kind, md5)


def one(srv: MirrorServer, dest: Path, *paths: str, opts: DownloadOptions | None = None,
        reporter: Reporter = SILENT, **job_kw):
    sources = tuple(p if isinstance(p, ImageSource) else src(srv, p) for p in paths)
    report = download_images([DownloadJob("img", dest, sources, **job_kw)], opts or fast(), reporter=reporter)
    assert isinstance(report, DownloadReport)
    return report.outcomes[0]


# --------------------------------------------------------------------------- basics


def test_plain_jpeg_is_written_byte_for_byte(srv, root, tmp_path):
    data = noise_jpeg(root / "train" / "a.jpg", 1)
    dest = tmp_path / "out" / "hot_dog" / "a.jpg"
    out = one(srv, dest, "/train/a.jpg")
    assert out.ok and out.reason is None and not out.skipped
    assert dest.read_bytes() == data
    assert out.md5 == hashlib.md5(data).hexdigest() and out.size == len(data)
    assert (out.width, out.height) == (64, 48)
    assert out.attempts == 1 and out.source_kind == "cvdf" and out.source_url.endswith("/train/a.jpg")
    assert part_files(tmp_path / "out") == []


def test_outcomes_follow_job_order_and_report_summarises(srv, root, tmp_path):
    for i in range(6):
        noise_jpeg(root / f"{i}.jpg", i)
    jobs = [DownloadJob(f"k{i}", tmp_path / "out" / f"{i}.jpg", (src(srv, f"/{i}.jpg"),)) for i in range(6)]
    jobs.insert(2, DownloadJob("gone", tmp_path / "out" / "gone.jpg", (src(srv, "/nope.jpg"),)))
    jobs.insert(4, DownloadJob("none", tmp_path / "out" / "none.jpg", ()))
    seen = []
    report = download_images(jobs, fast(workers=3), on_progress=lambda o: seen.append(o.key))
    assert [o.key for o in report.outcomes] == [j.key for j in jobs]
    assert sorted(seen) == sorted(j.key for j in jobs)
    assert len(report.ok()) == 6 and {o.key for o in report.failed()} == {"gone", "none"}
    assert report.failures_by_reason() == {"not_found": 1, "no_source": 1}
    assert report.elapsed > 0
    assert not (tmp_path / "out" / "gone.jpg").exists()


def test_connection_pool_is_sized_for_the_workers(srv, root, tmp_path, monkeypatch):
    seen = {}
    real = transport.urllib3.PoolManager

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(transport.urllib3, "PoolManager", spy)
    noise_jpeg(root / "a.jpg", 1)
    assert one(srv, tmp_path / "a.jpg", "/a.jpg", opts=fast(workers=48)).ok
    assert seen["maxsize"] >= 48


def test_progress_bar_option_does_not_disturb_results(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    assert one(srv, tmp_path / "a.jpg", "/a.jpg", reporter=RichReporter()).ok


# --------------------------------------------------------------------------- faults


def test_5xx_then_success_counts_attempts(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("status", 503), Fault("status", 500)]}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.ok and out.attempts == 3
    assert srv.requests["/a.jpg"] == 3


def test_5xx_after_retries_is_server_error_then_next_source(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    noise_jpeg(root / "b.jpg", 2)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("status", 502)] * 5}))
    failed = one(srv, tmp_path / "x.jpg", "/a.jpg", opts=fast(retries=2))
    assert not failed.ok and failed.reason == "server_error" and failed.attempts == 3
    assert srv.requests["/a.jpg"] == 3
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("status", 502)] * 5}))
    rescued = one(srv, tmp_path / "y.jpg", "/a.jpg", src(srv, "/b.jpg", "thumbnail"), opts=fast(retries=1))
    assert rescued.ok and rescued.source_kind == "thumbnail" and rescued.attempts == 3


def test_429_is_retried(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("status", 429)]}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.ok and out.attempts == 2


def test_other_4xx_is_never_retried(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    noise_jpeg(root / "b.jpg", 2)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("status", 403)] * 3}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert not out.ok and out.reason == "http_403" and out.attempts == 1
    assert srv.requests["/a.jpg"] == 1


def test_404_falls_back_to_next_source_without_retrying(srv, root, tmp_path):
    data = noise_jpeg(root / "thumb" / "a.jpg", 1)
    out = one(srv, tmp_path / "a.jpg", "/cvdf/a.jpg", src(srv, "/thumb/a.jpg", "thumbnail"),
              opts=fast(retries=3))
    assert out.ok and out.source_kind == "thumbnail" and out.attempts == 2
    assert srv.requests["/cvdf/a.jpg"] == 1 and srv.requests["/thumb/a.jpg"] == 1
    assert (tmp_path / "a.jpg").read_bytes() == data


def test_source_order_is_respected(srv, root, tmp_path):
    noise_jpeg(root / "c.jpg", 1)
    noise_jpeg(root / "t.jpg", 2)
    out = one(srv, tmp_path / "a.jpg", "/c.jpg", src(srv, "/t.jpg", "thumbnail"))
    assert out.source_kind == "cvdf" and srv.requests["/t.jpg"] == 0
    out = one(srv, tmp_path / "b.jpg", src(srv, "/t.jpg", "thumbnail"), "/c.jpg")
    assert out.source_kind == "thumbnail"


def test_404_everywhere_is_not_found_but_a_real_failure_wins(srv, root, tmp_path):
    out = one(srv, tmp_path / "a.jpg", "/x.jpg", src(srv, "/y.jpg", "original"))
    assert out.reason == "not_found" and out.attempts == 2
    noise_jpeg(root / "g.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/g.jpg": [Fault("garbage")]}))
    out = one(srv, tmp_path / "b.jpg", "/g.jpg", src(srv, "/y.jpg", "original"))
    assert out.reason == "not_an_image"  # not "not_found": one source did answer
    assert "not_found" in out.detail and "not_an_image" in out.detail


def test_no_source(tmp_path):
    report = download_images([DownloadJob("a", tmp_path / "a.jpg", ())], fast())
    assert report.outcomes[0].reason == "no_source" and report.outcomes[0].attempts == 0


def test_connection_reset_is_retried(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("reset")]}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.ok and out.attempts == 2
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("reset")] * 5}))
    out = one(srv, tmp_path / "b.jpg", "/a.jpg", opts=fast(retries=1))
    assert out.reason == "connection_error" and out.attempts == 2


def test_truncated_body_is_detected_and_retried(srv, root, tmp_path):
    data = noise_jpeg(root / "a.jpg", 1, size=(256, 256))
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("truncate")]}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.ok and out.attempts == 2 and (tmp_path / "a.jpg").read_bytes() == data
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("truncate")] * 5}))
    out = one(srv, tmp_path / "b.jpg", "/a.jpg", opts=fast(retries=1))
    assert out.reason == "truncated" and out.attempts == 2
    assert not (tmp_path / "b.jpg").exists() and part_files(tmp_path) == []


def test_slow_server_times_out(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("slow", delay=3.0)] * 2}))
    started = time.monotonic()
    out = one(srv, tmp_path / "a.jpg", "/a.jpg", opts=fast(read_timeout=0.3, retries=1))
    assert out.reason == "timeout" and out.attempts == 2
    assert time.monotonic() - started < 2.5
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("slow", delay=3.0)]}))
    out = one(srv, tmp_path / "b.jpg", "/a.jpg", opts=fast(read_timeout=0.3, retries=1))
    assert out.ok and out.attempts == 2


def test_placeholder_redirect_is_rejected_without_retry(srv, root, tmp_path):
    data = noise_jpeg(root / "thumb.jpg", 2)
    noise_jpeg(root / "orig.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/orig.jpg": [Fault("placeholder")] * 3}))
    out = one(srv, tmp_path / "a.jpg", src(srv, "/orig.jpg", "original"))
    assert out.reason == "placeholder" and srv.requests["/orig.jpg"] == 1
    assert not (tmp_path / "a.jpg").exists()
    # a dead Flickr photo as the real site does it: a permanent redirect table
    (root / "_redirects.json").write_text(json.dumps({"/dead.jpg": "/photo_unavailable.png"}))
    out = one(srv, tmp_path / "b.jpg", src(srv, "/dead.jpg", "original"), src(srv, "/thumb.jpg", "thumbnail"))
    assert out.ok and out.source_kind == "thumbnail" and (tmp_path / "b.jpg").read_bytes() == data


def test_uniform_png_served_for_a_jpg_url_is_a_placeholder(srv, root, tmp_path):
    Image.new("RGB", (500, 374), (222, 222, 222)).save(root / "gone.jpg", "PNG")
    out = one(srv, tmp_path / "a.jpg", src(srv, "/gone.jpg", "original"))
    assert out.reason == "placeholder"
    # a real PNG (not uniform) at a .png URL is an image: converted to JPEG
    two_colour().save(root / "real.png", "PNG")
    out = one(srv, tmp_path / "b.jpg", "/real.png")
    assert out.ok
    with Image.open(tmp_path / "b.jpg") as img:
        assert img.format == "JPEG" and img.mode == "RGB"
        assert colour(img, 0.1, 0.5) == "red" and colour(img, 0.9, 0.5) == "blue"


def test_md5_mismatch_is_retried_once_then_next_source(srv, root, tmp_path):
    data = noise_jpeg(root / "orig.jpg", 1)
    noise_jpeg(root / "thumb.jpg", 2)
    good = md5_b64(data)
    srv.set_faults(FaultPlan(per_path={"/orig.jpg": [Fault("md5_mismatch")] * 3}))
    out = one(srv, tmp_path / "a.jpg", src(srv, "/orig.jpg", "original", good), opts=fast(retries=3))
    assert out.reason == "md5_mismatch" and srv.requests["/orig.jpg"] == 2 and out.attempts == 2
    srv.set_faults(FaultPlan(per_path={"/orig.jpg": [Fault("md5_mismatch")] * 3}))
    out = one(srv, tmp_path / "b.jpg", src(srv, "/orig.jpg", "original", good), src(srv, "/thumb.jpg", "thumbnail"))
    assert out.ok and out.source_kind == "thumbnail" and out.attempts == 3
    srv.set_faults(FaultPlan(per_path={"/orig.jpg": [Fault("md5_mismatch")]}))
    out = one(srv, tmp_path / "c.jpg", src(srv, "/orig.jpg", "original", good))
    assert out.ok and out.attempts == 2 and (tmp_path / "c.jpg").read_bytes() == data


def test_md5_is_checked_only_for_originals(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    wrong = md5_b64(b"something else")
    assert one(srv, tmp_path / "a.jpg", src(srv, "/a.jpg", "cvdf", wrong)).ok
    assert one(srv, tmp_path / "b.jpg", src(srv, "/a.jpg", "original", wrong)).reason == "md5_mismatch"


def test_redirects_are_followed_within_one_attempt(srv, root, tmp_path):
    data = noise_jpeg(root / "real.jpg", 1)
    (root / "_redirects.json").write_text(json.dumps({"/a.jpg": "/b.jpg", "/b.jpg": "/real.jpg"}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.ok and out.attempts == 1 and (tmp_path / "a.jpg").read_bytes() == data
    assert srv.requests["/a.jpg"] == srv.requests["/b.jpg"] == srv.requests["/real.jpg"] == 1


def test_redirect_loop_fails_without_retry(srv, root, tmp_path):
    (root / "_redirects.json").write_text(json.dumps({"/a.jpg": "/b.jpg", "/b.jpg": "/a.jpg"}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg", opts=fast(retries=3))
    assert out.reason == "http_302" and out.attempts == 1 and "redirects" in out.detail
    assert srv.requests["/a.jpg"] + srv.requests["/b.jpg"] == transport._MAX_REDIRECTS + 1


def test_placeholder_redirect_is_not_followed(srv, root, tmp_path):
    noise_jpeg(root / "orig.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/orig.jpg": [Fault("placeholder")]}))
    out = one(srv, tmp_path / "a.jpg", src(srv, "/orig.jpg", "original"))
    assert out.reason == "placeholder" and out.attempts == 1
    assert srv.requests["/photo_unavailable.png"] == 0  # the redirect alone tells


def test_keep_alive_connections_survive_404s(srv, root, tmp_path):
    """A small error body is read so its connection serves the next request (CVDF answers
    404 for most images, so a new connection per 404 would double the handshakes)."""
    for i in range(6):
        noise_jpeg(root / "thumb" / f"{i}.jpg", i)
    jobs = [DownloadJob(str(i), tmp_path / f"{i}.jpg",
                        (src(srv, f"/cvdf/{i}.jpg"), src(srv, f"/thumb/{i}.jpg", "thumbnail")))
            for i in range(6)]
    report = download_images(jobs, fast(workers=1))
    assert not report.failed() and sum(o.attempts for o in report.outcomes) == 12
    assert srv.connections == 1


def _dead_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, never listening, then closed: nobody answers
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_connection_is_a_connection_error(tmp_path):
    job = DownloadJob("a", tmp_path / "a.jpg", (ImageSource(f"http://127.0.0.1:{_dead_port()}/a.jpg", "cvdf"),))
    out = download_images([job], fast(retries=1)).outcomes[0]
    assert out.reason == "connection_error" and out.attempts == 2


def test_proxy_from_the_environment_is_used(srv, root, tmp_path, monkeypatch):
    data = noise_jpeg(root / "a.jpg", 1)

    def environment(proxy: str, no_proxy: str) -> None:
        for name in ("http_proxy", "no_proxy", "all_proxy"):
            monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", no_proxy)

    # through the proxy (the mirror answers absolute-form requests too): no DNS for the host
    environment(srv.url, "")
    job = DownloadJob("a", tmp_path / "a.jpg", (ImageSource("http://images.invalid/a.jpg", "cvdf"),))
    out = download_images([job], fast(retries=0)).outcomes[0]
    assert out.ok and (tmp_path / "a.jpg").read_bytes() == data and srv.requests["/a.jpg"] == 1
    # a dead proxy: NO_PROXY lets the mirror's host bypass it, the rest fail
    environment(f"http://127.0.0.1:{_dead_port()}", "127.0.0.1")
    job = DownloadJob("b", tmp_path / "b.jpg", (src(srv, "/a.jpg"),))
    assert download_images([job], fast(retries=0)).outcomes[0].ok and srv.requests["/a.jpg"] == 2
    job = DownloadJob("c", tmp_path / "c.jpg", (ImageSource("http://images.invalid/a.jpg", "cvdf"),))
    assert download_images([job], fast(retries=0)).outcomes[0].reason == "connection_error"


def test_folders_are_synced_once_at_the_end(srv, root, tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(runner, "_sync_folders", lambda folders: synced.append(set(folders)))
    for i in range(4):
        noise_jpeg(root / f"{i}.jpg", i)
    jobs = [DownloadJob(str(i), tmp_path / ("x" if i % 2 else "y") / f"{i}.jpg", (src(srv, f"/{i}.jpg"),))
            for i in range(4)]
    assert not download_images(jobs, fast()).failed()
    assert synced == [{tmp_path / "x", tmp_path / "y"}]


def test_garbage_is_not_an_image_and_not_retried(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    srv.set_faults(FaultPlan(per_path={"/a.jpg": [Fault("garbage")] * 3}))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    assert out.reason == "not_an_image" and srv.requests["/a.jpg"] == 1


@pytest.mark.parametrize("lenient", [False, True], ids=["pillow-default", "LOAD_TRUNCATED_IMAGES"])
def test_truncated_file_on_the_server_never_passes(srv, root, tmp_path, monkeypatch, lenient):
    """All declared bytes arrive, but the image itself is cut: Pillow must not accept it."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient)
    data = noise_jpeg(tmp_path / "full.jpg", 1, size=(256, 256))
    (root / "cut.jpg").write_bytes(data[: len(data) - 300])
    buf = io.BytesIO()
    two_colour(256, 256).save(buf, "PNG")
    (root / "cut.png").write_bytes(buf.getvalue()[:-12])  # without its IEND chunk
    for i, name in enumerate(("cut.jpg", "cut.png")):
        out = one(srv, tmp_path / f"{i}.jpg", f"/{name}")
        assert out.reason == "not_an_image", name
        assert srv.requests[f"/{name}"] == 1
        assert not (tmp_path / f"{i}.jpg").exists()


def test_random_faults_all_recovered(srv, root, tmp_path):
    served = {i: noise_jpeg(root / f"{i}.jpg", i, size=(128, 96)) for i in range(40)}
    srv.set_faults(FaultPlan(rate=0.3, kinds=("status", "reset", "truncate"), seed=7))
    jobs = [DownloadJob(str(i), tmp_path / "out" / f"{i}.jpg", (src(srv, f"/{i}.jpg"),)) for i in served]
    report = download_images(jobs, fast(workers=8, retries=8, backoff=0.002))
    assert report.failures_by_reason() == {}
    assert sum(o.attempts for o in report.outcomes) > len(jobs)  # faults were hit and retried
    assert sum(srv.requests.values()) == sum(o.attempts for o in report.outcomes)
    for i, data in served.items():
        assert (tmp_path / "out" / f"{i}.jpg").read_bytes() == data


# --------------------------------------------------------------------------- processing


def test_exif_orientation_is_applied(srv, root, tmp_path):
    save_jpeg(root / "a.jpg", two_colour(), orientation=6)  # 6: turn 90 degrees clockwise
    out = one(srv, tmp_path / "a.jpg", "/a.jpg")
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.size == (40, 60) == (out.width, out.height)
        assert colour(img, 0.5, 0.1) == "red" and colour(img, 0.5, 0.9) == "blue"
        assert img.getexif().get(0x0112, 1) == 1


# Rotation is counter-clockwise (Open Images, "Rotated images in Open Images"); the
# picture is red on the left, so 90 counter-clockwise puts red at the bottom
@pytest.mark.parametrize("rotation, top, bottom, left, right, size", [
    (90, "blue", "red", None, None, (40, 60)),
    (270, "red", "blue", None, None, (40, 60)),
    (180, None, None, "blue", "red", (60, 40)),
    (0, None, None, "red", "blue", (60, 40)),
])
def test_rotation_is_counter_clockwise(srv, root, tmp_path, rotation, top, bottom, left, right, size):
    save_jpeg(root / "a.jpg", two_colour())
    out = one(srv, tmp_path / "a.jpg", "/a.jpg", rotation=rotation)
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.size == size == (out.width, out.height)
        if top:
            assert colour(img, 0.5, 0.1) == top and colour(img, 0.5, 0.9) == bottom
        else:
            assert colour(img, 0.1, 0.5) == left and colour(img, 0.9, 0.5) == right


@pytest.mark.parametrize("rotation", [90.0, 180.0, 270.0])
def test_exif_orientation_alone_turns_a_file_that_has_one(srv, root, tmp_path, rotation):
    """Rotation was recovered from the original's EXIF: the two describe the same turn."""
    save_jpeg(root / "a.jpg", two_colour(), orientation=6)  # 6: turn 90 degrees clockwise
    one(srv, tmp_path / "a.jpg", "/a.jpg", rotation=rotation)
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.size == (40, 60)
        assert colour(img, 0.5, 0.1) == "red" and colour(img, 0.5, 0.9) == "blue"


def test_crop_is_clamped_and_in_stored_coordinates(srv, root, tmp_path):
    save_jpeg(root / "a.jpg", two_colour())
    out = one(srv, tmp_path / "a.jpg", "/a.jpg", crop=(0.55, 0.0, 1.0, 1.0))
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.size == (27, 40) == (out.width, out.height)
        assert {colour(img, x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1)} == {"blue"}
    out = one(srv, tmp_path / "b.jpg", "/a.jpg", crop=(-0.2, -0.1, 0.45, 1.3))
    with Image.open(tmp_path / "b.jpg") as img:
        assert img.size == (27, 40)
        assert {colour(img, x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1)} == {"red"}
    # boxes are in the stored frame: the stored left 45% (red) is cut, then turned by EXIF 6
    save_jpeg(root / "o.jpg", two_colour(), orientation=6)
    out = one(srv, tmp_path / "c.jpg", "/o.jpg", crop=(0.0, 0.0, 0.45, 1.0))
    with Image.open(tmp_path / "c.jpg") as img:
        assert img.size == (40, 27)
        assert {colour(img, x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1)} == {"red"}
    # the same with Rotation and no EXIF: the stored right 45% (blue), turned 90 counter-clockwise
    out = one(srv, tmp_path / "d.jpg", "/a.jpg", crop=(0.55, 0.0, 1.0, 1.0), rotation=90)
    with Image.open(tmp_path / "d.jpg") as img:
        assert img.size == (40, 27)
        assert {colour(img, x, y) for x in (0, 0.5, 1) for y in (0, 0.5, 1)} == {"blue"}


def test_max_size_resizes_the_longer_side(srv, root, tmp_path):
    save_jpeg(root / "a.jpg", two_colour(300, 200))
    out = one(srv, tmp_path / "a.jpg", "/a.jpg", opts=fast(max_size=60))
    with Image.open(tmp_path / "a.jpg") as img:
        assert img.size == (60, 40) == (out.width, out.height)
        assert colour(img, 0.1, 0.5) == "red" and colour(img, 0.9, 0.5) == "blue"
    small = noise_jpeg(root / "s.jpg", 3)  # 64x48 already fits: bytes kept as they are
    one(srv, tmp_path / "s.jpg", "/s.jpg", opts=fast(max_size=64))
    assert (tmp_path / "s.jpg").read_bytes() == small


def test_empty_csv_cells_mean_none(srv, root, tmp_path):
    """pandas reads an empty Rotation or OriginalMD5 cell as NaN: same as None."""
    data = noise_jpeg(root / "a.jpg", 1)
    job = DownloadJob("a", tmp_path / "a.jpg", (ImageSource(f"{srv.url}/a.jpg", "original", float("nan")),),
                      rotation=float("nan"))
    assert job.rotation is None and job.sources[0].md5_b64 is None
    assert download_images([job], fast()).outcomes[0].ok
    assert (tmp_path / "a.jpg").read_bytes() == data


def test_transparent_png_becomes_rgb_jpeg(srv, root, tmp_path):
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 20, 40))
    img.save(root / "a.png", "PNG")
    assert one(srv, tmp_path / "a.jpg", "/a.png").ok
    with Image.open(tmp_path / "a.jpg") as out:
        assert out.format == "JPEG" and out.mode == "RGB"
        assert colour(out, 0.1, 0.5) == "red" and out.getpixel((35, 20))[0] > 240  # white, not black


def test_processing_is_deterministic(srv, root, tmp_path):
    save_jpeg(root / "a.jpg", two_colour(300, 200), orientation=8)
    for name in ("x", "y"):
        one(srv, tmp_path / name / "a.jpg", "/a.jpg", rotation=90, crop=(0.1, 0.1, 0.9, 0.8),
            opts=fast(max_size=100, jpeg_quality=80))
    assert (tmp_path / "x" / "a.jpg").read_bytes() == (tmp_path / "y" / "a.jpg").read_bytes()


# --------------------------------------------------------------------------- resume, atomicity


def test_existing_valid_dest_is_skipped(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    dest = tmp_path / "a.jpg"
    mine = noise_jpeg(dest, 99)
    out = one(srv, dest, "/a.jpg")
    assert out.ok and out.skipped and out.attempts == 0 and srv.requests["/a.jpg"] == 0
    assert out.md5 == hashlib.md5(mine).hexdigest() and out.size == len(mine) and (out.width, out.height) == (64, 48)
    assert dest.read_bytes() == mine


def test_corrupt_dest_is_replaced_or_removed(srv, root, tmp_path):
    data = noise_jpeg(root / "a.jpg", 1)
    dest = tmp_path / "a.jpg"
    dest.write_bytes(data[: len(data) // 2])
    out = one(srv, dest, "/a.jpg")
    assert out.ok and not out.skipped and dest.read_bytes() == data
    # when no source works, a corrupt file must not be left at dest either
    other = tmp_path / "b.jpg"
    other.write_bytes(b"")
    out = one(srv, other, "/missing.jpg")
    assert out.reason == "not_found" and not other.exists()


def test_stale_part_files_are_removed(srv, root, tmp_path):
    noise_jpeg(root / "a.jpg", 1)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stale = out_dir / ".a.jpg.part-0badc0ffee00"
    stale.write_bytes(b"half")
    keep = out_dir / "notes.part-1.txt"  # not ours: left alone
    keep.write_text("x")
    assert one(srv, out_dir / "a.jpg", "/a.jpg").ok
    assert not stale.exists() and keep.exists()


def _resume_fixture(root: Path, count: int) -> dict[str, bytes]:
    served = {}
    for i in range(count):
        if i % 3 == 0:
            img = two_colour(200, 120)
        else:
            img = Image.open(io.BytesIO(noise_jpeg(root / "tmp.jpg", i, (160, 120)))).convert("RGB")
        orientation = 6 if i % 4 == 0 else None
        served[f"{i:016x}"] = save_jpeg(root / "train" / f"{i:016x}.jpg", img, orientation=orientation)
    return served


def _resume_jobs(srv: MirrorServer, out: Path, keys) -> list[DownloadJob]:
    return [DownloadJob(k, out / "hot_dog" / f"{k}.jpg", (src(srv, f"/train/{k}.jpg"),),
                        rotation=90 if int(k, 16) % 5 == 0 else None) for k in keys]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ctrl_c_mid_run_then_rerun_gives_the_uninterrupted_result(srv, root, tmp_path):
    served = _resume_fixture(root, 24)
    opts = fast(workers=4, max_size=100)
    reference = download_images(_resume_jobs(srv, tmp_path / "ref", served), opts)
    assert not reference.failed()

    srv.requests.clear()
    srv.set_faults(FaultPlan(latency=0.05))
    jobs = _resume_jobs(srv, tmp_path / "run", served)
    done = []

    def interrupt_after_five(outcome):
        done.append(outcome)
        if len(done) == 5:
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        download_images(jobs, opts, on_progress=interrupt_after_five)
    assert time.monotonic() - started < 3.0  # stopped promptly, not after all 24
    present = [j for j in jobs if j.dest.exists()]
    assert 5 <= len(present) < len(jobs)
    assert part_files(tmp_path / "run") == []
    assert all(decodes(j.dest) for j in present)

    before = srv.requests.copy()
    rerun = download_images(jobs, opts)
    assert not rerun.failed()
    skipped = [o for o in rerun.outcomes if o.skipped]
    assert {o.key for o in skipped} == {j.key for j in present}
    for o in skipped:  # not fetched again
        assert srv.requests[f"/train/{o.key}.jpg"] == before[f"/train/{o.key}.jpg"]
    assert _digests(tmp_path / "run") == _digests(tmp_path / "ref")
    assert [o.md5 for o in rerun.outcomes] == [o.md5 for o in reference.outcomes]


_KILLED_RUN = """
import json, sys
from pathlib import Path
from toolkit.dataset.download import DownloadJob, DownloadOptions, ImageSource, download_images
spec = json.loads(Path(sys.argv[1]).read_text())
jobs = [DownloadJob(k, Path(d), (ImageSource(u, "cvdf"),), rotation=r) for k, d, u, r in spec["jobs"]]
download_images(jobs, DownloadOptions(workers=2, max_size=spec["max_size"]))
"""


def _run_and_signal(tmp_path: Path, jobs: list[DownloadJob], sig: int, after: int) -> tuple[subprocess.Popen, float]:
    """Run the jobs in a child process; send it ``sig`` once ``after`` files exist.

    Returns the process and the seconds it took to exit after the signal."""
    spec = {"max_size": 100, "jobs": [[j.key, str(j.dest), j.sources[0].url, j.rotation] for j in jobs]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tmp_path / "spec.json")], cwd=REPO, env=env,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while sum(j.dest.exists() for j in jobs) < after and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        signalled = time.monotonic()
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)
        return proc, time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_stops_a_run_promptly_and_cleans_up(srv, root, tmp_path):
    served = _resume_fixture(root, 30)
    srv.set_faults(FaultPlan(latency=0.1))
    jobs = _resume_jobs(srv, tmp_path / "run", served)
    proc, stopping = _run_and_signal(tmp_path, jobs, signal.SIGINT, after=3)
    assert proc.returncode != 0
    assert stopping < 1.5  # in-flight jobs abort; no waiting for the queue or a grace timeout
    present = [j for j in jobs if j.dest.exists()]
    assert 3 <= len(present) < len(jobs)
    assert part_files(tmp_path / "run") == []
    assert all(decodes(j.dest) for j in present)


def test_stop_event_aborts_streaming_and_writing(srv, root, tmp_path):
    """What Ctrl-C relies on in the workers: a set stop Event ends a body read between
    chunks, and a write never renames its temp file into place (nor leaves it)."""
    (root / "big.jpg").write_bytes(os.urandom(2_000_000))
    stop = threading.Event()
    dl = runner._Downloader(fast(), stop)
    try:
        stop.set()
        with pytest.raises(Cancelled):
            dl.client.fetch(f"{srv.url}/big.jpg")
        with pytest.raises(Cancelled):
            dl._write(tmp_path / "x.jpg", b"data")
        assert list(tmp_path.iterdir()) == [root]
    finally:
        dl.close()


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_result(srv, root, tmp_path):
    served = _resume_fixture(root, 30)
    opts = fast(workers=4, max_size=100)
    reference = download_images(_resume_jobs(srv, tmp_path / "ref", served), opts)
    assert not reference.failed()

    srv.set_faults(FaultPlan(latency=0.1))
    jobs = _resume_jobs(srv, tmp_path / "run", served)
    proc, _ = _run_and_signal(tmp_path, jobs, signal.SIGKILL, after=4)
    assert proc.returncode == -signal.SIGKILL
    present = [j for j in jobs if j.dest.exists()]
    assert 4 <= len(present) < len(jobs)
    assert all(decodes(j.dest) for j in present)  # a kill never leaves a partial file at a dest

    srv.set_faults(None)
    srv.requests.clear()
    rerun = download_images(jobs, opts)
    assert not rerun.failed()
    assert sum(o.skipped for o in rerun.outcomes) >= len(present)
    assert sum(srv.requests.values()) == len(jobs) - sum(o.skipped for o in rerun.outcomes)
    assert part_files(tmp_path / "run") == []
    assert _digests(tmp_path / "run") == _digests(tmp_path / "ref")


# --------------------------------------------------------------------------- user errors


def test_invalid_options_and_jobs_raise_mlkit_error(tmp_path):
    job = DownloadJob("a", tmp_path / "a.jpg", (ImageSource("http://127.0.0.1:9/a.jpg", "cvdf"),))
    with pytest.raises(MlkitError, match="workers"):
        download_images([job], DownloadOptions(workers=0))
    with pytest.raises(MlkitError, match="jpeg_quality"):
        download_images([job], DownloadOptions(jpeg_quality=0))
    with pytest.raises(MlkitError, match="both write"):
        download_images([job, DownloadJob("b", tmp_path / "a.jpg", job.sources)], fast())
    bad_md5 = DownloadJob("c", tmp_path / "c.jpg", (ImageSource("http://h/c.jpg", "original", "not-md5"),))
    with pytest.raises(MlkitError, match="md5_b64"):
        download_images([bad_md5], fast())
    with pytest.raises(MlkitError, match="kind"):
        download_images([DownloadJob("d", tmp_path / "d.jpg", (ImageSource("http://h/d.jpg", "flickr"),))], fast())
    with pytest.raises(MlkitError, match="empty"):
        download_images([DownloadJob("e", tmp_path / "e.jpg", job.sources, crop=(0.5, 0, 0.5, 1))], fast())


def test_unwritable_dest_stops_the_run_with_mlkit_error(srv, root, tmp_path, monkeypatch):
    noise_jpeg(root / "a.jpg", 1)
    (tmp_path / "a.jpg").mkdir()  # a folder where the file should go
    with pytest.raises(MlkitError, match="cannot write"):
        one(srv, tmp_path / "a.jpg", "/a.jpg")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner.os, "replace", disk_full)
    with pytest.raises(MlkitError, match="No space left"):
        one(srv, tmp_path / "out" / "b.jpg", "/a.jpg")
    assert list((tmp_path / "out").iterdir()) == []  # the temp file is gone too
