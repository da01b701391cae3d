"""The markdown of a `framegate bench run` result, and writing it into docs/BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from api.loadtest.bench.bars import HEALTH_P99_BAR_MS, throughput_verdict
from api.loadtest.bench.procs import default_budget_ms
from api.loadtest.bench.stack import columns

DOC_HEADING = "## Full stack (issue: load testing)"
BREAKDOWN_HEADER = (
    "| pipeline | results/s | model stubs | pipeline stub | gateway | tritonserver | client "
    "| idle |"
)
SHOWN_MODEL_MS = 0.05  # model stubs below this per result are left out of the cell's detail


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def markdown(result: dict, command: str = "framegate bench run --write-docs") -> str:
    lines = [f"{DOC_HEADING} — `framegate bench run`", "", _intro(result), ""]
    lines += ["```", f"$ {command}", "```", "", *_facts(result)]
    for kind, run in result["pipelines"].items():
        lines += ["", f"### `{kind}`", "", *pipeline_section(run, result["config"])]
    breakdown = breakdown_table(result["pipelines"])
    if breakdown:
        lines += ["", "### Where the CPU goes (row c)", "", _breakdown_intro(), "", *breakdown]
    health = health_table(result["pipelines"])
    if health:
        first = next(r["health"] for r in result["pipelines"].values() if r.get("health"))
        lines += ["", f"### /health p99 with {first['sessions']} sessions streaming flat out"]
        lines += ["", _health_intro(first), "", *health]
    return "\n".join(lines) + "\n"


def _intro(result: dict) -> str:
    cfg, facts = result["config"], result.get("machine", {})
    budgets = ", ".join(f"c{b:g}" for b in cfg.get("budgets", ()))
    budget_rows = (
        f"; rows {budgets} repeat row c at other budgets (0 = off), same offered load: the "
        "latency / throughput trade-off the budget makes"
        if budgets
        else ""
    )
    return (
        "One run of `framegate bench run` (`api/loadtest/bench/`), for each pipeline "
        f"({', '.join(f'`{k}`' for k in result['pipelines'])}): the same frames and models "
        "through (a) in-process ONNX Runtime, (b) Triton directly, (c) the full WebSocket stack "
        "with gateway micro-batching, (d) the full stack with batching off (`BATCH_MAX_SIZE=1`, "
        "`BATCH_MAX_INFLIGHT=256`: one Triton request per frame; Triton's own dynamic batcher "
        "still merges requests that queue together) and (e) a deliberately naive gateway "
        "(`api/loadtest/naive_gateway.py`: ONNX Runtime run synchronously in the WebSocket "
        "handler, blocking the event loop, as the replaced system did). c–e are real uvicorn "
        "processes driven open loop by `api.loadtest.ws_load` "
        f"({cfg['sessions']} sessions, offered {cfg['overload_factor']}× the best of a/b so they "
        "saturate; the client offers permessage-deflate as browsers do); a and b are closed "
        f"loop, each the best of batch 1 and batch {cfg['batch']} (a: one caller per Triton "
        "pipeline instance, each with its own ONNX Runtime sessions and the CPU configs' "
        f"settings; b: {cfg['concurrency']} gRPC callers). Throughput counts frames processed "
        f"inside the window ({cfg['warmup_s']} s warm-up excluded, then {cfg['duration_s']} s). "
        "p99 is per frame for c–e (send → result) and per request (batch) for a and b. CPU per "
        "frame = CPU seconds (psutil, `api/loadtest/cpu.py`) of the processes doing the work in "
        "the window (a: the benchmark process; b: the gRPC client + tritonserver and its Python "
        "stubs; c, d: the API process + tritonserver and its stubs; e: the naive gateway "
        "process) / frames processed; the load generator (this benchmark process, on the same "
        "cores) is not counted in it but has its own column, as does other people's load; the "
        f"machine has {facts.get('nproc', '?')} cores. Rows c and d run with the default latency "
        f"budget (`STREAM_LATENCY_BUDGET_MS={default_budget_ms():g}`: live frames that could "
        "only be answered later are dropped before inference, and the frames at Triton at once "
        f"adapt to it){budget_rows}."
    )


def _facts(result: dict) -> list[str]:
    cfg, facts, versions = result["config"], result.get("machine", {}), result["versions"]
    return [
        "| | |",
        "| --- | --- |",
        f"| date | {facts.get('date_utc', '?')} (run took {result.get('wall_s', '?')} s) |",
        f"| machine | nproc {facts.get('nproc', '?')}, {facts.get('cpu', '?')}, CPU flags "
        f"`{facts.get('cpu_flags', '?')}`, {facts.get('platform', '?')} |",
        f"| versions | Python {facts.get('python', '?')}, ONNX Runtime "
        f"{facts.get('onnxruntime', '?')}, numpy {facts.get('numpy', '?')}, OpenCV "
        f"{facts.get('opencv', '?')}, tritonserver {versions.get('triton', '?')} |",
        f"| pipelines | {', '.join(f'`{k}`' for k in result['pipelines'])}; {cfg['frames']} "
        f"synthetic JPEGs, seed {cfg['seed']} |",
    ]


def pipeline_section(run: dict, cfg: Mapping) -> list[str]:
    lines = rows_table(run["rows"])
    if run["ratios"]:
        lines += ["", *ratios_table(run["ratios"])]
    if run.get("bars"):
        lines += ["", *latency_bars_table(run["bars"], cfg)]
    return lines


def rows_table(rows: Mapping[str, dict]) -> list[str]:
    lines = [
        "| row | what | offered frames/s | frames/s | p50 ms | p99 ms | CPU ms/frame | frames "
        "| dropped | result errors | load generator (cores) | other load (cores) |",
        "|" + " --- |" * 12,
    ]
    for key in sorted(rows):
        r = rows[key]
        lines.append(
            f"| {key} | {r['name']} | {_fmt(r['offered_fps'], 1)} | {r['frames_per_s']:.1f} "
            f"| {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} "
            f"| {r['cpu_ms_per_frame']:.1f} | {r['frames']} | {r['dropped']} "
            f"| {r['result_errors']} | {_fmt(r.get('detail', {}).get('generator_cores'))} "
            f"| {_fmt(r['other_cores'])} |"
        )
    return lines


def ratios_table(ratios: Mapping[str, dict]) -> list[str]:
    lines = [
        "Ratios (frames/s above 1: c is faster; p99 and CPU per frame above 1: c is slower / "
        "costs more):",
        "",
        "| ratio | frames/s | p99 | CPU per frame | throughput bar |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, v in ratios.items():
        lines.append(
            f"| {name} | {_fmt(v['frames_per_s'])} | {_fmt(v['p99_ms'])} "
            f"| {_fmt(v['cpu_ms_per_frame'])} "
            f"| {throughput_verdict(name, v['frames_per_s']) or '–'} |"
        )
    return lines


def latency_bars_table(bars: Mapping, cfg: Mapping) -> list[str]:
    single = bars["single_frame_latency_ms"]
    lines = [
        f"Latency bars for (c). Single-frame latency (one session, one frame at a time, closed "
        f"loop): p50 {single['p50']:.1f} ms, p99 {single['p99']:.1f} ms "
        f"({single.get('count', '')} frames). Both load runs use the same {cfg['sessions']} "
        "sessions; a bar is met when p99 / single-frame p50 is at most its limit "
        "(`HALF_LOAD_BAR`, `OVERLOAD_BAR` in `api/loadtest/bench/bars.py`).",
        "",
        "| bar | offered frames/s | frames/s | dropped | p99 ms | single-frame p50 ms "
        "| ratio | limit | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, run in (("half_load_bar", "half_load"), ("overload_bar", "overload")):
        b, r = bars[key], bars[run]
        verdict = _verdict(b["met"]) + ("" if b["met"] else f": {b['why_missed']}")
        lines.append(
            f"| {b['name']} | {_fmt(r['offered_fps'], 1)} | {r['frames_per_s']:.1f} "
            f"| {r['dropped']} | {b['p99_ms']:.1f} | {b['single_frame_ms']:.1f} "
            f"| {_fmt(b['ratio'])} | ≤ {b['limit']} | {verdict} |"
        )
    lines += [
        "",
        f"(The overload run offered {_fmt(bars.get('overload_factor'))}× the saturation rate; "
        "drops absorb the excess, so only delivered results have a latency.)",
    ]
    return lines


def _breakdown_intro() -> str:
    return (
        "CPU ms per result of each process of the stack in row c's window (psutil): the model "
        "stubs (Triton's Python backend stubs of `yolo`, `ocr_det`, `ocr_rec`, grouped by the "
        "model their command line names; the biggest in brackets), the pipeline stub (the "
        "`pipeline_*` models' stubs; where the CPU configs run the stages inline, "
        '`stages: "inline"`, the models run here and the model stubs stay idle), the gateway '
        "(the uvicorn API process), `tritonserver` "
        "itself, the client (the load generator: the benchmark process) and the cores left idle "
        "(the machine's idle time over the window, as a fraction of all cores). Per model and "
        "per process in the JSON (`pipelines.<id>.rows.c.detail.cpu`)."
    )


def _model_cell(total: float | None, by_model: Mapping[str, float]) -> str:
    if total is None:
        return "–"
    shown = [f"{m} {v:.1f}" for m, v in by_model.items() if v >= SHOWN_MODEL_MS]
    return f"{total:.1f} ({', '.join(shown)})" if shown else f"{total:.1f}"


def breakdown_table(pipelines: Mapping[str, dict]) -> list[str]:
    """One row per pipeline that has a row c with a CPU breakdown; empty when none has."""
    body = []
    for kind, run in pipelines.items():
        c = run["rows"].get("c")
        cpu = (c or {}).get("detail", {}).get("cpu")
        if not cpu:
            continue
        col = columns(cpu)
        body.append(
            f"| `{kind}` | {c['frames_per_s']:.1f} "
            f"| {_model_cell(col.model_stubs, col.model_stubs_by_model)} "
            f"| {_fmt(col.pipeline_stub, 1)} | {_fmt(col.gateway, 1)} "
            f"| {_fmt(col.tritonserver, 1)} | {_fmt(col.client, 1)} "
            f"| {_fmt(col.idle_fraction)} |"
        )
    return [BREAKDOWN_HEADER, "|" + " --- |" * 8, *body] if body else []


def _health_intro(first: Mapping) -> str:
    return (
        f"On row c's gateway: {first['sessions']} closed-loop WebSocket sessions send frames "
        "flat out (the next as soon as the last is answered) while `GET /health` is polled "
        f"{first['requests']} times, ~{first['interval_ms']:g} ms apart; reported, not asserted "
        f"by a test. Bar: p99 < {HEALTH_P99_BAR_MS:g} ms (`HEALTH_P99_BAR_MS`)."
    )


def health_table(pipelines: Mapping[str, dict]) -> list[str]:
    body = []
    for kind, run in pipelines.items():
        h = run.get("health")
        if not h:
            continue
        lat = h["latency_ms"]
        body.append(
            f"| `{kind}` | {h['sessions']} | {h['requests']} | {lat['p50']:.1f} "
            f"| {lat['p99']:.1f} | {h['stream_results_per_s']:.1f} "
            f"| {h['stream_dropped_per_s']:.1f} "
            f"| < {h['bar']['limit_ms']:g} ms | {_verdict(h['bar']['met'])} |"
        )
    if not body:
        return []
    header = (
        "| pipeline | sessions | /health requests | p50 ms | p99 ms | results/s meanwhile "
        "| dropped/s meanwhile | bar | verdict |"
    )
    return [header, "|" + " --- |" * 9, *body]


def replace_last_section(doc: str, section: str) -> str:
    """Replace the document's last `## ` section (from its heading to the end) with `section`."""
    start = doc.rfind("\n## ")
    if start < 0:
        raise ValueError("the document has no ## section")
    return doc[: start + 1] + section


def write_docs(result: dict, path: Path, command: str) -> None:
    path.write_text(replace_last_section(path.read_text(), markdown(result, command)))
