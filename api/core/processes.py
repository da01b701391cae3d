"""Child processes for the local stack, the tests and the benchmark, with psutil: start one (in
its own process group, optionally tied to this process's life), find a process tree, stop it
(signal, wait, SIGKILL what is left), find who listens on a port.

The one implementation: `framegate up|triton`, `framegate drill`, the benchmark and the test
fixtures all start and stop processes here. The gateway itself never imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from api.core.polling import PollTimeout, poll_until

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LEFTOVER_TIMEOUT_S = 5.0
WAIT_POLL_S = 0.05
_GONE = (psutil.NoSuchProcess, psutil.AccessDenied)  # ZombieProcess is a NoSuchProcess
# Loaded before any fork: after fork() in a threaded parent the child may only call what is
# already resolved (no dlopen, no malloc lock).
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None

Output = int | IO[Any] | None


class PortInUse(RuntimeError):
    """A port this process needs is held by another process; the message names both."""


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: Output = subprocess.DEVNULL,
    stdout: Output = None,
    stderr: Output = None,
    die_with_parent: bool = False,
    niceness: int = 0,
    default_sigint: bool = False,
) -> psutil.Popen:
    """Start `command` in a new session (its own process group: a Ctrl-C meant for us does not
    reach it). `die_with_parent`: the kernel SIGKILLs it when the *thread* calling this exits
    (PR_SET_PDEATHSIG), so call it from the main thread or one that lives as long as the
    child should. `default_sigint`: SIGINT back to its default action (a shell without job
    control starts background jobs with it ignored, and children inherit that)."""
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec
        if default_sigint:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        if niceness:
            os.nice(niceness)
        if die_with_parent:
            assert _LIBC is not None
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
                os._exit(1)

    needs_setup = die_with_parent or niceness or default_sigint
    return psutil.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=setup if needs_setup else None,
    )


# The watchdog of a process group: it blocks reading its stdin (a pipe only we hold) and, unless
# we wrote "disarm" before closing it, SIGKILLs the group once the pipe closes, i.e. when we die.
_WATCHDOG = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "if sys.stdin.buffer.read() != b'disarm':\n"
    "    try:\n"
    "        os.killpg(int(sys.argv[1]), signal.SIGKILL)\n"
    "    except ProcessLookupError:\n"
    "        pass\n"
)
DISARM = b"disarm"


class GroupGuard:
    """SIGKILLs the process group `pgid` when this process dies, however it dies: a tiny watchdog
    process (not tied to us) that waits for its pipe from us to close. For grandchildren that
    PR_SET_PDEATHSIG cannot reach, such as a tritonserver's Python stubs, which do not always
    exit when their server is killed. `release()` disarms it."""

    def __init__(self, pgid: int) -> None:
        self._watchdog: psutil.Popen | None = spawn(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(pgid)], stdin=subprocess.PIPE
        )

    def release(self, timeout_s: float = LEFTOVER_TIMEOUT_S) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            watchdog.stdin.write(DISARM)
        with contextlib.suppress(BrokenPipeError):
            watchdog.stdin.close()
        if wait_gone([watchdog], timeout_s):
            kill(watchdog)


def tree(process: psutil.Process) -> list[psutil.Process]:
    """The process and its live descendants; [] once it is gone."""
    try:
        return [process, *process.children(recursive=True)]
    except _GONE:
        return []


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (psutil compares the start time, so a reused pid is not it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except _GONE:
        return False


def wait_gone(processes: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait up to `timeout_s` for the processes to exit; the ones still alive. Our own children
    are reaped; a zombie that is not ours counts as gone (its parent reaps it, or never does)."""
    pending = list(processes)

    def all_exited() -> bool:
        pending[:] = [p for p in pending if not _exited(p)]
        return not pending

    with contextlib.suppress(PollTimeout):  # the survivors are the answer, not an error
        poll_until(all_exited, timeout_s, interval_s=WAIT_POLL_S, what="the processes to exit")
    return pending


