"""toolkit.training.metrics against hand-computed cases (and scikit-learn where it happens to be installed)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.training import metrics


def test_confusion_matrix_rows_are_true_classes():
    cm = metrics.confusion_matrix([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2], 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.accuracy(cm) == pytest.approx(4 / 6)


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 2], [0, 1], 2)
    assert metrics.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    assert metrics.accuracy(np.zeros((2, 2), int)) == 0.0


def test_per_class_scores_by_hand():
    # true:  a a a a b b
    # pred:  a a a b b a   -> a: tp 3, fp 1, fn 1; b: tp 1, fp 1, fn 1
    cm = metrics.confusion_matrix([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], 2)
    a, b = metrics.per_class_scores(cm, ["a", "b"])
    assert (a.precision, a.recall, a.support) == (pytest.approx(3 / 4), pytest.approx(3 / 4), 4)
    assert a.f1 == pytest.approx(0.75)
    assert (b.precision, b.recall, b.support) == (pytest.approx(1 / 2), pytest.approx(1 / 2), 2)


def test_undefined_precision_and_recall_count_as_zero():
    cm = metrics.confusion_matrix([0, 0, 0], [0, 0, 0], 2)  # class 1 never present nor predicted
    a, b = metrics.per_class_scores(cm, ["a", "b"])
    assert (a.precision, a.recall, a.f1) == (1.0, 1.0, 1.0)
    assert (b.precision, b.recall, b.f1, b.support) == (0.0, 0.0, 0.0, 0)


def test_roc_auc_by_hand_with_ties():
    # positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5), (0.9>0.1), (0.5=0.5 -> 1/2), (0.5>0.1)
    assert metrics.roc_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)
    assert metrics.roc_auc([1, 0], [0.2, 0.8]) == 0.0
    assert metrics.roc_auc([1, 0, 1, 0], [0.7, 0.7, 0.7, 0.7]) == pytest.approx(0.5)
    assert metrics.roc_auc([1, 1], [0.1, 0.2]) is None
    assert metrics.roc_auc([0, 0], [0.1, 0.2]) is None


def test_roc_auc_equals_the_pair_count_definition():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300), 1)  # many ties
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert metrics.roc_auc(y, s) == pytest.approx(pairs / (pos.size * neg.size))


def test_threshold_for_precision_by_hand():
    y = [1, 1, 0, 1, 0, 0]
    s = [0.95, 0.9, 0.8, 0.7, 0.4, 0.1]
    # >=0.9: 2/2 precision, recall 2/3; >=0.7: 3/4 precision, recall 1; >=0.8: 2/3
    t = metrics.threshold_for_precision(y, s, 1.0)
    assert (t.threshold, t.precision, t.recall) == (0.9, 1.0, pytest.approx(2 / 3))
    t = metrics.threshold_for_precision(y, s, 0.75)
    assert (t.threshold, t.precision, t.recall) == (0.7, 0.75, 1.0)
    t = metrics.threshold_for_precision(y, s, 0.5)
    assert t.recall == 1.0 and t.threshold == 0.7  # the highest threshold with the best recall
    assert metrics.threshold_for_precision([0, 0], [0.3, 0.2], 0.5) is None
    assert metrics.threshold_for_precision([0, 1], [0.9, 0.1], 0.9) is None
    with pytest.raises(ValueError):
        metrics.threshold_for_precision(y, s, 0.0)


def test_threshold_with_tied_scores_takes_the_whole_tie():
    t = metrics.threshold_for_precision([1, 0, 1], [0.8, 0.8, 0.2], 0.5)
    # >=0.8 predicts both tied images (precision 1/2, recall 1/2); >=0.2 all three (2/3, 1)
    assert (t.threshold, t.precision, t.recall) == (0.2, pytest.approx(2 / 3), 1.0)


def test_classification_report_text():
    cm = metrics.confusion_matrix([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], 2)
    text = metrics.classification_report(cm, ["hot_dog", "not_hot_dog"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["hot_dog", "0.750", "0.750", "0.750", "4"]
    assert lines[3].split() == ["not_hot_dog", "0.500", "0.500", "0.500", "2"]
    assert "accuracy" in lines[5] and lines[5].split()[-2:] == ["0.667", "6"]
    assert lines[6].split() == ["macro", "avg", "0.625", "0.625", "0.625", "6"]
    assert lines[7].split() == ["weighted", "avg", "0.667", "0.667", "0.667", "6"]


def test_against_scikit_learn_when_installed():
    sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed (optional cross-check)")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 2)
    pred = (s >= 0.5).astype(int)
    assert metrics.confusion_matrix(y, pred, 2).tolist() == sk.confusion_matrix(y, pred).tolist()
    assert metrics.roc_auc(y == 1, s) == pytest.approx(sk.roc_auc_score(y, s))
    ours = metrics.per_class_scores(metrics.confusion_matrix(y, pred, 2), ["0", "1"])
    p, r, f, _ = sk.precision_recall_fscore_support(y, pred)
    assert [c.precision for c in ours] == pytest.approx(p)
    assert [c.recall for c in ours] == pytest.approx(r)
    assert [c.f1 for c in ours] == pytest.approx(f)
