"""A deliberately naive gateway, for the full-stack benchmark only: what the replaced system did.

One FastAPI WebSocket handler that runs FramePipeline with in-process ONNX Runtime synchronously,
one frame at a time, inside the handler: the event loop is blocked for the whole inference, so
all sessions share one serial worker, nothing is batched and nothing is ever dropped (frames queue
up in the socket buffers instead). Replies use the gateway's message shape
(`{"frame_index", "result", "timing_ms"}`) so the same load generator can drive it.

Run: `uvicorn --factory api.loadtest.naive_gateway:app_factory --port 8010`
"""

from __future__ import annotations

import json
import os
import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


def app_factory() -> FastAPI:
    from api.loadtest.inprocess import InProcessPipelines

    pipelines = InProcessPipelines()
    warm = os.environ.get("NAIVE_WARM_PIPELINES", "")
    if warm:
        from api.loadtest.perf_input import sample_jpegs

        jpeg = sample_jpegs(1000, 1)
        for kind in warm.split(","):
            pipelines.process(kind, jpeg)  # load the ONNX sessions before the first client
    app = FastAPI(title="naive gateway")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.websocket("/ws/video/stream")
    async def stream(websocket: WebSocket, pipeline_id: str = "yolo_ocr") -> None:
        await websocket.accept()
        index = 0
        try:
            while True:
                frame = await websocket.receive_bytes()
                started = time.perf_counter()
                result = pipelines.process(pipeline_id, [frame])[0]  # blocks the event loop
                timing_ms = (time.perf_counter() - started) * 1000
                await websocket.send_text(
                    json.dumps(
                        {"frame_index": index, "result": result, "timing_ms": round(timing_ms, 2)}
                    )
                )
                index += 1
        except WebSocketDisconnect:
            return

    return app
