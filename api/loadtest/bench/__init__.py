"""`framegate bench run`: the whole system side by side on one machine, for each pipeline.

Rows (same JPEGs, same ONNX models):
  a  in-process ONNX Runtime (FramePipeline, one closed-loop caller per Triton pipeline instance,
     each with its own sessions; the best of batch 1 and --batch)
  b  Triton directly (gRPC, --concurrency closed-loop callers; the best of batch 1 and --batch)
  c  full WebSocket stack, gateway micro-batching on (the API in a uvicorn subprocess)
  d  full stack, batching off (BATCH_MAX_SIZE=1, BATCH_MAX_INFLIGHT high: one request per frame)
  e  a naive gateway (api/loadtest/naive_gateway.py): ORT synchronously inside the handler

Throughput is frames processed per second at saturation (the WebSocket rows are offered more
than they can do, open loop, by api.loadtest.ws_load); p99 is per frame (WebSocket: send to
result; a, b: per request); CPU per frame is the CPU seconds of every process doing the work over
the frames processed in the same window (api/loadtest/cpu.py; never the load generator, which has
its own column). Row c also gets latency bars (p99 at 50 % of its saturation rate, and of the
delivered results under 2x overload, against one frame at a time), a /health-under-load run and
a CPU breakdown per process (gateway, tritonserver, each model's Python stubs, client, idle).

Modules (import them directly; this package imports nothing): config (what to run), procs
(the servers), ws_runs / health (the WebSocket measurements), rows (a row from a measurement),
stack (process roles and CPU per result), bars (ratios and bars), run (the orchestration), report
(markdown and docs).
"""
