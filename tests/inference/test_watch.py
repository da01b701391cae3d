"""TritonWatch: Triton's readiness as last seen, kept in `framegate_triton_ready` and what
`/ready?scope=pod` reports, with a fake readiness source (no Triton)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from api.core.polling import apoll_until
from api.inference.watch import TritonWatch

WAIT_S = 10.0  # deadline for conditions that are not latency assertions


class FakeSource:
    """Answers each readiness question with `answer` (or raises `failure`); counts them."""

    def __init__(self, answer: dict[str, bool], failure: Exception | None = None) -> None:
        self.answer = answer
        self.failure = failure
        self.calls = 0

    async def readiness(self) -> dict[str, bool]:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return dict(self.answer)


def gauge() -> float | None:
    return REGISTRY.get_sample_value("framegate_triton_ready")


async def test_nothing_is_known_before_the_first_check() -> None:
    watch = TritonWatch(FakeSource({"triton": True}))
    assert (watch.ready, watch.last, watch.checked_at) == (None, None, None)


async def test_a_ready_server_and_models_set_the_gauge_to_1() -> None:
    watch = TritonWatch(FakeSource({"triton": True, "pipeline_yolo": True, "yolo": True}))
    before = time.time()

    checks = await watch.check()

    assert checks == {"triton": True, "pipeline_yolo": True, "yolo": True}
    assert watch.ready is True and watch.last == checks
    assert watch.checked_at is not None and watch.checked_at >= before
    assert gauge() == 1


@pytest.mark.parametrize(
    "answer", [{"triton": False}, {"triton": True, "pipeline_yolo": True, "yolo": False}]
)
async def test_any_check_failing_sets_the_gauge_to_0(answer: dict[str, bool]) -> None:
    await TritonWatch(FakeSource({"triton": True})).check()  # from 1, so the change shows
    watch = TritonWatch(FakeSource(answer))

    assert await watch.check() == answer
    assert watch.ready is False
    assert gauge() == 0


async def test_a_client_error_means_not_ready_never_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await TritonWatch(FakeSource({"triton": True})).check()
    watch = TritonWatch(FakeSource({}, failure=ConnectionResetError("socket closed")))

    with caplog.at_level("WARNING", logger="framegate.inference"):
        checks = await watch.check()

    assert checks == {"triton": False} and watch.ready is False
    assert gauge() == 0
    assert "ConnectionResetError('socket closed')" in caplog.text


async def test_the_last_answer_replaces_the_one_before() -> None:
    source = FakeSource({"triton": False})
    watch = TritonWatch(source)
    await watch.check()
    source.answer = {"triton": True, "yolo": True}  # Triton came back

    await watch.check()

    assert watch.ready is True and watch.last == {"triton": True, "yolo": True}
    assert gauge() == 1


async def test_started_it_checks_in_the_background_until_stopped() -> None:
    source = FakeSource({"triton": True})
    watch = TritonWatch(source, interval_s=0.01)
    watch.start()
    try:
        await apoll_until(lambda: source.calls >= 3, WAIT_S, what="three background checks")
    finally:
        await watch.stop()
    assert watch.ready is True
    await watch.stop()  # a second stop is harmless (the lifespan's close after a drain)
