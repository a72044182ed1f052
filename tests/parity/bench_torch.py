"""The official PyTorch side of the benchmarks.

  bench_torch.py make DIR [--faces N]     full-size released-configuration checkpoint with random
                                          (perturbed) weights, DIR/gfpgan512_random.pth, and N
                                          random faces, DIR/faces.npy
  bench_torch.py time --weights W --input F --batch B --iters K [--threads T] [--output O]
                    [--device cpu|cuda] [--dtype f32|tf32|f16|bf16] [--compile]
                                          times the official forward (stored noise) on the first B
                                          faces of F (repeated when F has fewer), like `gfpgan
                                          bench`; on CUDA, eager or torch.compile'd

Run with the interpreter from tests/parity/setup.sh.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import official_arch  # noqa: E402


@torch.no_grad()
def perturb_gently(model, gen):
    """Moves every parameter off its init without blowing up a 512-channel network: relative
    noise on weights (an absolute one would swamp their 1/sqrt(fan_in) scale), small offsets on
    zero-initialised biases, 0.1..0.5 noise strengths."""
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if name.endswith(".weight") and p.numel() == 1:
            p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=gen))
        elif ".noises." not in name:
            scale = 0.2 * float(p.abs().mean()) or 0.01
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def make(args):
    os.makedirs(args.dir, exist_ok=True)
    torch.manual_seed(0)
    model = official_arch.load()(**official_arch.RELEASED).eval()
    perturb_gently(model, torch.Generator().manual_seed(1))
    torch.save({"params_ema": model.state_dict()}, os.path.join(args.dir, "gfpgan512_random.pth"))
    faces = torch.rand((args.faces, 3, 512, 512), generator=torch.Generator().manual_seed(2)) * 2 - 1
    np.save(os.path.join(args.dir, "faces.npy"), faces.numpy())


DTYPES = {"f32": torch.float32, "tf32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


@torch.no_grad()
def bench(args):
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.dtype == "tf32"
    model = official_arch.load()(**official_arch.RELEASED).eval()
    state = torch.load(args.weights, map_location="cpu")
    model.load_state_dict(state.get("params_ema", state.get("params", state)))
    model = model.to(device=device, dtype=DTYPES[args.dtype])
    faces = torch.from_numpy(np.load(args.input))
    faces = faces.repeat((args.batch + len(faces) - 1) // len(faces), 1, 1, 1)[: args.batch]
    faces = faces.to(device=device, dtype=DTYPES[args.dtype])
    run = torch.compile(model) if args.compile else model
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3 if args.compile or device.type == "cuda" else 1):  # warm-up (and compilation)
        out, _ = run(faces, return_rgb=False, randomize_noise=False)
    sync()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        out, _ = run(faces, return_rgb=False, randomize_noise=False)
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    per_face = times[len(times) // 2] / args.batch
    mode = "compile" if args.compile else "eager"
    print(f"pytorch {torch.__version__} {args.device} {mode} {args.dtype} threads {args.threads} batch {args.batch}: "
          f"{per_face:.4f} s/face (median of {len(times)}; min {times[0]:.4f}, max {times[-1]:.4f} s/pass), "
          f"{1 / per_face:.2f} faces/s")
    if args.output:
        np.save(args.output, out.float().cpu().numpy())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--faces", type=int, default=4)
    t = sub.add_parser("time")
    t.add_argument("--weights", required=True)
    t.add_argument("--input", required=True)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--iters", type=int, default=3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--output")
    t.add_argument("--device", default="cpu")
    t.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    t.add_argument("--compile", action="store_true")
    args = p.parse_args()
    make(args) if args.cmd == "make" else bench(args)


if __name__ == "__main__":
    main()
