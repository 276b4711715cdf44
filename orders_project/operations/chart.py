"""Per-minute bar charts drawn on the server as inline SVG: no script, no font, no other host."""

from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH = 600
HEIGHT = 80
GAP = 1.0  # between bars, in SVG units


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    minute: datetime
    count: int


@dataclass(frozen=True)
class MinuteChart:
    title: str
    bars: list[Bar]
    total: int
    peak: int
    start: datetime
    end: datetime
    width: int = WIDTH
    height: int = HEIGHT


def minute_start(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def minute_chart(*, title: str, counts: dict[datetime, int], end: datetime, minutes: int = 60) -> MinuteChart:
    """One bar per minute of the `minutes` up to and including the one `end` falls in
    (that last one is still filling); heights scaled to the busiest minute."""
    last = minute_start(end)
    slots = [last - timedelta(minutes=minutes - 1 - index) for index in range(minutes)]
    values = [counts.get(slot, 0) for slot in slots]
    peak = max(values, default=0)
    slot_width = WIDTH / minutes
    bars = []
    for index, (slot, value) in enumerate(zip(slots, values, strict=True)):
        height = 0.0 if peak == 0 else max(HEIGHT * value / peak, 1.0 if value else 0.0)
        bars.append(
            Bar(
                x=round(index * slot_width, 2),
                y=round(HEIGHT - height, 2),
                width=round(slot_width - GAP, 2),
                height=round(height, 2),
                minute=slot,
                count=value,
            )
        )
    return MinuteChart(title=title, bars=bars, total=sum(values), peak=peak, start=slots[0], end=last)
