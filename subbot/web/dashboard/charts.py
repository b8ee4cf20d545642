"""Charts as inline SVG drawn on the server: no JavaScript, no CDN, and nothing a CSP has to allow.

Each chart is a ``<svg role="img">`` with an ``aria-label``, a ``<title>`` and a ``<desc>`` summing the
data up for screen readers; every point or bar carries its own ``<title>`` (the browser shows it as a
tooltip). The viewBox keeps the proportions while ``width="100%"`` fills the container, so one drawing
serves a phone and a desktop. Styling is by presentation attributes and ``class`` names only (no
``style`` attributes, which a strict CSP blocks). Every piece of text goes through ``escape``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

Points = Sequence[tuple[date, float]]

WIDTH = 600
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 28  # room for the y labels, the unit line and the dates
LINE = "#2563eb"
BAR = "#2563eb"
NEGATIVE = "#dc2626"
GRID = "#e5e7eb"
TEXT = "#4b5563"


def compact(value: float) -> str:
    """A short label: 0.25, 12.5, 950, 1.2k, 3.4M, 5.6G, 7.8T; beyond that, scientific notation."""
    magnitude = abs(value)
    if magnitude >= 1e15:
        return f"{value:.1e}"
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if magnitude >= 100 else f"{value:.3g}"


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


@dataclass(frozen=True)
class _Frame:
    """The value range drawn and how values and indexes map to SVG coordinates."""

    low: float
    high: float
    count: int
    height: int

    def y(self, value: float) -> float:
        inner = self.height - TOP - BOTTOM
        return round(TOP + inner * (self.high - value) / (self.high - self.low), 1)

    def x(self, index: int, slots: bool = False) -> float:
        inner = WIDTH - LEFT - RIGHT
        if slots:  # bars: the centre of slot ``index``
            return round(LEFT + inner * (index + 0.5) / self.count, 1)
        return round(LEFT + (inner * index / (self.count - 1) if self.count > 1 else inner / 2), 1)


def _clean(points: Points) -> list[tuple[date, float]]:
    """Drop values that cannot be drawn (NaN, infinities) rather than fail on them."""
    return [(day, float(v)) for day, v in points if isinstance(v, int | float) and math.isfinite(v)]


def _frame(values: list[float], height: int) -> tuple[_Frame, list[float]]:
    low, high = min(0.0, *values), max(0.0, *values)
    if low == high:  # all zeros: still draw an axis from 0 to 1
        high = 1.0
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [low + i * step for i in range(round((high - low) / step) + 1)]
    return _Frame(low, high, len(values), height), ticks


def _open(title: str, summary: str, y_label: str, height: int, kind: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="svg-chart svg-chart-{kind}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" font-size="11" fill="{TEXT}">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(summary)}</desc>",
        f'<text x="4" y="15" font-size="13" font-weight="600" fill="#111827">{escape(title)}</text>',
        f'<text x="{WIDTH - RIGHT}" y="15" text-anchor="end">{escape(y_label)}</text>' if y_label else "",
    ]


def _axes(frame: _Frame, ticks: list[float], days: list[date], slots: bool) -> list[str]:
    out = []
    for tick in ticks:
        y = frame.y(tick)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="{GRID}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{escape(compact(tick))}</text>')
    shown = sorted({0, len(days) // 2, len(days) - 1}) if len(days) > 2 else range(len(days))
    for i in shown:
        anchor = (
            "start"
            if i == 0 and len(days) > 1
            else "end"
            if i == len(days) - 1 and len(days) > 1
            else "middle"
        )
        x = frame.x(i, slots)
        out.append(
            f'<text x="{x}" y="{frame.height - 8}" text-anchor="{anchor}">{days[i].isoformat()}</text>'
        )
    return out


def _summary(points: list[tuple[date, float]]) -> str:
    values = [v for _, v in points]
    first, last = points[0], points[-1]
    return (
        f"{len(points)} values from {first[0].isoformat()} to {last[0].isoformat()}; "
        f"lowest {compact(min(values))}, highest {compact(max(values))}, latest {compact(last[1])}."
    )


def _empty(title: str, y_label: str, height: int, kind: str) -> Markup:
    parts = _open(title, "No data yet.", y_label, height, kind)
    parts.append(f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle">no data yet</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text above went through escape()


def line_chart(points: Points, *, title: str, y_label: str = "", height: int = 200) -> Markup:
    """A line through the values in order (a dot on each, with its own tooltip); gaps are not drawn."""
    data = _clean(points)
    if not data:
        return _empty(title, y_label, height, "line")
    frame, ticks = _frame([v for _, v in data], height)
    parts = _open(title, _summary(data), y_label, height, "line")
    parts += _axes(frame, ticks, [d for d, _ in data], slots=False)
    coords = [(frame.x(i), frame.y(v)) for i, (_, v) in enumerate(data)]
    if len(coords) > 1:
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for (x, y), (day, value) in zip(coords, data, strict=True):
        label = escape(f"{day.isoformat()}: {compact(value)} {y_label}".strip())
        parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{LINE}"><title>{label}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text above went through escape()


def bar_chart(points: Points, *, title: str, y_label: str = "", height: int = 200) -> Markup:
    """One bar per value from the zero line (negative values, such as net refunds, point down in red)."""
    data = _clean(points)
    if not data:
        return _empty(title, y_label, height, "bar")
    frame, ticks = _frame([v for _, v in data], height)
    parts = _open(title, _summary(data), y_label, height, "bar")
    parts += _axes(frame, ticks, [d for d, _ in data], slots=True)
    slot = (WIDTH - LEFT - RIGHT) / len(data)
    width = round(max(1.0, slot * 0.7), 1)
    zero = frame.y(0.0)
    for i, (day, value) in enumerate(data):
        top, bottom = sorted((frame.y(value), zero))
        x = round(frame.x(i, slots=True) - width / 2, 1)
        label = escape(f"{day.isoformat()}: {compact(value)} {y_label}".strip())
        colour = NEGATIVE if value < 0 else BAR
        parts.append(
            f'<rect x="{x}" y="{top}" width="{width}" height="{round(bottom - top, 1)}" fill="{colour}">'
            f"<title>{label}</title></rect>"
        )
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero}" y2="{zero}" stroke="{TEXT}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text above went through escape()
