"""Charts drawn on the server as inline SVG: nothing to fetch, nothing to run in the browser.

Each function returns an ``<svg>`` element that scales to its container (a ``viewBox`` and no
fixed width), names itself for screen readers (``role="img"`` with a ``<title>``) and gives
every mark a ``<title>`` of its own, which browsers show on hover. Colours come from the
stylesheet's custom properties, so the charts follow the page's contrast. Values arrive already
formatted for the reader's locale where they are shown as text (``label`` callables).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 14, 34
TICKS = 4  # gridlines above the axis


def _svg(title: str, body: list[str], height: int = H, css: str = "chart",
         width: int = W, sized: bool = False) -> str:
    size = f' width="{width}" height="{height}"' if sized else ""
    return (f'<svg class="{css}" viewBox="0 0 {width} {height}"{size} role="img" '
            f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def nice_max(value: float, ticks: int = TICKS) -> float:
    """An axis's top: ``ticks`` equal steps of a round size (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8
    × 10ⁿ), the smallest reaching ``value``; at least ``ticks`` (whole steps for counts)."""
    if value <= ticks:
        return float(ticks)
    raw = value / ticks
    magnitude = 1.0
    while magnitude * 10 <= raw:
        magnitude *= 10
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= raw and float(step * magnitude).is_integer():
            return step * magnitude * ticks
    return 10 * magnitude * ticks  # pragma: no cover - the loop ends at 10 × magnitude > raw


def _axes(top: float, tick: Callable[[float], str], labels: Sequence[str], every: int) -> list[str]:
    out = []
    plot_h = H - TOP - BOTTOM
    for i in range(TICKS + 1):
        value = top * i / TICKS
        y = H - BOTTOM - plot_h * i / TICKS
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{escape(tick(value))}</text>")
    step = (W - LEFT - RIGHT) / max(len(labels), 1)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + step * (i + 0.5)
            out.append(f'<text class="tick" x="{x:.1f}" y="{H - BOTTOM + 16}" '
                       f'text-anchor="middle">{escape(label)}</text>')
    return out


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float],
              tick: Callable[[float], str], label: Callable[[float], str]) -> str:
    """One bar per label (a week's sales, a segment's size)."""
    top = nice_max(max(values, default=0))
    body = _axes(top, tick, labels, max(1, len(labels) // 6))
    step = (W - LEFT - RIGHT) / max(len(labels), 1)
    plot_h = H - TOP - BOTTOM
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        body.append(f'<rect class="bar" x="{LEFT + step * i + step * 0.15:.1f}" '
                    f'y="{H - BOTTOM - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}">'
                    f"<title>{escape(name)}: {escape(label(value))}</title></rect>")
    return _svg(title, body)


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]],
                 tick: Callable[[float], str]) -> str:
    """Bars of two or more parts per label (new and returning members per week), with a key."""
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    body = _axes(top, tick, labels, max(1, len(labels) // 6))
    step = (W - LEFT - RIGHT) / max(len(labels), 1)
    plot_h = H - TOP - BOTTOM
    for i, name in enumerate(labels):
        base = float(H - BOTTOM)
        for k, (part, values) in enumerate(series):
            h = plot_h * values[i] / top
            base -= h
            body.append(f'<rect class="bar s{k}" x="{LEFT + step * i + step * 0.15:.1f}" '
                        f'y="{base:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}">'
                        f"<title>{escape(name)} · {escape(part)}: {values[i]}</title></rect>")
    for k, (part, _) in enumerate(series):
        x = LEFT + 8 + k * 150
        body.append(f'<rect class="bar s{k}" x="{x}" y="{TOP}" width="12" height="12"/>'
                    f'<text class="key" x="{x + 18}" y="{TOP + 11}">{escape(part)}</text>')
    return _svg(title, body)


def line_chart(title: str, labels: Sequence[str], values: Sequence[float],
               tick: Callable[[float], str], label: Callable[[float], str]) -> str:
    """A line through one value per label, with a dot (and its value) at each."""
    top = nice_max(max(values, default=0))
    body = _axes(top, tick, labels, max(1, len(labels) // 6))
    step = (W - LEFT - RIGHT) / max(len(labels), 1)
    plot_h = H - TOP - BOTTOM
    points = [(LEFT + step * (i + 0.5), H - BOTTOM - plot_h * v / top)
              for i, v in enumerate(values)]
    if points:
        body.append('<polyline class="line" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
    for (x, y), name, value in zip(points, labels, values, strict=True):
        body.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5">'
                    f"<title>{escape(name)}: {escape(label(value))}</title></circle>")
    return _svg(title, body)


def hbars(title: str, items: Sequence[tuple[str, int]], label: Callable[[int], str]) -> str:
    """Horizontal bars, one row per item, the count written at the bar's end (segment sizes)."""
    row = 26
    height = TOP + row * len(items) + 8
    top = max((v for _, v in items), default=0) or 1
    name_w = 150
    body = []
    for i, (name, value) in enumerate(items):
        y = TOP + row * i
        w = (W - name_w - 70) * value / top
        body.append(f'<text class="tick" x="{name_w - 8}" y="{y + 16}" text-anchor="end">'
                    f"{escape(name)}</text>"
                    f'<rect class="bar" x="{name_w}" y="{y + 4}" width="{w:.1f}" height="16">'
                    f"<title>{escape(name)}: {escape(label(value))}</title></rect>"
                    f'<text class="tick" x="{name_w + w + 6:.1f}" y="{y + 16}">'
                    f"{escape(label(value))}</text>")
    return _svg(title, body, height)


