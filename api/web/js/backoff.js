// Which closes end a session for good, which are retried, and how long to wait before a retry.
// Pure functions: unit-tested in the browser (tests/web/test_js_modules.py).

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // streaming_disabled: the operator turned the flag off
  ABNORMAL: 1006, // no close frame: network error or server gone
  POLICY_VIOLATION: 1008,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
});

// Only these are retried. Every other close (1000, 1001, 1008, 1011, ...) was the server's
// decision: reconnecting would only repeat what it refused, so the page waits for the user.
const RETRIED = new Set([CLOSE.ABNORMAL, CLOSE.SERVICE_RESTART, CLOSE.TRY_AGAIN_LATER]);

export const MAX_ATTEMPTS = 5;
export const BASE_DELAY_MS = 1000;
export const MAX_DELAY_MS = 16000;

export function shouldReconnect(code) {
  return RETRIED.has(code);
}

/** Delay before retry `attempt` (1-based): capped exponential (1, 2, 4, 8, 16 s) with "equal
 * jitter" (between half and all of it), or null once MAX_ATTEMPTS retries have been spent. */
export function retryDelay(attempt, random = Math.random) {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  if (attempt > MAX_ATTEMPTS) return null;
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

const REASONS = new Map([
  [CLOSE.NORMAL, "the server ended the session"],
  [CLOSE.GOING_AWAY, "streaming has been disabled by the operator"],
  [CLOSE.ABNORMAL, "the connection was lost"],
  [CLOSE.POLICY_VIOLATION, "the server refused the session"],
  [CLOSE.INTERNAL_ERROR, "the server failed to process the stream"],
  [CLOSE.SERVICE_RESTART, "the server is restarting"],
  [CLOSE.TRY_AGAIN_LATER, "the server is busy"],
]);

/** What a person reads after a close: the reason, then the server's error if one came. */
export function describeClose(code, error = null) {
  const reason = REASONS.get(code) ?? `the connection closed (code ${code})`;
  return error ? `${reason}: ${error.error}: ${error.detail}` : reason;
}
