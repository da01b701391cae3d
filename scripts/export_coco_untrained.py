"""Export an untrained YOLOv8n with the 80 COCO class names, exactly as ultralytics exports a real
COCO checkpoint. Tests use it to prove a user's COCO yolov8n export drops into triton_models/yolo
unchanged (same tensor names and layout, class names from metadata). Training extra only."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml
from ultralytics import YOLO
from ultralytics.utils import ROOT


def main(out: Path) -> None:
    names = yaml.safe_load((ROOT / "cfg/datasets/coco.yaml").read_text())["names"]
    model = YOLO("yolov8n.yaml")
    model.model.names = names
    onnx = model.export(format="onnx", imgsz=640, dynamic=True, simplify=False, opset=17)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