def heatmap(title: str, rows: Sequence[tuple[str, int, Sequence[float]]],
            label: Callable[[float], str], column_label: str) -> str:
    """A cohort retention grid: a row per cohort (its label and size), a cell per month since
    the first purchase, darker for a larger share. Cells of 50 % and more get light text."""
    columns = max((len(r[2]) for r in rows), default=0)
    cell_h, cell_w, name_w = 24, 40, 110
    width = name_w + cell_w * max(columns, 1) + 8
    height = TOP + 18 + cell_h * len(rows) + 6
    body = []
    for m in range(columns):
        body.append(f'<text class="tick" x="{name_w + cell_w * (m + 0.5):.1f}" y="{TOP + 8}" '
                        f'text-anchor="middle">{m}</text>')
    for i, (name, size, shares) in enumerate(rows):
        y = TOP + 18 + cell_h * i
        body.append(f'<text class="tick" x="{name_w - 6}" y="{y + 16}" text-anchor="end">'
                    f"{escape(name)} ({size})</text>")
        for m, share in enumerate(shares):
            level = min(9, int(share * 10))
            body.append(f'<rect class="heat h{level}" x="{name_w + cell_w * m:.1f}" y="{y}" '
                        f'width="{cell_w - 1:.1f}" height="{cell_h - 1}">'
                        f"<title>{escape(name)} · {escape(column_label)} {m}: "
                        f"{escape(label(share))}</title></rect>")
            body.append(f'<text class="cell{" light" if level >= 5 else ""}" '
                        f'x="{name_w + cell_w * (m + 0.5):.1f}" y="{y + 16}" '
                        f'text-anchor="middle">{round(share * 100)}</text>')
    return _svg(title, body, height, "chart heatmap", width, sized=True)


def hex_map(title: str, hexes: Sequence[tuple[Sequence[tuple[float, float]], int, str]],
            points: Sequence[tuple[float, float, str]], width: int = W) -> str:
    """Points on their h3 hexagons, drawn from coordinates alone (no map tiles): an
    equirectangular projection around the middle latitude, north up, the picture fitted to
    ``width``. ``hexes``: each cell's boundary as (lat, lng) pairs, its point count and its
    title; ``points``: (lat, lng, title). A cell with more points is darker."""
    corners = [c for boundary, _, _ in hexes for c in boundary] + [(p[0], p[1]) for p in points]
    if not corners:
        return _svg(title, [], 60, "chart map", width)
    lats, lngs = [c[0] for c in corners], [c[1] for c in corners]
    squeeze = math.cos(math.radians((min(lats) + max(lats)) / 2))
    pad = 16
    dx = max((max(lngs) - min(lngs)) * squeeze, 1e-6)
    dy = max(max(lats) - min(lats), 1e-6)
    scale = (width - 2 * pad) / dx
    height = int(min(max(dy * scale + 2 * pad, 200), 640))
    scale = min(scale, (height - 2 * pad) / dy)
    off_x = (width - dx * scale) / 2
    off_y = (height - dy * scale) / 2

    def xy(lat: float, lng: float) -> str:
        return (f"{off_x + (lng - min(lngs)) * squeeze * scale:.1f},"
                f"{off_y + (max(lats) - lat) * scale:.1f}")

    most = max((n for _, n, _ in hexes), default=1) or 1
    body = []
    for boundary, n, name in hexes:
        level = min(9, 2 + round(7 * n / most)) if n else 0
        body.append(f'<polygon class="hex h{level}" points="'
                    + " ".join(xy(*c) for c in boundary)
                    + f'"><title>{escape(name)}</title></polygon>')
    for lat, lng, name in points:
        x, y = xy(lat, lng).split(",")
        body.append(f'<circle class="pin" cx="{x}" cy="{y}" r="4">'
                    f"<title>{escape(name)}</title></circle>")
    return _svg(title, body, height, "chart map", width)
