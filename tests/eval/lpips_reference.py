#!/usr/bin/env python3
"""Reference LPIPS distances computed by the lpips package 0.1.4's own code, for the Rust port.

    "$(tests/eval/setup.sh)" tests/eval/lpips_reference.py

Writes tests/fixtures/eval/lpips.json and src/eval/lpips_alex_lin.safetensors (embedded in the library).

Model: lpips.LPIPS(net='alex', version='0.1', lpips=True, spatial=False, pretrained=True,
pnet_rand=True), float32, CPU, eval mode (Dropout in the lin heads is then the identity).
  * Linear heads: the real ones shipped in the lpips wheel, lpips/weights/v0.1/alex.pth (loaded by
    LPIPS.__init__ itself). They are exported unchanged to lpips_alex_lin.safetensors under the
    names of lpips' state dict: lin{0..4}.model.1.weight, float32, shape (1, C, 1, 1),
    C = 64, 192, 384, 256, 256.
  * Backbone: torchvision.models.alexnet(weights=None).features, built by lpips' own
    pretrained_networks.alexnet (pnet_rand=True, so nothing is downloaded; the ImageNet weights
    cannot be fetched here). Its five convolutions (features indices 0, 3, 6, 8, 10; layer
    position L = 0..4) are then overwritten with weights given by a formula, so the Rust test
    can regenerate them without a fixture:
        weight (out, in, kh, kw), element k = C-order flat index:
            w[k] = f32( s * sin(0.37 * k + 1.3 * L) ),   s = sqrt(2.0 / (in * kh * kw))
        bias (out,), element k:
            b[k] = f32( 0.01 * cos(0.5 * k + L) )
    Everything inside f32(...) is IEEE float64 arithmetic, evaluated left to right as written
    (0.37 * k, 1.3 * L, their sum; 2.0 / fan_in, sqrt; product), with k and L converted exactly to
    float64 and sin/cos from the C library (Python's math.sin / math.cos, glibc; Rust's f64::sin /
    f64::cos call the same libm on Linux). The float64 result is rounded to nearest float32.
    Checksums of the generated tensors are written to the json ("backbone").

Inputs: tests/fixtures/eval/NN_gt.png / NN_lq.png (NN = 01..06), read with PIL as RGB uint8
(h, w, 3), transposed to (1, 3, h, w) and converted in float32 arithmetic as
    x = f32(u8) / 127.5f32 - 1.0f32          (each operation rounded to float32)
which is bit-identical, for all 256 values, to lpips' normalize=True path applied to u8/255
(2 * (u8 / 255) - 1 in float32, as f32(u8/127.5) = 2 * f32(u8/255) exactly). forward() is then
called with normalize=False: d = loss_fn(lq, gt, retPerLayer=True). Also gt vs gt (must be 0).

Licence of lpips (https://github.com/richzhang/PerceptualSimilarity, PyPI lpips 0.1.4):
BSD-2-Clause, Copyright (c) 2018, Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman,
Oliver Wang. The exported linear-head weights come from that package; its licence text ships in
the wheel (lpips-0.1.4.dist-info/LICENSE) and requires the copyright notice to be kept with
redistributions.
"""
import hashlib
import importlib.metadata
import inspect
import json
import math
import os
import re
import sys
import warnings

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "eval")
LPIPS_VERSION = "0.1.4"
PAIRS = ["01", "02", "03", "04", "05", "06"]
CONV_INDICES = [0, 3, 6, 8, 10]  # torchvision alexnet().features indices of the convolutions
LICENSE = ("lpips 0.1.4 (https://github.com/richzhang/PerceptualSimilarity), BSD-2-Clause, "
           "Copyright (c) 2018, Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman, Oliver Wang")


def formula_weight(shape, layer):
    out_c, in_c, kh, kw = shape
    s = math.sqrt(2.0 / (in_c * kh * kw))
    n = out_c * in_c * kh * kw
    w = np.array([s * math.sin(0.37 * float(k) + 1.3 * float(layer)) for k in range(n)],
                 dtype=np.float64).astype(np.float32).reshape(shape)
    b = np.array([0.01 * math.cos(0.5 * float(k) + float(layer)) for k in range(out_c)],
                 dtype=np.float64).astype(np.float32)
    return w, b


