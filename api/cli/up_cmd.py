from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli.signals import interrupt_on_sigterm
from api.core import processes
from api.core.config import load_settings
from api.core.server import GracefulServer, server_config
from api.flags.flagfile import write_default
from api.main import create_app, drain
from api.triton_server.embedded import EmbeddedTriton, TritonPorts, TritonStartError
from api.triton_server.supervisor import TritonSupervisor

console = Console(stderr=True)


def up(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    data_dir: Annotated[Path, typer.Option()] = Path("./data"),
    triton_grpc_port: Annotated[int, typer.Option()] = 8001,
    triton_http_port: Annotated[int, typer.Option()] = 8002,
    triton_metrics_port: Annotated[int, typer.Option()] = 8003,
) -> None:
    """Run the whole local stack: embedded Triton (CPU) + the API, until Ctrl-C. Triton dies
    with this process (even on kill -9) and is restarted whenever it exits; the API keeps
    serving meanwhile."""
    interrupt_on_sigterm()  # the API drains, then `finally` stops Triton (api/cli/signals.py)
    data_dir.mkdir(parents=True, exist_ok=True)
    triton = EmbeddedTriton(
        workdir=data_dir / "triton",
        ports=TritonPorts(
            grpc=triton_grpc_port, http=triton_http_port, metrics=triton_metrics_port
        ),
    )
    supervisor = TritonSupervisor(triton)
    settings = load_settings(triton_url=triton.grpc_url, data_dir=data_dir)
    if settings.flagd_offline_flag_source_path is None:
        # No flag source configured: a local flagd file under the data dir, streaming on.
        flag_file = data_dir / "flags.json"
        write_default(flag_file)
        settings = settings.model_copy(update={"flagd_offline_flag_source_path": flag_file})
    try:
        processes.require_free(host, port, "API")  # before a long model load, not after it
        with console.status("starting Triton (loading models)…"):
            supervisor.start()  # from the main thread: it lives as long as Triton should
        console.print(f"[green]Triton ready[/] gRPC {triton.grpc_url} (log {triton.log_path})")
        app = create_app(settings)
        config = server_config(app, host=host, port=port, max_frame_bytes=settings.max_frame_bytes)
        # SIGTERM drains the API as `framegate serve` does (unready, frames answered, 1012,
        # jobs requeued) while Triton still runs; Triton stops after it, in `finally`.
        server = GracefulServer(
            config,
            drain=partial(drain, app),
            timeout_s=settings.shutdown_timeout_s,
            settle_heap=True,
        )
        base = f"http://{host}:{port}"
        console.print(
            f"[bold green]Framegate up[/]  API {base}  docs {base}/docs  ready {base}/ready  "
            f"metrics {base}/metrics  pipelines {base}/v1/pipelines\n"
            f"  stream: ws://{host}:{port}/ws/video/stream?pipeline_id=yolo_ocr   "
            f"flags: {settings.flagd_offline_flag_source_path}   (Ctrl-C to stop)"
        )
        server.run()
    except KeyboardInterrupt:
        pass
    except (TritonStartError, processes.PortInUse) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    finally:
        supervisor.stop()
        console.print("stopped")
