"""api/loadtest/cpu.py against real processes: a busy child's CPU lands in its role, an idle one's
stays near zero, a tree's grandchild counts for the tree, reaped children count only when asked.
Orderings and ratios only: how fast this machine is, is not under test."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from api.core import processes
from api.loadtest.bench.stack import STUB, triton_roles
from api.loadtest.cpu import (
    CpuMonitor,
    CpuWindow,
    MachineTimes,
    WindowCpu,
    find_tritonserver,
    process_cpu_s,
    tree,
)
from tests.support.ports import free_port

# Each child prints READY once its interpreter has started, so a window opened after that sees
# none of the start-up work.
READY = "print('ready', flush=True)"
BUSY = f"{READY}\nwhile True: pass"
IDLE = f"import sys\n{READY}\nsys.stdin.read()"  # blocks until the test kills it
# Spawns a busy grandchild, then waits like IDLE.
PARENT = (
    "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
    f"{READY}\nsys.stdin.read()"
)
DEADLINE_S = 120.0
POLL_S = 0.02
BURN_S = 0.4  # CPU seconds a busy process is left to use inside a window

Spawn = Callable[[str], psutil.Popen]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python -c CODE` in its own process group and wait for its READY line; every tree
    is killed afterwards (`api/core/processes.py`)."""
    started: list[psutil.Popen] = []

    def start(code: str) -> psutil.Popen:
        p = processes.spawn(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        started.append(p)
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        return p

    yield start
    for p in started:
        processes.kill(p)
        for pipe in (p.stdin, p.stdout):
            if pipe is not None:
                pipe.close()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)


def _burn(process: psutil.Process, cpu_s: float) -> None:
    """Wait until `process` has used `cpu_s` more CPU seconds than now."""
    base = process_cpu_s(process) or 0.0
    _until(lambda: (process_cpu_s(process) or 0.0) >= base + cpu_s, "CPU to be used")


@pytest.mark.triton
def test_a_busy_child_is_attributed_and_an_idle_one_stays_near_zero(spawn: Spawn) -> None:
    busy, idle = spawn(BUSY), spawn(IDLE)
    window = CpuWindow({"busy": [busy], "idle": [idle]})
    window.start()
    _burn(busy, BURN_S)
    w = window.stop()
    assert w.by_role["busy"] >= BURN_S
    assert w.by_role["idle"] < 0.1 * w.by_role["busy"]
    assert w.ours_s == w.by_role["busy"] + w.by_role["idle"]
    assert w.machine_busy_s >= 0.9 * w.by_role["busy"]  # the machine saw that work too
    assert 0.0 <= w.idle_fraction <= 1.0


@pytest.mark.triton
def test_a_tree_counts_its_grandchildren(spawn: Spawn) -> None:
    parent = spawn(PARENT)
    _until(lambda: len(tree(parent)) == 2, "the grandchild to start")  # it prints nothing
    grandchild = tree(parent)[1]
    window = CpuWindow({"tree": tree(parent), "parent": [parent]})
    window.start()
    _burn(grandchild, BURN_S)
    w = window.stop()
    assert w.by_role["tree"] >= BURN_S
    assert w.by_role["parent"] < 0.1 * w.by_role["tree"]  # the work is the grandchild's


@pytest.mark.triton
def test_reaped_children_count_only_for_reaped_roles() -> None:
    me = [psutil.Process()]
    with_reaped, without = CpuWindow({"me": me}, reaped=("me",)), CpuWindow({"me": me})
    with_reaped.start()
    without.start()
    burn = f"import time\nwhile time.process_time() < {BURN_S}: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # waited for: reaped
    counted, not_counted = with_reaped.stop(), without.stop()
    # The child's own clock is exact; the times it is reaped with are in clock ticks.
    assert counted.by_role["me"] >= not_counted.by_role["me"] + 0.9 * BURN_S


@pytest.mark.triton
def test_a_process_gone_before_stop_counts_nothing_and_raises_nothing(spawn: Spawn) -> None:
    doomed = spawn(IDLE)
    window = CpuWindow({"doomed": [doomed]})
    window.start()
    processes.kill(doomed)
    doomed.wait(timeout=DEADLINE_S)  # reaped: a zombie's /proc entry would still give its times
    assert process_cpu_s(doomed) is None
    assert window.stop().by_role == {"doomed": 0.0}


def test_stop_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        CpuWindow({}).stop()


def test_machine_times_split_busy_from_idle() -> None:
    fields = {"user": 3.0, "nice": 0.5, "system": 1.0, "idle": 10.0, "iowait": 2.0, "irq": 0.25}
    fields |= {"softirq": 0.25, "steal": 1.0, "guest": 0.75, "guest_nice": 0.25}  # in user, nice
    assert MachineTimes.from_fields(fields) == MachineTimes(busy_s=6.0, idle_s=12.0)


def test_a_counter_that_steps_back_gives_no_negative_time() -> None:
    # Two reads seen in CI: the kernel's idle counter went back 10 ms between them, and busy
    # (then computed as total - idle) moved by float rounding alone.
    before = MachineTimes(busy_s=49139.390000000014, idle_s=18327.070000000003)
    after = MachineTimes(busy_s=49139.39, idle_s=18327.06)
    assert after.since(before) == MachineTimes(busy_s=0.0, idle_s=0.0)
    earlier, later = MachineTimes(busy_s=10.5, idle_s=4.25), MachineTimes(busy_s=12.0, idle_s=5.0)
    assert later.since(earlier) == MachineTimes(busy_s=1.5, idle_s=0.75)  # exact in binary


def test_other_cores_is_the_machine_minus_the_roles() -> None:
    w = WindowCpu(wall_s=2.0, by_role={"a": 1.0, "b": 0.5}, machine_busy_s=2.5, machine_idle_s=1.5)
    assert w.other_cores == 0.5 and w.machine_cores == 1.25
    assert w.idle_fraction == 1.5 / 4.0
    assert w.role_s(["a"]) == 1.0
    quiet = WindowCpu(wall_s=1.0, by_role={"a": 1.0}, machine_busy_s=0.9, machine_idle_s=1.1)
    assert quiet.other_cores == 0.0  # tick rounding never makes other load negative


def test_no_tritonserver_on_an_unused_port() -> None:
    assert find_tritonserver(free_port()) is None
    assert CpuMonitor(free_port()).triton is None


@pytest.mark.triton
def test_the_embedded_triton_is_found_and_its_stubs_grouped_per_model(triton) -> None:
    server = find_tritonserver(triton.ports.grpc)
    assert server is not None and CpuMonitor(triton.ports.grpc).triton == server
    roles = triton_roles(server)
    models = {role.removeprefix(STUB) for role in roles if role.startswith(STUB)}
    repository = Path(__file__).resolve().parents[2] / "triton_models"
    assert models == {p.parents[1].name for p in repository.glob("*/1/model.py")}
    assert roles["tritonserver"] == [server]
    stubs = [p for role, ps in roles.items() if role.startswith(STUB) for p in ps]
    assert {p.pid for p in stubs} == {p.pid for p in tree(server)[1:]}  # every child grouped


@pytest.mark.triton
def test_cpu_monitor_counts_triton_as_ours(triton) -> None:
    monitor = CpuMonitor(triton.ports.grpc)
    monitor.start()
    sample = monitor.stop()
    assert set(sample) == {"machine_cores", "ours_cores", "other_cores"}
    assert all(v >= 0 for v in sample.values())
