"""``build-dataset --exclude``: images a review flagged (or any list of ImageIDs) are left
out of what a build selects, and others take their place; a changed list needs --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.dataset.build import build_dataset
from toolkit.dataset.exclusions import image_id_of, read_image_exclusion
from toolkit.dataset.manifest import read_manifest
from toolkit.errors import MlkitError

SPLIT = ("validation",)  # the mirror's smallest split: quick builds


def _rows(result) -> list:
    return [r for r in read_manifest(result.path / "manifest.csv") if r.status == "ok"]


def _ids(result, folder: str | None = None) -> set[str]:
    return {r.ImageID for r in _rows(result) if folder is None or r.class_name == folder}


@pytest.fixture(scope="module")
def first(mirror, tmp_path_factory):
    """A binary build without exclusions: what --exclude is measured against."""
    from toolkit.dataset.build import DatasetConfig

    server, info = mirror
    server.set_faults(None)
    root = tmp_path_factory.mktemp("exclude")
    config = DatasetConfig(positive="Hot dog", data_dir=root / "data", source=info.metadata_base,
                           image_source=info.images_base, cache_dir=root / "cache", splits=SPLIT)
    return build_dataset(config)


def _review_csv(path: Path, result, ids: list[str]) -> Path:
    """A review.csv as `mlkit review` writes it: the file column names dataset-relative paths."""
    by_id = {r.ImageID: r for r in _rows(result)}
    lines = ["rank,file,image_id,split,given_label,predicted_label,confidence,given_label_probability,flagged"]
    for rank, i in enumerate(ids, 1):
        r = by_id[i]
        lines.append(f"{rank},{r.path},{i},{r.split},{r.class_name},x,0.9,0.1,True")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_excluded_images_are_left_out_and_others_take_their_place(first, mirror_config, tmp_path):
    pos_folder, neg_folder = first.classes
    positives, negatives = sorted(_ids(first, pos_folder)), sorted(_ids(first, neg_folder))
    gone = positives[:2] + negatives[:3]
    listing = _review_csv(tmp_path / "review.csv", first, gone)

    again = build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "again", exclude=listing))
    kept = _ids(again)
    assert not kept & set(gone)
    # every hot dog of the split was taken before, so two fewer now; negatives follow (as many as positives)
    assert len(_ids(again, pos_folder)) == len(positives) - 2
    assert len(_ids(again, neg_folder)) == len(positives) - 2
    # the negatives are refilled from the pool: images the first build did not have
    assert _ids(again, neg_folder) - set(negatives)
    assert any("5 of its 5 ImageIDs" in n for n in again.notes), again.notes
    settings = json.loads((again.path / "dataset.json").read_text())["settings"]
    assert settings["exclude"] == read_image_exclusion(listing).digest
    assert "exclude" not in json.loads((first.path / "dataset.json").read_text())["settings"]


def test_a_plain_list_of_ids_or_file_names_works_too(first, mirror_config, tmp_path):
    pos_folder = first.classes[0]
    victim, other = sorted(_ids(first, pos_folder))[:2]
    listing = tmp_path / "exclude.txt"
    listing.write_text(f"# flagged by hand\n{victim}\n{other}.jpg\nnot-an-id\n")
    again = build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "again", exclude=listing))
    assert not {victim, other} & _ids(again)
    assert any("2 of its 2 ImageIDs" in n for n in again.notes), again.notes


def test_a_different_list_needs_force(mirror_config, tmp_path):
    built = build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "data"))
    manifest = (built.path / "manifest.csv").read_bytes()
    listing = tmp_path / "exclude.txt"
    listing.write_text(sorted(_ids(built, built.classes[1]))[0] + "\n")
    with pytest.raises(MlkitError, match="--force"):
        build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "data", exclude=listing))
    assert (built.path / "manifest.csv").read_bytes() == manifest      # refused: nothing changed
    rebuilt = build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "data", exclude=listing, force=True))
    assert listing.read_text().strip() not in _ids(rebuilt)


def test_a_list_without_image_ids_is_refused_before_any_download(mirror_config, tmp_path):
    listing = tmp_path / "mine.txt"
    listing.write_text("IMG_0001.jpg\nholiday/IMG_0002.jpg\n")
    with pytest.raises(MlkitError, match="none of its 2 entries is an Open Images ImageID") as exc:
        build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "data", exclude=listing))
    assert "mlkit train --exclude" in str(exc.value)
    assert not (tmp_path / "data").exists() and not (tmp_path / "cache").exists()
    with pytest.raises(MlkitError, match="no such file"):
        build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "data", exclude=tmp_path / "absent.csv"))


def test_multiclass_builds_leave_them_out_of_every_class(mirror_config, tmp_path):
    config = dict(positive="", classes=("Hamburger", "Pizza"), other=10, splits=SPLIT)
    first = build_dataset(mirror_config(data_dir=tmp_path / "first", **config))
    gone = [sorted(_ids(first, f))[0] for f in first.classes]      # one of each class, 'other' too
    listing = tmp_path / "exclude.txt"
    listing.write_text("\n".join(gone) + "\n")
    again = build_dataset(mirror_config(data_dir=tmp_path / "again", exclude=listing, **config))
    assert not set(gone) & _ids(again)
    assert len(_ids(again, "other")) == 10        # 'other' is refilled from its pool


def test_the_cli_takes_exclude(first, mirror, tmp_path):
    _, info = mirror
    listing = tmp_path / "exclude.txt"
    victim = sorted(_ids(first, first.classes[0]))[0]
    listing.write_text(victim + "\n")
    r = CliRunner().invoke(app, ["build-dataset", "--positive", "Hot dog", "--split", "validation",
                                 "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
                                 "--source", info.metadata_base, "--image-source", info.images_base,
                                 "--exclude", str(listing), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert any("1 of its 1 ImageIDs" in n for n in out["notes"])
    assert victim not in {image_id_of(p.name) for p in Path(out["path"]).rglob("*.jpg")}


def test_the_list_is_read_once_per_build_and_again_when_it_changes(first, mirror_config, tmp_path, monkeypatch):
    import toolkit.dataset.exclusions as exclusions

    reads = []
    real = exclusions.read_exclusions
    monkeypatch.setattr(exclusions, "read_exclusions", lambda path: reads.append(path) or real(path))
    listing = tmp_path / "exclude.txt"
    listing.write_text(sorted(_ids(first, first.classes[1]))[0] + "\n")
    build_dataset(mirror_config(splits=SPLIT, data_dir=tmp_path / "a", exclude=listing))
    assert len(reads) == 1      # checked, selected from and recorded in settings: one read
    listing.write_text(sorted(_ids(first, first.classes[1]))[1] + "\n")
    assert read_image_exclusion(listing).image_ids == {sorted(_ids(first, first.classes[1]))[1]}
    assert len(reads) == 2
