// Wires the page: URL parameters, controls, one streaming run at a time, the jobs tab.

import { FrameGrabber, openCamera, openFile } from "./capture.js";
import { State, StreamConnection, streamUrl } from "./connection.js";
import { followJob, jobResults, resultRows, submitJob } from "./jobs.js";
import { drawResult } from "./overlay.js";
import { MAX_UNANSWERED, SendRate, clampFps } from "./rate.js";
import { Reads, download, textsOf } from "./reads.js";
import { Stats } from "./stats.js";

const STATS_REFRESH_MS = 500;
const FINAL_STATES = new Set([State.CLOSED, State.ERROR]);

const el = (id) => document.getElementById(id);
const ui = {
  pipeline: el("pipeline"),
  source: el("source"),
  fileField: el("file-field"),
  file: el("file"),
  fps: el("fps"),
  token: el("token"),
  form: el("stream-form"),
  start: el("start"),
  stop: el("stop"),
  status: el("status"),
  frameError: el("frame-error"),
  overlay: el("overlay"),
  preview: el("preview"),
  reads: el("reads"),
  downloadCsv: el("download-csv"),
  downloadJson: el("download-json"),
  stat: {
    sent: el("stat-sent"),
    results: el("stat-results"),
    dropped: el("stat-dropped"),
    fps: el("stat-fps"),
    sendFps: el("stat-send-fps"),
    latency: el("stat-latency"),
    pressure: el("stat-pressure"),
  },
};
const params = new URLSearchParams(location.search);
const reads = new Reads();
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

function showStatus(state, code, message) {
  ui.status.dataset.state = state;
  if (code !== null) ui.status.dataset.code = code;
  // Unchanged text is left alone: a live region re-announces every write.
  if (ui.status.textContent !== message) ui.status.textContent = message;
}

/** One press of Start until Stop or a final close: source, connection, sender, counters. */
class Run {
  stats = new Stats();
  #inflight = new Map(); // frame_index -> {bitmap, sentAt}: what each reply is drawn on
  #nextIndex = 0;
  #answered = false; // until this connection's first reply, one frame at a time (slow start)
  #epoch = 0; // bumped on every (re)connect and at the end: one send loop per connection
  #timer = null;
  #refresh = setInterval(() => this.render(), STATS_REFRESH_MS);

  constructor(pipelineId, token, targetFps, release) {
    this.rate = new SendRate(targetFps, performance.now());
    this.release = release;
    this.grabber = new FrameGrabber(ui.preview);
    this.context = ui.overlay.getContext("2d");
    this.connection = new StreamConnection(streamUrl(location, pipelineId, token), {
      onStatus: (status) => this.#status(status),
      onOpen: () => this.#opened(),
      onMessage: (message) => this.#message(message),
    });
  }

  start() {
    this.connection.start();
    this.render();
  }

  /** Ends everything this run holds; `connection` false when the connection already ended. */
  end({ connection = true } = {}) {
    if (connection) this.connection.stop();
    this.#epoch += 1;
    clearTimeout(this.#timer);
    clearInterval(this.#refresh);
    this.#forget();
    this.release?.();
    this.release = null;
    this.render();
  }

  #status({ state, code, message }) {
    showStatus(state, code, message);
    if (FINAL_STATES.has(state)) {
      this.end({ connection: false });
      setRunning(false);
    }
  }

  #opened() {
    this.#forget();
    this.#epoch += 1;
    this.#nextIndex = 0;
    this.#answered = false;
    clearTimeout(this.#timer);
    this.#send(this.#epoch);
  }

  #forget() {
    for (const { bitmap } of this.#inflight.values()) bitmap.close();
    this.#inflight.clear();
  }

  /** One tick of the connection `epoch`'s send loop: a frame if few enough are unanswered. */
  async #send(epoch) {
    this.#timer = null;
    const started = performance.now();
    const fps = this.rate.tick(started);
    if (this.#inflight.size < (this.#answered ? MAX_UNANSWERED : 1)) {
      const frame = await this.grabber.grab();
      if (epoch !== this.#epoch) {
        frame?.bitmap.close();
        return; // reconnected or ended while encoding
      }
      if (frame && this.connection.send(frame.jpeg)) {
        this.#inflight.set(this.#nextIndex++, { bitmap: frame.bitmap, sentAt: performance.now() });
        this.stats.sent += 1;
      } else {
        frame?.bitmap.close();
      }
    }
    if (epoch !== this.#epoch || !this.connection.open) return;
    const wait = Math.max(0, 1000 / fps - (performance.now() - started));
    this.#timer = setTimeout(() => this.#send(epoch), wait);
  }

  #message(message) {
    const now = performance.now();
    if (message.frame_index !== undefined) {
      this.#reply(message, now);
    } else if (message.warning === "slow_down") {
      this.rate.slowDown(message.suggested_fps, now);
      this.stats.pressure = { suggestedFps: message.suggested_fps, at: new Date() };
    }
    this.render();
  }

