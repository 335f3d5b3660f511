"""Open Images classes: names, lookup, search, hierarchy and related classes.

Pure logic over two small files: the class descriptions CSV (``LabelName,DisplayName``,
with or without a header row) and the boxable hierarchy JSON.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlkitError
from .layout import HIERARCHY_ROOT

_MID = re.compile(r"^/[a-z]/[0-9a-z_]+$")


@dataclass(frozen=True)
class OIClass:
    mid: str    # LabelName, e.g. /m/01b9xk
    name: str   # DisplayName, e.g. Hot dog


def is_mid(text: str) -> bool:
    return bool(_MID.match(text.strip()))


def _norm(name: str) -> str:
    return " ".join(name.casefold().split())


def _squash(name: str) -> str:
    """Lowercase, letters and digits only: 'Hot-dog', 'hotdog' and 'Hot dog' meet."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


@dataclass
class ClassTable:
    """All classes of one class-descriptions file."""

    classes: list[OIClass]
    origin: str = ""  # the file it was read from, named in errors (a damaged copy misleads)
    by_mid: dict[str, OIClass] = field(init=False)
    _by_name: dict[str, list[OIClass]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_mid = {c.mid: c for c in self.classes}
        self._by_name = {}
        for c in self.classes:
            self._by_name.setdefault(_norm(c.name), []).append(c)

    def __len__(self) -> int:
        return len(self.classes)

    def name_of(self, mid: str) -> str:
        c = self.by_mid.get(mid)
        return c.name if c else mid

    def find(self, name: str) -> list[OIClass]:
        """Classes whose display name equals ``name``, ignoring case and spacing."""
        return list(self._by_name.get(_norm(name), []))

    def resolve(self, name_or_mid: str, option: str = "--positive") -> OIClass:
        """The one class meant by a display name (any case) or a MID.

        Raises MlkitError listing the candidates when the name is ambiguous (with an example
        of ``option`` given the MID), or close suggestions when it is unknown.
        """
        text = name_or_mid.strip()
        if not text:
            raise MlkitError("empty class name: give an Open Images display name such as \"Hot dog\"")
        if is_mid(text):
            if text in self.by_mid:
                return self.by_mid[text]
            raise MlkitError(f"no class with LabelName {text} in this class list")
        found = self.find(text)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listing = "\n".join(f"  {c.mid}  {c.name}" for c in found)
            raise MlkitError(
                f"\"{text}\" names {len(found)} Open Images classes:\n{listing}\n"
                f"Pass the LabelName (MID) instead, e.g. {option} {found[0].mid}")
        hint = self.suggest(text)
        if hint:
            listing = ", ".join(f"\"{c.name}\"" for c in hint)
            raise MlkitError(f"no Open Images class is called \"{text}\". Did you mean {listing}? "
                             f"(`mlkit classes {text.split()[0]}` searches the class list){self._where()}")
        raise MlkitError(f"no Open Images class is called \"{text}\" and none is close. "
                         f"Search the class list with `mlkit classes WORD`.{self._where()}")

    def _where(self) -> str:
        if not self.origin:
            return ""
        return (f" Class names were read from {self.origin}; if that copy is damaged, delete it (and its "
                ".meta.json beside it, in the cache) and mlkit downloads it again.")

    def suggest(self, text: str, n: int = 5) -> list[OIClass]:
        """Close display names: spelling variants first, then fuzzy matches."""
        squashed = _squash(text)
        exact = [c for c in self.classes if _squash(c.name) == squashed]
        names = {_norm(c.name): c for c in self.classes}
        fuzzy = difflib.get_close_matches(_norm(text), list(names), n=n, cutoff=0.75)
        out: list[OIClass] = []
        for c in exact + [names[f] for f in fuzzy]:
            if c not in out:
                out.append(c)
        return out[:n]

    def search(self, query: str, limit: int | None = None) -> list[OIClass]:
        """Classes whose display name contains ``query`` (case-insensitive), best first:
        exact name, then names starting with it, then word matches, then substrings,
        then fuzzy suggestions. A MID matches its own class."""
        q = _norm(query)
        if not q:
            return []
        if is_mid(query):
            return [self.by_mid[query.strip()]] if query.strip() in self.by_mid else []
        word = re.compile(rf"\b{re.escape(q)}\b")
        ranked: list[tuple[int, int, str, OIClass]] = []
        for c in self.classes:
            n = _norm(c.name)
            if n == q or _squash(n) == _squash(q):
                rank = 0
            elif n.startswith(q):
                rank = 1
            elif word.search(n):
                rank = 2
            elif q in n or _squash(q) in _squash(n):
                rank = 3
            else:
                continue
            ranked.append((rank, len(n), n, c))
        ranked.sort(key=lambda r: r[:3])
        result = [r[3] for r in ranked]
        if not result:
            result = self.suggest(query)
        return result[:limit] if limit else result


def read_class_table(path: Path | str) -> ClassTable:
    """Read a class-descriptions CSV; the header row ``LabelName,DisplayName`` is optional."""
    path = Path(path)
    classes: list[OIClass] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for lineno, row in enumerate(csv.reader(f), start=1):
                if not row or not "".join(row).strip():
                    continue
                if lineno == 1 and [c.strip() for c in row[:2]] == ["LabelName", "DisplayName"]:
                    continue
                if len(row) < 2 or not is_mid(row[0]):
                    raise MlkitError(
                        f"{path}, line {lineno}: expected LabelName,DisplayName "
                        f"(e.g. /m/01b9xk,Hot dog), got {','.join(row)[:80]!r}; if this is a damaged cached "
                        "copy, delete it (and its .meta.json) to download it again")
                classes.append(OIClass(row[0].strip(), row[1].strip()))
    except UnicodeDecodeError as exc:
        raise MlkitError(f"{path.name} is not a UTF-8 text file ({exc.reason})") from None
    if not classes:
        raise MlkitError(f"{path.name} lists no classes")
    return ClassTable(classes, origin=str(path))


# ----------------------------------------------------------------------------- hierarchy

@dataclass
class Hierarchy:
    """The class hierarchy: ``Subcategory`` edges (a kind of) only; ``Part`` is not a kind."""

    children: dict[str, list[str]]
    parents: dict[str, list[str]]
    root: str = HIERARCHY_ROOT

    def descendants(self, mid: str) -> list[str]:
        """Every class below ``mid``, breadth first, each once."""
        out: list[str] = []
        seen = {mid}
        frontier = list(self.children.get(mid, []))
        while frontier:
            nxt = []
            for m in frontier:
                if m not in seen:
                    seen.add(m)
                    out.append(m)
                    nxt.extend(self.children.get(m, []))
            frontier = nxt
        return out

    def path_to(self, mid: str) -> list[str]:
        """One chain from the root to ``mid`` (inclusive), or [] if ``mid`` is not in it."""
        if mid not in self.parents and mid != self.root:
            return []
        chain = [mid]
        while chain[-1] != self.root and self.parents.get(chain[-1]):
            chain.append(self.parents[chain[-1]][0])
        return chain[::-1]

    def __contains__(self, mid: str) -> bool:
        return mid == self.root or mid in self.parents


def read_hierarchy(path: Path | str) -> Hierarchy:
    path = Path(path)
    try:
        tree = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlkitError(f"cannot read the class hierarchy {path.name}: {exc}") from None
    if not isinstance(tree, dict) or "LabelName" not in tree:
        raise MlkitError(f"{path.name} is not an Open Images hierarchy: expected "
                         "{\"LabelName\": ..., \"Subcategory\": [...]} at the top")
    children: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        mid = node["LabelName"]
        for sub in node.get("Subcategory", []) or []:
            kids = children.setdefault(mid, [])
            if sub["LabelName"] not in kids:
                kids.append(sub["LabelName"])
            ps = parents.setdefault(sub["LabelName"], [])
            if mid not in ps:
                ps.append(mid)
            stack.append(sub)
        for part in node.get("Part", []) or []:
            stack.append(part)  # parts can carry their own subcategories
    return Hierarchy(children=children, parents=parents, root=tree["LabelName"])


# ----------------------------------------------------------------------------- related classes

@dataclass(frozen=True)
class RelatedClass:
    cls: OIClass
    why: str  # "name" (its display name contains the positive's) or "hierarchy" (a subcategory)


def related_classes(table: ClassTable, positive: OIClass,
                    hierarchy: Hierarchy | None = None) -> list[RelatedClass]:
    """Classes that show the positive too: display names that contain its name as whole
    words ("Chicago-style hot dog", "Hot dog bun", "Hot dog stand" for "Hot dog"), and its
    descendants in the hierarchy."""
    pattern = re.compile(rf"(?<![0-9a-z]){re.escape(_norm(positive.name))}(?![0-9a-z])")
    out: dict[str, RelatedClass] = {}
    for c in table.classes:
        if c.mid != positive.mid and pattern.search(_norm(c.name)):
            out[c.mid] = RelatedClass(c, "name")
    if hierarchy is not None:
        for mid in hierarchy.descendants(positive.mid):
            if mid not in out and mid != positive.mid:
                out[mid] = RelatedClass(table.by_mid.get(mid, OIClass(mid, mid)), "hierarchy")
    return sorted(out.values(), key=lambda r: (r.why != "hierarchy", _norm(r.cls.name)))
