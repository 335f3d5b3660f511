"""Class lookup, search, hierarchy and related classes: made-up files and the real ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import shared_path
from toolkit.errors import MlkitError
from toolkit.openimages.ontology import read_class_table, read_hierarchy, related_classes

CLASSES = """/m/01b9xk,Hot dog
/m/05ztbl,Chicago-style hot dog
/m/07vh6y,Hot dog bun
/m/0bm1pg,Hot dog stand
/m/0663v,Pizza
/m/04rmv,Mouse
/m/020lf,Mouse
/m/0hotdogs,Hotdogs and more
/m/0k4j,Car
/m/0dog,Dog
"""


@pytest.fixture
def table(tmp_path: Path):
    p = tmp_path / "classes.csv"
    p.write_text(CLASSES)
    return read_class_table(p)


def test_header_row_is_optional(tmp_path: Path) -> None:
    with_header = tmp_path / "h.csv"
    with_header.write_text("LabelName,DisplayName\n" + CLASSES)
    without = tmp_path / "n.csv"
    without.write_text(CLASSES)
    assert read_class_table(with_header).classes == read_class_table(without).classes
    assert len(read_class_table(without)) == 10


def test_quoted_names_with_commas(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_text('/m/0x1,"Salt, pepper"\n/m/0x2,Pepper\n')
    assert read_class_table(p).resolve("salt, PEPPER").mid == "/m/0x1"


def test_resolve_is_case_insensitive_and_takes_mids(table) -> None:
    assert table.resolve("hot DOG").mid == "/m/01b9xk"
    assert table.resolve("  Hot   dog ").mid == "/m/01b9xk"
    assert table.resolve("/m/0663v").name == "Pizza"


def test_ambiguous_name_lists_candidates(table) -> None:
    with pytest.raises(MlkitError) as err:
        table.resolve("mouse")
    assert "/m/04rmv" in str(err.value) and "/m/020lf" in str(err.value)


@pytest.mark.parametrize("typo", ["Hotdog", "hot-dog", "Hot dgo", "HOTDOG"])
def test_unknown_name_suggests_close_ones(table, typo: str) -> None:
    with pytest.raises(MlkitError, match='Did you mean "Hot dog"'):
        table.resolve(typo)


def test_unknown_name_without_suggestions(table) -> None:
    with pytest.raises(MlkitError, match="none is close"):
        table.resolve("Zeppelin")
    with pytest.raises(MlkitError, match="no class with LabelName"):
        table.resolve("/m/0nothere")


def test_search_ranks_exact_then_prefix_then_words(table) -> None:
    names = [c.name for c in table.search("hot dog")]
    assert names[0] == "Hot dog"
    assert names[1:3] == ["Hot dog bun", "Hot dog stand"]
    assert "Chicago-style hot dog" in names
    assert "Dog" not in names
    assert [c.name for c in table.search("hotdog")][0] == "Hot dog"  # squashed match


def test_related_by_name_is_whole_words(table) -> None:
    related = {r.cls.name: r.why for r in related_classes(table, table.resolve("Hot dog"))}
    assert related == {"Chicago-style hot dog": "name", "Hot dog bun": "name", "Hot dog stand": "name"}
    assert "Hotdogs and more" not in related  # 'hot dog' is not a word of 'hotdogs'
    assert {r.cls.name for r in related_classes(table, table.resolve("Dog"))} >= {"Hot dog", "Hot dog bun"}


def test_hierarchy_descendants_and_path(tmp_path: Path, table) -> None:
    tree = {"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": "/m/02wbm", "Subcategory": [
            {"LabelName": "/m/01_bhs", "Subcategory": [{"LabelName": "/m/01b9xk",
                                                        "Subcategory": [{"LabelName": "/m/05ztbl"},
                                                                        {"LabelName": "/m/0zz"}]}]},
            {"LabelName": "/m/0663v"}]},
        {"LabelName": "/m/01g317", "Part": [{"LabelName": "/m/0dzct", "Subcategory": [{"LabelName": "/m/0p1"}]}]}]}
    p = tmp_path / "h.json"
    p.write_text(json.dumps(tree))
    h = read_hierarchy(p)
    assert h.descendants("/m/02wbm") == ["/m/01_bhs", "/m/0663v", "/m/01b9xk", "/m/05ztbl", "/m/0zz"]
    assert h.path_to("/m/01b9xk") == ["/m/0bl9f", "/m/02wbm", "/m/01_bhs", "/m/01b9xk"]
    assert "/m/0dzct" not in h.descendants("/m/01g317")  # a part is not a kind of
    assert h.descendants("/m/0dzct") == ["/m/0p1"]
    related = related_classes(table, table.resolve("Hot dog"), h)
    why = {r.cls.mid: r.why for r in related}
    assert why["/m/0zz"] == "hierarchy" and why["/m/05ztbl"] == "name"


@pytest.mark.parametrize("text", ["not,a,class\n", "", "LabelName,DisplayName\n"])
def test_bad_class_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(MlkitError):
        read_class_table(p)


def test_bad_hierarchy(tmp_path: Path) -> None:
    p = tmp_path / "h.json"
    p.write_text("[1, 2]")
    with pytest.raises(MlkitError, match="not an Open Images hierarchy"):
        read_hierarchy(p)


# -- the real files in ../shared/data/openimages -----------------------------------------

def test_real_hot_dog_related_classes() -> None:
    table = read_class_table(shared_path("openimages", "oidv6-class-descriptions.csv"))
    hierarchy = read_hierarchy(shared_path("openimages", "bbox_labels_600_hierarchy.json"))
    hot_dog = table.resolve("Hot dog")
    assert hot_dog.mid == "/m/01b9xk"
    names = {r.cls.name for r in related_classes(table, hot_dog, hierarchy)}
    assert {"Chicago-style hot dog", "Michigan hot dog", "Coney island hot dog", "Hot dog bun",
            "Hot dog stand"} <= names
    assert [table.name_of(m) for m in hierarchy.path_to(hot_dog.mid)][1:] == ["Food", "Fast food", "Hot dog"]
    with pytest.raises(MlkitError, match='Did you mean "Hot dog"'):
        table.resolve("Hotdog")


def test_real_boxable_file_has_no_header_and_600_classes() -> None:
    table = read_class_table(shared_path("openimages", "class-descriptions-boxable.csv"))
    assert len(table) == 601
    assert table.resolve("hot dog").mid == "/m/01b9xk"
