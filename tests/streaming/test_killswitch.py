"""KillSwitch: one evaluation per distinct context, concurrent and bounded, never on the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from api.core.config import Settings
from api.core.loop_audit import LoopAudit
from api.core.polling import apoll_until
from api.flags import FlagContext, FlagService, ProviderSpec
from api.streaming.killswitch import KillSwitch
from api.streaming.protocol import WS_1000_NORMAL_CLOSURE, ErrorCode
from api.streaming.registry import SessionRegistry
from api.streaming.session import StreamSession, Termination
from tests.support.polling import seconds_until

SESSIONS = 64
EVALUATION_S = 0.2  # what one evaluation takes in the slow fakes (a flagd RPC, say)
FLIP_DEADLINE_S = 2.0  # the product promise: live sessions closed within 2 s of the flip
WAIT_S = 10.0  # deadline for conditions that are not latency assertions
NEVER_S = 3600.0  # a sweep interval that never elapses: only change events can start a sweep


class SlowGate:
    """An async gate whose every evaluation takes EVALUATION_S; off for the contexts in `off`."""

    def __init__(self, off: Callable[[FlagContext], bool] = lambda _: True) -> None:
        self.off = off
        self.calls: Counter[FlagContext] = Counter()
        self.running = self.max_running = 0

    async def streaming_enabled(self, context: FlagContext) -> bool:
        self.calls[context] += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(EVALUATION_S)
        finally:
            self.running -= 1
        return not self.off(context)


class HeldGate:
    """Each evaluation waits for the test to answer it (`answer(i, value)`)."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[bool]] = []

    async def streaming_enabled(self, context: FlagContext) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return await future


