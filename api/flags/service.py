"""`FlagService`: the `video-streaming` flag as the gateway sees it.

One OpenFeature client bound to its own domain (`framegate-<random>` unless given), so nothing
else registered with OpenFeature is touched. Evaluation is in memory for the `file`,
`kubernetes` and `env` providers (microseconds, safe on the event loop at every handshake); for
`flagd` it is a gRPC call bounded by FLAGD_DEADLINE_MS, so `streaming_enabled` runs it in a
worker thread of the service's own pool (`EVALUATION_THREADS`: the kill switch evaluates that
many contexts at once, and never queues behind job uploads in the loop's default executor).
That is why it is `async`.

Change propagation, two paths, both ending in `subscribe` callbacks on the event loop thread:
- provider events (configuration changed, ready, error, stale) arrive on OpenFeature's worker
  threads and are handed to the loop with `call_soon_threadsafe`;
- a poll task (every `poll_interval_s`, 0.5 s by default) compares the provider's revision (a
  hash of the loaded flag document; for `flagd`, a baseline evaluation) and notifies on change,
  so a lost or late event costs at most one interval.
A callback means "flags may have changed": the gateway re-evaluates each live session's context
and closes those now off. A file change is loaded within one file poll (FLAGD_DEADLINE_MS,
500 ms) and its event follows within milliseconds; a ConfigMap change within milliseconds of the
patch. A new handshake sees a change as soon as the provider has loaded it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, runtime_checkable

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.provider import ProviderStatus
from openfeature.provider.no_op_provider import NoOpProvider

from api.core.config import Settings
from api.flags.context import FlagContext
from api.flags.keys import STREAMING_FLAG
from api.flags.providers import ProviderSpec, build_provider

log = logging.getLogger("framegate.flags")

DOMAIN_PREFIX = "framegate"
DEFAULT_POLL_INTERVAL_S = 0.5
EVALUATION_THREADS = 16  # also the kill switch's concurrency (api.streaming.killswitch)
WATCHED_EVENTS = (
    ProviderEvent.PROVIDER_READY,
    ProviderEvent.PROVIDER_ERROR,
    ProviderEvent.PROVIDER_STALE,
    ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
)
ChangeCallback = Callable[[], None]


class FlagState(StrEnum):
    NOT_STARTED = "not_started"
    NOT_READY = "not_ready"
    READY = "ready"
    ERROR = "error"
    STALE = "stale"
    FATAL = "fatal"
    STOPPED = "stopped"


_SDK_STATES = {
    ProviderStatus.NOT_READY: FlagState.NOT_READY,
    ProviderStatus.READY: FlagState.READY,
    ProviderStatus.ERROR: FlagState.ERROR,
    ProviderStatus.STALE: FlagState.STALE,
    ProviderStatus.FATAL: FlagState.FATAL,
}
_PROBLEM_EVENTS = (ProviderEvent.PROVIDER_ERROR, ProviderEvent.PROVIDER_STALE)


@runtime_checkable
class Revisioned(Protocol):
    """A provider that can say cheaply, without I/O, which flag document it serves."""

    def revision(self) -> Hashable: ...


@runtime_checkable
class Diagnosed(Protocol):
    """A provider that can say, synchronously, what is wrong with its source (None: nothing)."""

    def problem(self) -> str | None: ...


class FlagService:
    def __init__(
        self,
        settings: Settings,
        *,
        provider: ProviderSpec | None = None,
        domain: str | None = None,
        poll_interval_s: float | None = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        """`provider` overrides the one FLAG_PROVIDER names (tests, an explicit ApiClient);
        `domain` is the OpenFeature domain, unique per service by default so that two services
        in one process (tests, several apps) never replace each other's provider;
        `poll_interval_s=None` starts no poll task (run `watch()` yourself)."""
        self._settings = settings
        self._spec = provider
        self._domain = domain or f"{DOMAIN_PREFIX}-{uuid.uuid4().hex[:12]}"
        self._poll_interval_s = poll_interval_s
        self._default = settings.streaming_enabled
        self._client = api.get_client(self._domain)
        self._state = FlagState.NOT_STARTED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handlers: list[tuple[ProviderEvent, Callable[[EventDetails], None]]] = []
        self._subscribers: list[ChangeCallback] = []
        self._poll_task: asyncio.Task[None] | None = None
        self._revision: Hashable = None
        self._problem: str | None = None
        self._last_value: bool | None = None
        self._last_change: float | None = None
        # Threads start on first use: only a blocking (RPC) provider ever creates one.
        self._executor = ThreadPoolExecutor(
            EVALUATION_THREADS, thread_name_prefix="framegate-flags-eval"
        )

    @property
    def spec(self) -> ProviderSpec | None:
        return self._spec

    async def start(self) -> None:
        """Register the provider and wait for its first load. A provider that cannot load yet
        (file missing, API unreachable) is not fatal: evaluations return STREAMING_ENABLED and
        `status()` says why, until the provider recovers on its own."""
        if self._state is not FlagState.NOT_STARTED:
            raise RuntimeError(f"FlagService.start: expected not_started, state is {self._state}")
        self._loop = asyncio.get_running_loop()
        if self._spec is None:
            self._spec = build_provider(self._settings)
        self._state = FlagState.NOT_READY
        for event in WATCHED_EVENTS:
            handler = partial(self._on_event_in_worker, event)
            self._client.add_handler(event, handler)
            self._handlers.append((event, handler))
        try:
            # set_provider (0.10) returns before initialize() ran: always the waiting variant.
            await asyncio.to_thread(api.set_provider_and_wait, self._spec.provider, self._domain)
        except Exception as exc:
            self._problem = f"{type(exc).__name__}: {exc}"
            log.warning(
                "flag provider %s (%s) not ready: %s; %s=%s until it recovers",
                self._spec.name,
                self._spec.source,
                self._problem,
                STREAMING_FLAG,
                self._default,
            )
        self._revision = await self._current_revision()
        self._last_change = time.time()
        if self._poll_interval_s is not None:
            self._poll_task = asyncio.create_task(
                self.watch(self._poll_interval_s), name="framegate-flags-poll"
            )

    async def stop(self) -> None:
        """Stop polling, detach handlers, shut the provider down (its threads joined)."""
        if self._state in (FlagState.NOT_STARTED, FlagState.STOPPED):
            self._state = FlagState.STOPPED
            await asyncio.to_thread(self._executor.shutdown)
            return
        self._state = FlagState.STOPPED
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        await asyncio.to_thread(self._executor.shutdown)  # waits for evaluations in flight
        for event, handler in self._handlers:
            self._client.remove_handler(event, handler)
        self._handlers.clear()
        assert self._spec is not None
        await asyncio.to_thread(self._spec.provider.shutdown)
        # Unbind the domain; the registry shuts the old provider down again (a no-op) itself.
        await asyncio.to_thread(api.set_provider_and_wait, NoOpProvider(), self._domain)
        self._loop = None

    async def streaming_enabled(self, context: FlagContext) -> bool:
        return bool((await self.evaluate(context)).value)

    async def evaluate(self, context: FlagContext) -> FlagEvaluationDetails[bool]:
        """The full OpenFeature answer (value, variant, reason, error code) for `context`."""
        return await self._evaluate(context.to_evaluation_context())

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call `callback()` on the event loop thread whenever flags may have changed; returns
        the function that unsubscribes it."""
        self._subscribers.append(callback)
        return partial(self._unsubscribe, callback)

    async def watch(self, interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        """Poll every `interval_s` until cancelled (see `poll`)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.poll()

    async def poll(self) -> bool:
        """Notify subscribers if the provider's revision moved since last time; True if so."""
        revision = await self._current_revision()
        if revision == self._revision:
            return False
        self._revision = revision
        self._last_change = time.time()
        log.info("flag %s: provider %s has new flags", STREAMING_FLAG, self._spec_name())
        self._notify()
        return True

    def status(self) -> dict[str, Any]:
        """For `/ready` and logs. `state`: not_started, not_ready, ready, error (source unusable:
        the last good flags, or the default when none, are served), stale (source unreachable:
        last good flags served), fatal, stopped. `last_value`: the last answer the provider gave
        without error; `last_change`: when the served flags were last (re)loaded."""
        state = self._current_state()
        healthy = state in (FlagState.READY, FlagState.NOT_STARTED, FlagState.STOPPED)
        return {
            "flag": STREAMING_FLAG,
            "provider": self._spec_name(),
            "source": self._spec.source if self._spec else None,
            "state": state.value,
            "error": None if healthy else self._current_problem(state),
            "default": self._default,
            "last_value": self._last_value,
            "last_change": _iso(self._last_change),
        }

    # Internals.

    async def _evaluate(self, context: EvaluationContext | None) -> FlagEvaluationDetails[bool]:
        if self._spec is not None and self._spec.blocking:
            loop = asyncio.get_running_loop()
            details = await loop.run_in_executor(self._executor, self._resolve, context)
        else:
            details = self._resolve(context)
        if details.error_code is None:
            self._last_value = bool(details.value)
        return details

    def _resolve(self, context: EvaluationContext | None) -> FlagEvaluationDetails[bool]:
        return self._client.get_boolean_details(STREAMING_FLAG, self._default, context)

    async def _current_revision(self) -> Hashable:
        provider = self._spec.provider if self._spec else None
        if isinstance(provider, Revisioned):
            return provider.revision()
        details = await self._evaluate(None)
        return (details.value, details.variant, details.reason, details.error_code)

    def _current_state(self) -> FlagState:
        if self._state in (FlagState.NOT_STARTED, FlagState.STOPPED):
            return self._state
        return _SDK_STATES[self._client.get_provider_status()]

    def _current_problem(self, state: FlagState) -> str:
        """The provider's own diagnosis when it has one (events carrying it arrive later)."""
        # object: mypy cannot narrow one Protocol (FeatureProvider) to another (Diagnosed).
        provider: object = self._spec.provider if self._spec else None
        own = provider.problem() if isinstance(provider, Diagnosed) else None
        return own or self._problem or f"provider {state.value}"

    def _spec_name(self) -> str:
        return self._spec.name if self._spec else self._settings.flag_provider.value

    def _unsubscribe(self, callback: ChangeCallback) -> None:
        with contextlib.suppress(ValueError):  # unsubscribing twice is harmless
            self._subscribers.remove(callback)

    def _on_event_in_worker(self, event: ProviderEvent, details: EventDetails) -> None:
        """Runs on an OpenFeature worker thread: hand over to the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._on_event, event, details)
        except RuntimeError:  # the loop closed between the check and the call: nothing to do
            log.debug("flag event %s after the event loop closed", event)

    def _on_event(self, event: ProviderEvent, details: EventDetails) -> None:
        if self._state is FlagState.STOPPED or self._spec is None:
            return
        if details.provider_name != self._spec.provider.get_metadata().name:
            return  # e.g. the immediate READY of the domain's previous (no-op) provider
        if event in _PROBLEM_EVENTS:
            self._problem = details.message or event.value
        elif event is ProviderEvent.PROVIDER_READY:
            self._problem = None
        else:
            self._last_change = time.time()
            provider = self._spec.provider
            if isinstance(provider, Revisioned):  # seen: the next poll need not notify again
                self._revision = provider.revision()
        self._notify()

    def _notify(self) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback()
            except Exception:  # one failing subscriber must not starve the others
                log.exception("flag change callback %r failed", callback)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
