"""Nothing lost, nothing silently wrong (issue 11, dataset and cache side): rebuilds with
new settings, killed rebuilds, concurrent builds, foreign folders, damaged caches, full and
read-only disks. Against the embedded mirror over real HTTP; kills and concurrent runs are
real ``mlkit build-dataset`` processes; full and read-only disks are real tmpfs mounts
(skipped where this machine cannot mount one)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers_process import sigkill_when
from toolkit.dataset.build import JOURNAL, NEXT_SUFFIX, build_dataset
from toolkit.errors import MlkitError
from toolkit.dataset.manifest import verify_dataset
from toolkit.mirror import HOT_DOG, Fault, FaultPlan
from toolkit.openimages import layout
from toolkit.openimages.fetch import metadata_source
from toolkit.openimages.labelindex import index_dir_for
from toolkit.progress import Reporter

REPO = Path(__file__).resolve().parent.parent
SPLIT = ("validation",)  # the mirror's smallest split: quick builds

# where the library tells its user things, here as the CLI does: on stderr
TO_STDERR = Reporter(lambda line: print(line, file=sys.stderr, flush=True))


# =========================================================================== helpers


def manifest_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def images_on_disk(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for s in ("train", "val", "test") if (root / s).is_dir()
            for p in (root / s).rglob("*") if p.is_file()}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def consistency_problems(root: Path) -> list[str]:
    """The test's own check (not the toolkit's): the images on disk are exactly the
    manifest's ok rows with their MD5s, no image is in two splits, and dataset.json's
    settings are the manifest's build."""
    rows = manifest_rows(root)
    ok = {f"{r['split']}/{r['class']}/{r['ImageID']}.jpg": r for r in rows if r["status"] == "ok"}
    disk = images_on_disk(root)
    out = []
    if set(disk) != set(ok):
        out.append(f"{len(set(disk) - set(ok))} files not in the manifest, {len(set(ok) - set(disk))} rows "
                   "without a file")
    out += [f"{p} differs from its row" for p in set(disk) & set(ok) if md5(disk[p]) != ok[p]["md5"]]
    splits: dict[str, set[str]] = {}
    for r in ok.values():
        splits.setdefault(r["ImageID"], set()).add(r["split"])
    out += [f"{i} in {sorted(s)}" for i, s in splits.items() if len(s) > 1]
    info = json.loads((root / "dataset.json").read_text())
    h = hashlib.sha256()
    for path in sorted(ok):
        h.update(f"{path} {ok[path]['md5']}\n".encode())
    if info["content_hash"] != h.hexdigest():
        out.append("dataset.json's content hash is not the manifest's")
    return out


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "toolkit.cli", *map(str, args)]


def cli_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MLKIT_CACHE"] = str(cache)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("COLUMNS", None)
    return env


def build_cmd(info, data: Path, cache: Path, *extra: object) -> list[str]:
    return cli("build-dataset", "--positive", "Hot dog", "--split", "validation", "--source", info.metadata_base,
               "--image-source", info.images_base, "--data-dir", data, "--cache-dir", cache, "--json", *extra)


