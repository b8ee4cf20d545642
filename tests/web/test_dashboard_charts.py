"""Server-side SVG charts: valid XML, accessible, escaped, sane on empty, single, zero and huge data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from markupsafe import Markup

from subbot.web.dashboard.charts import bar_chart, compact, line_chart

SVG = "{http://www.w3.org/2000/svg}"
DAY = date(2026, 2, 1)
CHARTS = [line_chart, bar_chart]


def _days(*values: float) -> list[tuple[date, float]]:
    return [(DAY + timedelta(days=i), v) for i, v in enumerate(values)]


def _parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 ") and "style" not in str(svg)  # nothing a CSP blocks
    return root


def _marks(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter() if e.tag in (f"{SVG}circle", f"{SVG}rect")]


@pytest.mark.parametrize("chart", CHARTS)
def test_accessible_and_escaped(chart) -> None:  # type: ignore[no-untyped-def]
    title = '<script>alert("x")</script> & co'
    svg = chart(_days(1, 5, 3), title=title, y_label="<b>USD</b>")
    root = _parse(svg)
    assert root.get("aria-label") == title and root.findtext(f"{SVG}title") == title
    assert "<script>" not in str(svg) and "&lt;script&gt;" in str(svg) and "<b>" not in str(svg)
    desc = root.findtext(f"{SVG}desc") or ""
    assert "3 values from 2026-02-01 to 2026-02-03" in desc and "highest 5" in desc and "latest 3" in desc
    tips = [m.findtext(f"{SVG}title") for m in _marks(root)]
    assert tips == ["2026-02-01: 1 <b>USD</b>", "2026-02-02: 5 <b>USD</b>", "2026-02-03: 3 <b>USD</b>"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert title in texts and "2026-02-01" in texts and "2026-02-03" in texts


@pytest.mark.parametrize("chart", CHARTS)
def test_empty_data_says_so(chart) -> None:  # type: ignore[no-untyped-def]
    root = _parse(chart([], title="Revenue"))
    assert "no data yet" in [t.text for t in root.iter(f"{SVG}text")] and _marks(root) == []
    assert root.findtext(f"{SVG}desc") == "No data yet."


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize(
    "values",
    [(7,), (0, 0, 0), (1e18, 3e18), (-5, 2), (0.001, 0.002), (float("nan"), 1, float("inf"))],
    ids=["single", "zeros", "huge", "negative", "tiny", "not-finite"],
)
def test_edge_cases_draw_inside_the_box(chart, values: tuple[float, ...]) -> None:  # type: ignore[no-untyped-def]
    root = _parse(chart(_days(*values), title="t"))
    width, height = (float(v) for v in root.get("viewBox", "").split()[2:])
    finite = [v for v in values if v == v and abs(v) != float("inf")]
    marks = _marks(root)
    assert len(marks) == len(finite)
    for mark in marks:
        x = float(mark.get("cx") or mark.get("x") or 0)
        y = float(mark.get("cy") or mark.get("y") or 0)
        size = float(mark.get("height") or 0)
        assert 0 <= x <= width and 0 <= y <= y + size <= height, mark.attrib


def test_line_through_points_and_negative_bars_point_down() -> None:
    line = _parse(line_chart(_days(1, 2, 3), title="t"))
    assert len(line.findall(f"{SVG}polyline")) == 1
    assert not _parse(line_chart(_days(1), title="t")).findall(f"{SVG}polyline")  # one point: a dot only
    bars = _marks(_parse(bar_chart(_days(4, -2), title="t")))
    up, down = bars
    assert float(up.get("y") or 0) + float(up.get("height") or 0) == pytest.approx(float(down.get("y") or 0))
    assert down.get("fill") != up.get("fill")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (7, "7"), (0.25, "0.25"), (12.5, "12.5"), (0.0005, "0.0005"), (950, "950"), (1200, "1.2k"),
     (2_000_000, "2M"), (-2_500_000, "-2.5M"), (3.4e12, "3.4T"), (1e16, "1.0e+16")],
)  # fmt: skip
def test_compact_labels(value: float, text: str) -> None:
    assert compact(value) == text
