"""Writes the parity fixtures in tests/fixtures/ from the official GFPGANv1Clean.

For each configuration: a checkpoint with random weights, every parameter and buffer perturbed
away from its init (zero biases and zero noise strengths would hide bugs), a batch of inputs, and
the official forward with the stored noise (computed in float64, stored as float32): the output,
the style code and the SFT conditions up to 16x16 (larger ones would make the fixtures big).
Also writes the tensor names and shapes of the released 512 configuration.

Run: $(tests/parity/setup.sh) tests/parity/make_fixtures.py
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import official_arch  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures")

# name, constructor arguments, batch size, how the checkpoint is saved
CONFIGS = [
    ("a64", dict(out_size=64, num_style_feat=32, channel_multiplier=1, narrow=0.0625, sft_half=True,
                 different_w=False, num_mlp=2), 3, "pth_params_ema"),
    ("b128", dict(out_size=128, num_style_feat=32, channel_multiplier=2, narrow=0.0625, sft_half=False,
                  different_w=True, num_mlp=8), 2, "pth_params"),
    ("c256", dict(out_size=256, num_style_feat=32, channel_multiplier=2, narrow=0.03125, sft_half=True,
                  different_w=True, num_mlp=8), 1, "safetensors"),
]


@torch.no_grad()
def perturb(model, gen):
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if name.endswith(".weight") and p.numel() == 1:  # noise strength, zero at init
            p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=gen))
        else:
            p.add_(noise * (0.5 * p.abs().mean() + 0.05))


def build(kwargs, seed):
    cls = official_arch.load()
    torch.manual_seed(seed)
    model = cls(decoder_load_path=None, fix_decoder=False, input_is_latent=True, **kwargs).eval()
    perturb(model, torch.Generator().manual_seed(seed + 1))
    return model


@torch.no_grad()
def reference(model, x):
    """The official forward with stored noise, in float64, capturing the style code and the
    SFT conditions on the way."""
    model = model.double()
    captured = {}
    hook = model.final_linear.register_forward_hook(lambda m, i, o: captured.setdefault("style", o))
    conds = []
    decoder_forward = model.stylegan_decoder.forward

    def spy(styles, conditions, **kw):
        conds.extend(conditions)
        return decoder_forward(styles, conditions, **kw)

    model.stylegan_decoder.forward = spy
    image, _ = model(x.double(), return_rgb=False, randomize_noise=False)
    model.stylegan_decoder.forward = decoder_forward
    hook.remove()
    style = captured["style"]
    if model.different_w:
        style = style.view(style.size(0), -1, model.num_style_feat)
    return image, style, conds


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, kwargs, batch, how) in enumerate(CONFIGS):
        model = build(kwargs, seed=1000 + i)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if how == "pth_params_ema":
            torch.save({"params_ema": state}, f"{OUT}/{name}.pth")
        elif how == "pth_params":
            torch.save({"params": state, "iter": 1234}, f"{OUT}/{name}.pth")
        else:
            save_file(state, f"{OUT}/{name}.safetensors")
        gen = torch.Generator().manual_seed(2000 + i)
        x = torch.rand((batch, 3, kwargs["out_size"], kwargs["out_size"]), generator=gen) * 2 - 1
        image, style, conds = reference(model, x)
        io = {"input": x, "output": image.float(), "style_code": style.float()}
        for k, c in enumerate(conds):
            if c.shape[-1] <= 16:
                io[f"cond.{k}"] = c.float()
        save_file({k: v.contiguous() for k, v in io.items()}, f"{OUT}/{name}_io.safetensors")
        print(name, "params", sum(p.numel() for p in model.parameters()), "output max",
              float(image.abs().max()))

    released = official_arch.load()(**official_arch.RELEASED)
    with open(f"{OUT}/gfpganv1_clean_512_keys.txt", "w") as f:
        f.write("# GFPGANv1Clean(**RELEASED).state_dict(): name and shape, written by make_fixtures.py\n")
        for k, v in released.state_dict().items():
            f.write(f"{k} {','.join(str(d) for d in v.shape)}\n")
    print("released keys", len(released.state_dict()))


if __name__ == "__main__":
    main()
