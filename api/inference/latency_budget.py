"""A latency budget for live frames: how many frames may be at Triton at once, and when a waiting
frame is stale.

A live frame is only worth inferring if its result can still reach the client in time; under
overload, queueing (not compute) is what makes results late. Two rules keep delivered results
inside `budget_s` from the frame's arrival at the gateway:

- Window (AIMD, as TCP's congestion window and Clipper's adaptive batching): the frames at
  Triton at once, over all batches in flight. When the smoothed round trip is over half the
  budget the window shrinks multiplicatively (at most once per round trip); a batch sent while
  the window was full that came back in time grows it by one. The window settles at the most
  work the hardware answers within half the budget: a GPU keeps large batches and several in
  flight, a small CPU deployment one frame per batch slot. The other half is the wait for room.
  Decisions use the smoothed round trip, not single batches: one slow batch on a noisy machine
  must not halve the throughput. The window never drops below `min_window` (one frame per batch
  slot), so the server's parallel instances are never left idle by the budget itself. It starts
  there too and doubles per in-time full window until the first late one (TCP's slow start): a
  cold server is not handed a burst it cannot answer in time, and a GPU still reaches large
  batches within a few round trips.
- Expiry: a waiting frame is dropped, unsent, once `age + round trip` would exceed the budget,
  with the round trip estimated conservatively as the smoothed round trip plus twice its mean
  deviation (Jacobson's estimator, as TCP's retransmission timer). Such a frame could only give
  a late result, and sending it would delay the fresh frames behind it. Frames only expire
  while they wait for room: when there is room they are sent, so a budget below what the
  hardware can do gives late results, not none, and every frame may wait at least half the
  budget.

Frames without an arrival time (video jobs) never expire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DECREASE = 0.75  # multiplicative decrease of the window after a late batch
GAIN = 0.25  # weight of the newest round trip in the smoothed estimates
DEVIATIONS = 2.0  # round trip allowance = smoothed + DEVIATIONS x mean deviation


@dataclass
class LatencyBudget:
    budget_s: float
    max_window: int  # max batch size x batches in flight
    min_window: int = 1  # batches in flight: one frame each
    window: int = field(init=False)
    slow_start: bool = field(default=True, init=False)
    smoothed_s: float | None = field(default=None, init=False)
    deviation_s: float = field(default=0.0, init=False)
    _last_decrease: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        if self.budget_s <= 0 or not 1 <= self.min_window <= self.max_window:
            raise ValueError("budget_s must be > 0 and 1 <= min_window <= max_window")
        self.window = self.min_window

    @property
    def round_trip_target_s(self) -> float:
        return self.budget_s / 2

    @property
    def round_trip_allowance_s(self) -> float:
        """A round trip most batches finish within (0 before the first batch)."""
        if self.smoothed_s is None:
            return 0.0
        return self.smoothed_s + DEVIATIONS * self.deviation_s

    def deadline(self, received: float) -> float:
        return received + self.budget_s

    def send_by(self, deadline: float) -> float:
        """Latest moment a frame with this deadline may still be sent: the allowance is capped at
        half the budget, so every frame may wait at least that long for room. Without the cap a
        noisy round trip would expire frames the moment they queue, and clients that send on
        every reply would spin through frames that never get a chance."""
        return deadline - min(self.round_trip_allowance_s, self.budget_s / 2)

    def observe(self, seconds: float, sent_at: float, window_full: bool) -> None:
        """Feed one finished batch: its round trip, when it was sent, and whether the window was
        full when it was (only then does an in-time batch show there is room to grow)."""
        if self.smoothed_s is None:
            self.smoothed_s, self.deviation_s = seconds, seconds / 2
        else:
            error = seconds - self.smoothed_s
            self.smoothed_s += GAIN * error
            self.deviation_s += GAIN * (abs(error) - self.deviation_s)
        if self.smoothed_s > self.round_trip_target_s:
            # Batches sent before the last decrease saw the old window: one cut per episode.
            if sent_at > self._last_decrease:
                self.window = max(self.min_window, int(self.window * DECREASE))
                self._last_decrease = sent_at + seconds
                self.slow_start = False
        elif window_full and seconds <= self.round_trip_target_s:
            grown = self.window * 2 if self.slow_start else self.window + 1
            self.window = min(self.max_window, grown)
