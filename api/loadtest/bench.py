"""`framegate bench run`: the whole system side by side on one machine, one pipeline.

Rows (same JPEGs, same ONNX models):
  a  in-process ONNX Runtime (FramePipeline, one closed-loop caller per Triton pipeline instance,
     each with its own sessions; the best of batch 1 and --batch)
  b  Triton directly (gRPC, --concurrency closed-loop callers; the best of batch 1 and --batch)
  c  full WebSocket stack, gateway micro-batching on (the API in a uvicorn subprocess)
  d  full stack, batching off (BATCH_MAX_SIZE=1, BATCH_MAX_INFLIGHT high: one request per frame)
  e  a naive gateway (api/loadtest/naive_gateway.py): ORT synchronously inside the handler

Throughput is frames processed per second at saturation (the WebSocket rows are offered more
than they can do, open loop, by api.loadtest.ws_load); p99 is per frame (WebSocket: send to
result; a, b: per request); CPU per frame is the CPU seconds of every process doing the work
(a: this process; b: this process as the gRPC client + the Triton process group; c-e: the gateway
process + the Triton process group; never the load generator) over the frames processed in the
same window. Latency bars for (c): p99 at 50 % of its saturation rate, and p99 of the delivered
results under 2x overload, each against its single-frame latency (one session, one frame at a
time, closed loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from api.loadtest.measure import (
    CpuMonitor,
    Measurement,
    _machine_busy_s,
    _pids,
    _process_cpu_s,
    find_triton_group,
    latency_summary,
    local_grpc_port,
    machine_facts,
)

SCHEMA = "framegate.bench/1"
DOC_HEADING = "## Full stack (issue: load testing)"
# Bars (ratios of p99 to the single-frame p50 latency); a bar is met when the ratio is at most this.
HALF_LOAD_BAR = 2.0
OVERLOAD_BAR = 3.0
# Throughput bars of the load-testing issue: the stack keeps >= 85% of the model's own
# throughput, and gateway batching is worth >= 1.3x over one request per frame.
THROUGHPUT_BARS = {"c/a": 0.85, "c/d": 1.3}
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    key: str  # a .. e
    name: str
    frames: int  # processed inside the window
    seconds: float  # the window
    frames_per_s: float
    latency_ms: dict[str, float]
    cpu_s: float  # all involved processes, in the window
    cpu_ms_per_frame: float
    offered_fps: float | None = None
    dropped: int = 0
    result_errors: int = 0
    other_cores: float | None = None
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_cpu_s(group: int | None) -> float:
    """CPU seconds of every live process in a process group."""
    if group is None:
        return 0.0
    total = 0.0
    for pid in _pids():
        info = _process_cpu_s(pid)
        if info is not None and info[0] == group:
            total += info[1]
    return total


class GroupsCpu:
    """CPU seconds of a set of process groups (+ optionally this process) between two marks."""

    def __init__(self, groups: Sequence[int | None], include_self: bool = False) -> None:
        self.groups = [g for g in groups if g is not None]
        self.include_self = include_self
        self._mark = 0.0

    def _now(self) -> float:
        own = time.process_time() if self.include_self else 0.0
        return own + sum(group_cpu_s(g) for g in self.groups)

    def start(self) -> None:
        self._mark = self._now()

    def stop(self) -> float:
        return self._now() - self._mark


class OtherLoad:
    """Cores used by processes not involved in a row (machine busy minus this process and the
    row's process groups): other people's work on a shared machine, 0 when quiet."""

    def __init__(self, groups: Sequence[int | None]) -> None:
        self.ours = GroupsCpu(groups, include_self=True)
        self._start: tuple[float, float] | None = None

    def start(self) -> None:
        self.ours.start()
        self._start = (time.monotonic(), _machine_busy_s())

    def stop(self) -> float | None:
        if self._start is None:
            return None
        wall = max(time.monotonic() - self._start[0], 1e-9)
        busy = _machine_busy_s() - self._start[1]
        return round(max(busy - self.ours.stop(), 0.0) / wall, 2)


# ---------------------------------------------------------------- ratios and bars (pure logic)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def ratios(rows: dict[str, Row]) -> dict[str, dict[str, float | None]]:
    """c/a, c/b, c/d, c/e for throughput (above 1: c is faster), p99 (above 1: c is slower) and
    CPU per frame (above 1: c costs more)."""
    out: dict[str, dict[str, float | None]] = {}
    c = rows.get("c")
    if c is None:
        return out
    for other in ("a", "b", "d", "e"):
        o = rows.get(other)
        if o is None:
            continue
        out[f"c/{other}"] = _ratio_row(c, o)
    # Row c at other latency budgets, against the limit (no bar: the default is row c).
    if "a" in rows:
        for key in sorted(k for k in rows if k.startswith("c") and k != "c"):
            out[f"{key}/a"] = _ratio_row(rows[key], rows["a"])
    return out


def _ratio_row(x: Row, y: Row) -> dict[str, float | None]:
    return {
        "frames_per_s": ratio(x.frames_per_s, y.frames_per_s),
        "p99_ms": ratio(x.latency_ms["p99"], y.latency_ms["p99"]),
        "cpu_ms_per_frame": ratio(x.cpu_ms_per_frame, y.cpu_ms_per_frame),
    }


def throughput_verdict(name: str, frames_ratio: float | None) -> str:
    """'≥ 0.85: **met**' / '... **missed**' for a ratio with a bar, '' otherwise."""
    limit = THROUGHPUT_BARS.get(name)
    if limit is None or frames_ratio is None:
        return ""
    return f"≥ {limit:g}: **{'met' if frames_ratio >= limit else 'missed'}**"


def bar(name: str, p99_ms: float, single_ms: float, limit: float, why_missed: str = "") -> dict:
    """A latency bar: p99 against the single-frame latency, met when the ratio is <= limit."""
    value = ratio(p99_ms, single_ms)
    met = single_ms > 0 and p99_ms <= limit * single_ms
    return {
        "name": name,
        "p99_ms": p99_ms,
        "single_frame_ms": single_ms,
        "ratio": value,
        "limit": limit,
        "met": met,
        "why_missed": "" if met else why_missed,
    }


def explain_half_load(half: Row, single_ms: float, batch_ms: float | None) -> str:
    parts = [
        f"p99 {half.latency_ms['p99']:.0f} ms vs single frame {single_ms:.0f} ms",
    ]
    if batch_ms:
        parts.append(
            f"frames share micro-batches (mean {half.detail.get('batch_size_mean', '?')} frames),"
            f" and a batch's Triton time is {batch_ms:.0f} ms on average"
        )
    if half.dropped:
        parts.append(f"{half.dropped} frames dropped even at half load")
    return "; ".join(parts)


def explain_overload(
    over: Row, single_ms: float, batch_ms: float | None, budget_ms: float | None = None
) -> str:
    parts = [f"p99 {over.latency_ms['p99']:.0f} ms vs single frame {single_ms:.0f} ms"]
    if budget_ms:
        parts.append(
            f"delivered results are held to the latency budget (STREAM_LATENCY_BUDGET_MS="
            f"{budget_ms:g}), which is above {OVERLOAD_BAR:g}x this run's single-frame latency, "
            "and p99 lands near the budget (a frame may wait half of it for room, then its round "
            "trip varies)"
        )
    else:
        parts.append(
            "without a latency budget, drops only bound each session (1 in flight + 1 waiting), "
            "so every busy session keeps a frame in the system and the wait grows with sessions "
            "/ throughput (Little's law)"
        )
    if batch_ms:
        parts.append(f"a batch's Triton round trip is {batch_ms:.0f} ms on average in this run")
    return "; ".join(parts)


# ---------------------------------------------------------------- processes


@dataclass
class Subprocess:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_uvicorn(
    name: str, factory: str, workdir: Path, env: dict[str, str], timeout_s: float = 120.0
) -> Subprocess:
    """`uvicorn --factory` in its own process group; waits for /health."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO_ROOT,
        )  # fmt: skip
    server = Subprocess(name, process, port, log_path)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.http}/health", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not healthy after {timeout_s:.0f}s")
            time.sleep(0.1)  # polling a deadline-bounded health check
    except BaseException:
        server.stop()
        raise


