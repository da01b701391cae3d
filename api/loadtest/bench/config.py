"""What one `framegate bench run` measures."""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "framegate.bench/2"
DEFAULT_PIPELINES = ("yolo", "yolo_ocr")
ROWS = "abcde"


@dataclass
class BenchConfig:
    pipelines: tuple[str, ...] = DEFAULT_PIPELINES  # each with its own rows, ratios and bars
    duration_s: float = 15.0
    warmup_s: float = 3.0
    sessions: int = 16
    batch: int = 8  # a and b
    concurrency: int = 2  # b
    overload_factor: float = 2.0  # offered / capacity for the saturation runs
    triton_url: str | None = None
    seed: int = 1000
    frames: int = 64
    rows: str = ROWS
    bars: bool = True  # the latency bars of row c
    health: bool = True  # /health under 8 closed-loop sessions, on row c's gateway
    # Extra runs of row c at other latency budgets (ms, 0 = off), at the same offered load:
    # the latency / throughput trade-off the budget makes.
    budgets: tuple[float, ...] = (0.0, 150.0)
