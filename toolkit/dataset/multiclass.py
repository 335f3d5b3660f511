"""``--classes``: one folder per class, by Open Images' hierarchy rules (subcategories taken
in, images that show two of the classes left out as ambiguous), and with ``--other`` a
folder of images of none of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MlkitError
from ..openimages.labelindex import ids_to_hex
from ..openimages.metadata import OpenImagesMetadata
from ..openimages.ontology import OIClass, RelatedClass
from ..progress import SILENT, Reporter
from .classes import class_folders
from .config import OTHER_FOLDER, DatasetConfig
from .selected import LeaveOut, Selection, subset_lookup, widen_hint
from .selection import balance_counts, sample, sample_excluding, split_ambiguous, union_of

ByFolder = dict[str, dict[str, np.ndarray]]   # class folder -> Open Images split -> ImageIDs


def select_classes(config: DatasetConfig, meta: OpenImagesMetadata, classes: list[OIClass],
                   reporter: Reporter = SILENT, leave_out: LeaveOut | None = None) -> Selection:
    """--classes: one folder per class, each taking the images a human verified to show it
    (Confidence 1) or, unless --no-descendants, any of its subcategories in the hierarchy.

    Open Images counts a subclass as its parent: "These subclasses in fact also belong to
    'Helmet'" (its challenge evaluation page, "Labels hierarchy handling",
    https://storage.googleapis.com/openimages/web/evaluation.html). So a Submarine sandwich
    is a Sandwich, and an image verified for two chosen classes (or their descendants)
    could be either: it is left out as ambiguous, and listed in manifest.csv. That holds
    with --no-descendants too, which only narrows what a class takes: a pizza beside a
    Submarine sandwich is not a clean "pizza" for "Sandwich, Pizza". A descendant that is
    itself a chosen class (Hamburger beside Sandwich, --no-descendants) belongs to it alone,
    and so does an image of it that also carries the ancestor's label: Open Images verifies
    ancestors of what an image shows (a hamburger is often verified "Sandwich" too), so on
    such an image "Sandwich" says nothing beyond "Hamburger". It shows a Sandwich other than
    a hamburger only through another label of the Sandwich family (Submarine sandwich), or
    when it shows no Hamburger at all."""
    leave_out = leave_out or LeaveOut(None)   # --exclude: never taken by any class
    folders = class_folders(classes, config.other is not None)
    families = _families(config, meta, classes, folders, reporter)
    excluded = families.excluded(classes)
    other_classes = _other_classes(config, meta, excluded)
    found = _find(config, meta, folders, families, excluded, other_classes, reporter, leave_out)
    candidates = _candidates(config, classes, folders, families, found)
    showing, candidates = _showing(folders, families, found, candidates)
    unambiguous, ambiguous, ambiguous_subset = _ambiguity(config, folders, candidates, showing, found)
    chosen = _sample_classes(config, classes, folders, candidates, unambiguous)
    notes = leave_out.notes()
    drawn_from = [(chosen[f], found.by_split[f]) for f in folders]
    class_info = _class_info(meta, classes, folders, families)
    if config.other is not None:
        other = _sample_other(config, found, other_classes)
        if other.size < config.other:
            notes.append(f"only {other.size} '{OTHER_FOLDER}' images match (asked for {config.other})")
        chosen[OTHER_FOLDER] = other
        folders = folders + [OTHER_FOLDER]
        drawn_from.append((other, found.pool_by_split))
        class_info.append({"folder": OTHER_FOLDER, "name": OTHER_FOLDER, "mid": None,
                           "from_classes": [{"mid": o.mid, "name": o.name} for o in other_classes],
                           "excludes": excluded})
    balance = balance_counts({f: chosen[f].size for f in folders}, config.balance)
    if config.balance == "undersample":
        chosen = {f: sample(ids, balance.counts[f], config.seed, f"undersample:{f}") for f, ids in chosen.items()}
        drawn_from = [(chosen[f], by) for f, (_, by) in zip(folders, drawn_from)]
    title = " vs ".join([c.name for c in classes] + ([OTHER_FOLDER] if config.other is not None else []))
    return Selection(folders=folders, chosen=chosen, drawn_from=drawn_from,
                     crop_mids={f: families.members[f] for f in folders if f in families.members}, balance=balance,
                     notes=notes, title=f"{{name}}: {title}", default_name="_".join(folders[:len(classes)]),
                     related=[r for c in classes for r in families.related[c.mid]], class_info=class_info,
                     ambiguous=ambiguous, ambiguous_subset=ambiguous_subset)


@dataclass
class _Families:
    """Per class folder, the MIDs it takes and the MIDs that show it."""

    members: dict[str, list[str]]            # the MIDs whose images a class takes
    family: dict[str, list[str]]             # the MIDs that show it (for ambiguity): its subtree
    above: dict[str, list[str]]              # family MIDs that are ancestors of a chosen class (implied by it)
    below: dict[str, list[str]]              # the chosen classes in a class's subtree
    related: dict[str, list[RelatedClass]]   # class MID -> its related classes

    def excluded(self, classes: Sequence[OIClass]) -> list[str]:
        """The MIDs an 'other' image must not show: the classes, what they take in, their related classes."""
        return sorted({c.mid for c in classes} | {r.cls.mid for rs in self.related.values() for r in rs}
                      | {m for mids in (*self.members.values(), *self.family.values()) for m in mids})


def _families(config: DatasetConfig, meta: OpenImagesMetadata, classes: list[OIClass], folders: list[str],
              reporter: Reporter) -> _Families:
    """What each class takes and what shows it; a chosen class's subtree is its own, not its
    ancestor's. Tells the user what each class takes in and which related classes it keeps out."""
    hierarchy = meta.hierarchy
    related = {c.mid: meta.related(c) for c in classes}

    def subtree(mid: str) -> list[str]:
        return [mid] + (hierarchy.descendants(mid) if hierarchy is not None else [])

    out = _Families({}, {}, {}, {}, related)
    for c, folder in zip(classes, folders):
        inside = [(o, f) for o, f in zip(classes, folders) if o.mid != c.mid and o.mid in subtree(c.mid)]
        owned = {m for o, _ in inside for m in subtree(o.mid)}
        fam = [m for m in subtree(c.mid) if m not in owned]
        out.above[folder] = [m for m in fam if any(o.mid in subtree(m) for o, _ in inside)]
        out.below[folder] = [f for _, f in inside]
        mids = fam if config.descendants else [c.mid]
        if config.include_related:
            extra = [r.cls.mid for r in related[c.mid] if r.cls.mid not in fam]
            mids, fam = mids + extra, fam + extra
        out.members[folder], out.family[folder] = mids, fam
        _tell_what_it_takes(config, meta, c, mids, related[c.mid], reporter)
    return out


