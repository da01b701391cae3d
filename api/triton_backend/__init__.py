"""Model code that runs *inside* Triton's Python backend (imported from triton_models/*/1/model.py).

Only numpy, OpenCV, onnxruntime and pyclipper are imported here, so the Triton image needs nothing
of the gateway's dependencies. `triton_python_backend_utils` exists only inside the stub process.
"""
