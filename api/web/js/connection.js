// One streaming connection to the page's own origin: the state machine, retries with backoff
// and the reason for every close. Frames and results are the caller's business.

import { CLOSE, MAX_ATTEMPTS, describeClose, retryDelay, shouldReconnect } from "./backoff.js";

export const State = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  STREAMING: "streaming",
  RECONNECTING: "reconnecting",
  CLOSED: "closed",
  ERROR: "error",
});

const NEXT = {
  [State.IDLE]: [State.CONNECTING],
  [State.CONNECTING]: [State.STREAMING, State.RECONNECTING, State.CLOSED, State.ERROR, State.IDLE],
  [State.STREAMING]: [State.RECONNECTING, State.CLOSED, State.ERROR, State.IDLE],
  [State.RECONNECTING]: [State.CONNECTING, State.IDLE],
  [State.CLOSED]: [State.CONNECTING, State.IDLE],
  [State.ERROR]: [State.CONNECTING, State.IDLE],
};

// The upgrade was refused with an HTTP status the browser does not expose (404: flag off or
// router unmounted); the page reports it under this code.
export const REFUSED_CODE = "404";
const REFUSED_MESSAGE = "streaming is disabled (the server refused the stream)";
const COUNTDOWN_TICK_MS = 250;

/** `ws:` or `wss:` to match the page, same host and port: never a hard-coded server. */
export function streamUrl(location, pipelineId, token = "") {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL("/ws/video/stream", `${scheme}//${location.host}`);
  url.searchParams.set("pipeline_id", pipelineId);
  if (token) url.searchParams.set("token", token);
  return url.href;
}

/** Is the server itself up? Tells a refused upgrade (server up) from a network error. */
export async function serverReachable() {
  try {
    return (await fetch("/health", { cache: "no-store" })).ok;
  } catch {
    return false;
  }
}

export class StreamConnection {
  #url;
  #where;
  #handlers;
  #reachable;
  #random;
  #socket = null;
  #state = State.IDLE;
  #attempt = 0;
  #refusedBefore = false;
  #cause = null; // {code, reason} of the close that started the current retries
  #timers = [];
  #generation = 0; // bumped by start() and stop(): late callbacks of an older run are ignored

  /** handlers: onStatus({state, code, message}) where code is null when unchanged, onOpen(),
   * onMessage(object). */
  constructor(url, handlers, { reachable = serverReachable, random = Math.random } = {}) {
    this.#url = url;
    this.#where = new URL(url).host;
    this.#handlers = handlers;
    this.#reachable = reachable;
    this.#random = random;
  }

  get state() {
    return this.#state;
  }

  get open() {
    return this.#socket?.readyState === WebSocket.OPEN;
  }

  get bufferedAmount() {
    return this.#socket?.bufferedAmount ?? 0;
  }

  start() {
    this.#stopSocket();
    this.#generation += 1;
    this.#attempt = 0;
    this.#refusedBefore = false;
    this.#connect();
  }

  /** The user's stop: close normally and forget any pending retry. */
  stop() {
    this.#stopSocket();
    this.#generation += 1;
    if (this.#state !== State.IDLE) this.#report(State.IDLE, null, "stopped");
  }

  send(data) {
    if (!this.open) return false;
    this.#socket.send(data);
    return true;
  }

  /** The session works (a reply came): a later outage starts its retries from scratch. */
  confirm() {
    this.#attempt = 0;
  }

  #stopSocket() {
    this.#cancelTimers();
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(CLOSE.NORMAL, "client stopped");
  }

  #connect() {
    this.#report(State.CONNECTING, null, `connecting to ${this.#where}`);
    const socket = new WebSocket(this.#url);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    let opened = false;
    let lastError = null;
    socket.onopen = () => {
      opened = true;
      this.#refusedBefore = false;
      this.#report(State.STREAMING, null, `streaming to ${this.#where}`);
      this.#handlers.onOpen();
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.error !== undefined && message.frame_index === undefined) {
        lastError = message;
        this.#report(this.#state, message.error, `${message.error}: ${message.detail}`);
      }
      this.#handlers.onMessage(message);
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#closed(event.code, opened, lastError);
    };
  }

  async #closed(code, opened, error) {
    this.#socket = null;
    if (!opened && code === CLOSE.ABNORMAL) {
      const generation = this.#generation;
      const serverUp = await this.#reachable();
      if (generation !== this.#generation) return;
      // A retry can fail just before a restarting server listens and probe it just after:
      // while retrying, only a second refusal in a row with the server up means refused.
      if (serverUp && (this.#attempt === 0 || this.#refusedBefore)) {
        this.#report(State.ERROR, REFUSED_CODE, REFUSED_MESSAGE);
        return;
      }
      this.#refusedBefore = serverUp;
    }
    if (shouldReconnect(code)) {
      this.#retry(code, error);
      return;
    }
    const final = code === CLOSE.NORMAL || code === CLOSE.GOING_AWAY ? State.CLOSED : State.ERROR;
    this.#report(final, String(code), describeClose(code, error));
  }

  /** Schedules the next try. The close that started the retries stays the one shown (a
   * restart, say), not the failed connects that follow while the server is away. */
  #retry(code, error) {
    if (this.#attempt === 0) {
      this.#cause = { code: String(code), reason: describeClose(code, error) };
    }
    this.#attempt += 1;
    const { code: shown, reason } = this.#cause;
    const delay = retryDelay(this.#attempt, this.#random);
    if (delay === null) {
      this.#report(State.ERROR, shown, `${reason}; gave up after ${MAX_ATTEMPTS} attempts`);
      return;
    }
    const due = performance.now() + delay;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((due - performance.now()) / 1000));
      const attempt = `attempt ${this.#attempt} of ${MAX_ATTEMPTS}`;
      const message = `${reason}; reconnecting in ${seconds} s (${attempt})`;
      this.#report(State.RECONNECTING, shown, message);
    };
    tick();
    const countdown = setInterval(tick, COUNTDOWN_TICK_MS);
    const reconnect = setTimeout(() => {
      this.#cancelTimers();
      this.#connect();
    }, delay);
    this.#timers = [countdown, reconnect];
  }

  #cancelTimers() {
    for (const timer of this.#timers) {
      clearInterval(timer);
      clearTimeout(timer);
    }
    this.#timers = [];
  }

  #report(state, code, message) {
    if (state !== this.#state && !NEXT[this.#state].includes(state)) {
      throw new Error(`illegal transition: expected one of ${NEXT[this.#state]}, got ${state}`);
    }
    this.#state = state;
    this.#handlers.onStatus({ state, code, message });
  }
}
