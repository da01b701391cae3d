"""Free local ports for servers a test starts."""

from __future__ import annotations

from api.core.processes import free_port
from api.triton_server.embedded import TritonPorts

__all__ = ["free_port", "free_ports"]


def free_ports() -> TritonPorts:
    return TritonPorts(grpc=free_port(), http=free_port(), metrics=free_port())
