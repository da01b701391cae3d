"""What `EmbeddedTriton.start` does with its work dir before any tritonserver runs: backend files
replaced atomically, one owner at a time, leftovers of an earlier owner stopped and removed, and
a busy port reported with the process holding it. No Triton is started here."""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from api.core import processes
from api.triton_server.embedded import (
    SHM_DIR,
    SHM_LIST_NAME,
    SHM_PREFIX,
    STUB_NAME,
    EmbeddedTriton,
    TritonStartError,
    install,
)
from tests.support.ports import free_ports

pytestmark = pytest.mark.triton  # real processes: the slow layer

CAT, TRUE = shutil.which("cat"), shutil.which("true")
HOLD_LOCK = (
    "import fcntl, signal, sys\n"
    "f = open(sys.argv[1], 'a+')\n"
    "fcntl.flock(f, fcntl.LOCK_EX)\n"
    "f.write('4242\\n'); f.flush()\n"
    "print('ready', flush=True)\n"
    "signal.pause()"
)
LISTEN = (
    "import signal, socket, sys\n"
    "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
    "print('ready', flush=True)\n"
    "signal.pause()"
)

Run = Callable[..., psutil.Popen]


@pytest.fixture
def run() -> Iterator[Run]:
    """A background process (waited for until it prints a line, when `ready`); all killed
    afterwards."""
    started: list[psutil.Popen] = []

    def start(*command: str | Path, ready: bool = True) -> psutil.Popen:
        process = processes.spawn(
            [str(c) for c in command], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        started.append(process)
        if ready:
            assert process.stdout is not None and process.stdout.readline()
        return process

    yield start
    for process in started:
        processes.kill(process)
        for pipe in (process.stdin, process.stdout):
            pipe.close()


def test_copying_over_a_running_binary_fails_and_install_replaces_it(
    tmp_path: Path, run: Run
) -> None:
    target = tmp_path / STUB_NAME
    shutil.copy2(CAT, target)
    running = run(target, ready=False)  # `cat` blocked on its stdin: the binary is executing
    with pytest.raises(OSError) as caught:
        shutil.copy2(TRUE, target)  # what the previous start did: "Text file busy"
    assert caught.value.errno == errno.ETXTBSY
    install(Path(TRUE), target)
    assert target.read_bytes() == Path(TRUE).read_bytes()
    assert processes.alive(running)  # the old binary keeps running from its own inode
    assert not [p for p in tmp_path.iterdir() if p != target]  # no temp file left


def test_install_leaves_an_identical_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    install(Path(CAT), target)
    inode = target.stat().st_ino
    install(Path(CAT), target)
    assert target.stat().st_ino == inode


def test_a_work_dir_held_by_a_live_owner_is_refused(tmp_path: Path, run: Run) -> None:
    triton = EmbeddedTriton(workdir=tmp_path / "triton", ports=free_ports())
    triton.workdir.mkdir()
    run(sys.executable, "-c", HOLD_LOCK, triton.workdir / "triton.lock")
    with pytest.raises(TritonStartError) as caught:
        triton.start(timeout_s=1)
    assert str(caught.value) == f"{triton.workdir} is in use by another framegate (pid 4242)"


def test_a_foreign_process_on_a_triton_port_is_named(tmp_path: Path, run: Run) -> None:
    ports = free_ports()
    listener = run(sys.executable, "-c", LISTEN, str(ports.http))
    triton = EmbeddedTriton(workdir=tmp_path / "triton", ports=ports)
    with pytest.raises(TritonStartError) as caught:
        triton.start(timeout_s=1)
    assert str(caught.value).startswith(
        f"Triton HTTP port {ports.http} on 127.0.0.1 is in use by pid {listener.pid} "
        f"({sys.executable} -c "
    )
    assert not triton.running and not (triton.workdir / "triton.log").exists()


def test_start_first_stops_the_stubs_and_frees_the_memory_an_earlier_owner_left(
    tmp_path: Path, run: Run
) -> None:
    ports = free_ports()
    triton = EmbeddedTriton(workdir=tmp_path / "triton", ports=ports)
    stub = triton.backends / "python" / STUB_NAME
    stub.parent.mkdir(parents=True)
    shutil.copy2(CAT, stub)
    orphan = run(stub, ready=False)  # an orphaned stub: this work dir's stub binary, running
    region = SHM_DIR / f"{SHM_PREFIX}test-{uuid.uuid4()}"
    region.write_bytes(b"\0")
    (triton.workdir / SHM_LIST_NAME).write_text(f"{region.name}\n")
    # A busy port makes this start fail right after the clean-up, before any tritonserver runs.
    run(sys.executable, "-c", LISTEN, str(ports.grpc))
    try:
        with pytest.raises(TritonStartError, match="is in use by"):
            triton.start(timeout_s=1)
        assert processes.wait_gone([orphan], timeout_s=30) == []
        assert not region.exists() and not (triton.workdir / SHM_LIST_NAME).exists()
    finally:
        region.unlink(missing_ok=True)
