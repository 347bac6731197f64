"""How the dashboard shows classes: names and colours that follow the chosen normals, and a bound on how many.

Names follow the user's choice: the chosen normal labels are drawn as one blue group called "Normal", and a
class the data calls "Normal" that the user did not choose (ECG5000's class 1 when class 2 is normal) is shown
under its label, so no abnormal curve is ever called normal. Data sets may hold thousands of labels; a trace, a
card and a curve per label would not be read (2,000 traces also overflow the browser), so the largest abnormal
classes are drawn one by one and the rest pooled as "other", with a sentence saying so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecgviz.dashboard.figures import ABNORMAL_COLORS, NORMAL_COLOR
from ecgviz.io.data import label_key

MAX_SHOWN = 7  # abnormal classes drawn one by one: each gets its own warm colour, grey is kept for "other"
OTHER_COLOR = "#7f7f7f"
NORMAL = "Normal"
MAX_OPTIONS = 300  # labels offered in a class picker
_MAX_NAMED_NORMALS = 3  # beyond this the normal group's name counts its classes instead of listing them


@dataclass(frozen=True)
class ClassView:
    """Display names, colours and grouping of a data set's classes under one choice of normal labels."""

    normal_labels: tuple[str, ...]
    shown: tuple[str, ...]  # abnormal labels drawn one by one (the largest), in label order
    other: tuple[str, ...]  # abnormal labels pooled into one group, in label order
    names: Mapping[str, str]  # label -> display name, unique, never "Normal..." for an abnormal label
    colors: Mapping[str, str]  # label -> colour: normals blue, shown classes distinct, pooled ones grey
    normal_name: str  # the pooled normal group
    other_name: str  # the pooled "other" group ("" when nothing is pooled)
    other_beats: int = 0

    def name(self, label: str) -> str:
        """Display name of a label."""
        return self.names.get(label, f"Class {label}")

    def groups(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        """(name, kind, colour, labels) of what the charts draw: the normals, each shown class, the pooled rest."""
        out = [(self.normal_name, "normal", NORMAL_COLOR, self.normal_labels)] if self.normal_labels else []
        out += [(self.names[k], "anomaly", self.colors[k], (k,)) for k in self.shown]
        if self.other:
            out.append((self.other_name, "anomaly", OTHER_COLOR, self.other))
        return out

    def options(self, limit: int = MAX_OPTIONS) -> list[str]:
        """Labels for a list to pick a class from: the normals, the drawn classes, then the pooled ones, at most
        `limit` (a list of 20,000 labels would be resent on every slider step)."""
        return [*self.normal_labels, *self.shown, *self.other][:limit]

    def note(self) -> str:
        """What was pooled, as a sentence ('' when every class is drawn)."""
        if not self.other:
            return ""
        n = len(self.shown) + len(self.other)
        return (f"{n:,} abnormal classes: the {len(self.shown)} largest are drawn one by one, the other "
                f"{len(self.other):,} ({self.other_beats:,} beats) together as '{self.other_name}'.")


def class_view(counts: Mapping[str, int], class_names: Mapping[str, str], normal_labels: Sequence[str],
               max_shown: int = MAX_SHOWN) -> ClassView:
    """The view of classes with `counts` beats each (every label present) when `normal_labels` are normal."""
    normals = tuple(k for k in (str(n) for n in normal_labels) if k in counts)
    chosen = set(normals)
    abnormal = [k for k in counts if k not in chosen]
    # the largest classes, ties broken by label order; then drawn in label order, as the Data page lists them
    largest = sorted(abnormal, key=lambda k: (-counts[k], label_key(k)))[:max_shown]
    picked = set(largest)
    shown = tuple(sorted(largest, key=label_key))
    other = tuple(sorted((k for k in abnormal if k not in picked), key=label_key))

    given = {k: str(class_names.get(k) or f"Class {k}") for k in counts}
    names = {k: (f"Class {k}" if k not in chosen and _sounds_normal(given[k]) else given[k]) for k in counts}
    # "Normal" alone unless a chosen class has a name of its own that says otherwise (ECG5000's R-on-T PVC)
    normal_name = NORMAL if all(_sounds_normal(given[k]) or given[k] == f"Class {k}" for k in normals) else (
        f"{NORMAL} ({', '.join(given[k] for k in normals)})" if len(normals) <= _MAX_NAMED_NORMALS
        else f"{NORMAL} ({len(normals):,} classes)")
    other_name = f"Other ({len(other):,} classes)" if other else ""
    # abnormal classes are drawn under their names, beside the two pooled groups: those names must all differ
    names.update(_unique({k: names[k] for k in abnormal}, reserved={normal_name, other_name} - {""}))

    colors = {k: NORMAL_COLOR for k in normals}
    colors.update({k: ABNORMAL_COLORS[i % MAX_SHOWN] for i, k in enumerate(shown)})
    colors.update({k: OTHER_COLOR for k in other})
    return ClassView(normal_labels=normals, shown=shown, other=other, names=names, colors=colors,
                     normal_name=normal_name, other_name=other_name, other_beats=sum(counts[k] for k in other))


def _sounds_normal(name: str) -> bool:
    return name.strip().lower().startswith("normal")


def _unique(names: dict[str, str], reserved: set[str]) -> dict[str, str]:
    """Names made distinct (a chart keys its groups by name): a repeated one gets its label appended."""
    repeated = {v for v, c in Counter(names.values()).items() if c > 1} | reserved
    return {k: f"{v} [{k}]" if v in repeated else v for k, v in names.items()}
