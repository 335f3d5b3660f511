"""The embedded mirror: its HTTP server (real sockets, no mocks) and its generated files."""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import json
import re
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from toolkit.mirror import (
    BOXABLE,
    CLASSES,
    DEFAULT_IMAGES_PER_CLASS,
    HOT_DOG,
    HOT_DOG_RELATED,
    MOUSE_MIDS,
    PLACEHOLDER_PATH,
    Fault,
    FaultPlan,
    MirrorServer,
    generate_mirror,
    held_out_count,
    start_mirror,
)
from toolkit.mirror import generate as generate_module
from toolkit.openimages import layout

# -- server -------------------------------------------------------------------------------


def _jpeg_bytes(color: tuple[int, int, int] = (200, 120, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "v5").mkdir(parents=True)
    (root / "v5" / "labels.csv").write_text("ImageID,Source,LabelName,Confidence\nabc,verification,/m/01b9xk,1\n")
    (root / "h.json").write_text('{"LabelName": "/m/0bl9f"}\n')
    (root / "cvdf" / "train").mkdir(parents=True)
    for i in range(40):
        (root / "cvdf" / "train" / f"{i:016x}.jpg").write_bytes(_jpeg_bytes((i * 5, 100, 200 - i * 4)))
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)  # 1024 bytes
    (root / "flickr").mkdir()
    (root / "flickr" / "new.jpg").write_bytes(_jpeg_bytes((10, 200, 10)))
    (root / "_redirects.json").write_text(json.dumps({"/flickr/old_o.jpg": "/flickr/new.jpg", "/flickr/dead_o.jpg": PLACEHOLDER_PATH}))
    (tmp_path / "secret.txt").write_text("outside the root")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    return root


@pytest.fixture
def server(site: Path):
    with MirrorServer(site) as srv:
        yield srv


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_get_and_head(server: MirrorServer, site: Path) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
    r = requests.get(server.url + "/v5/labels.csv", timeout=5)
    assert r.status_code == 200
    assert r.content == (site / "v5" / "labels.csv").read_bytes()
    assert r.headers["Content-Type"].startswith("text/csv")
    assert int(r.headers["Content-Length"]) == len(r.content)

    h = requests.head(server.url + "/cvdf/train/0000000000000003.jpg", timeout=5)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["Content-Type"] == "image/jpeg"
    assert int(h.headers["Content-Length"]) == (site / "cvdf" / "train" / "0000000000000003.jpg").stat().st_size
    assert server.requests["/v5/labels.csv"] == 1
    assert server.requests["/cvdf/train/0000000000000003.jpg"] == 1


def test_missing_and_traversal_are_404(server: MirrorServer) -> None:
    assert requests.get(server.url + "/nope.csv", timeout=5).status_code == 404
    assert requests.get(server.url + "/cvdf/train/", timeout=5).status_code == 404  # a folder
    assert requests.get(server.url + "/escape.txt", timeout=5).status_code == 404  # symlink out of root
    assert requests.get(server.url + "/_redirects.json", timeout=5).status_code == 404
    # requests normalises "..", so speak raw HTTP
    host, port = server.url.removeprefix("http://").split(":")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/v5/../../secret.txt", "/..%2fsecret.txt"):
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 404, path
        assert b"outside" not in body


def test_ranges(server: MirrorServer, site: Path) -> None:
    data = (site / "data.bin").read_bytes()
    r = requests.get(server.url + "/data.bin", headers={"Range": "bytes=1000-"}, timeout=5)
    assert r.status_code == 206
    assert r.content == data[1000:]
    assert r.headers["Content-Range"] == "bytes 1000-1023/1024"
    r = requests.get(server.url + "/data.bin", headers={"Range": "bytes=10-19"}, timeout=5)
    assert (r.status_code, r.content, r.headers["Content-Length"]) == (206, data[10:20], "10")
    assert r.headers["Content-Range"] == "bytes 10-19/1024"
    r = requests.get(server.url + "/data.bin", headers={"Range": "bytes=1000-5000"}, timeout=5)
    assert r.status_code == 206 and r.content == data[1000:]
    r = requests.get(server.url + "/data.bin", headers={"Range": "bytes=1024-"}, timeout=5)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == "bytes */1024"
    r = requests.get(server.url + "/data.bin", headers={"Range": "bytes=-4"}, timeout=5)
    assert r.status_code == 206 and r.content == data[-4:]


