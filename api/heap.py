"""The long-lived process's heap, settled once it has started.

Everything a server builds at startup (FastAPI and pydantic models, the gRPC and OpenFeature
clients, numpy, OpenCV, ONNX Runtime) lives for the whole process, yet CPython's full
collection walks it every time: the gateway's app and clients hold about 170,000 tracked
objects, and one full collection of them stopped the event loop for 178-195 ms
(`scripts/gc_pause.py`); under `framegate bench` load the collector took about 8 % of the
gateway's CPU. `gc.freeze()` moves those objects to a permanent generation that
no later collection walks; what the process allocates while serving is collected as before.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect the startup garbage, then freeze what is left; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