  #reply(message, now) {
    const sent = this.#inflight.get(message.frame_index);
    this.#inflight.delete(message.frame_index);
    this.#answered = true;
    this.connection.confirm();
    if (message.dropped) {
      this.stats.dropped += 1;
      this.rate.dropped(now);
    } else {
      const result = message.result ?? {};
      this.stats.result(now, sent ? now - sent.sentAt : NaN, message.timing_ms);
      if (sent) drawResult(this.context, sent.bitmap, result);
      if (result.error) {
        const { error, detail } = result;
        ui.frameError.textContent = `frame ${message.frame_index}: ${error}: ${detail}`;
      }
      showReads(reads.add(textsOf(result), new Date()));
    }
    sent?.bitmap.close();
  }

  render() {
    const { stats } = this;
    const now = performance.now();
    ui.stat.sent.textContent = stats.sent;
    ui.stat.results.textContent = stats.results;
    ui.stat.dropped.textContent = stats.dropped;
    ui.stat.fps.textContent = stats.resultFps(now).toFixed(1);
    ui.stat.sendFps.textContent = this.rate.fps.toFixed(1);
    ui.stat.sendFps.dataset.value = String(this.rate.fps);
    const latency = stats.latency();
    ui.stat.latency.textContent = latency.p50 === null ? "–" : formatLatency(latency);
    ui.stat.latency.dataset.p50 = latency.p50 ?? "";
    ui.stat.latency.dataset.p95 = latency.p95 ?? "";
    const { pressure } = stats;
    if (pressure) ui.stat.pressure.dataset.suggested = String(pressure.suggestedFps);
    else delete ui.stat.pressure.dataset.suggested;
    ui.stat.pressure.textContent = pressure
      ? `slow_down: ${pressure.suggestedFps} fps (${timeFormat.format(pressure.at)})`
      : "normal";
  }
}

function formatLatency({ p50, p95, serverP50, serverP95 }) {
  const roundTrip = `${Math.round(p50)} / ${Math.round(p95)} ms`;
  if (serverP50 === null) return roundTrip;
  return `${roundTrip} (server ${Math.round(serverP50)} / ${Math.round(serverP95)} ms)`;
}

function showReads(fresh) {
  for (const read of fresh) {
    const item = document.createElement("li");
    item.dataset.testid = "read";
    item.dataset.time = timeFormat.format(read.firstSeen);
    item.title = `first seen ${read.firstSeen.toLocaleString()}`;
    item.textContent = read.text;
    ui.reads.prepend(item);
  }
  const empty = reads.size === 0;
  ui.downloadCsv.disabled = empty;
  ui.downloadJson.disabled = empty;
}

let run = null;

function setRunning(running) {
  const pressed = document.activeElement;
  ui.start.disabled = running;
  ui.stop.disabled = !running;
  // The button just used is disabled now: the keyboard focus moves to the other one instead of
  // falling back to the top of the page.
  if (running && pressed === ui.start) ui.stop.focus();
  if (!running && pressed === ui.stop) ui.start.focus();
}

async function start() {
  stop();
  const source = ui.source.value;
  const file = ui.file.files[0];
  if (source === "file" && !file) {
    showStatus(State.ERROR, "source", "Choose a video file first.");
    return;
  }
  setRunning(true);
  reads.clear();
  ui.reads.replaceChildren();
  ui.frameError.textContent = "";
  showReads([]);
  const opening = source === "camera" ? "Opening the camera…" : `Opening ${file.name}…`;
  showStatus(State.IDLE, "", opening);
  let release;
  try {
    release = source === "camera" ? await openCamera(ui.preview) : await openFile(ui.preview, file);
  } catch (error) {
    setRunning(false);
    showStatus(State.ERROR, "source", `Cannot open the ${source}: ${error.message}`);
    return;
  }
  run = new Run(ui.pipeline.value, ui.token.value.trim(), clampFps(ui.fps.value), release);
  run.start();
}