def test_goog_hash_and_etag_on_metadata(server: MirrorServer, site: Path) -> None:
    for path in ("/v5/labels.csv", "/h.json"):
        r = requests.get(server.url + path, timeout=5)
        expected = _md5_b64((site / path.lstrip("/")).read_bytes())
        assert r.headers["x-goog-hash"] == f"md5={expected}"
        assert r.headers["ETag"]
        again = requests.get(server.url + path, headers={"If-None-Match": r.headers["ETag"]}, timeout=5)
        assert again.status_code == 304
    r = requests.get(server.url + "/cvdf/train/0000000000000001.jpg", timeout=5)
    assert "x-goog-hash" not in r.headers


def test_keep_alive_reuses_one_connection(server: MirrorServer) -> None:
    before = server.connections
    start = time.perf_counter()
    with requests.Session() as session:
        for i in range(20):
            r = session.get(f"{server.url}/cvdf/train/{i:016x}.jpg", timeout=5)
            assert r.status_code == 200
            session.head(f"{server.url}/h.json", timeout=5)
    assert server.connections - before == 1
    assert time.perf_counter() - start < 2  # no Nagle / delayed-ACK stalls


def test_fault_status_reset_truncate(server: MirrorServer, site: Path) -> None:
    path = "/cvdf/train/0000000000000005.jpg"
    data = (site / path.lstrip("/")).read_bytes()
    server.set_faults(FaultPlan(per_path={path: [Fault("status", status=503), Fault("reset"), Fault("truncate")]}))
    with requests.Session() as session:
        r = session.get(server.url + path, timeout=5)
        assert r.status_code == 503
        with pytest.raises(requests.ConnectionError):
            session.get(server.url + path, timeout=5)
        try:
            body = session.get(server.url + path, timeout=5).content
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError):
            pass
        else:
            assert len(body) < len(data)
        r = session.get(server.url + path, timeout=5)  # faults used up: served normally
        assert r.status_code == 200 and r.content == data
    assert server.requests[path] == 4


def test_fault_truncate_sends_full_length_then_half_the_body(server: MirrorServer) -> None:
    path = "/data.bin"
    server.set_faults(FaultPlan(per_path={path: [Fault("truncate")]}))
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Length"] == "1024"
    with pytest.raises(http.client.IncompleteRead) as caught:
        resp.read()
    conn.close()
    assert 0 < len(caught.value.partial) < 1024


def test_fault_slow_times_out_then_recovers(server: MirrorServer) -> None:
    path = "/v5/labels.csv"
    server.set_faults(FaultPlan(per_path={path: [Fault("slow", delay=1.0)]}))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + path, timeout=(2, 0.2))
    assert requests.get(server.url + path, timeout=5).status_code == 200


def test_fault_placeholder_and_redirects(server: MirrorServer, site: Path) -> None:
    path = "/cvdf/train/0000000000000007.jpg"
    server.set_faults(FaultPlan(per_path={path: [Fault("placeholder")]}))
    r = requests.get(server.url + path, timeout=5)
    assert r.status_code == 200
    assert r.url.endswith(PLACEHOLDER_PATH)
    assert [h.status_code for h in r.history] == [302]
    assert r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).format == "PNG"
    # _redirects.json: a moved file and a photo gone from Flickr
    r = requests.get(server.url + "/flickr/old_o.jpg", timeout=5)
    assert r.status_code == 200 and r.content == (site / "flickr" / "new.jpg").read_bytes()
    r = requests.get(server.url + "/flickr/dead_o.jpg", timeout=5)
    assert r.status_code == 200 and r.url.endswith(PLACEHOLDER_PATH)
    assert r.history[0].status_code == 302


def test_fault_garbage_and_md5_mismatch(server: MirrorServer, site: Path) -> None:
    path = "/cvdf/train/0000000000000009.jpg"
    data = (site / path.lstrip("/")).read_bytes()
    server.set_faults(FaultPlan(per_path={path: [Fault("garbage"), Fault("md5_mismatch"), Fault("garbage")]}))
    first = requests.get(server.url + path, timeout=5)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    with pytest.raises(Exception):
        Image.open(io.BytesIO(first.content)).load()
    altered = requests.get(server.url + path, timeout=5)
    assert altered.status_code == 200
    img = Image.open(io.BytesIO(altered.content))
    img.load()
    assert img.format == "JPEG" and img.size == (64, 48)
    assert hashlib.md5(altered.content).digest() != hashlib.md5(data).digest()
    assert requests.get(server.url + path, timeout=5).content == first.content  # deterministic