def _tell_what_it_takes(config: DatasetConfig, meta: OpenImagesMetadata, c: OIClass, mids: list[str],
                        related: list[RelatedClass], reporter: Reporter) -> None:
    shown = [r for r in related if r.cls.mid not in mids]
    taken = [meta.classes.name_of(m) for m in mids[1:]]
    if taken:
        reporter.note(f"\"{c.name}\" takes in {', '.join(taken)}.")
    if shown:
        reporter.note(f"Related classes of \"{c.name}\" (kept out of 'other'"
                      f"{'' if config.include_related else '; --include-related takes them in'}): "
                      + ", ".join(f"{r.cls.name} ({r.why})" for r in shown))


def _other_classes(config: DatasetConfig, meta: OpenImagesMetadata, excluded: list[str]) -> list[OIClass]:
    """The classes of --other-classes, none of which may show one of the classes."""
    other_classes = [meta.classes.resolve(n, "--other-classes") for n in config.other_classes if n.strip()]
    clash = [o.name for o in other_classes if o.mid in excluded]
    if clash:
        raise MlkitError(f"--other-classes includes {', '.join(clash)}, which is one of --classes or related to "
                         "one; 'other' must show none of them: choose other classes")
    return other_classes


@dataclass
class _Found:
    """The images of each kind, per class folder (and for --other) and Open Images split."""

    by_split: ByFolder                  # images each class takes
    shown_by: ByFolder                  # images that show each class
    implied_by: ByFolder                # ... by a label in _Families.above
    pool_by_split: dict[str, np.ndarray]  # --other: the images it draws from
    excl_by_split: dict[str, np.ndarray]  # --other: the images it must not take


def _find(config: DatasetConfig, meta: OpenImagesMetadata, folders: list[str], families: _Families,
          excluded: list[str], other_classes: list[OIClass], reporter: Reporter, leave_out: LeaveOut) -> _Found:
    found = _Found({f: {} for f in folders}, {f: {} for f in folders}, {f: {} for f in folders}, {}, {})
    n = len(folders)
    for split in config.splits:
        index = meta.label_index(split, reporter=reporter)
        groups = ([families.members[f] for f in folders]
                  + [[m for m in families.family[f] if m not in families.above[f]] for f in folders]
                  + [families.above[f] for f in folders] + ([excluded] if config.other is not None else []))
        images = index.images_with_each(groups, 1)  # one pass over the split's labels
        for k, folder in enumerate(folders):
            found.by_split[folder][split] = leave_out.pool(images[k])
            found.shown_by[folder][split] = images[n + k]
            found.implied_by[folder][split] = images[2 * n + k]
        if config.other is not None:
            found.excl_by_split[split] = images[-1]
            found.pool_by_split[split] = leave_out.pool(index.images_with([o.mid for o in other_classes], 1)
                                                        if other_classes else index.images)
    return found


