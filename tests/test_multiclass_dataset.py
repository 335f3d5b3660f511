"""``build-dataset --classes``: multi-class datasets, end to end against the embedded mirror.

Every expectation is checked against the mirror's ground truth (``info.images``: which
classes a human verified on each picture), not against the code's own idea of it. The
mirror follows Open Images' real hierarchy: Food > Sandwich > Hamburger and Submarine
sandwich, so "Hamburger, Sandwich" needs --no-descendants (with descendants, every
Hamburger is a Sandwich and the two cannot be told apart: refused). Its "Pizza + Hamburger"
pictures are verified for both classes: ambiguous.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_process import sigkill_when
from toolkit.cli import app
from toolkit.training.data import read_dataset, split_files
from toolkit.dataset.build import JOURNAL, DatasetConfig, DatasetResult, build_dataset
from toolkit.errors import MlkitError
from toolkit.dataset.manifest import content_hash, read_manifest, verify_dataset
from toolkit.mirror import CLASSES, MOUSE_MIDS, FaultPlan
from toolkit.mirror.classes import ancestors

REPO = Path(__file__).resolve().parent.parent
HAMBURGER, SANDWICH, SUBMARINE, PIZZA = "/m/0cdn1", "/m/0l515", "/m/06pcq", "/m/0663v"
MIRROR_SPLIT = {"train": "train", "validation": "validation", "test": "test"}
THREE = ("Hamburger", "Sandwich", "Pizza")


# =========================================================================== helpers


def verified(info, mids, conf: int = 1, splits=None) -> set[str]:
    """ImageIDs of the mirror a human verified (conf 1) or denied (conf 0) any of ``mids`` on."""
    mids = set(mids)
    return {im.image_id for im in info.images if (splits is None or im.split in splits)
            and any(m in mids and c == conf for _, m, c in im.labels)}


@dataclass
class Built:
    result: DatasetResult
    root: Path
    doc: dict
    rows: list[dict]

    def ids(self, folder: str, status: str = "ok") -> set[str]:
        return {r["ImageID"] for r in self.rows if r["class"] == folder and r["status"] == status}

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "ok"]


def load(result: DatasetResult) -> Built:
    root = result.path
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return Built(result, root, json.loads((root / "dataset.json").read_text()), rows)


def config(info, data_dir: Path, cache_dir: Path, **kw) -> DatasetConfig:
    base = dict(data_dir=data_dir, source=info.metadata_base, image_source=info.images_base, cache_dir=cache_dir,
                max_size=64, workers=8)
    base.update(kw)
    return DatasetConfig(**base)


MAIN = dict(classes=THREE, descendants=False, other=40)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mc-cache")


@pytest.fixture(scope="module")
def main(mirror, cache, tmp_path_factory) -> Built:
    """--classes "Hamburger, Sandwich, Pizza" --no-descendants --other 40, built once."""
    server, info = mirror
    server.set_faults(None)
    return load(build_dataset(config(info, tmp_path_factory.mktemp("mc-main"), cache, **MAIN)))


@pytest.fixture(scope="module")
def with_descendants(mirror, cache, tmp_path_factory) -> Built:
    """--classes "Sandwich, Pizza" --other 20: Sandwich takes in Hamburger and Submarine sandwich."""
    server, info = mirror
    server.set_faults(None)
    return load(build_dataset(config(info, tmp_path_factory.mktemp("mc-desc"), cache, classes=("Sandwich", "Pizza"),
                                     other=20)))


@pytest.fixture
def cfg(mirror, cache, tmp_path):
    server, info = mirror
    server.set_faults(None)
    return lambda **kw: config(info, tmp_path / "data", cache, **kw)


# =========================================================================== the main build


def test_one_folder_per_class_in_the_order_given_other_last(main):
    assert main.result.classes == ["hamburger", "sandwich", "pizza", "other"]
    assert main.doc["classes"] == ["hamburger", "sandwich", "pizza", "other"]
    assert main.root.name == "hamburger_sandwich_pizza"
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (main.root / split).iterdir()) == sorted(main.doc["classes"])
    on_disk = {p.relative_to(main.root).as_posix() for s in ("train", "val", "test")
               for p in (main.root / s).rglob("*.jpg")}
    assert on_disk == {f"{r['split']}/{r['class']}/{r['ImageID']}.jpg" for r in main.ok}
    assert verify_dataset(main.root, checksums=True) == []


def test_dataset_json_has_what_the_trainer_reads(main):
    doc = main.doc
    assert doc["task"] == "multiclass" and "positive" not in doc
    info = {c["folder"]: c for c in doc["class_info"]}
    assert [c["folder"] for c in doc["class_info"]] == doc["classes"]
    assert (info["hamburger"]["mid"], info["sandwich"]["mid"], info["pizza"]["mid"]) == (HAMBURGER, SANDWICH, PIZZA)
    assert info["hamburger"]["name"] == "Hamburger" and info["other"]["mid"] is None
    assert [m["mid"] for m in info["sandwich"]["members"]] == [SANDWICH], "--no-descendants: Sandwich alone"
    assert [m["mid"] for m in info["sandwich"]["family"]] == [SANDWICH, SUBMARINE]
    counts = Counter((r["class"], r["split"]) for r in main.ok)
    assert doc["counts"] == {c: {s: counts[(c, s)] for s in ("train", "val", "test")} for c in doc["classes"]}
    train = {c: doc["counts"][c]["train"] for c in doc["classes"]}
    total = sum(train.values())
    for c, n in train.items():  # weights: total / (classes x count), over the training images
        assert doc["class_weights"][c] == pytest.approx(total / (4 * n), rel=1e-5)
    assert doc["balance"]["mode"] == "weights" and doc["balance"]["repeat"] == {c: 1 for c in doc["classes"]}
    rows = read_manifest(main.root / "manifest.csv")
    assert doc["content_hash"] == content_hash(rows)
    assert doc["settings"]["classes"] == list(THREE) and doc["settings"]["descendants"] is False
    assert doc["other"] == {"folder": "other", "asked": 40, "from_classes": []}


def test_the_trainer_reads_it_as_n_classes(main):
    ds = read_dataset(main.root)
    assert ds.classes == ["hamburger", "sandwich", "pizza", "other"]
    assert ds.class_weights == main.doc["class_weights"] and ds.repeat == {c: 1 for c in ds.classes}
    train = split_files(ds, "train")
    assert set(train.labels.tolist()) == {0, 1, 2, 3}
    assert np.bincount(train.labels, minlength=4).tolist() == [main.doc["counts"][c]["train"] for c in ds.classes]


# --no-descendants: a class takes images labelled with it; what shows it (for ambiguity) is
# still its subtree, less the subtree of another chosen class (Hamburger is its own class)
MEMBERS = {"hamburger": [HAMBURGER], "sandwich": [SANDWICH], "pizza": [PIZZA]}
FAMILY = {"hamburger": [HAMBURGER], "sandwich": [SANDWICH, SUBMARINE], "pizza": [PIZZA]}


def showing_sets(info) -> dict[str, set[str]]:
    """The images that show each class. Open Images verifies ancestors of what an image shows
    (a hamburger is often verified "Sandwich" as well), so on an image verified "Hamburger"
    the label "Sandwich" adds nothing: such an image shows a sandwich other than a hamburger
    only through another Sandwich-family label (Submarine sandwich)."""
    hamburger = verified(info, [HAMBURGER])
    return {"hamburger": hamburger, "pizza": verified(info, [PIZZA]),
            "sandwich": verified(info, [SUBMARINE]) | (verified(info, [SANDWICH]) - hamburger)}


def test_each_class_holds_images_verified_for_it_and_no_other_chosen_class(main, mirror):
    _, info = mirror
    sets = showing_sets(info)
    for folder, mids in MEMBERS.items():
        got = main.ids(folder)
        assert got and got <= verified(info, mids) & sets[folder], folder
        others = set().union(*(s for f, s in sets.items() if f != folder))
        assert not got & others, f"{folder} holds an image that shows another class"
        # Confidence 1 only: an image where the class was verified ABSENT is never taken
        assert not got & (verified(info, mids, conf=0) - verified(info, mids))
    # every unambiguous verified image is there (no cap): nothing is silently dropped
    hamburger_only = verified(info, [HAMBURGER]) - verified(info, [SUBMARINE, PIZZA])
    assert main.ids("hamburger") | main.ids("hamburger", "failed") == hamburger_only


def test_a_hamburger_also_verified_sandwich_is_a_hamburger(main, mirror):
    """"Is a hamburger a sandwich?": with both classes chosen, the more specific one wins."""
    _, info = mirror
    both = verified(info, [HAMBURGER]) & verified(info, [SANDWICH]) - verified(info, [SUBMARINE, PIZZA])
    assert both, "the mirror should verify Sandwich on some of its hamburgers, as Open Images does"
    assert both <= main.ids("hamburger") | main.ids("hamburger", "failed")
    assert not both & (main.ids("sandwich") | {r["ImageID"] for r in main.rows if r["status"] == "ambiguous"})


def test_other_shows_none_of_the_classes_nor_their_family(main, mirror):
    _, info = mirror
    other = main.ids("other")
    assert 30 <= len(other | main.ids("other", "failed")) <= 40
    # the same exclusion as --positive's negatives: the classes, descendants and related classes
    family = [HAMBURGER, SANDWICH, SUBMARINE, PIZZA]
    assert not other & verified(info, family)
    assert set(main.doc["class_info"][-1]["excludes"]) >= set(family)


def test_ambiguous_images_are_left_out_and_counted(main, mirror):
    _, info = mirror
    sets = showing_sets(info)
    taken = verified(info, [m for mids in MEMBERS.values() for m in mids])
    truth = {i for i in taken if sum(i in s for s in sets.values()) >= 2}
    combos = {im.image_id for im in info.images if im.display_name == "Pizza + Hamburger"}
    assert combos and combos <= truth, "the mirror's two-class pictures are ambiguous"
    # a pizza beside a Submarine sandwich shows a Sandwich even under --no-descendants
    beside_sub = {im.image_id for im in info.images if im.display_name == "Pizza + Submarine sandwich"}
    assert beside_sub - verified(info, [SANDWICH]), "the mirror should have such a picture without the Sandwich label"
    assert beside_sub <= truth
    placed = {r["ImageID"] for r in main.rows if r["status"] in ("ok", "failed", "duplicate")}
    assert not placed & truth
    listed = [r for r in main.rows if r["status"] == "ambiguous"]
    assert {r["ImageID"] for r in listed} == truth
    for r in listed:
        shows = [f for f in ("hamburger", "sandwich", "pizza") if r["ImageID"] in sets[f]]
        assert r["class"] == "+".join(shows) and r["split"] == "" and r["oi_subset"] in MIRROR_SPLIT
    assert main.doc["ambiguous"]["excluded"] == len(truth) == sum(main.result.ambiguous.values())
    assert main.doc["ambiguous"]["by_classes"] == dict(Counter(r["class"] for r in listed))
    assert main.doc["ambiguous"]["by_classes"]["hamburger+pizza"] >= 1


def test_splits_are_stratified_per_class(main):
    for c in main.doc["classes"]:
        n = main.doc["counts"][c]
        assert n["val"] >= 1 and n["test"] >= 1 and n["train"] > n["val"] + n["test"], (c, n)
    splits_of = Counter(r["ImageID"] for r in main.ok)
    assert max(splits_of.values()) == 1


def test_no_descendants_leaves_out_images_labelled_only_with_a_subclass(main, mirror):
    _, info = mirror
    only_submarine = verified(info, [SUBMARINE]) - verified(info, [SANDWICH])
    assert only_submarine, "the mirror should have Submarine sandwiches without the Sandwich label"
    assert not main.ids("sandwich") & only_submarine
    assert not main.ids("other") & only_submarine  # related: never 'other' either


# =========================================================================== descendants


def test_a_class_takes_in_its_descendants_by_default(with_descendants, mirror):
    _, info = mirror
    b = with_descendants
    sandwich = b.ids("sandwich") | b.ids("sandwich", "failed")
    only_sub = verified(info, [SUBMARINE]) - verified(info, [SANDWICH, PIZZA])
    only_ham = verified(info, [HAMBURGER]) - verified(info, [SANDWICH, PIZZA])
    assert only_sub and only_sub <= sandwich
    assert only_ham and only_ham <= sandwich
    members = [m["mid"] for m in b.doc["class_info"][0]["members"]]
    assert members[0] == SANDWICH and set(members) == {SANDWICH, HAMBURGER, SUBMARINE}
    assert b.doc["descendants"] is True
    # a Hamburger beside a pizza is a Sandwich beside a pizza: ambiguous
    combos = {im.image_id for im in info.images if im.display_name == "Pizza + Hamburger"}
    assert combos <= {r["ImageID"] for r in b.rows if r["status"] == "ambiguous" and r["class"] == "sandwich+pizza"}


def test_ancestor_of_another_class_is_refused(cfg):
    c = cfg(classes=THREE, other=40)
    with pytest.raises(MlkitError) as exc:
        build_dataset(c)
    text = str(exc.value)
    for needle in ('"Sandwich" is an ancestor of "Hamburger"', "Food > Sandwich > Hamburger", "cannot be told apart",
                   "--no-descendants"):
        assert needle in text, text
    assert not Path(c.data_dir).exists()


# =========================================================================== balance, caps


def test_undersample_and_oversample_over_n_classes(cfg):
    under = build_dataset(cfg(classes=("Pizza", "Hamburger"), other=30, balance="undersample", name="under",
                              splits=("train",)))
    planned = {c: sum(v.values()) for c, v in under.planned.items()}
    assert len(set(planned.values())) == 1, planned
    assert sum(under.balance.dropped.values()) > 0
    over = build_dataset(cfg(classes=("Pizza", "Hamburger"), other=60, balance="oversample", name="over",
                             splits=("train",)))
    sizes = {c: sum(v.values()) for c, v in over.planned.items()}
    largest = max(sizes.values())
    assert over.balance.repeat == {c: max(1, round(largest / n)) for c, n in sizes.items()}
    assert max(over.balance.repeat.values()) > 1
    doc = json.loads((over.path / "dataset.json").read_text())
    assert doc["balance"]["repeat"] == over.balance.repeat
    assert read_dataset(over.path).repeat == over.balance.repeat


def test_max_per_class_caps_each_class(cfg, main):  # main: the metadata is cached, so a dry run lists images
    r = build_dataset(cfg(classes=("Pizza", "Hamburger", "Submarine sandwich"), max_per_class=5,
                          splits=("train",), dry_run=True))
    assert {c: sum(v.values()) for c, v in r.planned.items()} == {"pizza": 5, "hamburger": 5,
                                                                  "submarine_sandwich": 5}
    assert not Path(r.path).exists(), "a dry run writes nothing"


# =========================================================================== bad input


@pytest.mark.parametrize("kw, needles", [
    ({"classes": ("Pizza",)}, ["one class", "--other"]),
    ({"classes": ("Pizza", "Hamburgr")}, ['"Hamburger"', "Did you mean"]),
    ({"classes": ("Pizza", "Mouse")}, [*MOUSE_MIDS, "--classes /m/"]),
    ({"classes": ("Pizza", "zzzzqqq")}, ["zzzzqqq", "mlkit classes"]),
    ({"classes": ("Pizza", "pizza")}, ["twice", "Pizza"]),
    ({"classes": ("Pizza", PIZZA, "Taco")}, ["twice", PIZZA]),
    ({"classes": ("Pizza", "Hamburger"), "positive": "Hot dog"}, ["--classes", "--positive", "cannot be combined"]),
    ({"classes": ("Pizza", "Hamburger"), "negatives": 5}, ["--negatives", "--other"]),
    ({"classes": ("Pizza", "Hamburger"), "other": 0}, ["--other", "at least 1"]),
    ({"classes": ("Pizza", "Hamburger"), "other_classes": ("Cat",)}, ["--other-classes", "--other N"]),
    ({"classes": ("Pizza", "Sandwich"), "other": 5, "other_classes": ("Submarine sandwich",)},
     ["--other-classes", "Submarine sandwich"]),
    ({"classes": ("Pizza", "Hamburger"), "max_per_class": 0}, ["--max-per-class"]),
    ({"classes": ("Pizza", "Food")}, ["ancestor", "Food > Pizza"]),
    ({"positive": "Hot dog", "other": 5}, ["--other", "--negatives"]),
    ({"positive": "", "classes": ()}, ["--positive", "--classes"]),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(cfg, kw, needles):
    c = cfg(**kw)
    with pytest.raises(MlkitError) as exc:
        build_dataset(c)
    for needle in needles:
        assert needle in str(exc.value), (needle, str(exc.value))
    assert not Path(c.data_dir).exists()


def test_a_class_with_no_images_in_the_chosen_splits(cfg, mirror):
    _, info = mirror
    names = Counter(CLASSES.values())
    def family(m):  # the class and its descendants, which it takes in by default
        return [m] + [x for x in CLASSES if m in ancestors(x)]

    absent = sorted(CLASSES[m] for m in CLASSES if names[CLASSES[m]] == 1 and m not in ancestors(PIZZA)
                    and verified(info, family(m)) and not verified(info, family(m), splits=("validation",)))
    assert absent, "the mirror should have a class with no verified image in validation"
    c = cfg(classes=("Pizza", absent[0]), other=3, splits=("validation",))
    with pytest.raises(MlkitError) as exc:
        build_dataset(c)
    text = str(exc.value)
    assert "no image" in text and absent[0] in text and "validation" in text and "--split" in text, text
    assert not Path(c.data_dir).exists()


# =========================================================================== rebuild, resume


def test_rerun_is_a_noop_and_other_settings_need_force(main, mirror, cache):
    _, info = mirror
    data = main.root.parent
    again = build_dataset(config(info, data, cache, **MAIN))
    assert again.downloaded == 0 and again.skipped == len(main.ok)  # the dead photos are tried again, in vain
    assert again.content_hash == main.doc["content_hash"]
    with pytest.raises(MlkitError, match="--force"):
        build_dataset(config(info, data, cache, **{**MAIN, "max_per_class": 5}))
    # a binary dataset cannot be rebuilt as a multi-class one in its folder without --force either
    with pytest.raises(MlkitError, match="other settings"):
        build_dataset(config(info, data, cache, positive="Pizza", name=main.root.name))


def test_force_rebuild_swaps_in_a_complete_new_generation(mirror, cache, tmp_path):
    _, info = mirror
    first = build_dataset(config(info, tmp_path, cache, classes=("Pizza", "Hamburger"), other=10,
                                 splits=("validation", "test")))
    second = build_dataset(config(info, tmp_path, cache, classes=("Pizza", "Hamburger"), other=10,
                                  splits=("validation", "test"), max_per_class=3, force=True))
    assert second.path == first.path
    assert {c: sum(v.values()) for c, v in second.planned.items() if c != "other"} == {"pizza": 3, "hamburger": 3}
    assert verify_dataset(second.path) == []
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["pizza_hamburger"]
    assert not any(p.name.endswith(".mlkit-next") for p in tmp_path.iterdir())


def test_a_killed_build_resumes_to_the_same_dataset(main, mirror, tmp_path):
    """The real command SIGKILLed mid-download, then run again: the dataset equals the
    uninterrupted one (same images, same bytes, same content hash)."""
    server, info = mirror
    data = tmp_path / "data"
    root = data / "hamburger_sandwich_pizza"
    args = ["--classes", "Hamburger, Sandwich, Pizza", "--no-descendants", "--other", "40", "--max-size", "64",
            "--workers", "8", "--source", info.metadata_base, "--image-source", info.images_base,
            "--data-dir", str(data), "--cache-dir", str(tmp_path / "cache"), "--json"]
    env = dict(os.environ, MLKIT_CACHE=str(tmp_path / "cache"))
    server.set_faults(FaultPlan(latency=0.2))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "build-dataset", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                cwd=REPO, env=env)
        sigkill_when(proc, lambda: len(list(root.glob("*/*/*.jpg"))) >= 10, within=120)
    finally:
        server.set_faults(None)
    assert proc.returncode == -signal.SIGKILL
    assert (root / JOURNAL).is_file() and not (root / "dataset.json").exists()
    resumed = build_dataset(config(info, data, tmp_path / "cache", **MAIN))
    assert resumed.skipped >= 10
    assert resumed.content_hash == main.doc["content_hash"]
    assert verify_dataset(root, checksums=True) == []


# =========================================================================== the command


def test_cli_builds_and_reports_json(mirror, tmp_path):
    server, info = mirror
    server.set_faults(None)
    res = CliRunner().invoke(app, ["build-dataset", "--classes", "Pizza, Submarine sandwich", "--other", "5",
                                   "--split", "validation,test", "--max-size", "64", "--source", info.metadata_base,
                                   "--image-source", info.images_base, "--data-dir", str(tmp_path / "d"),
                                   "--cache-dir", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["task"] == "multiclass" and out["classes"] == ["pizza", "submarine_sandwich", "other"]
    assert [c["mid"] for c in out["class_info"][:2]] == [PIZZA, SUBMARINE]


@pytest.mark.parametrize("args, needle", [
    (["--classes", "Hamburger, Sandwich, Pizza", "--other", "40"], "ancestor"),
    (["--classes", "Pizza"], "--other"),
    (["--classes", "Pizza, Hamburger", "--positive", "Hot dog"], "cannot be combined"),
    (["--classes", "Pizza, Pizza", "--other", "3"], "twice"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(mirror, tmp_path, args, needle):
    server, info = mirror
    server.set_faults(None)
    res = CliRunner().invoke(app, ["build-dataset", *args, "--source", info.metadata_base, "--image-source",
                                   info.images_base, "--data-dir", str(tmp_path / "d"), "--cache-dir",
                                   str(tmp_path / "c")])
    assert res.exit_code == 2, res.output
    assert needle in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not (tmp_path / "d").exists()


def test_help_lists_the_multiclass_options():
    res = CliRunner().invoke(app, ["build-dataset", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for flag in ("--classes", "--other", "--other-classes", "--no-descendants", "--max-per-class", "--positive"):
        assert flag in res.output, flag


def test_dry_run_on_an_empty_cache_reports_the_metadata_plan_only(mirror, tmp_path):
    server, info = mirror
    server.set_faults(None)
    r = build_dataset(config(info, tmp_path / "data", tmp_path / "fresh-cache", classes=("Pizza", "Hamburger"),
                             other=5, dry_run=True))
    assert r.metadata_only and r.name == "pizza_hamburger" and not r.plan
    assert not (tmp_path / "data").exists()


def test_include_related_takes_in_classes_found_by_name(cfg, mirror, main):
    _, info = mirror
    from toolkit.mirror import HOT_DOG, HOT_DOG_RELATED

    # (``main`` has filled the module's metadata cache: a dry run lists images only then)
    plain = build_dataset(cfg(classes=("Hot dog", "Pizza"), dry_run=True))
    wide = build_dataset(cfg(classes=("Hot dog", "Pizza"), include_related=True, dry_run=True))
    assert not plain.metadata_only and not wide.metadata_only
    ids = {r: {p["ImageID"] for p in res.plan if p["class"] == "hot_dog"} for r, res in (("plain", plain),
                                                                                           ("wide", wide))}
    assert ids["plain"] and ids["plain"] <= verified(info, [HOT_DOG])
    only_related = verified(info, HOT_DOG_RELATED) - verified(info, [HOT_DOG, PIZZA])
    assert only_related and only_related <= ids["wide"] and not only_related & ids["plain"]
    assert {m["mid"] for m in wide.class_info[0]["members"]} == {HOT_DOG, *HOT_DOG_RELATED}


def test_include_related_refuses_a_class_that_another_takes_in(cfg):
    c = cfg(classes=("Hot dog", "Hot dog bun"), include_related=True)
    with pytest.raises(MlkitError, match="cannot be told apart"):
        build_dataset(c)
    assert not Path(c.data_dir).exists()
