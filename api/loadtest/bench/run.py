"""Running `framegate bench run`: one Triton for the whole run, then for each pipeline its rows
a..e one after the other (each WebSocket row on a fresh gateway process)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from api.loadtest import event_loop
from api.loadtest.bench.bars import (
    HALF_LOAD_BAR,
    OVERLOAD_BAR,
    bar,
    explain_half_load,
    explain_overload,
    health_bar,
    ratios,
)
from api.loadtest.bench.config import SCHEMA, BenchConfig
from api.loadtest.bench.health import SESSIONS, health_under_load
from api.loadtest.bench.procs import (
    Subprocess,
    api_env,
    default_budget_ms,
    start_gateway,
    start_uvicorn,
    triton_server,
)
from api.loadtest.bench.rows import Row, best_row, progress_line, ws_row
from api.loadtest.bench.stack import cpu_fields, stack_roles
from api.loadtest.bench.ws_runs import single_frame_latency, ws_saturation
from api.loadtest.cpu import CpuMonitor, CpuWindow, find_tritonserver
from api.loadtest.measure import latency_summary, local_grpc_port, machine_facts

Progress = Callable[[str], None]
FALLBACK_CAPACITY_FPS = 20.0  # offered-load base when neither a nor b ran


def run_bench(config: BenchConfig, progress: Progress | None = None) -> dict:
    from api.loadtest.perf_input import sample_jpegs
    from api.loadtest.triton_direct import server_version

    jpegs = sample_jpegs(config.seed, config.frames)
    facts = machine_facts()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="fg_bench_") as tmp,
        triton_server(config.triton_url, Path(tmp)) as url,
    ):
        port = local_grpc_port(url)
        triton = find_tritonserver(port) if port else None  # None: a remote Triton, not counted
        pipelines = {
            kind: PipelineBench(config, kind, url, triton, jpegs, Path(tmp) / kind, progress).run()
            for kind in config.pipelines
        }
        versions = {"triton_url": url}
        with contextlib.suppress(Exception):  # the version is a label, not a measurement
            versions["triton"] = asyncio.run(server_version(url))
    return {
        "schema": SCHEMA,
        "config": asdict(config),
        "versions": versions,
        "machine": facts,
        "wall_s": round(time.monotonic() - started, 1),
        "pipelines": pipelines,
    }


@dataclass
class PipelineBench:
    """Rows a..e (and row c's latency bars and /health run) for one pipeline."""

    config: BenchConfig
    kind: str
    url: str
    triton: psutil.Process | None
    jpegs: list[bytes]
    workdir: Path
    progress: Progress | None = None
    rows: dict[str, Row] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(f"[{self.kind}] {text}")

    def run(self) -> dict:
        wanted = self.config.rows
        if "a" in wanted:
            self.row_a()
        if "b" in wanted:
            self.row_b()
        # The offered load of the saturation runs: overload_factor x the best of what a / b did.
        capacity = max([r.frames_per_s for r in self.rows.values()] or [FALLBACK_CAPACITY_FPS])
        offered = self.config.overload_factor * capacity
        bars: dict = {}
        health: dict | None = None
        if "c" in wanted:
            with self.gateway("c", batching=True) as api:
                self.saturation_row("c", "full stack, batching on", api, offered)
                if self.config.bars:
                    bars = self.latency_bars(api)
                if self.config.health:
                    health = self.health(api)
            for budget in self.config.budgets:
                key = f"c{budget:g}"
                what = f"budget {budget:g} ms" if budget else "no latency budget"
                with self.gateway(key, batching=True, budget_ms=budget) as api:
                    self.saturation_row(key, f"full stack, batching on, {what}", api, offered)
        if "d" in wanted:
            with self.gateway("d", batching=False) as api:
                name = "full stack, batching off (1 frame/request)"
                self.saturation_row("d", name, api, offered)
        if "e" in wanted:
            self.row_e(offered)
        return {
            "rows": {k: r.as_dict() for k, r in self.rows.items()},
            "ratios": ratios(self.rows),
            "bars": bars,
            "health": health,
        }

    def row_a(self) -> None:
        """The limit: the Triton models' sessions and settings in this process, one caller per
        pipeline instance, the best of the batch sizes tried."""
        from api.loadtest.inprocess import InProcessPipelines, instance_count, measure_pipeline

        callers = instance_count(self.kind)
        runs = {}
        for batch in self._batches():
            self.say(f"a: in-process ONNX Runtime, {callers} callers, batch {batch}")
            pipelines = [InProcessPipelines() for _ in range(callers)]
            runs[batch] = measure_pipeline(
                pipelines, self.kind, self.jpegs, batch, duration_s=self.config.duration_s
            )
        self._keep(best_row("a", f"in-process ORT, {callers} callers", runs))

    def row_b(self) -> None:
        from api.loadtest.triton_direct import measure_triton

        port = local_grpc_port(self.url)
        concurrency = self.config.concurrency
        runs = {}
        for batch in self._batches():
            self.say(f"b: Triton direct, {concurrency} callers, batch {batch}")
            runs[batch] = event_loop.run(
                measure_triton(
                    self.url, f"pipeline_{self.kind}", self.jpegs, batch, concurrency,
                    duration_s=self.config.duration_s, monitor=CpuMonitor(port),
                )
            )  # fmt: skip
        self._keep(best_row("b", f"Triton direct, {concurrency} callers", runs))

    def row_e(self, offered: float) -> None:
        naive = start_uvicorn(
            "naive", "api.loadtest.naive_gateway:app_factory", self.workdir / "e",
            {"NAIVE_WARM_PIPELINES": self.kind, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        try:
            # ORT in the handler, no Triton: only the naive gateway's processes count.
            name = "naive gateway (ORT in the handler)"
            self.saturation_row("e", name, naive, offered, with_triton=False, metrics=False)
        finally:
            naive.stop()

    @contextlib.contextmanager
    def gateway(
        self, key: str, batching: bool, budget_ms: float | None = None
    ) -> Iterator[Subprocess]:
        """A fresh API process for one row, stopped on the way out."""
        workdir = self.workdir / key
        env = api_env(self.url, workdir, batching=batching, budget_ms=budget_ms)
        api = start_gateway(f"api_{key}", workdir, env)
        try:
            yield api
        finally:
            api.stop()

    def saturation_row(
        self,
        key: str,
        name: str,
        server: Subprocess,
        offered: float,
        with_triton: bool = True,
        metrics: bool = True,
    ) -> Row:
        self.say(f"{key}: {name}, offered {offered:.1f} frames/s")
        row = ws_row(key, name, self._saturate(server, offered, with_triton, metrics))
        self._keep(row)
        return row

    def _saturate(
        self, server: Subprocess, total_fps: float, with_triton: bool = True, metrics: bool = True
    ) -> dict:
        # Every role is in the window even when the row does not use Triton, so Triton's own
        # idle load never counts as other people's.
        window = CpuWindow(lambda: stack_roles(server.process.pid, self.triton))
        cfg = self.config
        m, cpu = event_loop.run(
            ws_saturation(
                server.http, self.kind, self.jpegs, cfg.sessions, total_fps, cfg.duration_s,
                cfg.warmup_s, window, metrics=metrics,
            )
        )  # fmt: skip
        return {**m, **cpu_fields(cpu, m["frames"], with_triton)}

    def latency_bars(self, api: Subprocess) -> dict:
        """Row c's latency at half and twice its saturation rate against one frame at a time."""
        self.say("c: single-frame latency (one session, one frame at a time)")
        duration = max(self.config.duration_s / 3, 2.0)
        single = event_loop.run(single_frame_latency(api.http, self.kind, self.jpegs, duration))
        single_ms = {**latency_summary(single), "count": len(single)}
        rate = self.rows["c"].frames_per_s
        self.say(f"c: half load, offered {rate / 2:.1f} frames/s")
        half = ws_row("c50", "full stack at 50% of saturation", self._saturate(api, rate / 2))
        self.say(progress_line(half))
        self.say(f"c: 2x overload, offered {2 * rate:.1f} frames/s")
        over = ws_row("c200", "full stack at 2x overload", self._saturate(api, 2 * rate))
        self.say(progress_line(over))
        p50 = single_ms["p50"]
        half_ms = half.detail.get("triton_request_ms_mean")
        over_ms = over.detail.get("triton_request_ms_mean")
        return {
            "single_frame_latency_ms": single_ms,
            "half_load": half.as_dict(),
            "overload": over.as_dict(),
            "overload_factor": round((over.offered_fps or 0) / rate, 2) if rate else None,
            "half_load_bar": bar(
                "p99 at 50% of saturation vs single-frame p50",
                half.latency_ms["p99"], p50, HALF_LOAD_BAR, explain_half_load(half, p50, half_ms),
            ),
            "overload_bar": bar(
                "p99 of delivered results under 2x overload vs single-frame p50",
                over.latency_ms["p99"], p50, OVERLOAD_BAR,
                explain_overload(over, p50, over_ms, default_budget_ms()),
            ),
        }  # fmt: skip

    def health(self, api: Subprocess) -> dict:
        self.say(f"c: /health with {SESSIONS} sessions streaming flat out")
        result = event_loop.run(health_under_load(api.http, self.kind, self.jpegs))
        result["bar"] = health_bar(result["latency_ms"]["p99"], result["requests"])
        lat = result["latency_ms"]
        self.say(f"  /health p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms")
        return result

    def _batches(self) -> list[int]:
        return sorted({1, self.config.batch})

    def _keep(self, row: Row) -> None:
        self.rows[row.key] = row
        self.say(progress_line(row))
