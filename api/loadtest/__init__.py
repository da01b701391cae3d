"""Load testing and benchmarks: perf_analyzer input data, the in-process ONNX Runtime baseline and
a Triton-direct closed-loop client, so the server's own cost can be measured apart from the
gateway's."""