def _outcomes(server: MirrorServer, paths: list[str]) -> list[str]:
    out = []
    with requests.Session() as session:
        for path in paths:
            try:
                r = session.get(server.url + path, timeout=5)
                out.append(str(r.status_code) if r.content else "empty")
            except requests.RequestException as exc:
                out.append(type(exc).__name__)
    return out


def test_random_faults_are_reproducible_by_seed(server: MirrorServer) -> None:
    paths = [f"/cvdf/train/{i:016x}.jpg" for i in range(40)] + ["/v5/labels.csv"] * 5
    server.set_faults(FaultPlan(rate=0.5, seed=7))
    first = _outcomes(server, paths)
    server.set_faults(FaultPlan(rate=0.5, seed=7))
    assert _outcomes(server, paths) == first
    assert {"500", "502", "503"} & set(first) and "200" in first
    assert first[-5:] == ["200"] * 5  # only image paths get random faults
    server.set_faults(FaultPlan(rate=0.5, seed=8))
    assert _outcomes(server, paths) != first
    server.set_faults(None)
    assert set(_outcomes(server, paths)) == {"200"}


def test_latency_applies_to_every_path(server: MirrorServer) -> None:
    server.set_faults(FaultPlan(latency=0.15))
    start = time.perf_counter()
    assert requests.get(server.url + "/v5/labels.csv", timeout=5).status_code == 200
    assert time.perf_counter() - start >= 0.15


def test_placeholder_served_even_when_absent(server: MirrorServer, site: Path) -> None:
    assert not (site / PLACEHOLDER_PATH.lstrip("/")).exists()
    r = requests.get(server.url + PLACEHOLDER_PATH, timeout=5)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).format == "PNG"


def test_many_servers_start_and_stop_fast(site: Path) -> None:
    start = time.perf_counter()
    for _ in range(10):
        srv = MirrorServer(site).start()
        session = requests.Session()
        assert session.get(srv.url + "/h.json", timeout=5).status_code == 200  # leaves a keep-alive connection
        srv.stop()
        session.close()
    srv.stop()  # stopping twice is harmless
    assert time.perf_counter() - start < 5


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


# -- generator ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory):
    """The default mirror, served."""
    server, info = start_mirror(tmp_path_factory.mktemp("mirror"))
    with server:
        yield server, info


def _read(root: Path, rel: str, header: bool = True) -> tuple[list[str] | None, list[list[str]]]:
    with (root / rel).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return (rows[0], rows[1:]) if header else (None, rows)


def test_every_file_has_the_official_schema(mirror) -> None:
    _, info = mirror
    root = info.root
    head, rows = _read(root, layout.CLASSES_ALL)
    assert tuple(head) == ("LabelName", "DisplayName")
    assert len(rows) >= 40 and all(len(r) == 2 for r in rows)
    _, boxable_rows = _read(root, layout.CLASSES_BOXABLE, header=False)
    assert boxable_rows[0][0].startswith("/m/")  # no header row
    assert {r[0] for r in boxable_rows} <= {r[0] for r in rows}
    assert {r[0] for r in boxable_rows} == set(BOXABLE)
    for split in layout.SPLITS:
        for label_set in layout.LABEL_SETS:
            head, rows = _read(root, layout.human_labels_path(split, label_set))
            assert tuple(head) == layout.LABEL_COLUMNS
            assert rows and all(len(r) == 4 for r in rows)
        for rel in {layout.image_list_path(split, s) for s in layout.LABEL_SETS}:
            head, rows = _read(root, rel)
            assert tuple(head) == layout.IMAGE_COLUMNS
            assert rows and all(len(r) == 12 for r in rows)
            assert {r[1] for r in rows} == {split}
        head, rows = _read(root, layout.boxes_path(split))
        assert tuple(head) == layout.BOX_COLUMNS
        assert rows and all(len(r) == 13 for r in rows)