def _exited(process: psutil.Process) -> bool:
    if isinstance(process, psutil.Popen):
        # subprocess's own poll(): reaps our child, and records an exit that someone else reaped
        # (ECHILD) instead of leaving the Popen "still running" for ever.
        return process.poll() is not None
    try:
        process.wait(timeout=0)  # reaps our child; returns at once for a process that is gone
        return True
    except psutil.TimeoutExpired:
        pass
    # Someone else's zombie is gone: its parent reaps it, or never does.
    return not alive(process)


@dataclass(frozen=True, slots=True)
class Stopped:
    graceful: bool  # the process exited on the first signal within the timeout
    killed: tuple[int, ...]  # pids that had to be SIGKILLed (the process and/or its descendants)


def stop(
    process: psutil.Process,
    *,
    sig: int = signal.SIGTERM,
    timeout_s: float = 10.0,
    leftover_timeout_s: float = LEFTOVER_TIMEOUT_S,
) -> Stopped:
    """Send `sig` to the process and wait `timeout_s` for it; SIGKILL it if it is still there.
    Its descendants (taken before the signal: they are re-parented once it exits, and again
    before a kill) get `leftover_timeout_s` more, then whatever is left is SIGKILLed. A process
    already gone is no error. Our own child is reaped."""
    members = tree(process)
    descendants = {p.pid: p for p in members[1:]}
    graceful, killed = True, []
    with contextlib.suppress(*_GONE):
        process.send_signal(sig)
    if wait_gone([process], timeout_s):
        graceful = False
        descendants.update({p.pid: p for p in tree(process)[1:]})
        with contextlib.suppress(*_GONE):
            process.kill()
            killed.append(process.pid)
        wait_gone([process], leftover_timeout_s)
    for leftover in wait_gone(descendants.values(), leftover_timeout_s):
        with contextlib.suppress(*_GONE):
            leftover.kill()
            killed.append(leftover.pid)
    wait_gone((p for p in descendants.values() if p.pid in killed), leftover_timeout_s)
    return Stopped(graceful, tuple(killed))


def kill(process: psutil.Process, timeout_s: float = LEFTOVER_TIMEOUT_S) -> Stopped:
    """SIGKILL the process and its whole tree at once, and wait for them."""
    # A child of ours already gone (someone else reaped it) is still waited for: that records
    # its exit in the Popen, which would otherwise warn "still running" when collected.
    members = tree(process) or [process]
    for member in members:
        with contextlib.suppress(*_GONE):
            member.kill()
    wait_gone(members, timeout_s)
    return Stopped(False, tuple(p.pid for p in members))


def matching(predicate: Callable[[Sequence[str]], bool]) -> list[psutil.Process]:
    """Live processes (ours to see) whose command line satisfies `predicate`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info.get("cmdline") or ()
        if argv and process.pid != os.getpid() and predicate(argv) and alive(process):
            found.append(process)
    return found


def describe(process: psutil.Process, width: int = 120) -> str:
    """`pid 123 (python3 -m http.server 8002)`; the name alone when the command line is hidden."""
    try:
        command = " ".join(process.cmdline()) or process.name()
    except _GONE:
        command = "exited"
    if len(command) > width:
        command = command[: width - 1] + "…"
    return f"pid {process.pid} ({command})"


def listener(port: int) -> psutil.Process | None:
    """The process listening on TCP `port` (any address); None when nobody is, or when the socket
    belongs to a process this user cannot see."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            with contextlib.suppress(*_GONE):
                return psutil.Process(c.pid)
    return None


def port_in_use(host: str, port: int) -> bool:
    """Someone listens on `host:port`. SO_REUSEADDR as servers use it: a socket that a previous
    run left in TIME_WAIT does not count."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick), for a server about to start."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def require_free(host: str, port: int, what: str) -> None:
    """Raise `PortInUse` naming the port and the process holding it."""
    if not port_in_use(host, port):
        return
    owner = listener(port)
    holder = describe(owner) if owner is not None else "a process this user cannot see"
    raise PortInUse(f"{what} port {port} on {host} is in use by {holder}")
