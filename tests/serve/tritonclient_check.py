"""Checks a KServe v2 / Open Inference Protocol server serving GFP-GAN with the official Triton
client (tritonclient.http and tritonclient.grpc), against the official PyTorch forward computed here.

  tritonclient_check.py --http 127.0.0.1:PORT --grpc 127.0.0.1:PORT --weights CKPT [--model gfpgan]
                        [--config NAME] [--uint8 [--uint8-model NAME]] [--timeout 300]
  tritonclient_check.py --http ... --grpc ... --reference tests/fixtures/a64_io.safetensors [--uint8]

Works against any server with this contract (`gfpgan serve`, or tests/serve/triton_gfpgan.py):
input `input` FP32 [-1, 3, S, S] RGB in [-1, 1]; output `output` FP32 of the same shape, the raw
network output with the stored noise. Checks: server live and ready, model ready, server
metadata, model metadata; a batch of 2 random faces through HTTP with binary tensors, HTTP with
JSON tensors, and gRPC, each compared with the official float32 forward on the same checkpoint
(max |difference| * 127.5 <= 0.255 8-bit levels); an unknown model and a wrongly shaped input are
refused with InferenceServerException (4xx on HTTP). With --uint8 also UINT8 [N, S, S, 3] faces
(datatype UINT8, same input name, on --uint8-model, default --model) through the three paths,
expecting UINT8 [N, S, S, 3] back within 1 level of the official forward on x/127.5-1, clamped,
(v+1)*127.5 rounded. Prints one line per check; exits 1 if any failed.
Run with the interpreter from tests/serve/setup.sh.

With --reference IO.safetensors instead of --weights, no PyTorch is needed (tests/serve/ci.sh,
in CI): the faces are the fixture's `input` and the reference its `output`, the official forward
that tests/parity/make_fixtures.py computed with gfpgan 1.3.8's code (float64, stored noise). The
UINT8 faces then have no official answer; their answers are checked against the same server's
FP32 answer for the same faces (x/127.5-1), clamped and rounded, within 1 level.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

F32_TOL = 0.255  # 8-bit levels: 1e-3 of the range
U8_TOL = 1
RESULTS = []


def check(name, fn):
    start = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
        detail, ok = f"{type(e).__name__}: {e}", False
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail} ({time.perf_counter() - start:.2f} s)", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def tensor_meta(entries):
    """name -> (datatype, shape) from HTTP (dict) or gRPC (as_json dict, int64 as strings)."""
    return {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in entries}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--http", required=True, help="HOST:PORT of the HTTP/REST endpoint")
    ap.add_argument("--grpc", required=True, help="HOST:PORT of the gRPC endpoint")
    ap.add_argument("--weights", help="the checkpoint the server serves (the reference is computed here)")
    ap.add_argument("--reference", help="an io fixture (input, output) instead of --weights: no PyTorch")
    ap.add_argument("--config", help="configuration name (default: inferred from the checkpoint)")
    ap.add_argument("--model", default="gfpgan")
    ap.add_argument("--uint8", action="store_true", help="also check UINT8 NHWC faces")
    ap.add_argument("--uint8-model", help="model name for the UINT8 checks (default: --model)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    if bool(args.weights) == bool(args.reference):
        ap.error("give --weights or --reference")
    if args.reference:
        from safetensors.numpy import load_file
        io = load_file(args.reference)
        model, size = None, io["input"].shape[-1]
        print(f"reference: {args.reference} (official outputs), S={size}", flush=True)
    else:
        import official_model
        model, cfg, size = official_model.load(args.weights, args.config)
        print(f"reference: {args.weights} config {cfg}, S={size}", flush=True)
    http = httpclient.InferenceServerClient(args.http, connection_timeout=args.timeout,
                                            network_timeout=args.timeout)
    grpc = grpcclient.InferenceServerClient(args.grpc)
    rng = np.random.default_rng(args.seed)
    if model is None:
        x, want = io["input"].astype(np.float32), io["output"].astype(np.float64)
    else:
        x = (rng.random((2, 3, size, size), dtype=np.float32) * 2 - 1).astype(np.float32)
        want = official_model.forward(model, x)
    print(f"reference output range [{want.min():.3f}, {want.max():.3f}]", flush=True)

    def health():
        expect(http.is_server_live(), "HTTP: server not live")
        expect(http.is_server_ready(), "HTTP: server not ready")
        expect(http.is_model_ready(args.model), f"HTTP: model {args.model} not ready")
        expect(grpc.is_server_live(), "gRPC: server not live")
        expect(grpc.is_server_ready(), "gRPC: server not ready")
        expect(grpc.is_model_ready(args.model), f"gRPC: model {args.model} not ready")
        expect(not http.is_model_ready("no_such_model"), "HTTP: unknown model reported ready")
        expect(not grpc.is_model_ready("no_such_model"), "gRPC: unknown model reported ready")
        return "live, ready, model ready (HTTP and gRPC); unknown model not ready"

    def server_metadata():
        h = http.get_server_metadata()
        g = grpc.get_server_metadata(as_json=True)
        for side, m in [("HTTP", h), ("gRPC", g)]:
            expect(m.get("name") and m.get("version"), f"{side}: no name/version in {m}")
            expect(isinstance(m.get("extensions", []), list), f"{side}: extensions not a list")
        expect((h["name"], h["version"]) == (g["name"], g["version"]), f"HTTP {h} != gRPC {g}")
        return f"name {h['name']!r} version {h['version']!r} extensions {h.get('extensions', [])}"

    def model_metadata():
        # A server declares one datatype per input: Triton's Python model here declares the
        # network's FP32 NCHW; `gfpgan serve` declares UINT8 NHWC (and an optional per-face
        # noise seed) while also taking FP32 NCHW on the same input, as its docs say.
        f32 = ({"input": ("FP32", [-1, 3, size, size])}, {"output": ("FP32", [-1, 3, size, size])})
        u8 = ({"input": ("UINT8", [-1, size, size, 3]), "noise_seed": ("UINT64", [-1])},
              {"output": ("UINT8", [-1, size, size, 3])})
        seen = None
        for side, m in [("HTTP", http.get_model_metadata(args.model)),
                        ("gRPC", grpc.get_model_metadata(args.model, as_json=True))]:
            expect(m.get("name") == args.model, f"{side}: name {m.get('name')!r}")
            got = (tensor_meta(m.get("inputs", [])), tensor_meta(m.get("outputs", [])))
            expect(got in (f32, u8), f"{side}: inputs/outputs {got}, want {f32} or {u8}")
            expect(seen is None or got == seen, f"HTTP and gRPC metadata differ: {seen} vs {got}")
            seen = got
        ins = ", ".join(f"{k} {d} {s}" for k, (d, s) in seen[0].items())
        return f"inputs {ins} -> output {seen[1]['output'][0]} {seen[1]['output'][1]} (HTTP and gRPC)"

    def compare_f32(got, datatype):
        expect(datatype == "FP32", f"output datatype {datatype}")
        expect(got.dtype == np.float32 and got.shape == want.shape, f"output {got.dtype} {got.shape}")
        # Compared as images, both clamped to [-1, 1] (a server that returns pixels clamps; the
        # raw network output of random weights leaves that range).
        diff = float(np.abs(np.clip(got.astype(np.float64), -1, 1) - np.clip(want, -1, 1)).max()) * 127.5
        expect(np.isfinite(diff) and diff <= F32_TOL, f"max diff {diff:.6f} levels > {F32_TOL}")
        return f"shape {list(got.shape)} FP32, max diff {diff:.6f} 8-bit levels (<= {F32_TOL})"

    def infer_http(data, dtype, binary, model_name=args.model):
        inp = httpclient.InferInput("input", list(data.shape), dtype)
        inp.set_data_from_numpy(data, binary_data=binary)
        out = httpclient.InferRequestedOutput("output", binary_data=binary)
        res = http.infer(model_name, [inp], outputs=[out])
        return res.as_numpy("output"), res.get_output("output")["datatype"]

    def infer_grpc(data, dtype, model_name=args.model):
        inp = grpcclient.InferInput("input", list(data.shape), dtype)
        inp.set_data_from_numpy(data)
        res = grpc.infer(model_name, [inp], outputs=[grpcclient.InferRequestedOutput("output")],
                         client_timeout=args.timeout)
        return res.as_numpy("output"), res.get_output("output").datatype

    def expect_refused(fn, what):
        out = []
        for side, call in [("HTTP", lambda: fn(True)), ("gRPC", lambda: fn(False))]:
            try:
                call()
            except InferenceServerException as e:
                status = e.status()
                if side == "HTTP":
                    expect(status is not None and 400 <= int(status) < 500, f"HTTP status {status}: {e.message()}")
                out.append(f"{side} {status}")
                continue
            raise AssertionError(f"{side}: {what} was accepted")
        return f"{what} refused: " + ", ".join(out)

    def unknown_model():
        return expect_refused(lambda h: infer_http(x, "FP32", True, "no_such_model") if h
                              else infer_grpc(x, "FP32", "no_such_model"), "unknown model")

    def wrong_shape():
        bad = np.zeros((1, 3, size + 1, size + 1), np.float32)
        return expect_refused(lambda h: infer_http(bad, "FP32", True) if h else infer_grpc(bad, "FP32"),
                              f"input [1,3,{size + 1},{size + 1}]")

    check("health", health)
    check("server metadata", server_metadata)
    check("model metadata", model_metadata)
    check("infer HTTP binary FP32", lambda: compare_f32(*infer_http(x, "FP32", True)))
    check("infer HTTP JSON FP32", lambda: compare_f32(*infer_http(x, "FP32", False)))
    check("infer gRPC FP32", lambda: compare_f32(*infer_grpc(x, "FP32")))
    check("unknown model", unknown_model)
    check("wrong input shape", wrong_shape)

    if args.uint8:
        u8_model = args.uint8_model or args.model
        faces = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
        if model is None:
            # No official answer for these faces: the server's own FP32 answer, as pixels.
            as_f32 = (faces.astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2).copy()
            out, _ = infer_grpc(as_f32, "FP32")
            want_u8 = np.round((np.clip(out, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
        else:
            want_u8 = official_model.forward_uint8(model, faces)

        def compare_u8(got, datatype):
            expect(datatype == "UINT8", f"output datatype {datatype}")
            expect(got.dtype == np.uint8 and got.shape == want_u8.shape, f"output {got.dtype} {got.shape}")
            diff = np.abs(got.astype(np.int16) - want_u8.astype(np.int16))
            expect(int(diff.max()) <= U8_TOL, f"max diff {int(diff.max())} levels > {U8_TOL}")
            return (f"shape {list(got.shape)} UINT8, max diff {int(diff.max())} levels (<= {U8_TOL}), "
                    f"{float((diff > 0).mean()) * 100:.3f}% of values differ")

        check("infer HTTP binary UINT8", lambda: compare_u8(*infer_http(faces, "UINT8", True, u8_model)))
        check("infer HTTP JSON UINT8", lambda: compare_u8(*infer_http(faces, "UINT8", False, u8_model)))
        check("infer gRPC UINT8", lambda: compare_u8(*infer_grpc(faces, "UINT8", u8_model)))

    http.close()
    grpc.close()
    failed = RESULTS.count(False)
    print(f"{len(RESULTS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
