from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.triton_server.embedded import DEFAULT_MODEL_REPOSITORY, EmbeddedTriton, TritonPorts

console = Console(stderr=True)


def triton(
    data_dir: Annotated[
        Path, typer.Option(help="Working dir: backend files and triton.log")
    ] = Path("./data"),
    grpc_port: Annotated[int, typer.Option("--triton-grpc-port")] = 8001,
    http_port: Annotated[int, typer.Option("--triton-http-port")] = 8002,
    metrics_port: Annotated[int, typer.Option("--triton-metrics-port")] = 8003,
    model_repository: Annotated[Path, typer.Option()] = DEFAULT_MODEL_REPOSITORY,
    model_config_name: Annotated[str, typer.Option(help="'cpu' here; '' for config.pbtxt")] = "cpu",
) -> None:
    """Run only the embedded Triton (real tritonserver, CPU configs) until Ctrl-C or SIGTERM."""
    server = EmbeddedTriton(
        workdir=data_dir / "triton",
        ports=TritonPorts(grpc=grpc_port, http=http_port, metrics=metrics_port),
        model_repository=model_repository,
        model_config_name=model_config_name,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with console.status("starting Triton (loading models)…"):
            server.start()
        console.print(
            f"[green]Triton ready[/] gRPC {server.grpc_url}  HTTP {server.http_url}  "
            f"metrics http://{server.host}:{metrics_port}/metrics  log {server.log_path}"
        )
        while not stop.wait(0.5) and server.running:
            pass
        if not server.running:
            console.print(f"[red]Triton exited unexpectedly[/]\n{server.log_tail()}")
            raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        console.print("Triton stopped")
