"""Train the synthetic-plate YOLOv8n detector and export it in the ultralytics ONNX format.

Reproducible: fixed data seeds (train 1, val 2; tests use seeds >= 1000) and a fixed training
seed. Needs the training extra only (torch + ultralytics), never the runtime:

    python -m venv .venv-train && . .venv-train/bin/activate
    pip install torch==2.13.0 ultralytics-opencv-headless==8.4.190 && pip install -e . --no-deps
    python scripts/train_detector.py --out triton_models/yolo/1/model.onnx
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from api.synthetic.dataset import write_dataset


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", type=Path, default=Path("build/train"))
    p.add_argument("--train-images", type=int, default=2500)
    p.add_argument("--val-images", type=int, default=300)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hours", type=float, default=1.0, help="wall-clock cap for training")
    p.add_argument("--out", type=Path, default=Path("triton_models/yolo/1/model.onnx"))
    args = p.parse_args()

    from ultralytics import YOLO  # training-only dependency

    started = time.time()
    data = write_dataset(args.workdir / "data", args.train_images, args.val_images, 1, 2)
    model = YOLO("yolov8n.yaml")  # architecture only: no pretrained weights exist offline
    model.train(
        data=str(data),
        imgsz=args.imgsz,
        epochs=args.epochs,
        time=args.hours,
        batch=32,
        workers=2,
        device="cpu",
        seed=0,
        deterministic=True,
        plots=False,
        amp=False,
        project=str(args.workdir.resolve()),
        name="run",
        exist_ok=True,
        pretrained=False,
        fliplr=0.0,  # mirrored text is not a plate
        verbose=False,
    )
    metrics = model.val(data=str(data), imgsz=args.imgsz, plots=False, device="cpu")
    onnx = Path(
        model.export(format="onnx", imgsz=args.imgsz, dynamic=True, simplify=False, opset=17)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(onnx, args.out)
    report = {
        "command": "python scripts/train_detector.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "train_images": args.train_images,
        "val_images": args.val_images,
        "imgsz": args.imgsz,
        "epochs_requested": args.epochs,
        "seconds": round(time.time() - started),
        "val_mAP50": round(float(metrics.box.map50), 4),
        "val_mAP50_95": round(float(metrics.box.map), 4),
    }
    (args.workdir / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
