"""Baseline of the serving benchmark: the smallest hand-written FastAPI + onnxruntime server.

``POST /predict`` with ``{"inputs": [[...64 floats...], ...]}`` returns ``{"outputs": [[...]]}``.
Rows of flat values are reshaped to the model's input (e.g. (N, 1, 8, 8)). No auth, no batching,
no validation beyond pydantic: it is what the platform's serving path is compared against.

    python bench/serving_baseline.py --model digits.onnx --port 8090
    wrk -t2 -c32 -d10s -s post.lua http://127.0.0.1:8090/predict
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class PredictBody(BaseModel):
    inputs: list[list[float]]


def make_app(model_path: str, threads: int = 1) -> FastAPI:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    inner = [d if isinstance(d, int) else -1 for d in inp.shape[1:]]
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: PredictBody) -> dict[str, list[list[float]]]:
        x = np.asarray(body.inputs, dtype=np.float32)
        if -1 not in inner and x.ndim == 2 and x.shape[1] == math.prod(inner):
            x = x.reshape((x.shape[0], *inner))
        y = session.run(None, {inp.name: x})[0]
        return {"outputs": y.tolist()}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="path to an ONNX model")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = ap.parse_args()
    uvicorn.run(make_app(args.model, args.threads), host=args.host, port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
