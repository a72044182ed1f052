"""Loads a generator written by `gfpgan train` into the official GFPGANv1Clean with
`load_state_dict(strict=True)` and compares its output with ours (`gfpgan forward`).

Run: "$(tests/train/setup.sh)" tests/train/load_in_pytorch.py RUN_DIR/checkpoints/iter_N/net_g.safetensors
It writes a random input, runs `target/release/gfpgan forward` on it with the stored noise, runs the
official network on the same input with randomize_noise=False, and prints the largest difference.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
import official_arch  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def main(path):
    state = load_file(path)
    info = subprocess.run([os.path.join(ROOT, "target/release/gfpgan"), "inspect", path],
                          check=True, capture_output=True, text=True).stdout
    cfg = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    kwargs = {k: json.loads(cfg[k]) for k in ("out_size", "num_style_feat", "channel_multiplier", "narrow",
                                              "sft_half", "different_w", "num_mlp")}
    net = official_arch.load()(decoder_load_path=None, fix_decoder=False, input_is_latent=True, **kwargs).eval()
    net.load_state_dict(state, strict=True)
    s = kwargs["out_size"]
    x = torch.rand((2, 3, s, s), generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        want = net(x, return_rgb=False, randomize_noise=False)[0].numpy()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "in.npy"), x.numpy())
        subprocess.run([os.path.join(ROOT, "target/release/gfpgan"), "forward", "--weights", path,
                        "--input", os.path.join(tmp, "in.npy"), "--output", os.path.join(tmp, "out.npy")],
                       check=True)
        got = np.load(os.path.join(tmp, "out.npy"))
    print(f"{path}: loaded strictly ({len(state)} tensors); max |ours - official| = {np.abs(got - want).max():.3g}")


if __name__ == "__main__":
    main(sys.argv[1])