class SlowProvider(AbstractProvider):
    """A real OpenFeature provider that blocks its calling thread for EVALUATION_S per
    evaluation, as the flagd RPC provider does; `turn_off` announces the change as an event."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.calls = 0
        self.running = self.max_running = 0
        self._lock = threading.Lock()

    def get_metadata(self) -> Metadata:
        return Metadata(name="slow-test-provider")

    def turn_off(self) -> None:
        self.enabled = False
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=["x"]))

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(EVALUATION_S)
        finally:
            with self._lock:
                self.running -= 1
        return FlagResolutionDetails(value=self.enabled, reason=Reason.STATIC)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        raise NotImplementedError

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        raise NotImplementedError

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        raise NotImplementedError

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        raise NotImplementedError


async def _infer(frame: bytes, received: float) -> dict:
    raise AssertionError("no frame is sent in these tests")


async def _send(message: str) -> None:
    raise AssertionError("no message is sent in these tests")


def make_sessions(
    registry: SessionRegistry, count: int, key: Callable[[int], str | None] = lambda _: None
) -> list[StreamSession]:
    """`count` live sessions spread over 4 tenants and 2 pipelines: 4 distinct contexts when
    `key` gives them one shared targeting key (None: each its own, the session id)."""
    sessions = []
    for i in range(count):
        session = StreamSession(
            "yolo" if i % 2 else "ocr",
            _infer,
            _send,
            targeting_key=key(i) or "",
            tenant=f"t{i % 4}",
        )
        assert registry.try_add(session)
        sessions.append(session)
    return sessions


def shared_key(_: int) -> str:
    return "client-1"


def disabled(session: StreamSession) -> bool:
    if not session.terminated.done():
        return False
    error = session.terminated.result().error
    return error is not None and error.code is ErrorCode.STREAMING_DISABLED


async def test_sweep_evaluates_each_distinct_context_once_and_closes_all() -> None:
    registry = SessionRegistry(SESSIONS)
    sessions = make_sessions(registry, SESSIONS, shared_key)
    gate = SlowGate()
    assert await KillSwitch(gate, registry).sweep() == SESSIONS
    assert len(gate.calls) == 4 and set(gate.calls.values()) == {1}  # 4 evaluations, not 64
    assert gate.max_running == 4  # all four at once, not one after another
    assert all(disabled(session) for session in sessions)


async def test_sweep_closes_only_sessions_whose_context_is_off() -> None:
    registry = SessionRegistry(SESSIONS)
    sessions = make_sessions(registry, 8, shared_key)
    gate = SlowGate(off=lambda context: context.tenant == "t1")
    assert await KillSwitch(gate, registry).sweep() == 2
    assert [disabled(session) for session in sessions] == [i % 4 == 1 for i in range(8)]


async def test_sweep_bounds_concurrent_evaluations() -> None:
    registry = SessionRegistry(SESSIONS)
    make_sessions(registry, 8)  # each its own targeting key: 8 contexts
    gate = SlowGate()
    assert await KillSwitch(gate, registry, concurrency=3).sweep() == 8
    assert sum(gate.calls.values()) == 8
    assert gate.max_running == 3


async def test_sweep_skips_sessions_already_closing() -> None:
    registry = SessionRegistry(SESSIONS)
    closing, live = make_sessions(registry, 2)
    closing.terminate(Termination(WS_1000_NORMAL_CLOSURE, "session closed"))
    gate = SlowGate()
    assert await KillSwitch(gate, registry).sweep() == 1
    assert list(gate.calls) == [FlagContext(live.targeting_key, live.pipeline_id, live.tenant)]
    assert disabled(live) and not disabled(closing)


@pytest.mark.parametrize("fallback", [True, False])
async def test_failed_or_hung_evaluation_gives_the_fallback(fallback: bool) -> None:
    registry = SessionRegistry(SESSIONS)
    sessions = make_sessions(registry, 4, shared_key)  # tenants t0..t3, one context each
    hung: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    class FaultyGate:
        async def streaming_enabled(self, context: FlagContext) -> bool:
            if context.tenant == "t0":
                raise RuntimeError("provider hiccup")
            if context.tenant == "t1":
                return await hung  # never answers: only the timeout ends it
            return context.tenant == "t2"

    switch = KillSwitch(FaultyGate(), registry, fallback=fallback, evaluation_timeout_s=0.05)
    closed = await switch.sweep()
    assert [disabled(s) for s in sessions] == [not fallback, not fallback, False, True]
    assert closed == (1 if fallback else 3)


async def test_change_during_a_sweep_leads_to_another_sweep_at_once() -> None:
    registry = SessionRegistry(SESSIONS)
    (session,) = make_sessions(registry, 1)
    gate = HeldGate()
    switch = KillSwitch(gate, registry, interval_s=NEVER_S)
    switch.start()
    try:
        switch.notify()
        await apoll_until(lambda: len(gate.pending) == 1, WAIT_S, what="first sweep evaluating")
        switch.notify()  # the flag changed while that evaluation was in flight
        gate.pending[0].set_result(True)  # the first sweep saw the old value
        await apoll_until(lambda: len(gate.pending) == 2, WAIT_S, what="a second sweep")
        assert not session.terminated.done()
        gate.pending[1].set_result(False)
        await apoll_until(lambda: disabled(session), WAIT_S, what="session closed")
    finally:
        await switch.stop()


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1, got 0"):
        KillSwitch(SlowGate(), SessionRegistry(1), concurrency=0)


async def test_provider_event_closes_64_sessions_within_2s_off_the_loop() -> None:
    """The real path: the OpenFeature SDK and FlagService with a provider that blocks its thread
    for 200 ms per evaluation, 64 sessions each with its own targeting key (64 contexts)."""
    provider = SlowProvider()
    service = FlagService(
        Settings(streaming_enabled=True),
        provider=ProviderSpec("slow", "test", provider, blocking=True),
        poll_interval_s=None,  # the change arrives as a provider event, nothing polls
    )
    await service.start()
    registry = SessionRegistry(SESSIONS)
    sessions = make_sessions(registry, SESSIONS)
    switch = KillSwitch(service, registry, interval_s=NEVER_S)
    service.subscribe(switch.notify)
    switch.start()
    audit = LoopAudit()  # this thread runs the event loop
    audit.install()
    try:
        baseline = provider.calls
        await asyncio.to_thread(provider.turn_off)  # as a provider announces it: off the loop
        took = await seconds_until(
            lambda: all(disabled(s) for s in sessions), WAIT_S, what="all sessions closed"
        )
    finally:
        audit.uninstall()
        await switch.stop()
        await service.stop()
    assert audit.caught == {}  # 64 blocking evaluations, none of them on the loop
    assert provider.calls - baseline == SESSIONS
    assert provider.max_running > 1
    assert took < FLIP_DEADLINE_S
