"""The loop audit counts blocking calls made on its own thread, and only there."""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from api.core.loop_audit import LoopAudit, blocking


@blocking
def _query() -> int:
    return 1


def _image() -> np.ndarray:
    return np.zeros((8, 8, 3), np.uint8)


def test_audit_catches_codecs_compression_sleep_and_marked_functions() -> None:
    audit = LoopAudit()
    audit.install()
    try:
        _, jpeg = cv2.imencode(".jpg", _image())
        cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        zlib.decompressobj().decompress(zlib.compress(b"x" * 100))
        time.sleep(0)
        _query()
        time.monotonic()  # not blocking: not counted
    finally:
        audit.uninstall()
    assert dict(audit.caught) == {
        "cv2.imencode": 1,
        "cv2.imdecode": 1,
        "zlib.compress": 1,
        "zlib.Decompress.decompress": 1,
        "time.sleep": 1,
        "_query": 1,
    }


def test_audit_ignores_other_threads_and_stops_when_uninstalled() -> None:
    audit = LoopAudit()
    audit.install()
    try:
        worker = threading.Thread(target=lambda: (cv2.imencode(".jpg", _image()), _query()))
        worker.start()
        worker.join()
    finally:
        audit.uninstall()
    _query()
    assert audit.caught == {}


def test_onnxruntime_inference_is_caught(repo_root: Path) -> None:
    import onnxruntime as ort

    model = repo_root / "triton_models" / "yolo" / "1" / "model.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    shape = [
        d if isinstance(d, int) else s
        for d, s in zip(session.get_inputs()[0].shape, (1, 3, 64, 64), strict=True)
    ]
    audit = LoopAudit()
    audit.install()
    try:
        session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})
    finally:
        audit.uninstall()
    assert audit.caught == {"onnxruntime.InferenceSession.run": 1}


def test_synchronous_grpc_is_caught() -> None:
    import grpc

    channel = grpc.insecure_channel("127.0.0.1:1")  # nothing listens: the call fails fast
    audit = LoopAudit()
    audit.install()
    try:
        with contextlib.suppress(grpc.RpcError):
            channel.unary_unary("/x.Y/Z")(b"", timeout=0.05)
    finally:
        audit.uninstall()
        channel.close()
    assert audit.caught == {"grpc._UnaryUnaryMultiCallable.__call__": 1}
