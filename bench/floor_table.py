"""The table of ``bench/floor.py``: one :class:`Row` per figure (samples per
repeat, product and floor), rendered as plain text or markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from floor_support import spread

TIMES, DASH = "\u00d7", "\u2013"  # the table's typography, kept out of the source


@dataclass
class Row:
    """One line of the table: samples in ms (per repeat), target and verdict."""

    figure: str
    target: str
    product: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    floor_label: str = ""
    unit: str = "ms"
    met: bool | None = None
    note: str = ""
    violations: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if not self.product or not self.floor:
            return None
        floor = spread(self.floor)["median"]
        return spread(self.product)["median"] / floor if floor > 0 else None

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "unit": self.unit,
            "product": spread(self.product) if self.product else None,
            "floor": spread(self.floor) if self.floor else None,
            "floor_label": self.floor_label,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "violations": self.violations,
            "product_samples": self.product,
            "floor_samples": self.floor,
        }


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(samples: list[float], unit: str) -> str:
    if not samples:
        return "—"
    s = spread(samples)
    return f"{_fmt(s['median'])} {unit} ({_fmt(s['min'])}{DASH}{_fmt(s['max'])})"


def _met(row: Row) -> str:
    if row.violations:
        return "**violation**"
    return {True: "yes", False: "no", None: "—"}[row.met]


def markdown(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        f"| figure | product: median (min{DASH}max) | floor: median (min{DASH}max) "
        "| ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        floor = f"{row.floor_label}: {_cell(row.floor, row.unit)}" if row.floor else "—"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
        lines.append(
            f"| {row.figure} | {_cell(row.product, row.unit)} | {floor} | {ratio} "
            f"| {row.target} | {_met(row)} |"
        )
    notes = [f"- {row.figure}: {row.note}" for row in rows if row.note]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def text(rows: list[Row], header: str) -> str:
    table = [("figure", "product", "floor", "ratio", "target", "met")]
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        table.append(
            (
                row.figure.replace("`", ""),
                _cell(row.product, row.unit),
                _cell(row.floor, row.unit) if row.floor else "-",
                ratio,
                row.target.replace("`", ""),
                _met(row).strip("*"),
            )
        )
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    out = [header]
    for line in table:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
    out += [f"  {row.figure.replace('`', '')}: {row.note}" for row in rows if row.note]
    return "\n".join(out) + "\n"