def default_budget_ms() -> float:
    from api.core.config import Settings

    return float(Settings.model_fields["stream_latency_budget_ms"].default)


def api_env(
    triton_url: str, workdir: Path, batching: bool, budget_ms: float | None = None
) -> dict[str, str]:
    from api.flags.flagfile import write_default

    workdir.mkdir(parents=True, exist_ok=True)
    flag_file = workdir / "flags.json"
    write_default(flag_file)
    env = {
        "ROLE": "stream",
        "TRITON_URL": triton_url,
        "DATA_DIR": str(workdir / "data"),
        "FLAG_PROVIDER": "file",
        "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(flag_file),
        "LOG_LEVEL": "WARNING",
        "STREAM_MAX_SESSIONS": "256",
    }
    if not batching:
        env.update({"BATCH_MAX_SIZE": "1", "BATCH_MAX_INFLIGHT": "256"})
    # Always explicit, so a value in the caller's environment cannot change what a row means.
    env["STREAM_LATENCY_BUDGET_MS"] = f"{default_budget_ms() if budget_ms is None else budget_ms:g}"
    return env


# ---------------------------------------------------------------- WebSocket measurements


async def single_frame_latency(
    base_url: str, pipeline: str, jpegs: Sequence[bytes], duration_s: float, warmup: int = 3
) -> list[float]:
    """One session, one frame at a time: send, wait for its reply, send the next."""
    from websockets.asyncio.client import connect

    url = base_url.replace("http://", "ws://") + f"/ws/video/stream?pipeline_id={pipeline}"
    latencies: list[float] = []
    async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        started = time.perf_counter()
        k = 0
        while k < warmup + 5 or time.perf_counter() - started < duration_s:
            t0 = time.perf_counter()
            await ws.send(jpegs[k % len(jpegs)])
            while True:
                message = json.loads(await ws.recv())
                if message.get("frame_index") == k:
                    break
            if "result" not in message:
                raise RuntimeError(f"single-frame run got {message}")
            if k >= warmup:
                latencies.append(time.perf_counter() - t0)
            k += 1
    return latencies


