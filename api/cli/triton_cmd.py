from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli.signals import interrupt_on_sigterm, wait_for_interrupt
from api.core.logging import configure_logging
from api.triton_server.embedded import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    TritonPorts,
    TritonStartError,
)
from api.triton_server.supervisor import TritonSupervisor

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
    """Run only the embedded Triton (real tritonserver, CPU configs) until Ctrl-C or SIGTERM.
    It dies with this process (even on kill -9) and is restarted whenever it exits."""
    configure_logging()  # the supervisor's restart lines
    server = EmbeddedTriton(
        workdir=data_dir / "triton",
        ports=TritonPorts(grpc=grpc_port, http=http_port, metrics=metrics_port),
        model_repository=model_repository,
        model_config_name=model_config_name,
    )
    supervisor = TritonSupervisor(server)
    interrupt_on_sigterm()  # SIGTERM leaves as Ctrl-C does: `finally` stops Triton
    try:
        with console.status("starting Triton (loading models)…"):
            supervisor.start()  # from the main thread: it lives as long as Triton should
        console.print(
            f"[green]Triton ready[/] gRPC {server.grpc_url}  HTTP {server.http_url}  "
            f"metrics http://{server.host}:{metrics_port}/metrics  log {server.log_path}"
        )
        wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    except TritonStartError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    finally:
        supervisor.stop()
        console.print("Triton stopped")
