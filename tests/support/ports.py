"""Free local ports for servers a test starts."""

from __future__ import annotations

import socket

from api.triton_server.embedded import TritonPorts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> TritonPorts:
    return TritonPorts(grpc=free_port(), http=free_port(), metrics=free_port())