function stop() {
  if (run === null) return;
  run.end();
  run = null;
  setRunning(false);
}

async function loadPipelines() {
  const wanted = params.get("pipeline") ?? "yolo_ocr";
  try {
    const response = await fetch("/v1/pipelines");
    const { pipelines } = await response.json();
    for (const pipeline of pipelines) {
      ui.pipeline.append(new Option(`${pipeline.id} — ${pipeline.description}`, pipeline.id));
    }
  } catch (error) {
    showStatus(State.ERROR, "pipelines", `Cannot list the pipelines: ${error.message}`);
    return false;
  }
  if ([...ui.pipeline.options].some((option) => option.value === wanted)) {
    ui.pipeline.value = wanted;
  } else {
    showStatus(State.IDLE, "", `Unknown pipeline ${JSON.stringify(wanted)}; choose one.`);
  }
  return true;
}

function syncSource() {
  ui.fileField.hidden = ui.source.value !== "file";
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      el(other.getAttribute("aria-controls")).hidden = !selected;
    }
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  });
}

function setupJobs() {
  const form = el("jobs-form");
  const file = el("jobs-file");
  const status = el("jobs-status");
  const progress = el("jobs-progress");
  const texts = el("jobs-texts");
  const body = el("jobs-results").tBodies[0];
  const button = el("jobs-submit");
  const show = (state, message) => {
    status.dataset.state = state;
    status.textContent = message;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) {
      show("error", "Choose a video file first.");
      return;
    }
    button.disabled = true;
    body.replaceChildren();
    texts.textContent = "";
    progress.value = 0;
    try {
      show("uploading", `Uploading ${chosen.name}…`);
      const jobId = await submitJob(chosen, ui.pipeline.value);
      const view = await followJob(jobId, ({ status: state, progress: p }) => {
        progress.max = Math.max(1, p.frames_total);
        progress.value = p.frames_done;
        show(state, `Job ${jobId}: ${state}, ${p.frames_done} / ${p.frames_total} frames`);
      });
      if (view.status === "failed") {
        show("failed", `Job ${jobId} failed: ${view.error}`);
        return;
      }
      showJobResults(resultRows(await jobResults(jobId)), body, texts);
    } catch (error) {
      show("error", error.message);
    } finally {
      button.disabled = false;
    }
  });
}

function showJobResults(rows, body, texts) {
  const found = new Set();
  for (const row of rows) {
    row.texts.forEach((text) => found.add(text));
    if (!row.detections.length && !row.texts.length && !row.error) continue;
    const tr = body.insertRow();
    tr.insertCell().textContent = row.frame;
    tr.insertCell().textContent = row.error || row.detections.join(", ");
    const cell = tr.insertCell();
    for (const text of row.texts) {
      const span = Object.assign(document.createElement("span"), { textContent: text });
      span.dataset.testid = "job-text";
      cell.append(span, " ");
    }
  }
  texts.textContent = found.size ? `Texts read: ${[...found].join(", ")}` : "No text read.";
}

async function init() {
  setupTabs();
  setupJobs();
  ui.fps.value = clampFps(params.get("fps") ?? ui.fps.value);
  const source = params.get("source");
  if (source === "camera" || source === "file") ui.source.value = source;
  syncSource();
  ui.source.addEventListener("change", syncSource);
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  ui.stop.addEventListener("click", () => {
    stop();
    showStatus(State.IDLE, null, "Stopped.");
  });
  ui.downloadCsv.addEventListener("click", () =>
    download("framegate-reads.csv", reads.toCSV(), "text/csv"));
  ui.downloadJson.addEventListener("click", () =>
    download("framegate-reads.json", JSON.stringify(reads.toJSON(), null, 2), "application/json"));
  const autostart = params.get("autostart") === "1";
  if (!(await loadPipelines()) || !autostart) return;
  if (ui.source.value === "camera") start();
  else ui.file.addEventListener("change", () => start(), { once: true });
}

init();
