"""The small Open Images files every command needs (class names, hierarchy), and access
to the per-split label indexes, for one metadata source and label set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MlkitError
from ..progress import SILENT, Reporter
from . import layout
from .fetch import MetadataSource, fetch, metadata_source
from .labelindex import LabelIndex, open_label_index
from .ontology import ClassTable, Hierarchy, OIClass, RelatedClass, read_class_table, read_hierarchy, related_classes


@dataclass
class OpenImagesMetadata:
    """The small files every command needs: classes and hierarchy of one label set."""

    source: MetadataSource
    label_set: str
    classes: ClassTable
    hierarchy: Hierarchy | None

    def related(self, positive: OIClass) -> list[RelatedClass]:
        return related_classes(self.classes, positive, self.hierarchy)

    def labels_cached(self, split: str) -> bool:
        """Whether the labels file of ``split`` is at hand without a download."""
        if self.source.is_local:
            return True
        path = self.source.cache_path(layout.human_labels_path(split, self.label_set))
        return path.is_file() and path.with_name(path.name + ".meta.json").is_file()

    def label_index(self, split: str, *, reporter: Reporter = SILENT) -> LabelIndex:
        path = fetch(self.source, layout.human_labels_path(split, self.label_set), reporter=reporter)
        return open_label_index(path, self.source.cache_dir, reporter=reporter)


def load_metadata(source: str | None = None, cache_dir: Path | str | None = None,
                  label_set: str = "all", *, reporter: Reporter = SILENT) -> OpenImagesMetadata:
    src = metadata_source(source, cache_dir)
    classes_path = layout.CLASSES_ALL if label_set == "all" else layout.CLASSES_BOXABLE
    classes = read_class_table(fetch(src, classes_path, reporter=reporter))
    try:
        hierarchy = read_hierarchy(fetch(src, layout.HIERARCHY, reporter=reporter))
    except MlkitError as exc:
        if "not found" not in str(exc):
            raise
        hierarchy = None  # a source without the hierarchy still works: related by name only
    return OpenImagesMetadata(src, label_set, classes, hierarchy)
