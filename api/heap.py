"""The long-lived process's heap, settled once it has started.

Everything a server builds at startup (FastAPI and pydantic models, the gRPC and OpenFeature
clients, numpy, OpenCV, ONNX Runtime) lives for the whole process, yet CPython's full
collection walks it every time: measured in the gateway under `framegate bench` load, one full
collection took ~0.1 s of the event loop (about 200,000 objects) and the collector as a whole
about 8 % of the process's CPU. `gc.freeze()` moves those objects to a permanent generation that
no later collection walks; what the process allocates while serving is collected as before.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect the startup garbage, then freeze what is left; returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
