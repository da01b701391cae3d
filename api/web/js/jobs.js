// The jobs tab's calls: submit a video to /v1/video/submit, follow its status, fetch results.

import { textsOf } from "./reads.js";

export const POLL_INTERVAL_MS = 500;
const TERMINAL = new Set(["completed", "failed"]);

export class JobError extends Error {}

const percent = (confidence) => `${Math.round(confidence * 100)}%`;

async function json(response) {
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const { detail = body } = body;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    throw new JobError(`HTTP ${response.status}: ${text}`);
  }
  return body;
}

export async function submitJob(file, pipelineId) {
  const form = new FormData();
  form.append("file", file);
  const query = new URLSearchParams({ pipeline_id: pipelineId });
  const response = await fetch(`/v1/video/submit?${query}`, { method: "POST", body: form });
  if (response.status === 404 && !(await response.clone().json().catch(() => null))?.detail) {
    throw new JobError("jobs are not available on this server (ROLE=stream)");
  }
  return (await json(response)).job_id;
}

/** Calls onStatus(view) with every status until the job ends; returns the final view. */
export async function followJob(jobId, onStatus, { interval = POLL_INTERVAL_MS } = {}) {
  for (;;) {
    const view = await json(await fetch(`/v1/video/status/${encodeURIComponent(jobId)}`));
    onStatus(view);
    if (TERMINAL.has(view.status)) return view;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export async function jobResults(jobId) {
  return (await json(await fetch(`/v1/video/results/${encodeURIComponent(jobId)}`))).results;
}

/** One table row per frame: index, "label 93%" per detection, texts read. */
export function resultRows(results) {
  return results.map(({ frame_index, result }) => ({
    frame: frame_index,
    detections: (result.detections ?? []).map((d) => `${d.label} ${percent(d.confidence)}`),
    texts: textsOf(result),
    error: result.error ? `${result.error}: ${result.detail}` : "",
  }));
}
