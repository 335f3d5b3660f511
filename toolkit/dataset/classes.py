"""The classes a build names, looked up in Open Images and checked against its hierarchy,
and the folder each one gets."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import MlkitError
from ..openimages.metadata import OpenImagesMetadata
from ..openimages.ontology import OIClass
from .config import OTHER_FOLDER, DatasetConfig
from .selection import class_folder_name


def resolve_classes(config: DatasetConfig, meta: OpenImagesMetadata) -> OIClass | list[OIClass]:
    """The positive class (binary), or the chosen classes in order, checked (multi-class)."""
    if not config.multiclass:
        return meta.classes.resolve(config.positive)
    chosen = [meta.classes.resolve(text, "--classes") for text in config.classes]
    _refuse_twice(config.classes, chosen)
    if meta.hierarchy is not None and config.descendants:
        _refuse_ancestors(chosen, meta)
    if config.include_related:
        _refuse_related_by_name(chosen, meta)
    return chosen


def _refuse_twice(texts: Sequence[str], chosen: Sequence[OIClass]) -> None:
    """Two names of --classes that are one class (two spellings, or a name and its MID)."""
    first: dict[str, str] = {}
    for text, c in zip(texts, chosen):
        if c.mid in first:
            raise MlkitError(f"--classes names {c.name} ({c.mid}) twice (\"{first[c.mid].strip()}\" and "
                             f"\"{text.strip()}\"): give each class once")
        first[c.mid] = text


def _refuse_ancestors(chosen: Sequence[OIClass], meta: OpenImagesMetadata) -> None:
    """A chosen class that is an ancestor of another in the hierarchy: with descendants
    taken in, the ancestor's folder would hold the other class too."""
    for a in chosen:
        below = set(meta.hierarchy.descendants(a.mid))
        for b in chosen:
            if b.mid in below:
                path = " > ".join(meta.classes.name_of(m) for m in meta.hierarchy.path_to(b.mid)
                                  if m != meta.hierarchy.root)
                raise MlkitError(
                    f"\"{a.name}\" is an ancestor of \"{b.name}\" in Open Images' class hierarchy ({path}): "
                    f"every {b.name} is also a {a.name}, so with descendants included the two classes "
                    f"cannot be told apart. Drop one of them, or pass --no-descendants so that \"{a.name}\" "
                    f"takes only images labelled {a.name} itself (an image verified for both is then left "
                    "out as ambiguous).")


def _refuse_related_by_name(chosen: Sequence[OIClass], meta: OpenImagesMetadata) -> None:
    """With --include-related, a chosen class whose name holds another's takes that one in."""
    for a in chosen:
        by_name = {r.cls.mid for r in meta.related(a) if r.why == "name"}
        for b in chosen:
            if b.mid in by_name:
                raise MlkitError(f"with --include-related \"{a.name}\" takes in \"{b.name}\" (its name contains "
                                 f"{a.name}), so the two classes cannot be told apart; drop one, or leave out "
                                 "--include-related")


def class_folders(classes: Sequence[OIClass], other: bool) -> list[str]:
    """One folder per class, snake_case of its display name; where two would be equal (two
    classes both called "Mouse", or a class called "Other" beside --other), the later one
    gets its MID appended (mouse_020lf)."""
    out: list[str] = []
    taken = {OTHER_FOLDER} if other else set()
    for c in classes:
        folder = class_folder_name(c.name)
        if folder in taken:
            folder = f"{folder}_{class_folder_name(c.mid.rsplit('/', 1)[-1])}"
        taken.add(folder)
        out.append(folder)
    return out
