"""Selection, balancing and splitting: pure logic, checked exhaustively."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from toolkit.errors import MlkitError
from toolkit.dataset.selection import (assign_splits, balance_counts, class_folder_name, negative_folder_name, sample,
                               sample_excluding, split_ambiguous)

POOL = np.arange(1, 200_001, dtype=np.uint64) * np.uint64(7)


def test_sample_is_seeded_sorted_and_distinct() -> None:
    a = sample(POOL, 500, seed=1, salt="neg")
    assert a.size == 500 and np.all(np.diff(a.astype(np.int64)) > 0) and np.isin(a, POOL).all()
    assert np.array_equal(a, sample(POOL, 500, seed=1, salt="neg"))
    assert not np.array_equal(a, sample(POOL, 500, seed=2, salt="neg"))
    assert not np.array_equal(a, sample(POOL, 500, seed=1, salt="pos"))
    assert np.array_equal(sample(POOL[:10], None, 0, "x"), POOL[:10])
    assert np.array_equal(sample(POOL[:10], 50, 0, "x"), POOL[:10])
    assert sample(POOL, 0, 0, "x").size == 0


@pytest.mark.parametrize("excluded_share", [0.0, 0.01, 0.5, 0.99])
def test_sample_excluding_never_returns_an_excluded_item(excluded_share: float) -> None:
    rng = np.random.default_rng(0)
    excluded = np.sort(rng.choice(POOL, size=int(POOL.size * excluded_share), replace=False))
    got = sample_excluding(POOL, excluded, 1000, seed=3, salt="neg")
    assert got.size == 1000
    assert not np.isin(got, excluded).any()
    assert np.unique(got).size == 1000
    assert np.array_equal(got, sample_excluding(POOL, excluded, 1000, seed=3, salt="neg"))


def test_sample_excluding_when_fewer_remain_than_asked() -> None:
    excluded = POOL[5:]
    assert np.array_equal(sample_excluding(POOL, excluded, 100, 0, "neg"), POOL[:5])


def test_sample_excluding_is_uniform_enough() -> None:
    pool = np.arange(100, dtype=np.uint64)
    hits = Counter()
    for seed in range(400):
        hits.update(sample_excluding(pool, pool[:50], 10, seed, "u").tolist())
    assert set(hits) <= set(range(50, 100))
    assert min(hits.values()) > 40 and max(hits.values()) < 130  # expected 80 each


def test_balance_modes() -> None:
    counts = {"hot_dog": 300, "not_hot_dog": 120}
    w = balance_counts(counts, "weights")
    assert w.counts == counts and w.dropped == {"hot_dog": 0, "not_hot_dog": 0}
    assert w.class_weights == pytest.approx({"hot_dog": 420 / 600, "not_hot_dog": 420 / 240})
    u = balance_counts(counts, "undersample")
    assert u.counts == {"hot_dog": 120, "not_hot_dog": 120} and u.dropped["hot_dog"] == 180
    assert set(u.class_weights.values()) == {1.0}
    o = balance_counts(counts, "oversample")
    assert o.repeat == {"hot_dog": 1, "not_hot_dog": 2} and o.counts == counts
    n = balance_counts(counts, "none")
    assert n.counts == counts and set(n.class_weights.values()) == {1.0} and set(n.repeat.values()) == {1}


def test_balance_errors() -> None:
    with pytest.raises(MlkitError, match="unknown --balance"):
        balance_counts({"a": 1, "b": 1}, "smote")
    with pytest.raises(MlkitError, match="no images for class"):
        balance_counts({"a": 10, "b": 0}, "weights")


def _ids(prefix: int, n: int) -> list[str]:
    return [f"{prefix:04x}{i:012x}" for i in range(n)]


def test_splits_are_stratified_deterministic_and_disjoint() -> None:
    by_class = {"hot_dog": _ids(1, 200), "not_hot_dog": _ids(2, 50)}
    split = assign_splits(by_class, val=0.1, test=0.2, seed=0)
    assert split == assign_splits(by_class, val=0.1, test=0.2, seed=0)
    assert split != assign_splits(by_class, val=0.1, test=0.2, seed=1)
    for cls, ids in by_class.items():
        c = Counter(split[i] for i in ids)
        assert c["test"] == round(len(ids) * 0.2) and c["val"] == round(len(ids) * 0.1)
    # adding images to one class does not move the others (hash order, not position)
    grown = assign_splits({"hot_dog": by_class["hot_dog"], "not_hot_dog": _ids(2, 50)}, 0.1, 0.2, 0)
    assert all(grown[i] == split[i] for i in by_class["hot_dog"])


def test_small_classes_still_get_val_and_test() -> None:
    split = assign_splits({"a": _ids(1, 3), "b": _ids(2, 2)}, val=0.1, test=0.1, seed=0)
    assert Counter(split[i] for i in _ids(1, 3)) == {"train": 1, "val": 1, "test": 1}
    assert Counter(split[i] for i in _ids(2, 2))["train"] >= 1


def test_image_in_two_classes_lands_in_one_split() -> None:
    shared = _ids(9, 1)
    split = assign_splits({"a": shared + _ids(1, 20), "b": shared + _ids(2, 20)}, 0.2, 0.2, 0)
    assert len(split) == 41


@pytest.mark.parametrize("val, test", [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0), (0.95, 0.1)])
def test_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(MlkitError, match="--val"):
        assign_splits({"a": _ids(1, 5)}, val, test, 0)


def test_folder_names() -> None:
    assert class_folder_name("Hot dog") == "hot_dog"
    assert class_folder_name("Chicago-style hot dog") == "chicago_style_hot_dog"
    assert class_folder_name("Café / Bar") == "café_bar"
    assert class_folder_name("!!!") == "class"
    assert negative_folder_name("hot_dog") == "not_hot_dog"


def test_split_ambiguous_leaves_out_images_of_two_or_more_classes() -> None:
    u = lambda *v: np.array(v, dtype=np.uint64)  # noqa: E731
    kept, ambiguous = split_ambiguous({"a": u(1, 2, 3, 9), "b": u(3, 4, 5), "c": u(5, 6, 9), "d": u()})
    assert ambiguous.tolist() == [3, 5, 9]
    assert {c: v.tolist() for c, v in kept.items()} == {"a": [1, 2], "b": [4], "c": [6], "d": []}
    kept, ambiguous = split_ambiguous({"a": u(1, 2), "b": u(3)})
    assert ambiguous.size == 0 and kept["a"].tolist() == [1, 2]
    assert split_ambiguous({"a": u(), "b": u()})[1].size == 0


def test_balance_over_n_classes() -> None:
    counts = {"hamburger": 10, "sandwich": 40, "pizza": 20, "other": 30}
    w = balance_counts(counts, "weights")
    assert w.class_weights == {c: round(100 / (4 * n), 6) for c, n in counts.items()}
    u = balance_counts(counts, "undersample")
    assert u.counts == dict.fromkeys(counts, 10) and u.dropped == {c: n - 10 for c, n in counts.items()}
    o = balance_counts(counts, "oversample")
    assert o.repeat == {"hamburger": 4, "sandwich": 1, "pizza": 2, "other": 1}


def test_sample_excluding_takes_an_unsorted_exclusion_too() -> None:
    excluded = POOL[::3].copy()
    np.random.default_rng(1).shuffle(excluded)
    got = sample_excluding(POOL, excluded, 500, seed=2, salt="neg")
    assert got.size == 500 and not np.isin(got, excluded).any()
    assert np.array_equal(got, sample_excluding(POOL, np.sort(excluded), 500, seed=2, salt="neg"))
