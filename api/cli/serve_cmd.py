from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from api.core.config import get_settings
from api.core.server import GracefulServer, server_config
from api.main import create_app, drain


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn's own log level")] = "info",
) -> None:
    """Run the API alone (settings from the environment) against any TRITON_URL. SIGTERM drains
    it gracefully within SHUTDOWN_TIMEOUT_S, then it exits with status 0."""
    settings = get_settings()
    app = create_app(settings)
    config = server_config(
        app, host=host, port=port, log_level=log_level, max_frame_bytes=settings.max_frame_bytes
    )
    server = GracefulServer(
        config, drain=partial(drain, app), timeout_s=settings.shutdown_timeout_s, settle_heap=True
    )
    server.run()
