from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from api.core.config import get_settings
from api.core.server import server_config
from api.main import create_app


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn's own log level")] = "info",
) -> None:
    """Run the API alone (settings from the environment) against any TRITON_URL."""
    uvicorn.Server(
        server_config(create_app(get_settings()), host=host, port=port, log_level=log_level)
    ).run()
