"""The official PyTorch side of the benchmarks.

  bench_torch.py make DIR [--faces N]     full-size released-configuration checkpoint with random
                                          (perturbed) weights, DIR/gfpgan512_random.pth, and N
                                          random faces, DIR/faces.npy
  bench_torch.py time --weights W --input F --batch B --iters K [--threads T] [--output O]
                                          times the official forward (stored noise, float32) on the
                                          first B faces of F, like `gfpgan bench`

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


@torch.no_grad()
def bench(args):
    torch.set_num_threads(args.threads)
    model = official_arch.load()(**official_arch.RELEASED).eval()
    state = torch.load(args.weights, map_location="cpu")
    model.load_state_dict(state.get("params_ema", state.get("params", state)))
    faces = torch.from_numpy(np.load(args.input)[: args.batch])
    out, _ = model(faces, return_rgb=False, randomize_noise=False)  # warm-up
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        out, _ = model(faces, return_rgb=False, randomize_noise=False)
        times.append(time.perf_counter() - start)
    times.sort()
    per_face = times[len(times) // 2] / args.batch
    print(f"pytorch {torch.__version__} cpu threads {args.threads} batch {args.batch}: {per_face:.3f} s/face "
          f"(median of {len(times)}; min {times[0]:.3f}, max {times[-1]:.3f} s/pass), {1 / per_face:.2f} faces/s")
    if args.output:
        np.save(args.output, out.numpy())


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
    args = p.parse_args()
    make(args) if args.cmd == "make" else bench(args)


if __name__ == "__main__":
    main()
