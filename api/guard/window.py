"""A sliding window of scrapes per gateway, and what increased over the last N seconds."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from api.guard.samples import Sample, add, increase


@dataclass(frozen=True, slots=True)
class Totals:
    """Increases over `span_s` seconds, summed over gateways."""

    span_s: float
    counts: Sample


class Window:
    """Scrapes kept per source for `keep_s` seconds (plus one older sample, the baseline)."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._series: dict[str, deque[tuple[float, Sample]]] = {}

    def add(self, now: float, samples: Mapping[str, Sample]) -> None:
        for source, sample in samples.items():
            self._series.setdefault(source, deque()).append((now, sample))
        self._prune(now)

    def clear(self) -> None:
        self._series.clear()

    @property
    def sources(self) -> int:
        return len(self._series)

    def totals(self, now: float, span_s: float) -> Totals:
        """Increases over the last `span_s` seconds: per source, every step from the newest
        sample at or before `now - span_s` (else its oldest) to its newest, resets handled step
        by step. `span_s` of the result is the history actually covered (shorter at start)."""
        counts, oldest = Sample(), now
        for series in self._series.values():
            start = _baseline(series, now - span_s)
            oldest = min(oldest, series[start][0])
            previous = series[start][1]
            for _, sample in list(series)[start + 1 :]:
                counts = add(counts, increase(previous, sample))
                previous = sample
        return Totals(now - oldest, counts)

    def _prune(self, now: float) -> None:
        horizon = now - self.keep_s
        for source in list(self._series):
            series = self._series[source]
            while len(series) > 1 and series[1][0] <= horizon:
                series.popleft()
            if series[-1][0] < horizon:  # a gateway gone for a whole window (pod removed)
                del self._series[source]


def _baseline(series: deque[tuple[float, Sample]], at: float) -> int:
    start = 0
    for i, (t, _) in enumerate(series):
        if t <= at:
            start = i
        else:
            break
    return start
