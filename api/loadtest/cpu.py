"""CPU accounting for the benchmarks, with psutil: CPU seconds per named set of processes over a
window, the machine's busy and idle time over the same window, and the process trees involved
(a local tritonserver and its Python stubs are its descendants).

The one implementation: the closed-loop rows (`CpuMonitor`), the full-stack rows (`CpuWindow` per
process role) and `framegate bench wait-quiet` all count CPU here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import psutil

TRITONSERVER_BINARY = "tritonserver"
GRPC_PORT_FLAG = "--grpc-port="
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied)  # ZombieProcess is a NoSuchProcess

Roles = Mapping[str, Sequence[psutil.Process]]


def process_cpu_s(process: psutil.Process, reaped: bool = False) -> float | None:
    """User + system CPU seconds of a live process (with `reaped`: also of the children it has
    waited for, e.g. a finished perf_analyzer); None once it is gone."""
    try:
        t = process.cpu_times()
    except _GONE:
        return None
    own = t.user + t.system
    return own + t.children_user + t.children_system if reaped else own


def tree(process: psutil.Process) -> list[psutil.Process]:
    """The process and all its live descendants."""
    try:
        return [process, *process.children(recursive=True)]
    except _GONE:
        return []


def cmdline(process: psutil.Process) -> tuple[str, ...]:
    try:
        return tuple(process.cmdline())
    except _GONE:
        return ()


def find_tritonserver(grpc_port: int) -> psutil.Process | None:
    """The local tritonserver serving gRPC on `grpc_port` (`nice` execs it: same process)."""
    flag = f"{GRPC_PORT_FLAG}{grpc_port}"
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info.get("cmdline") or ()
        if argv and argv[0].endswith(TRITONSERVER_BINARY) and flag in argv:
            return process
    return None


@dataclass(frozen=True)
class MachineTimes:
    """CPU seconds all cores spent busy and idle since boot."""

    busy_s: float
    idle_s: float

    @classmethod
    def now(cls) -> MachineTimes:
        return cls.from_fields(psutil.cpu_times()._asdict())

    @classmethod
    def from_fields(cls, fields: Mapping[str, float]) -> MachineTimes:
        # guest time is already counted in user / nice; iowait is a core with nothing to run.
        # busy is summed from its own fields, not total - idle: a subtraction carries idle's
        # wobble and float rounding into busy.
        idle_keys = ("idle", "iowait")
        busy = sum(v for k, v in fields.items() if k not in (*idle_keys, "guest", "guest_nice"))
        return cls(busy_s=busy, idle_s=sum(fields.get(k, 0.0) for k in idle_keys))

    def since(self, earlier: MachineTimes) -> MachineTimes:
        """Time spent between two samples. Linux's idle and iowait counters can step back a tick
        between reads (proc(5): iowait is unreliable; NOHZ idle is estimated), so a delta is never
        negative."""
        return MachineTimes(
            busy_s=max(self.busy_s - earlier.busy_s, 0.0),
            idle_s=max(self.idle_s - earlier.idle_s, 0.0),
        )


@dataclass(frozen=True)
class WindowCpu:
    """What one window measured: CPU seconds per role and the machine's time over its wall time."""

    wall_s: float
    by_role: dict[str, float]
    machine_busy_s: float
    machine_idle_s: float

    def role_s(self, roles: Collection[str]) -> float:
        return sum(v for k, v in self.by_role.items() if k in roles)

    @property
    def ours_s(self) -> float:
        return sum(self.by_role.values())

    def cores(self, cpu_s: float) -> float:
        return cpu_s / max(self.wall_s, 1e-9)

    @property
    def machine_cores(self) -> float:
        return self.cores(self.machine_busy_s)

    @property
    def other_cores(self) -> float:
        """Busy time of processes in no role: other people's work on a shared machine."""
        return self.cores(max(self.machine_busy_s - self.ours_s, 0.0))

    @property
    def idle_fraction(self) -> float:
        """The share of all cores' time that was idle (0..1)."""
        total = self.machine_busy_s + self.machine_idle_s
        return self.machine_idle_s / total if total > 0 else 0.0


@dataclass(frozen=True)
class _Mark:
    wall: float
    machine: MachineTimes
    cpu: dict[tuple[str, int], float]


class CpuWindow:
    """CPU seconds of each role's processes between start() and stop(). Roles are resolved at
    start(); a process gone by stop() counts what it had used by start() only (its last seconds
    are lost, so roles should be long-lived processes)."""

    def __init__(self, roles: Roles | Callable[[], Roles], reaped: Collection[str] = ()) -> None:
        self._resolve = roles if callable(roles) else (lambda: roles)
        self.reaped = frozenset(reaped)  # roles that also count children they have waited for
        self._roles: Roles = {}
        self._start: _Mark | None = None

    def _mark(self) -> _Mark:
        cpu = {}
        for role, processes in self._roles.items():
            for process in processes:
                value = process_cpu_s(process, reaped=role in self.reaped)
                if value is not None:
                    cpu[(role, process.pid)] = value
        return _Mark(time.monotonic(), MachineTimes.now(), cpu)

    def start(self) -> None:
        self._roles = self._resolve()
        self._start = self._mark()

    def stop(self) -> WindowCpu:
        if self._start is None:
            raise RuntimeError("CpuWindow.stop() before start()")
        start, end = self._start, self._mark()
        by_role = dict.fromkeys(self._roles, 0.0)
        for key, value in end.cpu.items():
            if key in start.cpu:
                by_role[key[0]] += max(value - start.cpu[key], 0.0)
        machine = end.machine.since(start.machine)
        return WindowCpu(
            wall_s=end.wall - start.wall,
            by_role=by_role,
            machine_busy_s=machine.busy_s,
            machine_idle_s=machine.idle_s,
        )


class CpuMonitor:
    """Splits the machine's CPU use over a measurement window into ours (this process, the
    children it has reaped, e.g. perf_analyzer, and the local Triton with its stubs) and the
    rest: other people's work on a shared machine, reported as `other_cores` (0 when quiet)."""

    def __init__(self, triton_grpc_port: int | None = None) -> None:
        self.triton = find_tritonserver(triton_grpc_port) if triton_grpc_port else None
        self._window = CpuWindow(self._roles, reaped=("self",))

    def _roles(self) -> Roles:
        return {"self": [psutil.Process()], "triton": tree(self.triton) if self.triton else []}

    def start(self) -> None:
        self._window.start()

    def stop(self) -> dict[str, float]:
        w = self._window.stop()
        return {
            "machine_cores": round(w.machine_cores, 2),
            "ours_cores": round(w.cores(w.ours_s), 2),
            "other_cores": round(w.other_cores, 2),
        }


def wait_for_quiet(
    max_other_cores: float = 0.3,
    sample_s: float = 10.0,
    timeout_s: float = 1800.0,
    triton_grpc_port: int | None = None,
    on_sample: Callable[[dict[str, float]], None] | None = None,
) -> tuple[bool, dict[str, float]]:
    """Sample the machine until a whole `sample_s` window has at most `max_other_cores` of other
    people's load, or `timeout_s` passes: (quiet, last sample)."""
    monitor = CpuMonitor(triton_grpc_port)
    deadline = time.monotonic() + timeout_s
    while True:
        monitor.start()
        time.sleep(sample_s)  # the sampling window itself, not a synchronisation
        sample = monitor.stop()
        if on_sample:
            on_sample(sample)
        if sample["other_cores"] <= max_other_cores:
            return True, sample
        if time.monotonic() >= deadline:
            return False, sample