def test_classes_and_hierarchy(mirror) -> None:
    _, info = mirror
    _, rows = _read(info.root, layout.CLASSES_ALL)
    names = dict(rows)
    assert names[HOT_DOG] == "Hot dog"
    for mid, name in [("/m/05ztbl", "Chicago-style hot dog"), ("/m/07vh6y", "Hot dog bun"), ("/m/0bm1pg", "Hot dog stand")]:
        assert names[mid] == name
    assert [mid for mid, n in rows if n == "Mouse"] == sorted(MOUSE_MIDS)
    assert not set(HOT_DOG_RELATED) & BOXABLE

    tree = json.loads((info.root / layout.HIERARCHY).read_text())
    assert tree["LabelName"] == layout.HIERARCHY_ROOT
    nodes: list[str] = []

    def path_to(node: dict, mid: str, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
        nodes.append(node["LabelName"])
        here = path + (node["LabelName"],)
        found = here if node["LabelName"] == mid else None
        for key in ("Subcategory", "Part"):
            for child in node.get(key, []):
                found = path_to(child, mid, here) or found
        return found

    assert path_to(tree, HOT_DOG) == (layout.HIERARCHY_ROOT, "/m/02wbm", "/m/01_bhs", HOT_DOG)
    assert set(nodes) - {layout.HIERARCHY_ROOT} <= BOXABLE


def _files_md5(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_image_lists_match_the_files_and_the_server(mirror) -> None:
    server, info = mirror
    root = info.root
    _, all_train = _read(root, layout.image_list_path("train", "all"))
    _, boxable_train = _read(root, layout.image_list_path("train", "boxable"))
    assert {r[0] for r in boxable_train} < {r[0] for r in all_train}
    col = {c: i for i, c in enumerate(layout.IMAGE_COLUMNS)}
    rows = all_train + _read(root, layout.image_list_path("validation"))[1] + _read(root, layout.image_list_path("test"))[1]
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) == len(info.images)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    rotations = {r[col["Rotation"]] for r in rows}
    assert rotations <= {"", "0", "90", "180", "270"} and {"", "0"} < rotations and rotations & {"90", "180", "270"}
    assert any(r[col["Thumbnail300KURL"]] == "" for r in rows if r[0] not in info.dead_ids)
    assert any("," in r[col["Author"]] for r in rows) and any('"' in r[col["Title"]] or '"' in r[col["Author"]] for r in rows)
    assert any(not r[col["Author"]].isascii() for r in rows)
    assert {r[col["License"]] for r in rows} == {"https://creativecommons.org/licenses/by/2.0/"}
    checked = 0
    for r in rows:
        image_id = r[0]
        assert r[col["OriginalURL"]] == f"{info.base_url}/flickr/{image_id}_o.jpg"
        assert r[col["OriginalLandingURL"]].startswith("https://www.flickr.com/photos/")
        if image_id in info.dead_ids:
            assert r[col["Thumbnail300KURL"]] == "" and not (root / "flickr" / f"{image_id}_o.jpg").exists()
            continue
        data = (root / "flickr" / f"{image_id}_o.jpg").read_bytes()
        assert int(r[col["OriginalSize"]]) == len(data)
        assert r[col["OriginalMD5"]] == _md5_b64(data)
        if r[col["Thumbnail300KURL"]]:
            assert r[col["Thumbnail300KURL"]] == f"{info.base_url}/flickr/{image_id}_z.jpg"
            assert (root / "flickr" / f"{image_id}_z.jpg").exists()
        checked += 1
    assert checked > 0.9 * len(rows)

    # over HTTP: one live original, one dead one, one non-boxable train image
    with requests.Session() as session:
        live = next(im for im in info.images if im.has_cvdf_copy and im.split == "validation")
        r = session.get(info.original_url(live.image_id), timeout=5)
        assert r.status_code == 200 and _md5_b64(r.content) == live.original_md5
        assert session.get(layout.cvdf_image_url(info.images_base, live.split, live.image_id), timeout=5).status_code == 200
        dead = info.image(sorted(info.dead_ids)[0])
        assert session.get(layout.cvdf_image_url(info.images_base, dead.split, dead.image_id), timeout=5).status_code == 404
        r = session.get(info.original_url(dead.image_id), timeout=5)
        assert r.status_code == 200 and r.url == info.placeholder_url and r.headers["Content-Type"] == "image/png"
        hidden = next(im for im in info.images if im.split == "train" and not im.boxable and not im.dead)
        assert hidden.image_id not in {x[0] for x in boxable_train}
        assert session.get(layout.cvdf_image_url(info.images_base, "train", hidden.image_id), timeout=5).status_code == 404
        r = session.get(info.original_url(hidden.image_id), timeout=5)
        assert r.status_code == 200 and _md5_b64(r.content) == hidden.original_md5
        r = session.get(info.metadata_base + layout.CLASSES_ALL, timeout=5)
        assert r.headers["x-goog-hash"] == "md5=" + _md5_b64((root / layout.CLASSES_ALL).read_bytes())


def test_rotated_originals_are_stored_turned(mirror) -> None:
    _, info = mirror
    turned = [im for im in info.images if im.rotation in (90, 270) and not im.dead]
    assert turned
    for im in turned[:3]:
        assert Image.open(info.root / "flickr" / f"{im.image_id}_o.jpg").size == (336, 448)
    upright = next(im for im in info.images if not im.rotation and not im.dead)
    assert Image.open(info.root / "flickr" / f"{upright.image_id}_o.jpg").size == (448, 336)
    cvdf = next(im for im in info.images if not im.rotation and im.has_cvdf_copy)
    assert Image.open(info.root / "cvdf" / cvdf.split / f"{cvdf.image_id}.jpg").size == (224, 168)


def test_labels_and_boxes(mirror) -> None:
    _, info = mirror
    root = info.root
    for split in layout.SPLITS:
        _, v7 = _read(root, layout.human_labels_path(split, "all"))
        _, v5 = _read(root, layout.human_labels_path(split, "boxable"))
        listed = {r[0] for r in _read(root, layout.image_list_path(split, "boxable"))[1]}
        assert {r[1] for r in v7} <= {"verification", "crowdsource-verification"}
        assert {r[3] for r in v7} == {"0", "1"}
        assert {r[2] for r in v7} <= set(CLASSES)
        assert {r[2] for r in v5} <= BOXABLE and {r[0] for r in v5} <= listed
        by_image: dict[str, dict[str, str]] = {}
        for image_id, _, mid, conf in v7:
            assert mid not in by_image.setdefault(image_id, {}), "one verdict per class and image"
            by_image[image_id][mid] = conf
        # every picture verifies its own class; hot dogs are never denied on a hot dog
        for im in info.images:
            if im.split == split:
                assert by_image[im.image_id][im.label_name] == "1"
                if im.display_name == "Hot dog":
                    assert by_image[im.image_id].get(HOT_DOG) == "1"
        negatives = [i for i, labels in by_image.items() if labels.get(HOT_DOG) == "0"]
        assert negatives, f"no verified hot-dog negatives in {split}"
        _, boxes = _read(root, layout.boxes_path(split))
        for r in boxes:
            assert r[0] in listed and r[2] in BOXABLE and r[3] == "1"
            x0, x1, y0, y1 = map(float, r[4:8])
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            assert set(r[8:13]) <= {"0", "1"}
            assert by_image[r[0]].get(r[2]) == "1", "a box's class is a verified positive"
    _, train = _read(root, layout.human_labels_path("train", "all"))
    positives = {mid for _, _, mid, conf in train if conf == "1"}
    assert set(HOT_DOG_RELATED) <= positives  # Chicago-style, Michigan, Coney island, bun, stand
    assert info.counts[("train", "Hot dog")] == DEFAULT_IMAGES_PER_CLASS["Hot dog"] == 60
    assert info.counts[("validation", "Hot dog")] == info.counts[("test", "Hot dog")] == held_out_count(60) == 15
    assert info.counts[("train", "Hot dog bun")] == 8 and info.counts[("test", "Hot dog bun")] == 2


def test_generation_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"Hot dog": 12, "Pizza": 6, "Hot dog bun": 4, "Cat": 4}
    monkeypatch.setattr(generate_module, "_DRAWN", {})  # draw for real each time, not from the cache
    a = generate_mirror(tmp_path / "a", "http://127.0.0.1:9", seed=3, images_per_class=small)
    generate_module._DRAWN.clear()
    b = generate_mirror(tmp_path / "b", "http://127.0.0.1:9", seed=3, images_per_class=small)
    generate_module._DRAWN.clear()
    c = generate_mirror(tmp_path / "c", "http://127.0.0.1:9", seed=4, images_per_class=small)
    files_a, files_b, files_c = _files_md5(tmp_path / "a"), _files_md5(tmp_path / "b"), _files_md5(tmp_path / "c")
    assert files_a == files_b and len(files_a) > 50
    assert a.images == b.images
    assert set(files_a) != set(files_c)  # other ImageIDs
    assert a.dead_ids, "even a small mirror has a photo gone from Flickr"
    # the cache gives the same bytes as drawing afresh
    d = generate_mirror(tmp_path / "d", "http://127.0.0.1:9", seed=4, images_per_class=small)
    assert _files_md5(tmp_path / "d") == files_c and d.images == c.images


def test_unknown_class_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot draw 'Unicorn'"):
        generate_mirror(tmp_path, "http://127.0.0.1:9", images_per_class={"Unicorn": 3})
