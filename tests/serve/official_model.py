"""Loads the official PyTorch GFPGANv1Clean (gfpgan==1.3.8, through tests/parity/official_arch.py)
from a checkpoint, inferring its configuration: the state dict's names and shapes are matched
against the parity configurations (tests/parity/make_fixtures.py CONFIGS: a64, b128, c256) and the
released 512 one. Shared by triton_gfpgan.py and tritonclient_check.py."""
import os
import sys

import numpy as np
import torch

PARITY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity")
sys.path.insert(0, PARITY)
import official_arch  # noqa: E402
import make_fixtures  # noqa: E402  (only its CONFIGS; its main() is guarded)

_FIXED = dict(decoder_load_path=None, fix_decoder=False, input_is_latent=True)


def configs():
    """name -> constructor arguments of every known configuration."""
    out = {name: dict(_FIXED, **kwargs) for name, kwargs, _, _ in make_fixtures.CONFIGS}
    out["released512"] = dict(official_arch.RELEASED)
    return out


def load_state(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("params_ema", "params"):
        if isinstance(state, dict) and key in state:
            return state[key]
    return state


def load(path, config=None):
    """Returns (model in float32 eval mode, config name, out_size)."""
    state = load_state(path)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    cls = official_arch.load()
    known = configs()
    names = [config] if config else list(known)
    for name in names:
        if name not in known:
            raise SystemExit(f"unknown config {name!r}; known: {', '.join(known)}")
        model = cls(**known[name])
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            model.load_state_dict(state)
            return model.float().eval(), name, known[name]["out_size"]
    raise SystemExit(f"{path}: its tensors match none of the configurations {', '.join(names)}")


@torch.no_grad()
def forward(model, x):
    """The official forward with the stored noise, float32 NCHW numpy in [-1,1] -> raw network
    image output (not clamped), float32 NCHW numpy."""
    image, _ = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                     return_rgb=False, randomize_noise=False)
    return image.float().numpy()


def forward_uint8(model, faces):
    """UINT8 NHWC faces -> UINT8 NHWC restored faces: x/127.5-1, the official forward, the output
    clamped to [-1,1], (v+1)*127.5 rounded."""
    x = faces.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1
    y = np.clip(forward(model, x), -1, 1)
    return np.rint((y + 1) * 127.5).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
