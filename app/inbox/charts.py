"""Server-drawn SVG charts for the reports page: the geometry of bars, axes and labels, computed
here and drawn by templates/inbox/_charts.html (no JavaScript, no inline styles: colours come
from CSS classes, so the CSP stays strict). Pure code: numbers in, shapes out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# The drawing area inside the SVG's viewBox (the SVG scales to its box's width).
WIDTH = 480
HEIGHT = 200
LEFT = 40  # room for the y-axis labels
RIGHT = 6
TOP = 8
BOTTOM = 22  # room for the x-axis labels
TICKS = 4  # grid lines above the baseline, each a whole 1, 2 or 5 × 10ⁿ apart


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # a CSS modifier: chart-bar-<series>
    title: str  # the tooltip (and what a screen reader hears)


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_labels: list[Label] = field(default_factory=list)
    y_labels: list[Label] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)  # y of each horizontal grid line
    baseline: float = HEIGHT - BOTTOM
    left: float = LEFT
    right: float = WIDTH - RIGHT


def nice_step(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value`, at least 1 (axes count whole things)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def duration(seconds: float | None) -> str:
    """A duration people read at a glance: "45 s", "10 min", "2 h 20 min", "3 d 4 h"; "–" for none."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def bar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    every: int = 1,
    value_label: object = None,
    left: float = LEFT,
) -> Chart:
    """Grouped vertical bars: one group per x label (`groups`), one bar per series in each
    (`(css series, values, name)`); an x label every `every` groups. `value_label` formats an
    axis or tooltip value (a number as text by default)."""
    fmt = value_label if callable(value_label) else (lambda v: f"{v:g}")
    chart = Chart(left=left)
    step_value = nice_step(max((v for _, values, _ in series for v in values), default=0) / TICKS)
    top = step_value * TICKS
    plot_height = chart.baseline - TOP
    for step in range(TICKS + 1):
        value = step_value * step
        y = chart.baseline - plot_height * step / TICKS
        chart.grid.append(y)
        chart.y_labels.append(Label(left - 4, y + 3.5, fmt(value)))
    count = max(1, len(groups))
    slot = (chart.right - chart.left) / count
    inner = slot * (0.8 if count > 1 else 0.5)
    bar_width = inner / max(1, len(series))
    for index, group in enumerate(groups):
        x0 = chart.left + index * slot + (slot - inner) / 2
        for position, (css, values, name) in enumerate(series):
            value = values[index]
            height = plot_height * value / top if top else 0
            chart.bars.append(
                Bar(
                    x=round(x0 + position * bar_width, 2),
                    y=round(chart.baseline - height, 2),
                    width=round(max(bar_width - (0.6 if bar_width > 2 else 0), 0.4), 2),
                    height=round(height, 2),
                    series=css,
                    title=f"{group} · {name}: {fmt(value)}",
                )
            )
        if index % every == 0:
            chart.x_labels.append(Label(round(chart.left + (index + 0.5) * slot, 2), chart.height - 6, group))
    return chart