async def ws_saturation(
    base_url: str,
    pipeline: str,
    jpegs: Sequence[bytes],
    sessions: int,
    total_fps: float,
    duration_s: float,
    warmup_s: float,
    cpu: GroupsCpu,
    metrics: bool = True,
) -> dict:
    """Open-loop load (api.loadtest.ws_load) for warmup_s + duration_s; throughput, latency and
    CPU are taken over the window [warmup_s, warmup_s + duration_s] of the send schedule."""
    from api.loadtest.ws_load import LoadConfig, WsLoad

    config = LoadConfig(
        url=base_url,
        pipeline=pipeline,
        sessions=sessions,
        fps=total_fps / sessions,
        duration_s=warmup_s + duration_s,
        drain_timeout_s=3.0,
        metrics_url=None if metrics else base_url + "/no-metrics",
    )
    load = WsLoad(config, jpegs)
    window: dict[str, float] = {}

    async def probe() -> None:
        while load.t0 == 0.0 or load.t0 > time.perf_counter() + 10:
            await asyncio.sleep(0.01)
        await asyncio.sleep(max(load.t0 + warmup_s - time.perf_counter(), 0))
        cpu.start()
        generator_started = time.process_time()  # this process is the load generator
        window["start"] = time.perf_counter() - load.t0
        await asyncio.sleep(max(load.t0 + warmup_s + duration_s - time.perf_counter(), 0))
        window["cpu_s"] = cpu.stop()
        window["generator_cpu_s"] = time.process_time() - generator_started
        window["end"] = time.perf_counter() - load.t0

    prober = asyncio.create_task(probe())
    report = await load.run()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(prober, timeout=max(warmup_s + duration_s, 1) + 30)
    start, end = window["start"], window["end"]
    latencies = []
    dropped = 0
    for r in load.records:
        for at, lat in zip(r.processed_at, r.latencies, strict=True):
            if start <= at < end:
                latencies.append(lat)
        dropped += sum(1 for at in r.dropped_at if start <= at < end)
    result_errors = sum(r.result_errors for r in load.records)
    return {
        "frames": len(latencies),
        "seconds": round(end - start, 3),
        "latency_ms": latency_summary(latencies),
        "dropped": dropped,
        "result_errors": result_errors,
        "cpu_s": round(window["cpu_s"], 3),
        "generator_cores": round(window["generator_cpu_s"] / max(end - start, 1e-9), 2),
        "offered_fps": round(total_fps, 2),
        "report": {
            k: report.get(k)
            for k in ("frames", "errors_by_code", "sessions", "schedule_lag_ms", "warnings")
        },
        "server": report.get("server", {}),
    }


