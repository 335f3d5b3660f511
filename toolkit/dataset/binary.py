"""``--positive``: the images of one class (and its related ones with ``--include-related``)
against images of none of them."""

from __future__ import annotations

import numpy as np

from ..errors import MlkitError
from ..openimages.metadata import OpenImagesMetadata
from ..openimages.ontology import OIClass, RelatedClass
from ..progress import SILENT, Reporter
from .config import DatasetConfig
from .selected import LeaveOut, Selection, widen_hint
from .selection import (balance_counts, class_folder_name, negative_folder_name, sample, sample_excluding,
                        union_of)


def select_binary(config: DatasetConfig, meta: OpenImagesMetadata, positive: OIClass,
                  reporter: Reporter = SILENT, leave_out: LeaveOut | None = None) -> Selection:
    """--positive: the positive class (and related ones with --include-related) vs images of
    none of them; never an image of ``leave_out`` (--exclude)."""
    leave_out = leave_out or LeaveOut(None)
    related = meta.related(positive)
    if related:
        reporter.note(f"Related classes of \"{positive.name}\" ({'taken as positives' if config.include_related else 'kept out of the negatives'}): "
                      + ", ".join(f"{r.cls.name} ({r.why})" for r in related))
    neg_classes = _negative_classes(config, meta, positive, related)
    pos_folder = class_folder_name(positive.name)
    neg_folder = negative_folder_name(pos_folder)

    # --- selection, per Open Images split ------------------------------------------------
    positive_mids = [positive.mid] + ([r.cls.mid for r in related] if config.include_related else [])
    excluded_mids = [positive.mid] + [r.cls.mid for r in related]
    pos_by_split: dict[str, np.ndarray] = {}
    pool_by_split: dict[str, np.ndarray] = {}
    excl_by_split: dict[str, np.ndarray] = {}
    for split in config.splits:
        index = meta.label_index(split, reporter=reporter)
        pos_by_split[split] = leave_out.pool(index.images_with(positive_mids, 1))
        excl_by_split[split] = index.images_with(excluded_mids, 1)
        if neg_classes:
            pool = index.images_with([c.mid for c in neg_classes], 1)
        else:
            pool = index.images
        if config.verified_negatives:
            pool = np.intersect1d(pool, index.images_with([positive.mid], 0), assume_unique=True)
        pool_by_split[split] = leave_out.pool(pool)
    all_pos = union_of(pos_by_split)
    if all_pos.size == 0:
        raise MlkitError(
            f"no image in the {', '.join(config.splits)} split(s) has a human-verified \"{positive.name}\" "
            f"label ({positive.mid}). " + widen_hint(config, bool(related)))
    positives = sample(all_pos, config.max_positives, config.seed, "positives")
    n_neg = positives.size if config.negatives is None else config.negatives
    negatives = sample_excluding(union_of(pool_by_split), union_of(excl_by_split), n_neg, config.seed, "negatives")
    notes = leave_out.notes()
    if negatives.size < n_neg:
        notes.append(f"only {negatives.size} negative images match (asked for {n_neg})")
    balance = balance_counts({pos_folder: positives.size, neg_folder: negatives.size}, config.balance)
    if config.balance == "undersample":
        positives = sample(positives, balance.counts[pos_folder], config.seed, "undersample-pos")
        negatives = sample(negatives, balance.counts[neg_folder], config.seed, "undersample-neg")
    return Selection(folders=[pos_folder, neg_folder], chosen={pos_folder: positives, neg_folder: negatives},
                     drawn_from=[(positives, pos_by_split), (negatives, pool_by_split)],
                     crop_mids={pos_folder: positive_mids}, balance=balance, notes=notes,
                     title=f"{{name}}: {positive.name} vs not", default_name=pos_folder, positive=positive,
                     related=related)


def _negative_classes(config: DatasetConfig, meta: OpenImagesMetadata, positive: OIClass,
                      related: list[RelatedClass]) -> list[OIClass]:
    """The classes of --negative-classes, none of which may be the positive or related to it."""
    neg_classes = [meta.classes.resolve(n) for n in config.negative_classes if n.strip()]
    clash = [c.name for c in neg_classes if c.mid == positive.mid or c.mid in {r.cls.mid for r in related}]
    if clash:
        raise MlkitError(f"--negative-classes includes {', '.join(clash)}, which is the positive class "
                         "or related to it; choose classes that do not show it")
    return neg_classes
