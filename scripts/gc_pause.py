"""How long one full garbage collection holds the gateway's event loop, before and after
api/heap.py settles the startup heap: the app as `framegate serve` builds it, plus the client
libraries its lifespan opens. A side-by-side measurement in one process, not a test.

    .venv/bin/python scripts/gc_pause.py
"""

from __future__ import annotations

import gc
import statistics
import time


def full_collection_ms(repeat: int = 7) -> float:
    """The median time of `repeat` full collections."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    import duckdb  # noqa: F401  (the clients the lifespan opens)
    import openfeature.api  # noqa: F401
    import tritonclient.grpc.aio  # noqa: F401

    from api import heap
    from api.core.config import load_settings
    from api.main import create_app

    app = create_app(load_settings())
    tracked = len(gc.get_objects())
    before = full_collection_ms()
    frozen = heap.settle()
    after = full_collection_ms()
    print(
        f"{tracked} tracked objects ({frozen} frozen by heap.settle()); one full collection, "
        f"median of 7: {before:.1f} ms before, {after:.2f} ms after"
    )
    del app


if __name__ == "__main__":
    main()