def ws_row(key: str, name: str, m: dict, other_cores: float | None = None) -> Row:
    seconds = m["seconds"] or 1e-9
    frames = m["frames"]
    server = m.get("server", {})
    detail = {"ws_report": m["report"], "generator_cores": m.get("generator_cores")}
    batch_mean = _batch_size_mean(server)
    if batch_mean is not None:
        detail["batch_size_mean"] = batch_mean
    triton_ms = _triton_request_ms(server)
    if triton_ms is not None:
        detail["triton_request_ms_mean"] = triton_ms
    return Row(
        key=key,
        name=name,
        frames=frames,
        seconds=m["seconds"],
        frames_per_s=round(frames / seconds, 2),
        latency_ms=m["latency_ms"],
        cpu_s=m["cpu_s"],
        cpu_ms_per_frame=round(m["cpu_s"] / frames * 1000, 2) if frames else 0.0,
        offered_fps=m["offered_fps"],
        dropped=m["dropped"],
        result_errors=m["result_errors"],
        other_cores=other_cores,
        detail=detail,
    )


def best_row(key: str, name: str, runs: dict[int, Measurement]) -> Row:
    """A closed-loop row (a, b) from runs at several batch sizes: the fastest, with the others
    kept in its detail."""
    best = max(runs.values(), key=lambda m: m.frames_per_s)
    cpu_s = best.cpu.get("ours_cores", 0.0) * best.seconds
    detail = {
        "latency": "per request (batch)",
        "frames_per_s_by_batch": {b: m.frames_per_s for b, m in runs.items()},
    }
    if best.target == "triton":
        detail["server"] = best.server  # Triton's statistics over the window
    per_frame_ms = round(cpu_s / best.frames * 1000, 2) if best.frames else 0.0
    return Row(
        key, f"{name}, batch {best.batch}", best.frames, best.seconds, best.frames_per_s,
        best.latency_ms, round(cpu_s, 3), per_frame_ms, result_errors=best.frame_errors,
        other_cores=best.cpu.get("other_cores"), detail=detail,
    )  # fmt: skip


def _batch_size_mean(server: dict) -> float | None:
    value = (server.get("batch_size") or {}).get("mean")
    return round(float(value), 2) if isinstance(value, int | float) else None


def _triton_request_ms(server: dict) -> float | None:
    value = (server.get("triton_request_ms") or {}).get("mean")
    return round(float(value), 2) if isinstance(value, int | float) else None


# ---------------------------------------------------------------- the run


@dataclass
class BenchConfig:
    pipeline: str = "yolo_ocr"
    duration_s: float = 15.0
    warmup_s: float = 3.0
    sessions: int = 16
    batch: int = 8  # a and b
    concurrency: int = 2  # b
    overload_factor: float = 2.0  # offered / capacity for the saturation runs
    triton_url: str | None = None
    seed: int = 1000
    frames: int = 64
    rows: str = "abcde"
    bars: bool = True
    # Extra runs of row c at other latency budgets (ms, 0 = off), at the same offered load:
    # the latency / throughput trade-off the budget makes.
    budgets: tuple[float, ...] = (0.0, 150.0)


def _say(progress: Callable[[str], None] | None, text: str) -> None:
    if progress:
        progress(text)


@contextlib.contextmanager
def triton_server(url: str | None, workdir: Path) -> Iterator[str]:
    if url:
        yield url
        return
    from api.triton_server.embedded import EmbeddedTriton, TritonPorts

    server = EmbeddedTriton(
        workdir=workdir / "triton",
        ports=TritonPorts(grpc=free_port(), http=free_port(), metrics=free_port()),
    )
    try:
        server.start(timeout_s=300)
        yield server.grpc_url
    finally:
        server.stop()


