from api.triton_backend.pipeline_model import PipelineModel as TritonPythonModel

__all__ = ["TritonPythonModel"]