def _candidates(config: DatasetConfig, classes: list[OIClass], folders: list[str], families: _Families,
                found: _Found) -> dict[str, np.ndarray]:
    """The images each class would take; an MlkitError where a class has none."""
    candidates = {f: union_of(found.by_split[f]) for f in folders}
    empty = [c for c, f in zip(classes, folders) if candidates[f].size == 0]
    if empty:
        listing = ", ".join(f"\"{c.name}\" ({c.mid})" for c in empty)
        raise MlkitError(f"no image in the {', '.join(config.splits)} split(s) has a human-verified label of "
                         f"{listing}. " + widen_hint(config, any(families.related[c.mid] for c in empty)))
    return candidates


def _showing(folders: list[str], families: _Families, found: _Found, candidates: dict[str, np.ndarray]
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the images that show each class, each class's candidates less the images of its chosen
    descendants, which belong to them alone)."""
    showing = {f: union_of(found.shown_by[f]) for f in folders}
    candidates = dict(candidates)
    for f in sorted(folders, key=lambda f: len(families.below[f])):   # a class's chosen descendants first
        shows_below = union_of({g: showing[g] for g in families.below[f]})
        # its own (or an intermediate) label shows it where no chosen descendant explains the label
        showing[f] = np.union1d(showing[f], np.setdiff1d(union_of(found.implied_by[f]), shows_below,
                                                         assume_unique=True))
        candidates[f] = np.setdiff1d(candidates[f], shows_below, assume_unique=True)
    return showing, candidates


def _ambiguity(config: DatasetConfig, folders: list[str], candidates: dict[str, np.ndarray],
               showing: dict[str, np.ndarray], found: _Found
               ) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]], dict[str, str]]:
    """(per class, its candidates that show no other class; ImageID -> the folders an
    ambiguous image shows; ImageID -> the Open Images split of each ambiguous image)."""
    _, shows_two = split_ambiguous(showing)
    # ambiguous: an image some class would take that shows two or more of the classes
    ambiguous_ids = np.intersect1d(shows_two, union_of({f: candidates[f] for f in folders}), assume_unique=True)
    unambiguous = {f: np.setdiff1d(candidates[f], ambiguous_ids, assume_unique=True) for f in folders}
    ambiguous: dict[str, tuple[str, ...]] = {}
    if ambiguous_ids.size:
        shows = {f: np.isin(ambiguous_ids, showing[f]) for f in folders}
        for k, image_id in enumerate(ids_to_hex(ambiguous_ids)):
            ambiguous[image_id] = tuple(f for f in folders if shows[f][k])
    ambiguous_subset = subset_lookup([(ambiguous_ids, {s: union_of({f: found.by_split[f][s] for f in folders})
                                                       for s in config.splits})])
    return unambiguous, ambiguous, ambiguous_subset


def _sample_classes(config: DatasetConfig, classes: list[OIClass], folders: list[str],
                    candidates: dict[str, np.ndarray], unambiguous: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Up to --max-per-class unambiguous images of each class; an MlkitError where none is left."""
    chosen: dict[str, np.ndarray] = {}
    for c, folder in zip(classes, folders):
        pool = unambiguous[folder]
        if pool.size == 0:
            raise MlkitError(f"every image of \"{c.name}\" in the {', '.join(config.splits)} split(s) is also verified "
                             f"for another of the classes ({candidates[folder].size} ambiguous), so none is left to "
                             "tell it apart by: choose other classes" + (", or pass --no-descendants"
                                                                        if config.descendants else ""))
        chosen[folder] = sample(pool, config.max_per_class, config.seed, f"class:{c.mid}")
    return chosen


def _sample_other(config: DatasetConfig, found: _Found, other_classes: list[OIClass]) -> np.ndarray:
    """--other N: N images that show none of the classes (of --other-classes where given)."""
    other = sample_excluding(union_of(found.pool_by_split), union_of(found.excl_by_split), config.other,
                             config.seed, "other")
    if other.size == 0:
        raise MlkitError(f"no image in the {', '.join(config.splits)} split(s) can be '{OTHER_FOLDER}': each "
                         "shows one of the classes or a related class"
                         + (" (or none is of --other-classes)" if other_classes else "")
                         + "; widen --split or --other-classes")
    return other


def _class_info(meta: OpenImagesMetadata, classes: list[OIClass], folders: list[str],
                families: _Families) -> list[dict]:
    """Per class folder, its class and the MIDs it takes, shows and keeps out (for dataset.json)."""
    return [{"folder": f, "name": c.name, "mid": c.mid,
             "members": [{"mid": m, "name": meta.classes.name_of(m)} for m in families.members[f]],
             "family": [{"mid": m, "name": meta.classes.name_of(m)} for m in families.family[f]],
             "related": [{"mid": r.cls.mid, "name": r.cls.name, "why": r.why} for r in families.related[c.mid]]}
            for c, f in zip(classes, folders)]