def run_bench(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    from api.loadtest.perf_input import sample_jpegs

    jpegs = sample_jpegs(config.seed, config.frames)
    facts = machine_facts()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fg_bench_") as tmp:
        workdir = Path(tmp)
        with triton_server(config.triton_url, workdir) as url:
            result = _run(config, url, jpegs, workdir, progress)
    result["machine"] = facts
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _run(
    config: BenchConfig,
    url: str,
    jpegs: list[bytes],
    workdir: Path,
    progress: Callable[[str], None] | None,
) -> dict:
    from api.loadtest.inprocess import InProcessPipelines, instance_count, measure_pipeline
    from api.loadtest.triton_direct import measure_triton, server_version

    port = local_grpc_port(url)
    triton_group = find_triton_group(port) if port else None
    rows: dict[str, Row] = {}
    kind = config.pipeline
    batches = sorted({1, config.batch})
    if "a" in config.rows:
        # The limit: the same sessions and settings as the Triton models, one caller per
        # pipeline instance, the best of the batch sizes tried.
        callers = instance_count(kind)
        runs = {}
        for batch in batches:
            _say(progress, f"a: in-process ONNX Runtime, {callers} callers, batch {batch}")
            pipelines = [InProcessPipelines() for _ in range(callers)]
            runs[batch] = measure_pipeline(
                pipelines, kind, jpegs, batch, duration_s=config.duration_s
            )
        rows["a"] = best_row("a", f"in-process ORT, {callers} callers", runs)
        _say(progress, _line(rows["a"]))

    if "b" in config.rows:
        runs = {}
        for batch in batches:
            _say(progress, f"b: Triton direct, {config.concurrency} callers, batch {batch}")
            monitor = CpuMonitor(port)  # this process + Triton's group
            runs[batch] = asyncio.run(
                measure_triton(
                    url, f"pipeline_{kind}", jpegs, batch, config.concurrency,
                    duration_s=config.duration_s, monitor=monitor,
                )
            )  # fmt: skip
        rows["b"] = best_row("b", f"Triton direct, {config.concurrency} callers", runs)
        _say(progress, _line(rows["b"]))

    # The offered load of the saturation runs: overload_factor x the best of what a / b did.
    capacity = max([r.frames_per_s for r in rows.values()] or [20.0])
    offered = config.overload_factor * capacity
    bars: dict = {}

    def saturate(
        base: str, group: int, metrics: bool, total_fps: float, with_triton: bool = True
    ) -> tuple[dict, float | None]:
        cpu = GroupsCpu([group, triton_group] if with_triton else [group])
        other = OtherLoad([group, triton_group])
        other.start()
        m = asyncio.run(
            ws_saturation(
                base, kind, jpegs, config.sessions, total_fps, config.duration_s,
                config.warmup_s, cpu, metrics=metrics,
            )
        )  # fmt: skip
        return m, other.stop()

    def stack_row(key: str, name: str, batching: bool, budget_ms: float | None = None) -> None:
        """One run of the full stack (a fresh API process) at the offered load; row c also
        measures the latency bars on the same process."""
        nonlocal bars
        env = api_env(url, workdir / key, batching=batching, budget_ms=budget_ms)
        api = start_uvicorn(f"api_{key}", "api.main:app_factory", workdir / key, env)
        try:
            _say(progress, f"{key}: {name}, offered {offered:.1f} frames/s")
            m, oc = saturate(api.http, api.process.pid, True, offered)
            rows[key] = ws_row(key, name, m, oc)
            _say(progress, _line(rows[key]))
            if key == "c" and config.bars:
                bars = _bars(config, api, kind, jpegs, rows["c"], saturate, progress)
        finally:
            api.stop()

    if "c" in config.rows:
        stack_row("c", "full stack, batching on", batching=True)
        for budget in config.budgets:
            what = f"budget {budget:g} ms" if budget else "no latency budget"
            stack_row(f"c{budget:g}", f"full stack, batching on, {what}", True, budget)

    if "d" in config.rows:
        stack_row("d", "full stack, batching off (1 frame/request)", batching=False)

    if "e" in config.rows:
        naive = start_uvicorn(
            "naive", "api.loadtest.naive_gateway:app_factory", workdir / "e",
            {"NAIVE_WARM_PIPELINES": kind, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        try:
            _say(progress, f"e: naive gateway, offered {offered:.1f} frames/s")
            # ORT in the handler, no Triton: only the naive gateway's process group counts.
            m, oc = saturate(naive.http, naive.process.pid, False, offered, with_triton=False)
            rows["e"] = ws_row("e", "naive gateway (ORT in the handler)", m, oc)
            _say(progress, _line(rows["e"]))
        finally:
            naive.stop()

    versions = {"triton_url": url}
    with contextlib.suppress(Exception):
        versions["triton"] = asyncio.run(server_version(url))
    return {
        "schema": SCHEMA,
        "config": asdict(config),
        "versions": versions,
        "rows": {k: r.as_dict() for k, r in rows.items()},
        "ratios": ratios(rows),
        "bars": bars,
    }


def _bars(config, api, kind, jpegs, sat: Row, saturate, progress) -> dict:
    _say(progress, "c: single-frame latency (one session, one frame at a time)")
    single = asyncio.run(
        single_frame_latency(api.http, kind, jpegs, max(config.duration_s / 3, 2.0))
    )
    single_ms = {**latency_summary(single), "count": len(single)}
    rate = sat.frames_per_s
    _say(progress, f"c: half load, offered {rate / 2:.1f} frames/s")
    half_m, oc = saturate(api.http, api.process.pid, True, rate / 2)
    half = ws_row("c50", "full stack at 50% of saturation", half_m, oc)
    _say(progress, _line(half))
    _say(progress, f"c: 2x overload, offered {2 * rate:.1f} frames/s")
    over_m, oc = saturate(api.http, api.process.pid, True, 2 * rate)
    over = ws_row("c200", "full stack at 2x overload", over_m, oc)
    _say(progress, _line(over))
    half_batch_ms = half.detail.get("triton_request_ms_mean")
    over_batch_ms = over.detail.get("triton_request_ms_mean")
    p50 = single_ms["p50"]
    return {
        "single_frame_latency_ms": single_ms,
        "half_load": half.as_dict(),
        "overload": over.as_dict(),
        "overload_factor": round((over.offered_fps or 0) / rate, 2) if rate else None,
        "half_load_bar": bar(
            "p99 at 50% of saturation vs single-frame p50",
            half.latency_ms["p99"], p50, HALF_LOAD_BAR, explain_half_load(half, p50, half_batch_ms),
        ),
        "overload_bar": bar(
            "p99 of delivered results under 2x overload vs single-frame p50",
            over.latency_ms["p99"], p50, OVERLOAD_BAR,
            explain_overload(over, p50, over_batch_ms, default_budget_ms()),
        ),
    }  # fmt: skip


def _line(r: Row) -> str:
    return (
        f"  {r.key}: {r.frames_per_s:7.1f} frames/s  p99 {r.latency_ms['p99']:8.1f} ms  "
        f"cpu {r.cpu_ms_per_frame:6.1f} ms/frame  frames {r.frames}  dropped {r.dropped}  "
        f"errors {r.result_errors}"
    )


# ---------------------------------------------------------------- markdown


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: dict, command: str = "framegate bench run --write-docs") -> str:
    cfg, facts, rows = result["config"], result.get("machine", {}), result["rows"]
    lines = [
        f"{DOC_HEADING} — `framegate bench run`",
        "",
        "One run of `framegate bench run` (`api/loadtest/bench.py`): the same pipeline, frames and "
        "models through (a) in-process ONNX Runtime, (b) Triton directly, (c) the full WebSocket "
        "stack with gateway micro-batching, (d) the full stack with batching off "
        "(`BATCH_MAX_SIZE=1`, `BATCH_MAX_INFLIGHT=256`: one Triton request per frame; Triton's "
        "own dynamic batcher still merges requests that queue together) and (e) a "
        "deliberately naive gateway (`api/loadtest/naive_gateway.py`: ONNX Runtime run "
        "synchronously in the WebSocket handler, blocking the event loop, as the replaced system "
        "did). c–e are real uvicorn processes driven open loop by `api.loadtest.ws_load` "
        f"({cfg['sessions']} sessions, offered {cfg['overload_factor']}× the best of a/b so they "
        "saturate); a and b are closed loop, each the best of batch 1 and batch "
        f"{cfg['batch']} (a: one caller per Triton pipeline instance, each with its own ONNX "
        f"Runtime sessions and the CPU configs' settings; b: {cfg['concurrency']} gRPC callers). "
        "Throughput counts frames processed inside the "
        f"window ({cfg['warmup_s']} s warm-up excluded, then {cfg['duration_s']} s). p99 is per "
        "frame for c–e (send → result) and per request (batch) for a and b. CPU per frame = CPU "
        "seconds of the processes doing the work in the window (a: the benchmark process; "
        "b: the gRPC client + Triton's process group; c, d: the API process + Triton's group; "
        "e: the naive gateway process) / frames processed; the load generator (this benchmark "
        "process, open loop, on the same cores) is not counted in it but has its own column, as "
        f"does other people's load; the machine has {facts.get('nproc', '?')} cores. "
        f"Rows c and d run with the default latency budget (`STREAM_LATENCY_BUDGET_MS="
        f"{default_budget_ms():g}`: live frames that could only be answered later are dropped "
        "before inference, and the frames at Triton at once adapt to it); rows "
        + ", ".join(f"c{b:g}" for b in cfg.get("budgets", ()))
        + " repeat row c at other budgets (0 = off), same offered load: the latency / "
        "throughput trade-off the budget makes.",
        "",
        "```",
        f"$ {command}",
        "```",
        "",
        "| | |",
        "| --- | --- |",
        f"| date | {facts.get('date_utc', '?')} (run took {result.get('wall_s', '?')} s) |",
        f"| machine | nproc {facts.get('nproc', '?')}, {facts.get('cpu', '?')}, "
        f"{facts.get('platform', '?')} |",
        f"| versions | Python {facts.get('python', '?')}, ONNX Runtime "
        f"{facts.get('onnxruntime', '?')}, numpy {facts.get('numpy', '?')}, OpenCV "
        f"{facts.get('opencv', '?')}, tritonserver {result['versions'].get('triton', '?')} |",
        f"| pipeline | `{cfg['pipeline']}`; {cfg['frames']} synthetic JPEGs, seed {cfg['seed']} |",
        "",
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
    if result["ratios"]:
        lines += [
            "",
            "Ratios (frames/s above 1: c is faster; p99 and CPU per frame above 1: c is slower / "
            "costs more):",
            "",
            "| ratio | frames/s | p99 | CPU per frame | throughput bar |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, v in result["ratios"].items():
            lines.append(
                f"| {name} | {_fmt(v['frames_per_s'])} | {_fmt(v['p99_ms'])} "
                f"| {_fmt(v['cpu_ms_per_frame'])} "
                f"| {throughput_verdict(name, v['frames_per_s']) or '–'} |"
            )
    bars = result.get("bars") or {}
    if bars:
        single = bars["single_frame_latency_ms"]
        lines += [
            "",
            f"Latency bars for (c). Single-frame latency (one session, one frame at a time, "
            f"closed loop): p50 {single['p50']:.1f} ms, p99 {single['p99']:.1f} ms "
            f"({single.get('count', '')} frames). Both load runs use the same "
            f"{cfg['sessions']} sessions; a bar is met when p99 / single-frame p50 is at most its "
            "limit (`HALF_LOAD_BAR`, `OVERLOAD_BAR` in `api/loadtest/bench.py`).",
            "",
            "| bar | offered frames/s | frames/s | dropped | p99 ms | single-frame p50 ms "
            "| ratio | limit | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, run in (("half_load_bar", "half_load"), ("overload_bar", "overload")):
            b, r = bars[key], bars[run]
            verdict = "**met**" if b["met"] else f"**missed**: {b['why_missed']}"
            lines.append(
                f"| {b['name']} | {_fmt(r['offered_fps'], 1)} | {r['frames_per_s']:.1f} "
                f"| {r['dropped']} | {b['p99_ms']:.1f} | {b['single_frame_ms']:.1f} "
                f"| {_fmt(b['ratio'])} | ≤ {b['limit']} | {verdict} |"
            )
        lines.append("")
        lines.append(
            f"(The overload run offered {_fmt(bars.get('overload_factor'))}× the saturation "
            "rate; drops absorb the excess, so only delivered results have a latency.)"
        )
    return "\n".join(lines) + "\n"


def replace_last_section(doc: str, section: str) -> str:
    """Replace the document's last `## ` section (from its heading to the end) with `section`."""
    start = doc.rfind("\n## ")
    if start < 0:
        raise ValueError("the document has no ## section")
    return doc[: start + 1] + section


def write_docs(result: dict, path: Path, command: str) -> None:
    path.write_text(replace_last_section(path.read_text(), markdown(result, command)))
