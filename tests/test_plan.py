"""The first-run plan and dry runs, checked against the mirror server's request log.

A first default build downloads about 5.6 GB of Open Images metadata; before any
download it prints each file with its size (HEAD), cached or not, the total and the
cheaper ``--split validation,test``. ``--dry-run`` downloads nothing: on an empty cache it
reports that plan and stops; once the metadata is cached it also lists the images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.dataset.build import build_dataset
from toolkit.errors import MlkitError
from toolkit.openimages import layout
from toolkit.openimages.fetch import fetch, head, metadata_source
from toolkit.openimages.plan import metadata_files, metadata_plan
from toolkit.progress import Reporter

DEFAULT_FILES = [p for p, _, _ in metadata_files("all", layout.SPLITS, crop=False)]
BIG = {layout.human_labels_path(s) for s in layout.SPLITS} | {layout.image_list_path(s) for s in layout.SPLITS}


def since(server, mark: int) -> list[tuple[str, str]]:
    return server.request_log[mark:]


def gets(log: list[tuple[str, str]]) -> list[str]:
    return [p for m, p in log if m == "GET"]


def test_server_answers_head_with_the_size_and_logs_the_method(mirror):
    import requests

    server, info = mirror
    mark = len(server.request_log)
    r = requests.head(info.metadata_base + layout.CLASSES_ALL, timeout=5)
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == (info.root / layout.CLASSES_ALL).stat().st_size
    requests.get(info.metadata_base + layout.CLASSES_ALL, timeout=5)
    assert since(server, mark) == [("HEAD", "/" + layout.CLASSES_ALL), ("GET", "/" + layout.CLASSES_ALL)]


def test_head_sizes_a_file_without_downloading_it(mirror, tmp_path):
    server, info = mirror
    source = metadata_source(info.metadata_base, tmp_path / "cache")
    rel = layout.image_list_path("train")
    mark = len(server.request_log)
    got = head(source, rel)
    assert (got.size, got.cached) == ((info.root / rel).stat().st_size, False)
    assert since(server, mark) == [("HEAD", "/" + rel)]
    assert not source.cache_path(rel).exists()
    fetch(source, rel)
    mark = len(server.request_log)
    again = head(source, rel)
    assert again.cached and again.size == got.size and since(server, mark) == []  # answered from the cache
    with pytest.raises(MlkitError, match="not found"):
        head(source, "v7/no-such-file.csv")


def test_plan_lists_every_file_its_size_and_the_cheaper_splits(mirror, tmp_path):
    server, info = mirror
    source = metadata_source(info.metadata_base, tmp_path / "cache")
    plan = metadata_plan(source, "all", layout.SPLITS)
    assert [f.relpath for f in plan.files] == DEFAULT_FILES
    sizes = {rel: (info.root / rel).stat().st_size for rel in DEFAULT_FILES}
    assert {f.relpath: f.size for f in plan.files} == sizes
    assert plan.total_bytes == plan.download_bytes == sum(sizes.values())
    assert not any(f.cached for f in plan.files)
    text = "\n".join(plan.lines())
    assert "--split validation,test" in text and "5.6 GB" in text and "180 MB" in text
    cheap = sum(s for rel, s in sizes.items() if "train" not in rel)
    assert f"{cheap / 1e3:.0f} kB instead of {sum(sizes.values()) / 1e3:.0f} kB" in text
    fetch(source, layout.CLASSES_ALL)
    plan = metadata_plan(source, "all", ["validation", "test"], crop=True)
    assert [f.cached for f in plan.files][:1] == [True]
    assert layout.boxes_path("test") in {f.relpath for f in plan.files}
    assert plan.hint is None  # no train split: nothing cheaper to suggest


def test_dry_run_on_an_empty_cache_downloads_nothing(mirror_config, mirror):
    server, info = mirror
    config = mirror_config(dry_run=True)
    lines: list[str] = []
    mark = len(server.request_log)
    result = build_dataset(config, reporter=Reporter(lines.append))
    log = since(server, mark)
    assert gets(log) == [], f"a dry run downloaded {gets(log)}"
    assert not [p for p in gets(log) if p.lstrip("/") in BIG]
    assert sorted(p.lstrip("/") for m, p in log if m == "HEAD") == sorted(DEFAULT_FILES)
    assert result.metadata_only and result.plan == [] and result.positive is None
    assert result.metadata_plan.download_bytes == sum((info.root / r).stat().st_size for r in DEFAULT_FILES)
    assert not Path(config.data_dir).exists() and not any(Path(config.cache_dir).rglob("*.csv"))
    assert any(layout.human_labels_path("train") in line for line in lines)
    assert any("--split validation,test" in line for line in lines)


def test_dry_run_with_metadata_cached_lists_images_and_downloads_nothing(mirror_config, mirror):
    server, info = mirror
    config = mirror_config(dry_run=True)
    source = metadata_source(config.source, config.cache_dir)
    for rel in DEFAULT_FILES:
        fetch(source, rel)
    mark = len(server.request_log)
    result = build_dataset(config)
    assert since(server, mark) == [], "everything was cached: no request at all"
    assert not result.metadata_only and result.metadata_plan.all_cached
    assert result.plan and result.estimated_bytes > 0
    assert result.positive.name == "Hot dog"


def test_a_build_prints_the_plan_before_any_download(mirror_config, mirror):
    server, _ = mirror
    config = mirror_config(splits=("validation",), max_positives=3, negatives=3)
    mark = len(server.request_log)
    at_total: list[int] = []

    def log(line: str) -> None:
        if line.strip().startswith("total "):
            at_total.append(len(server.request_log))

    result = build_dataset(config, reporter=Reporter(log))
    assert at_total, "no plan was printed"
    before = server.request_log[mark:at_total[0]]
    assert before and all(m == "HEAD" for m, _ in before), before
    assert gets(since(server, mark)), "the build itself downloads"
    assert result.metadata_plan is not None and not result.metadata_plan.all_cached


def test_cli_dry_run_json_includes_the_plan_and_help_says_what_a_first_run_costs(mirror, tmp_path):
    server, info = mirror
    mark = len(server.request_log)
    r = CliRunner().invoke(app, ["build-dataset", "--positive", "Hot dog", "--source", info.metadata_base,
                                 "--image-source", info.images_base, "--cache-dir", str(tmp_path / "cache"),
                                 "--data-dir", str(tmp_path / "data"), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["metadata_only"] is True and out["dry_run"] is True
    assert [f["relpath"] for f in out["metadata_plan"]["files"]] == DEFAULT_FILES
    assert out["metadata_plan"]["download_bytes"] > 0 and "validation,test" in out["metadata_plan"]["hint"]
    assert gets(since(server, mark)) == []
    text = CliRunner().invoke(app, ["build-dataset", "--positive", "Hot dog", "--source", info.metadata_base,
                                    "--cache-dir", str(tmp_path / "cache2"), "--dry-run"])
    assert text.exit_code == 0, text.output
    assert "nothing downloaded" in " ".join(text.stdout.split())
    helptext = " ".join(CliRunner().invoke(app, ["build-dataset", "--help"]).stdout.split())
    assert "5.6 GB" in helptext and "--split validation,test" in helptext and "180 MB" in helptext