def journal_lines(data: Path, name: str = "hot_dog") -> int:
    n = 0
    for folder in (data / name, data / f".{name}{NEXT_SUFFIX}"):
        try:
            n += len((folder / JOURNAL).read_text(encoding="utf-8").splitlines())
        except OSError:
            pass
    return n


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs file systems (a real full or read-only disk); skip where mount is
    not allowed (not root, a container without CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(name: str, size: int, *opts: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = ",".join([f"size={size}", *opts])
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
        mounted.append(point)
        return point

    def remount(point: Path, *opts: str) -> None:
        subprocess.run(["mount", "-o", ",".join(["remount", *opts]), str(point)], check=True)

    mount.remount = remount  # type: ignore[attr-defined]
    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


# =========================================================================== 1: new processing


@pytest.mark.parametrize("change", [{"max_size": 64}, {"crop": True}])
def test_force_with_new_processing_remakes_every_image(mirror_config, change):
    first = build_dataset(mirror_config(splits=SPLIT))
    before = {p: md5(f) for p, f in images_on_disk(first.path).items()}
    second = build_dataset(mirror_config(splits=SPLIT, force=True, **change))
    rows = [r for r in manifest_rows(second.path) if r["status"] == "ok"]
    assert second.skipped == 0 or "crop" in change, f"{second.skipped} images kept although max_size changed"
    for r in rows:
        path = second.path / f"{r['split']}/{r['class']}/{r['ImageID']}.jpg"
        with Image.open(path) as im:
            size = im.size
        if "max_size" in change:
            assert max(size) <= 64, f"{path.name} is {size} after --max-size 64"
        assert (int(r["width"]), int(r["height"])) == size
    if "crop" in change:  # positives with a box are cut (other files), negatives are reused as they are
        pos = [r for r in rows if r["class"] == "hot_dog"]
        changed = [r for r in pos if before.get(f"{r['split']}/{r['class']}/{r['ImageID']}.jpg") != r["md5"]]
        assert changed, "no positive was cropped: the old uncropped files were kept"
        assert second.skipped == len([r for r in rows if r["class"] == "not_hot_dog"]) + len(pos) - len(changed)
    assert consistency_problems(second.path) == []
    assert json.loads((second.path / "dataset.json").read_text())["settings"] | change == \
        json.loads((second.path / "dataset.json").read_text())["settings"]


# =========================================================================== 2: generations


def test_killed_force_rebuild_leaves_the_old_dataset_whole(mirror, tmp_path):
    server, info = mirror
    data, cache = tmp_path / "data", tmp_path / "cache"
    first = subprocess.run(build_cmd(info, data, cache), capture_output=True, env=cli_env(cache), cwd=REPO)
    assert first.returncode == 0, first.stderr.decode()
    root = data / "hot_dog"
    old_manifest = (root / "manifest.csv").read_bytes()
    old_files = {p: md5(f) for p, f in images_on_disk(root).items()}
    server.set_faults(FaultPlan(latency=0.2))
    try:
        proc = subprocess.Popen(build_cmd(info, data, cache, "--seed", "7", "--max-size", "96", "--force"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(cache), cwd=REPO)
        sigkill_when(proc, lambda: journal_lines(data) >= 10, within=90, what="rebuild")
    finally:
        server.set_faults(None)
    assert proc.returncode == -signal.SIGKILL
    # the old generation, exactly as it was
    assert consistency_problems(root) == []
    assert verify_dataset(root, checksums=True) == []
    assert (root / "manifest.csv").read_bytes() == old_manifest
    assert {p: md5(f) for p, f in images_on_disk(root).items()} == old_files
    staged = len([p for p in images_on_disk(data / f".hot_dog{NEXT_SUFFIX}") if not Path(p).name.startswith(".")])
    assert staged > 0, "the new generation is built beside the old one"
    # the rerun finishes the new generation and swaps it in
    again = subprocess.run(build_cmd(info, data, cache, "--seed", "7", "--max-size", "96", "--force"),
                           capture_output=True, env=cli_env(cache), cwd=REPO)
    assert again.returncode == 0, again.stderr.decode()
    assert consistency_problems(root) == [] and verify_dataset(root, checksums=True) == []
    assert json.loads((root / "dataset.json").read_text())["settings"]["seed"] == 7
    assert not (data / f".hot_dog{NEXT_SUFFIX}").exists()
    assert json.loads(again.stdout)["skipped"] >= staged, "the killed rebuild's images were fetched again"


def test_verify_dataset_names_files_that_disagree_with_the_manifest(mirror_config):
    root = build_dataset(mirror_config(splits=SPLIT)).path
    assert verify_dataset(root, checksums=True) == []
    some = sorted(images_on_disk(root).values())
    some[0].unlink()
    (some[1].parent / "stray.jpg").write_bytes(some[1].read_bytes())
    with open(some[2], "r+b") as f:
        f.write(b"\0\0")
    problems = " | ".join(verify_dataset(root, checksums=True))
    assert "not in the manifest" in problems and "have no file" in problems and "differ" in problems


# =========================================================================== 3: locks


def test_two_concurrent_builds_never_interleave(mirror, tmp_path):
    """Two builds of one folder with other settings on one fresh cache, started together:
    the second waits (and says so), then rebuilds; the folder ends as one consistent build."""
    server, info = mirror
    data, cache = tmp_path / "data", tmp_path / "cache"
    server.set_faults(FaultPlan(latency=0.03))
    procs = []
    try:
        for seed in (1, 2):
            procs.append(subprocess.Popen(build_cmd(info, data, cache, "--seed", seed, "--force"),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(cache),
                                          cwd=REPO))
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        server.set_faults(None)
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err.decode()
    waited = [err.decode() for _, err in outs if b"Waiting for another mlkit run" in err]
    assert waited, "neither run waited for the other"
    root = data / "hot_dog"
    assert consistency_problems(root) == []
    seeds = {json.loads(out)["content_hash"] for out, _ in outs}
    assert json.loads((root / "dataset.json").read_text())["content_hash"] in seeds
    assert len(seeds) == 2, "the two seeds should give two datasets"


# =========================================================================== 4: foreign folders


def test_force_never_touches_a_foreign_folder(mirror_config):
    config = mirror_config(splits=SPLIT, force=True)
    root = Path(config.data_dir) / "hot_dog"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "cats" / "tom.jpg").write_bytes(b"my cat")
    (root / "manifest.csv").write_text("file,label\ntom.jpg,cat\n")
    with pytest.raises(MlkitError) as exc:
        build_dataset(config)
    assert "not an mlkit dataset" in str(exc.value) and "--force" not in str(exc.value)
    assert (root / "train" / "cats" / "tom.jpg").read_bytes() == b"my cat"
    assert (root / "manifest.csv").read_text() == "file,label\ntom.jpg,cat\n"


def test_a_rebuild_refuses_files_its_manifest_does_not_list(mirror_config):
    root = build_dataset(mirror_config(splits=SPLIT)).path
    mine = root / "train" / "hot_dog" / "my_own_photo.jpg"
    mine.write_bytes(b"precious")
    with pytest.raises(MlkitError) as exc:
        build_dataset(mirror_config(splits=SPLIT, seed=3, force=True))
    assert "my_own_photo.jpg" in str(exc.value)
    assert mine.read_bytes() == b"precious"
    assert json.loads((root / "dataset.json").read_text())["settings"]["seed"] == 0


# =========================================================================== 6: damaged caches


def _cached(config, relpath: str) -> Path:
    path = metadata_source(config.source, config.cache_dir).cache_path(relpath)
    assert path.is_file(), path
    return path


def test_damaged_cached_labels_of_the_same_size_are_downloaded_again(mirror_config, capfd):
    good = build_dataset(mirror_config(splits=SPLIT))
    labels = _cached(mirror_config(), layout.human_labels_path("validation"))
    text = labels.read_text()
    damaged = "\n".join(line[:-1] + "0" if HOT_DOG in line and line.endswith(",1") else line
                        for line in text.split("\n"))
    assert damaged != text and len(damaged) == len(text)
    labels.write_text(damaged)
    capfd.readouterr()
    again = build_dataset(mirror_config(splits=SPLIT, data_dir=Path(mirror_config().data_dir).parent / "again"),
                          reporter=TO_STDERR)
    assert again.planned == good.planned and again.content_hash == good.content_hash
    assert "damaged" in capfd.readouterr().err
    assert labels.read_text() == text


def test_garbled_cached_class_list_is_downloaded_again(mirror_config, capfd):
    build_dataset(mirror_config(splits=SPLIT))
    classes = _cached(mirror_config(), layout.CLASSES_ALL)
    text = classes.read_text()
    classes.write_text(text.replace("Hot dog", "Hot dXg"))
    capfd.readouterr()
    result = build_dataset(mirror_config(splits=SPLIT, data_dir=Path(mirror_config().data_dir).parent / "b"),
                           reporter=TO_STDERR)
    assert result.positive.name == "Hot dog"
    assert "damaged" in capfd.readouterr().err


def test_garbled_class_list_that_passes_its_checks_names_the_cached_file(mirror_config):
    """A copy garbled with its recorded size and mtime restored (so no check catches it):
    the error names the cached file and how to refresh it, not only "Hot dXg"."""
    build_dataset(mirror_config(splits=SPLIT))
    classes = _cached(mirror_config(), layout.CLASSES_ALL)
    st = classes.stat()
    classes.write_text(classes.read_text().replace("Hot dog", "Hot dXg"))
    os.utime(classes, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(MlkitError) as exc:
        build_dataset(mirror_config(splits=SPLIT, data_dir=Path(mirror_config().data_dir).parent / "b"))
    assert str(classes) in str(exc.value) and "delete it" in str(exc.value)


@pytest.mark.parametrize("column", ["conf.u8", "runs.u64"])
def test_truncated_label_index_is_rebuilt(mirror_config, capfd, column):
    good = build_dataset(mirror_config(splits=SPLIT))
    cache = Path(mirror_config().cache_dir)
    index = index_dir_for(_cached(mirror_config(), layout.human_labels_path("validation")), cache)
    f = index / column
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    stale = cache / "index" / f".{index.name}.tmp-killed"  # what a killed build leaves
    stale.mkdir()
    (stale / "conf.u8").write_bytes(b"\0" * 4096)
    capfd.readouterr()
    again = build_dataset(mirror_config(splits=SPLIT, data_dir=Path(mirror_config().data_dir).parent / "again"),
                          reporter=TO_STDERR)
    assert again.content_hash == good.content_hash
    assert "damaged" in capfd.readouterr().err
    assert not stale.exists(), "the killed build's temporary index was left behind"


def test_bad_parquet_table_is_rebuilt(mirror_config, capfd):
    good = build_dataset(mirror_config(splits=SPLIT))
    cache = Path(mirror_config().cache_dir)
    for table in (cache / "tables").glob("*.parquet"):
        table.write_bytes(b"\x13" * table.stat().st_size)
    capfd.readouterr()
    again = build_dataset(mirror_config(splits=SPLIT, data_dir=Path(mirror_config().data_dir).parent / "again"),
                          reporter=TO_STDERR)
    assert again.content_hash == good.content_hash
    assert "damaged" in capfd.readouterr().err


# =========================================================================== clear errors


def test_name_cannot_leave_the_data_dir(mirror_config, tmp_path):
    config = mirror_config(splits=SPLIT, name="../escaped")
    with pytest.raises(MlkitError) as exc:
        build_dataset(config)
    assert "--name" in str(exc.value)
    assert not (tmp_path / "escaped").exists() and not (Path(config.data_dir).parent / "escaped").exists()


def test_no_image_of_a_class_downloaded_fails_clearly(mirror, mirror_config):
    """Every image URL answers 404 (never retried): the build selects images but gets none."""
    server, info = mirror
    gone = [Fault("status", status=404)] * 4
    plan = {}
    for im in info.images:
        for path in (f"/cvdf/{im.split}/{im.image_id}.jpg", f"/flickr/{im.image_id}_z.jpg",
                     f"/flickr/{im.image_id}_o.jpg"):
            plan[path] = list(gone)
    server.set_faults(FaultPlan(per_path=plan))
    config = mirror_config(splits=SPLIT)
    try:
        with pytest.raises(MlkitError) as exc:
            build_dataset(config)
    finally:
        server.set_faults(None)
    assert "could be downloaded" in str(exc.value) and "nothing to train on" in str(exc.value)
    assert not (Path(config.data_dir) / "hot_dog" / "dataset.json").exists()


def test_unreachable_image_source_is_said_in_the_summary(mirror_config):
    result = build_dataset(mirror_config(splits=SPLIT, image_source="http://127.0.0.1:9/"))
    rows = [r for r in manifest_rows(result.path) if r["status"] == "ok"]
    assert rows and all(r["source_kind"] in ("thumbnail", "original") for r in rows)
    assert result.sources.get("cvdf", 0) == 0 and sum(result.sources.values()) == len(rows)
    assert any("http://127.0.0.1:9/" in n and "--image-source" in n for n in result.notes), result.notes


def test_download_time_is_the_downloads_alone(mirror_config):
    result = build_dataset(mirror_config(splits=SPLIT))
    assert 0 < result.download_seconds < result.elapsed


def test_read_only_data_dir_and_cache_dir_fail_before_any_work(mirror, mirror_config, tmpfs):
    server, _ = mirror
    ro = tmpfs("ro", 1 << 20, "ro")
    for kw, needle in (({"data_dir": ro / "data"}, "--data-dir"), ({"cache_dir": ro / "cache"}, "--cache-dir")):
        before = sum(server.requests.values())
        with pytest.raises(MlkitError) as exc:
            build_dataset(mirror_config(splits=SPLIT, **kw))
        assert needle in str(exc.value) and "not writable" in str(exc.value)
        assert sum(server.requests.values()) == before, "work was done before the check"


def test_disk_full_while_writing_the_manifest(mirror_config, tmpfs, tmp_path):
    """A real full disk: a tmpfs just big enough for the images, not for the records."""
    reference = build_dataset(mirror_config(splits=SPLIT, max_size=32, data_dir=tmp_path / "ref"))
    pages = sum(-(-f.stat().st_size // 4096) for f in images_on_disk(reference.path).values())
    disk = tmpfs("full", (pages + 6) * 4096)
    config = mirror_config(splits=SPLIT, max_size=32, data_dir=disk / "data")
    with pytest.raises(MlkitError) as exc:
        build_dataset(config)
    text = str(exc.value)
    assert "no space left" in text and "needs about" in text, text
    root = disk / "data" / "hot_dog"
    assert str(root) in text
    assert not (root / "dataset.json").exists()
    leftovers = [p.name for p in root.iterdir() if ".part" in p.name]
    assert leftovers == [], leftovers
    tmpfs.remount(disk, f"size={64 << 20}")
    again = build_dataset(config)
    assert again.downloaded == 0 and again.content_hash == reference.content_hash
    assert consistency_problems(again.path) == []
