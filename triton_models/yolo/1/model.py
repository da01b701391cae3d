from api.triton_backend.onnx_model import OnnxModel as TritonPythonModel

__all__ = ["TritonPythonModel"]
