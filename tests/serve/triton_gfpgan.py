"""Serves the official PyTorch GFPGANv1Clean through a real Triton Inference Server (PyTriton's
bundled tritonserver), on loopback only, as a reference KServe v2 / Open Inference Protocol server.

  triton_gfpgan.py --weights CKPT [--config a64|b128|c256|released512] [--model-name gfpgan]
                   [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
                   [--uint8-model NAME] [--max-batch 8]

Model contract: input `input`, FP32 [-1, 3, S, S] (RGB in [-1, 1]); output `output`, FP32 of the
same shape: the raw network image output (stored noise, float32, not clamped). Dynamic batching
is on. With --uint8-model NAME also a second model NAME: input `input` UINT8 [-1, S, S, 3], output
`output` UINT8 of the same shape (x/127.5-1, forward, clamp to [-1,1], (v+1)*127.5 rounded), so
that tritonclient_check.py --uint8 can be tried against Triton too. The configuration is inferred
from the checkpoint unless --config is given. Prints `READY http=PORT grpc=PORT` when the models are
ready; stops cleanly on SIGTERM or SIGINT. Run with the interpreter from tests/serve/setup.sh.
"""
import argparse
import logging
import os
import signal
import sys
import sysconfig
import threading

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import official_model  # noqa: E402

from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig  # noqa: E402


def use_own_libpython():
    """Triton's Python backend stub is linked against libpython3.X.so.1.0 and runs this venv's
    standard library; the dynamic loader would otherwise find the system's libpython of the same
    minor version (e.g. Debian's 3.11.2 under a pyenv 3.11.7), whose C runtime lacks what the newer
    standard library calls (`'_thread.RLock' object has no attribute '_recursion_count'` when the
    stub starts). Put the running interpreter's own libpython first; tritonserver and the stub
    inherit it (PyTriton appends its own library folder after it)."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and os.path.exists(os.path.join(libdir, soname)):
        old = os.environ.get("LD_LIBRARY_PATH")
        os.environ["LD_LIBRARY_PATH"] = libdir + (":" + old if old else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", help="configuration name (default: inferred from the checkpoint)")
    ap.add_argument("--model-name", default="gfpgan")
    ap.add_argument("--uint8-model", help="also serve a UINT8 NHWC model under this name")
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    # PyTriton print()s every tritonserver log line; keep stdout for the READY line alone.
    ready_out, sys.stdout = sys.stdout, sys.stderr
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, name, size = official_model.load(args.weights, args.config)
    print(f"loaded {args.weights}: config {name}, out_size {size}", file=sys.stderr)
    lock = threading.Lock()  # one forward at a time; the dynamic batcher groups requests

    @batch
    def infer_f32(input):
        with lock:
            return {"output": official_model.forward(model, input)}

    @batch
    def infer_u8(input):
        with lock:
            return {"output": official_model.forward_uint8(model, input)}

    use_own_libpython()
    config = TritonConfig(
        http_address="127.0.0.1", http_port=args.http_port,
        grpc_address="127.0.0.1", grpc_port=args.grpc_port,
        metrics_address="127.0.0.1", metrics_port=args.metrics_port,
        allow_metrics=True, allow_gpu_metrics=False, allow_cpu_metrics=False,
        log_verbose=1 if args.verbose else 0,
    )
    model_config = ModelConfig(max_batch_size=args.max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=2000))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Triton(config=config) as triton:
        triton.bind(model_name=args.model_name, infer_func=infer_f32,
                    inputs=[Tensor(name="input", dtype=np.float32, shape=(3, size, size))],
                    outputs=[Tensor(name="output", dtype=np.float32, shape=(3, size, size))],
                    config=model_config, strict=True)
        if args.uint8_model:
            triton.bind(model_name=args.uint8_model, infer_func=infer_u8,
                        inputs=[Tensor(name="input", dtype=np.uint8, shape=(size, size, 3))],
                        outputs=[Tensor(name="output", dtype=np.uint8, shape=(size, size, 3))],
                        config=model_config, strict=True)
        triton.run()  # returns once the server and the models are ready
        print(f"READY http={args.http_port} grpc={args.grpc_port}", file=ready_out, flush=True)
        while not stop.wait(1.0):
            if not triton.is_alive():
                print("triton died", file=sys.stderr)
                sys.exit(1)
        print("stopping", file=sys.stderr)
    # leaving the `with` stops tritonserver and the proxy backends


if __name__ == "__main__":
    main()
