// Live session numbers: counters, result FPS over a sliding window, latency percentiles.

export const FPS_WINDOW_MS = 2000;
export const LATENCY_SAMPLES = 200;

/** Nearest-rank percentile of `values` (p in 0..100); null when there are none. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export class Stats {
  sent = 0;
  results = 0;
  dropped = 0;
  pressure = null; // the last slow_down: {suggestedFps, at}
  #resultTimes = [];
  #roundTrips = [];
  #serverTimes = [];

  result(now, roundTripMs, serverMs) {
    this.results += 1;
    this.#resultTimes.push(now);
    if (Number.isFinite(roundTripMs)) push(this.#roundTrips, roundTripMs);
    if (Number.isFinite(serverMs)) push(this.#serverTimes, serverMs);
  }

  resultFps(now) {
    while (this.#resultTimes.length && this.#resultTimes[0] < now - FPS_WINDOW_MS) {
      this.#resultTimes.shift();
    }
    return (this.#resultTimes.length * 1000) / FPS_WINDOW_MS;
  }

  latency() {
    return {
      p50: percentile(this.#roundTrips, 50),
      p95: percentile(this.#roundTrips, 95),
      serverP50: percentile(this.#serverTimes, 50),
      serverP95: percentile(this.#serverTimes, 95),
    };
  }
}

function push(samples, value) {
  samples.push(value);
  if (samples.length > LATENCY_SAMPLES) samples.shift();
}