def checksum(a):
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "sum_f64": float(a.astype(np.float64).sum()),
            "first": [float(v) for v in a.reshape(-1)[:4]], "last": float(a.reshape(-1)[-1]),
            "sha256_f32le": hashlib.sha256(a.tobytes()).hexdigest()}


def load_rgb(path):
    im = Image.open(path)
    assert im.mode == "RGB", (path, im.mode)
    u8 = np.asarray(im, dtype=np.uint8)  # (h, w, 3) RGB
    x = torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))[None].copy()).to(torch.float32)
    return x / 127.5 - 1.0  # float32 tensor / python scalar: float32 arithmetic


def main():
    version = importlib.metadata.version("lpips")
    if version != LPIPS_VERSION:
        sys.exit(f"lpips {version} installed, {LPIPS_VERSION} needed (tests/eval/setup.sh)")
    import lpips
    from safetensors.torch import save_file

    # torchvision warns that lpips passes pretrained=False (deprecated spelling of weights=None)
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision.models._utils")
    torch.set_num_threads(1)
    torch.manual_seed(0)  # irrelevant (every parameter is overwritten or loaded), set anyway

    loss_fn = lpips.LPIPS(net="alex", version="0.1", lpips=True, spatial=False, pretrained=True,
                          pnet_rand=True, verbose=False)
    loss_fn = loss_fn.to(torch.float32).eval()

    # the real linear heads, as loaded by LPIPS.__init__ from the wheel
    lin_path = os.path.abspath(os.path.join(inspect.getfile(lpips.LPIPS.__init__), "..",
                                            "weights/v0.1/alex.pth"))
    shipped = torch.load(lin_path, map_location="cpu")
    lin = {k: v.detach().to(torch.float32).contiguous() for k, v in loss_fn.state_dict().items()
           if re.fullmatch(r"lin[0-4]\.model\.1\.weight", k)}  # lins.N.* alias the same tensors
    assert sorted(lin) == sorted(shipped), (sorted(lin), sorted(shipped))
    for k in lin:
        assert torch.equal(lin[k], shipped[k]), k
    save_file(lin, os.path.join(ROOT, "src", "eval", "lpips_alex_lin.safetensors"),
              metadata={"source": "lpips 0.1.4 wheel, lpips/weights/v0.1/alex.pth",
                        "license": LICENSE})

    # formula backbone into lpips' slices (slice modules keep torchvision's feature indices as names)
    convs = {}
    for sl in [loss_fn.net.slice1, loss_fn.net.slice2, loss_fn.net.slice3, loss_fn.net.slice4,
               loss_fn.net.slice5]:
        for name, m in sl.named_children():
            if isinstance(m, torch.nn.Conv2d):
                convs[int(name)] = m
    assert sorted(convs) == CONV_INDICES, sorted(convs)
    backbone = {}
    with torch.no_grad():
        for layer, idx in enumerate(CONV_INDICES):
            m = convs[idx]
            w, b = formula_weight(tuple(m.weight.shape), layer)
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
            backbone[f"features.{idx}"] = {
                "L": layer, "stride": list(m.stride), "padding": list(m.padding),
                "weight": checksum(w), "bias": checksum(b)}

    # constants as the installed source has them
    src = inspect.getsource(lpips)
    eps = inspect.signature(lpips.normalize_tensor).parameters["eps"].default
    assert re.search(r"in_feat/\(norm_factor\+eps\)", src)
    slices = {}
    for i, sl in enumerate([loss_fn.net.slice1, loss_fn.net.slice2, loss_fn.net.slice3,
                            loss_fn.net.slice4, loss_fn.net.slice5]):
        slices[f"slice{i + 1}"] = [f"{name}: {m}" for name, m in sl.named_children()]
    lins = {f"lin{i}": [str(m) for m in loss_fn.lins[i].model] for i in range(5)}

    def run(a, b, dtype):
        m = loss_fn.to(dtype)
        with torch.no_grad():
            d, per = m(a.to(dtype), b.to(dtype), retPerLayer=True)
            fa = m.net(m.scaling_layer(a.to(dtype)))
        return d, per, fa

    pairs = {}
    for nn_ in PAIRS:
        gt = load_rgb(os.path.join(FIX, f"{nn_}_gt.png"))
        lq = load_rgb(os.path.join(FIX, f"{nn_}_lq.png"))
        d, per, feats = run(lq, gt, torch.float32)
        d0, _, _ = run(gt, gt, torch.float32)
        d64, per64, _ = run(lq, gt, torch.float64)
        loss_fn.to(torch.float32)
        entry = {
            "size_hw": list(gt.shape[2:]),
            "distance": float(d.reshape(())),
            "distance_gt_gt": float(d0.reshape(())),
            "per_layer": [float(p.reshape(())) for p in per],
            "distance_f64_model": float(d64.reshape(())),
            "per_layer_f64_model": [float(p.reshape(())) for p in per64],
            "feature_shapes": [list(f.shape) for f in feats],
            "feature_zero_fraction_lq": [float((f == 0).double().mean()) for f in feats],
        }
        pairs[nn_] = entry

    # per-layer of pair 01 must sum (in order, float32) to the distance
    acc = torch.zeros((), dtype=torch.float32)
    for p in pairs["01"]["per_layer"]:
        acc = acc + torch.tensor(p, dtype=torch.float32)
    assert float(acc) == pairs["01"]["distance"], (float(acc), pairs["01"]["distance"])

    out = {
        "source": LICENSE,
        "script": "tests/eval/lpips_reference.py",
        "versions": {k: importlib.metadata.version(k) for k in
                     ["lpips", "torch", "torchvision", "numpy", "pillow", "safetensors"]},
        "model": "lpips.LPIPS(net='alex', version='0.1', lpips=True, spatial=False, pretrained=True, "
                 "pnet_rand=True), float32, CPU, eval(), torch.set_num_threads(1); "
                 "d = loss_fn(lq, gt, retPerLayer=True), normalize=False",
        "input": "PIL RGB uint8 (h,w,3) -> (1,3,h,w); x = f32(u8) / 127.5f32 - 1.0f32 in float32 "
                 "(bit-identical to lpips normalize=True on u8/255)",
        "scaling_layer": {
            "formula": "(x - shift) / scale per channel (R, G, B), float32",
            "shift_source": [-.030, -.088, -.188], "scale_source": [.458, .448, .450],
            "shift_f32": [float(v) for v in loss_fn.scaling_layer.shift.reshape(-1)],
            "scale_f32": [float(v) for v in loss_fn.scaling_layer.scale.reshape(-1)]},
        "normalize_tensor": {"formula": "f / (sqrt(sum_c f^2) + eps), per pixel over channels",
                             "eps": eps},
        "slices": slices,
        "lin": lins,
        "lin_weights": "src/eval/lpips_alex_lin.safetensors (keys lin{0..4}.model.1.weight, "
                       "(1,C,1,1) float32, from lpips/weights/v0.1/alex.pth)",
        "lin_checksums": {k: checksum(v.numpy()) for k, v in lin.items()},
        "combine": "res_l = mean over (h,w) of conv1x1_nobias(lin_l, (n0_l - n1_l)^2); "
                   "distance = ((((0 + res_0) + res_1) + res_2) + res_3) + res_4",
        "backbone": {
            "formula": "w[k] = f32(sqrt(2.0/(in*kh*kw)) * sin(0.37*k + 1.3*L)), "
                       "b[k] = f32(0.01*cos(0.5*k + L)); k = C-order flat index, "
                       "float64 arithmetic, libm sin/cos, round to nearest f32",
            "layers": backbone},
        "pairs": pairs,
    }
    with open(os.path.join(FIX, "lpips.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for nn_, e in pairs.items():
        print(nn_, e["size_hw"], repr(e["distance"]), e["distance_gt_gt"], e["per_layer"])


if __name__ == "__main__":
    main()
