"""Server-side SVG charts for the Overview page: no chart library, no script.

Each chart is a self-contained `<svg role="img">` with a title for screen
readers; every label is XML-escaped (end reasons and answering-machine results
come from outside). The page also lists the same figures as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
BAR_ROW = 26


def _svg(width: int, height: int, title: str, body: list[str]) -> Markup:
    label = escape(title)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{label}</title>{"".join(body)}</svg>'
    )


def _nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … at or above `value`."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def columns(values: Sequence[int], labels: Sequence[str], title: str, every: int = 3) -> Markup:
    """A column chart: one column a value, every `every`th label under the axis."""
    height, left, bottom, top = 220, 40, 28, 12
    plot_w, plot_h = WIDTH - left - 8, height - top - bottom
    ceiling = _nice_ceiling(max(values, default=0) or 1)
    slot = plot_w / max(1, len(values))
    body = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" '
        f'x2="{WIDTH - 8}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{ceiling}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for index, value in enumerate(values):
        bar_h = plot_h * value / ceiling
        x = left + index * slot + slot * 0.15
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{bar_h:.1f}"><title>{escape(labels[index])}: '
            f"{value}</title></rect>"
        )
        if index % every == 0:
            body.append(
                f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{height - 8}" '
                f'text-anchor="middle">{escape(labels[index])}</text>'
            )
    return _svg(WIDTH, height, title, body)


def bars(counts: Sequence[tuple[str, int]], title: str, width: int = 440) -> Markup:
    """Horizontal bars, one a category, largest first, each labelled with its count."""
    rows = sorted(counts, key=lambda item: -item[1])
    label_w, count_w = 170, 50
    height = max(1, len(rows)) * BAR_ROW + 8
    top = max((count for _, count in rows), default=0) or 1
    plot_w = width - label_w - count_w
    body: list[str] = []
    if not rows:
        body.append(f'<text class="tick" x="{label_w}" y="20">no calls</text>')
    for index, (name, count) in enumerate(rows):
        y = 4 + index * BAR_ROW
        body.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{plot_w * count / top:.1f}" '
            f'height="{BAR_ROW - 8}"/>'
            f'<text class="count" x="{label_w + plot_w * count / top + 6:.1f}" y="{y + 16}">'
            f"{count}</text>"
        )
    return _svg(width, height, title, body)


def gauge(used: int, capacity: int, title: str) -> Markup:
    """One bar: `used` of `capacity`."""
    height, left = 44, 0
    share = min(1.0, used / capacity) if capacity else 0.0
    body = [
        f'<rect class="track" x="{left}" y="6" width="{WIDTH}" height="20" rx="4"/>',
        f'<rect class="bar{" full" if share >= 1 else ""}" x="{left}" y="6" '
        f'width="{WIDTH * share:.1f}" height="20" rx="4"/>',
        f'<text class="tick" x="0" y="42">{used} of {capacity} calls</text>',
    ]
    return _svg(WIDTH, height, title, body)


def histogram(latencies_ms: Sequence[int], title: str, step: int = 250, last: int = 3000) -> Markup:
    """Reply latencies in `step` ms buckets up to `last`, the rest in one `≥ last` bucket."""
    edges = list(range(0, last, step))
    counts = [0] * (len(edges) + 1)
    for value in latencies_ms:
        counts[min(value // step, len(edges))] += 1
    labels = [f"{edge / 1000:g} s" for edge in edges] + [f"≥ {last / 1000:g} s"]
    return columns(counts, labels, title, every=2)
