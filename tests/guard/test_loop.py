"""The guard's loop on canned readings and a real flag file: trips, dry runs, re-enabling."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.core.logging import JsonFormatter
from api.flags.flagfile import default_document, describe, read_document, write_document
from api.guard.loop import Guard, GuardOptions, State
from api.guard.samples import Sample
from api.guard.signals import Signal, Thresholds
from api.guard.sources import Reading, SourceError
from api.guard.trip import FileFlag
from api.guard.window import Totals

TH = Thresholds(window_s=30, for_s=10, stall_s=20, min_frames=50)
HEALTHY = Reading(Totals(30, Sample(received=600, processed=600)), Totals(20, Sample()), 1)
FAILING = Reading(
    Totals(30, Sample(received=600, processed=600, frame_failures=120)), Totals(20, Sample()), 1
)
STALLED = Reading(
    Totals(30, Sample(received=600, processed=300)), Totals(20, Sample(received=200)), 1
)
IDLE = Reading(Totals(30, Sample(received=10, frame_failures=10)), Totals(20, Sample()), 1)


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CannedSource:
    """Hands out the readings it is given, one per round; a SourceError instance is raised."""

    rounds: list[Reading | SourceError] = field(default_factory=list)
    resets: int = 0

    async def read(self, now: float) -> Reading:
        item = self.rounds.pop(0)
        if isinstance(item, SourceError):
            raise item
        return item

    def reset(self) -> None:
        self.resets += 1

    async def aclose(self) -> None:
        pass


@pytest.fixture
def flag_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    write_document(path, default_document(on=True))
    return path


def streaming_on(path: Path) -> bool | None:
    return describe(read_document(path)).value


def make_guard(flag_file: Path, clock: Clock, **options: object) -> tuple[Guard, CannedSource]:
    source = CannedSource()
    guard = Guard(
        source,
        FileFlag(flag_file),
        GuardOptions(thresholds=TH, **options),  # type: ignore[arg-type]
        clock=clock,
    )
    return guard, source


async def play(guard: Guard, source: CannedSource, clock: Clock, *rounds: Reading) -> None:
    for reading in rounds:
        source.rounds.append(reading)
        await guard.tick()
        clock.now += 2.0


def trip_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("guard tripped")]


async def test_a_breach_lasting_for_s_trips_the_flag_off_once(
    flag_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    caplog.set_level(logging.INFO, logger="framegate.guard")
    await play(guard, source, clock, *[FAILING] * 5)  # t = 0..8: 8 s of breach
    assert streaming_on(flag_file) is True
    await play(guard, source, clock, FAILING)  # t = 10: 10 s
    assert streaming_on(flag_file) is False
    assert guard.state is State.TRIPPED
    await play(guard, source, clock, *[FAILING] * 5)
    [record] = trip_records(caplog)
    line = json.loads(JsonFormatter().format(record))
    assert line["signal"] == "error_ratio"
    assert line["value"] == pytest.approx(0.2)
    assert line["threshold"] == TH.max_error_ratio
    assert (line["window_s"], line["for_s"]) == (30, 10)
    assert line["target"] == f"file {flag_file}"
    trips = guard.metrics.registry.get_sample_value
    assert trips("framegate_guard_trips_total", {"signal": "error_ratio"}) == 1
    assert trips("framegate_guard_tripped") == 1


async def test_a_gap_in_the_breach_starts_the_duration_again(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    await play(guard, source, clock, *[FAILING] * 5, HEALTHY, *[FAILING] * 5)
    assert streaming_on(flag_file) is True


async def test_a_stall_trips_without_waiting_for_s(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    await play(guard, source, clock, STALLED)
    assert streaming_on(flag_file) is False
    value = guard.metrics.registry.get_sample_value
    assert value("framegate_guard_trips_total", {"signal": str(Signal.STALL)}) == 1


async def test_an_idle_service_never_trips(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    await play(guard, source, clock, *[IDLE] * 30)
    assert streaming_on(flag_file) is True
    assert (
        guard.metrics.registry.get_sample_value(
            "framegate_guard_evaluations_total", {"verdict": "idle"}
        )
        == 30
    )


async def test_rounds_without_data_are_never_judged(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    lost = SourceError("every gateway failed to answer (2 tried)")
    await play(guard, source, clock, *[lost] * 30)  # type: ignore[list-item]
    assert streaming_on(flag_file) is True


async def test_without_auto_reenable_the_flag_stays_off_however_healthy(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    await play(guard, source, clock, STALLED, *[HEALTHY] * 200)
    assert streaming_on(flag_file) is False
    assert guard.state is State.TRIPPED


async def test_auto_reenable_after_the_cooldown_and_a_healthy_window(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock, auto_reenable_s=60.0)
    await play(guard, source, clock, STALLED)  # tripped at t = 0
    await play(guard, source, clock, *[STALLED] * 20)  # still breached until t = 40
    await play(guard, source, clock, *[HEALTHY] * 10)  # healthy from t = 42; cooldown ends at 60
    assert streaming_on(flag_file) is False
    await play(guard, source, clock, *[HEALTHY] * 6)  # t = 72: 60 s after trip, 30 s healthy
    assert streaming_on(flag_file) is True
    assert guard.state is State.ARMED
    assert source.resets == 1
    assert guard.metrics.registry.get_sample_value("framegate_guard_reenables_total") == 1


async def test_each_further_trip_doubles_the_cooldown(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock, auto_reenable_s=30.0)
    await play(guard, source, clock, STALLED, *[HEALTHY] * 16)
    assert streaming_on(flag_file) is True
    tripped_again = clock.now
    await play(guard, source, clock, STALLED)
    assert guard.cooldown_s == 60.0
    while clock.now < tripped_again + 58:
        await play(guard, source, clock, HEALTHY)
        assert streaming_on(flag_file) is False
    await play(guard, source, clock, *[HEALTHY] * 2)
    assert streaming_on(flag_file) is True


async def test_an_operator_turning_the_flag_back_on_rearms_the_guard(flag_file: Path) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock)
    await play(guard, source, clock, STALLED)
    write_document(flag_file, default_document(on=True))
    await play(guard, source, clock, HEALTHY)
    assert guard.state is State.ARMED
    await play(guard, source, clock, STALLED)
    assert streaming_on(flag_file) is False
    assert guard.trips == 2


async def test_dry_run_logs_once_per_breach_and_never_writes(
    flag_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    guard, source = make_guard(flag_file, clock, dry_run=True)
    caplog.set_level(logging.INFO, logger="framegate.guard")
    before = flag_file.read_bytes()
    await play(guard, source, clock, *[STALLED] * 5, HEALTHY, STALLED)
    assert flag_file.read_bytes() == before
    would = [r for r in caplog.records if "would trip" in r.getMessage()]
    assert [(r.signal, r.dry_run) for r in would] == [("stall", True), ("stall", True)]  # type: ignore[attr-defined]
    value = guard.metrics.registry.get_sample_value
    assert value("framegate_guard_dry_run_trips_total", {"signal": "stall"}) == 2
    assert value("framegate_guard_trips_total", {"signal": "stall"}) == 0


async def test_a_failed_write_is_retried_next_round(tmp_path: Path) -> None:
    blocked = tmp_path / "flags.json"
    blocked.mkdir()  # a directory where the file should be: every write fails
    clock = Clock()
    guard, source = make_guard(blocked, clock)
    await play(guard, source, clock, STALLED)
    assert guard.state is State.ARMED
    blocked.rmdir()
    write_document(blocked, default_document(on=True))
    await play(guard, source, clock, STALLED)
    assert streaming_on(blocked) is False
