"""api/core/processes.py against real processes: stopping a tree (terminate, then kill), waiting,
a process already gone, dying with the parent, and who holds a port."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import psutil
import pytest

from api.core import processes
from api.core.polling import poll_until
from tests.support.ports import free_port

pytestmark = pytest.mark.triton  # real processes: the slow layer

DEADLINE_S = 30.0
SHORT_S = 0.5  # how long a process that ignores the signal is given: it never exits by itself

# Each script prints one line ("ready" or pids) once it is set up, then blocks until signalled.
IDLE = "import signal\nprint('ready', flush=True)\nsignal.pause()"
DEAF = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + IDLE
# A parent (default SIGTERM) whose child ignores SIGTERM; prints the child's pid.
PARENT_OF_DEAF = (
    "import signal, subprocess, sys\n"
    f"child = subprocess.Popen([sys.executable, '-c', {DEAF!r}], stdout=subprocess.PIPE)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "signal.pause()"
)
# Starts an idle grandchild through processes.spawn; prints its pid.
SPAWNER = (
    "import signal, subprocess, sys\n"
    "from api.core import processes\n"
    f"child = processes.spawn([sys.executable, '-c', {IDLE!r}], stdout=subprocess.PIPE, "
    "die_with_parent=sys.argv[1] == 'tied')\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "signal.pause()"
)
# A group (a leader and its child) that this script guards; prints both pids.
GUARDED = (
    "import signal, subprocess, sys\n"
    "from api.core import processes\n"
    f"leader = processes.spawn([sys.executable, '-c', {PARENT_OF_DEAF!r}],\n"
    "                          stdout=subprocess.PIPE)\n"
    "child = leader.stdout.readline().decode().strip()\n"
    "guard = processes.GroupGuard(leader.pid)\n"
    "print(leader.pid, child, flush=True)\n"
    "signal.pause()"
)
LISTENER = (
    "import signal, socket, sys\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "print('ready', flush=True)\n"
    "signal.pause()"
)

Start = Callable[..., tuple[psutil.Popen, str]]


@pytest.fixture
def start() -> Iterator[Start]:
    """`python -c CODE ARGS` and its first stdout line; afterwards every tree is killed, and the
    processes it reported (grandchildren that may have been orphaned) too."""
    started: list[psutil.Popen] = []
    reported: list[psutil.Process] = []

    def run(code: str, *args: str) -> tuple[psutil.Popen, str]:
        process = processes.spawn([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if line.isdigit():
            with contextlib.suppress(psutil.NoSuchProcess):
                reported.append(psutil.Process(int(line)))  # pid + start time: never a reuse
        return process, line

    yield run
    for process in [*started, *reported]:
        processes.kill(process)
    for process in started:
        process.stdout.close()


def gone(pid: int) -> bool:
    try:
        return not processes.alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def test_stop_terminates_the_process_then_kills_a_child_that_ignores_it(start: Start) -> None:
    parent, line = start(PARENT_OF_DEAF)
    child = int(line)
    stopped = processes.stop(parent, timeout_s=DEADLINE_S, leftover_timeout_s=SHORT_S)
    assert stopped == processes.Stopped(graceful=True, killed=(child,))
    assert parent.returncode == -signal.SIGTERM  # reaped
    assert gone(child)


def test_stop_kills_a_process_that_ignores_the_signal(start: Start) -> None:
    deaf, _ = start(DEAF)
    stopped = processes.stop(deaf, timeout_s=SHORT_S)
    assert stopped == processes.Stopped(graceful=False, killed=(deaf.pid,))
    assert deaf.returncode == -signal.SIGKILL


def test_stop_of_a_process_already_gone_is_no_error(start: Start) -> None:
    done, _ = start("print('ready')")
    done.wait(timeout=DEADLINE_S)
    assert processes.stop(done) == processes.Stopped(graceful=True, killed=())
    assert processes.tree(done) == []


def test_a_child_someone_else_reaped_is_recorded_as_exited(start: Start) -> None:
    # Triton's clean-up kills and reaps an orphaned stub that a test started: the test's Popen
    # must still learn it exited, or it warns "subprocess is still running" (a ResourceWarning,
    # an error in this suite) whenever it is collected.
    child, _ = start("print('ready'); import signal; signal.pause()")
    other = psutil.Process(child.pid)
    other.kill()
    other.wait(DEADLINE_S)  # reaped through another handle
    processes.kill(child)
    assert child.returncode is not None


def test_kill_takes_the_whole_tree_at_once(start: Start) -> None:
    parent, line = start(PARENT_OF_DEAF)
    stopped = processes.kill(parent)
    assert set(stopped.killed) == {parent.pid, int(line)}
    assert parent.returncode == -signal.SIGKILL and gone(int(line))


def test_wait_gone_returns_the_processes_still_alive(start: Start) -> None:
    idle, _ = start(IDLE)
    assert processes.wait_gone([idle], timeout_s=0.1) == [idle]
    idle.terminate()
    assert processes.wait_gone([idle], timeout_s=DEADLINE_S) == []


def test_a_tied_child_dies_when_its_parent_is_killed(start: Start) -> None:
    spawner, line = start(SPAWNER, "tied")
    spawner.kill()  # SIGKILL: no handler, no finally, nothing of ours runs
    poll_until(lambda: gone(int(line)), DEADLINE_S, what="the tied child to die with its parent")


def test_an_untied_child_outlives_its_killed_parent(start: Start) -> None:
    """The defect `die_with_parent` exists for: an orphan, re-parented, still running."""
    spawner, line = start(SPAWNER, "free")
    spawner.kill()
    spawner.wait(timeout=DEADLINE_S)
    orphan = psutil.Process(int(line))
    assert processes.alive(orphan) and orphan.ppid() != spawner.pid
    processes.kill(orphan)


def test_a_tied_child_dies_with_the_thread_that_started_it() -> None:
    """PR_SET_PDEATHSIG follows the starting thread: start long-lived children from the main
    thread (or one that outlives them)."""
    box: list[psutil.Popen] = []
    thread = threading.Thread(
        target=lambda: box.append(
            processes.spawn([sys.executable, "-c", IDLE], die_with_parent=True)
        )
    )
    thread.start()
    thread.join()
    (child,) = box
    try:
        assert child.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    finally:
        processes.kill(child)


def test_a_guarded_group_dies_when_its_owner_is_killed(start: Start) -> None:
    """Grandchildren PR_SET_PDEATHSIG cannot reach (here: the group's leader and its child)."""
    owner, line = start(GUARDED)
    members = [psutil.Process(int(pid)) for pid in line.split()]
    owner.kill()
    try:
        assert processes.wait_gone(members, DEADLINE_S) == []
    finally:
        for member in members:
            processes.kill(member)


def test_a_released_guard_kills_nothing(start: Start) -> None:
    idle, _ = start(IDLE)
    guard = processes.GroupGuard(idle.pid)
    guard.release()  # returns once its watchdog has exited
    assert processes.alive(idle)


def test_matching_finds_a_process_by_its_command_line(start: Start) -> None:
    marker = f"marker-{free_port()}"
    idle, _ = start(IDLE, marker)
    assert [p.pid for p in processes.matching(lambda argv: marker in argv)] == [idle.pid]
    assert processes.describe(idle).startswith(f"pid {idle.pid} ({sys.executable} -c ")


def test_require_free_names_the_process_on_the_port(start: Start) -> None:
    port = free_port()
    listener, _ = start(LISTENER, str(port))
    with pytest.raises(processes.PortInUse) as caught:
        processes.require_free("127.0.0.1", port, "Triton gRPC")
    message = str(caught.value)
    assert message.startswith(f"Triton gRPC port {port} on 127.0.0.1 is in use by pid ")
    assert f"pid {listener.pid} ({sys.executable} -c " in message
    assert processes.listener(port) == listener


def test_a_port_in_time_wait_is_free() -> None:
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection enters TIME_WAIT
    client.close()
    server.close()
    poll_until(
        lambda: any(
            c.laddr.port == port and c.status == psutil.CONN_TIME_WAIT
            for c in psutil.net_connections(kind="tcp")
        ),
        DEADLINE_S,
        what="a TIME_WAIT socket on the port",
    )
    assert not processes.port_in_use("127.0.0.1", port)
    processes.require_free("127.0.0.1", port, "API")
