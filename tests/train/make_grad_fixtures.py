#!/usr/bin/env python3
"""Writes the training-gradient fixtures tests/fixtures/train/{t64,t128}.safetensors from the
official PyTorch GFP-GAN training code (gfpgan 1.3.8 GFPGANModel, basicsr 1.4.2 losses and
StyleGAN2Discriminator, gfpgan's FacialComponentDiscriminator, basicsr's PerceptualLoss on a
torchvision VGG19), in float64.

Every parameter (and GFPGANv1Clean's decoder noise buffers) is set by a closed formula from two
stored numbers, so the fixtures hold no weights; gradients and optimiser results are stored as
12-number summaries. See tests/train/README.md for the formula, the terms and the key names.

Run: "$(tests/train/setup.sh)" tests/train/make_grad_fixtures.py
"""
import copy
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import tempfile
import types
import warnings

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file
from torch import autograd
from torch.nn import functional as F
from torchvision.ops import roi_align

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "train")
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
import official_arch  # noqa: E402

BATCH = 2
COMPONENTS = ["left_eye", "right_eye", "mouth"]
G_COMMON = dict(decoder_load_path=None, fix_decoder=False, input_is_latent=True)
CONFIGS = {
    "t64": dict(
        seed=640,
        g=dict(out_size=64, num_style_feat=32, channel_multiplier=1, narrow=0.0625, sft_half=True,
               different_w=False, num_mlp=2, **G_COMMON),
        d=dict(out_size=64, channel_multiplier=1, resample_kernel=(1, 3, 3, 1), stddev_group=4,
               narrow=0.0625)),
    "t128": dict(
        seed=1280,
        g=dict(out_size=128, num_style_feat=32, channel_multiplier=2, narrow=0.0625, sft_half=False,
               different_w=True, num_mlp=8, **G_COMMON),
        d=dict(out_size=128, channel_multiplier=1, resample_kernel=(1, 3, 3, 1), stddev_group=4,
               narrow=0.0625)),
}
G_LR = 2e-3
D_REG_EVERY = 16  # net_d_reg_every of the official configs: D's lr and betas are scaled by 16/17
D_RATIO = D_REG_EVERY / (D_REG_EVERY + 1)
CALIBRATE = os.environ.get("GRAD_FIXTURES_NO_CALIBRATE") is None
FULL_LIMIT = 24576  # forward values with more elements (2*3*64*64) are stored as summaries only
G_TERMS = ["l1", "pyramid", "g_gan", "comp_gan", "comp_style", "perceptual", "percep_style"]
# perceptual_opt of the official options/train_gfpgan_v1.yml
PERCEPTUAL = dict(layer_weights={"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1, "conv5_4": 1},
                  vgg_type="vgg19", use_input_norm=True, range_norm=True, perceptual_weight=1.0,
                  style_weight=50, criterion="l1")


# ------------------------------------------------------------------------------------------------
# Loading the official modules without the basicsr / gfpgan package __init__ files (they import
# OpenCV, the dataset code, torchvision internals that no longer exist, ...).

def _fused_leaky_relu_cpu(input, bias, negative_slope=0.2, scale=2**0.5):
    """What basicsr 1.4.2's fused_leaky_relu computes with its CUDA extension: leaky_relu(x + bias)
    * scale, the bias along dim 1 (the CPU path of rosinality's stylegan2-pytorch, which basicsr's
    fused_act.py is adapted from). 1.4.2 has no CPU path of its own, so this one is put in."""
    rest_dim = [1] * (input.ndim - bias.ndim - 1)
    return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest_dim), negative_slope=negative_slope) * scale


def load_official():
    os.environ.pop("BASICSR_JIT", None)  # never build the CUDA extensions
    bs_root = importlib.util.find_spec("basicsr").submodule_search_locations[0]
    GFPGANv1Clean = official_arch.load()  # stubs basicsr, basicsr.utils(.registry), basicsr.archs
    registry = sys.modules["basicsr.utils.registry"]
    registry.LOSS_REGISTRY = registry.ARCH_REGISTRY  # a pass-through register()
    # Point the stub packages at the installed folders, so that submodules load from the real
    # files while the package __init__ files are never run.
    for name, sub in [("basicsr", ""), ("basicsr.archs", "archs"), ("basicsr.losses", "losses")]:
        pkg = sys.modules.setdefault(name, types.ModuleType(name))
        pkg.__path__ = [os.path.join(bs_root, sub) if sub else bs_root]
    fused = importlib.import_module("basicsr.ops.fused_act.fused_act")
    fused.fused_leaky_relu = _fused_leaky_relu_cpu  # used by FusedLeakyReLU.forward
    sys.modules["basicsr.ops.fused_act"].fused_leaky_relu = _fused_leaky_relu_cpu
    upfirdn = importlib.import_module("basicsr.ops.upfirdn2d.upfirdn2d")
    assert not hasattr(upfirdn, "upfirdn2d_ext")  # CPU tensors take upfirdn2d_native
    sg2 = importlib.import_module("basicsr.archs.stylegan2_arch")
    assert sg2.fused_leaky_relu is _fused_leaky_relu_cpu
    gan_loss = importlib.import_module("basicsr.losses.gan_loss")
    vgg_arch = importlib.import_module("basicsr.archs.vgg_arch")
    basic_loss = importlib.import_module("basicsr.losses.basic_loss")
    assert basic_loss.VGGFeatureExtractor is vgg_arch.VGGFeatureExtractor
    v1 = importlib.import_module("gfpgan.archs.gfpganv1_arch")
    return types.SimpleNamespace(G=GFPGANv1Clean, D=sg2.StyleGAN2Discriminator,
                                 DC=v1.FacialComponentDiscriminator, GANLoss=gan_loss.GANLoss,
                                 r1_penalty=gan_loss.r1_penalty, vgg_arch=vgg_arch,
                                 PerceptualLoss=basic_loss.PerceptualLoss, files=dict(
                                     stylegan2_arch=sg2.__file__, gfpganv1_arch=v1.__file__,
                                     gan_loss=gan_loss.__file__, vgg_arch=vgg_arch.__file__,
                                     basic_loss=basic_loss.__file__))


class VGG19Features(torch.nn.Module):
    """torchvision's VGG19 without its classifier: state-dict keys features.N.weight / .bias,
    exactly those of torchvision's vgg19 state dict that BasicSR's extractor uses."""

    def __init__(self):
        super().__init__()
        self.features = torchvision.models.vgg19(weights=None).features


def vgg_input(x):
    """What VGGFeatureExtractor(range_norm=True, use_input_norm=True) feeds its first conv: the
    ImageNet mean and std are its float32 buffers, cast to float64 with the module."""
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32).double().view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32).double().view(1, 3, 1, 1)
    return ((x + 1) / 2 - mean) / std


def make_perceptual(off, vgg):
    """basicsr's PerceptualLoss(**PERCEPTUAL), its VGGFeatureExtractor holding vgg's (formula)
    weights, in float64.

    The extractor builds torchvision's vgg19 and load_state_dict()s VGG_PRETRAIN_PATH when that
    file exists (else downloads), so the path is pointed at a temporary .pth with vgg's features.*
    tensors and zero classifier.* tensors (stride-0 expansions of one zero, so the file stays
    small; strict loading needs the keys, the extractor drops the classifier). That load is into
    float32 parameters (the default dtype), so after .double() the exact float64 values are copied
    in again, into the extractor's renamed layers (vgg_net.conv1_1 = features.0, ...), after
    checking that the official load put each tensor, rounded to float32, in the same place."""
    vgg_arch = off.vgg_arch
    src = vgg.state_dict()
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg19(weights=None).state_dict().items()}
    zero = torch.zeros((), dtype=torch.float32)
    pth = {k: (src[k].detach().clone() if k in src else zero.expand(shape)) for k, shape in shapes.items()}
    assert set(src) <= set(pth) and all(k.startswith("classifier.") for k in set(pth) - set(src))
    saved = vgg_arch.VGG_PRETRAIN_PATH
    with tempfile.TemporaryDirectory() as tmp:
        vgg_arch.VGG_PRETRAIN_PATH = os.path.join(tmp, "vgg19-formula.pth")
        torch.save(pth, vgg_arch.VGG_PRETRAIN_PATH)
        try:
            with warnings.catch_warnings():  # vgg19(pretrained=False): deprecated, same as weights=None
                warnings.simplefilter("ignore", UserWarning)
                loss = off.PerceptualLoss(**PERCEPTUAL)
        finally:
            vgg_arch.VGG_PRETRAIN_PATH = saved
    ext = loss.vgg
    assert ext.mean.dtype == torch.float32 and ext.range_norm and ext.use_input_norm
    names = vgg_arch.NAMES["vgg19"]
    inner = ext.vgg_net.state_dict()  # conv1_1.weight, ..., conv5_4.bias
    mapping = {}
    for k in src:
        _, idx, kind = k.split(".")
        mapping[k] = f"{names[int(idx)]}.{kind}"
    assert sorted(mapping.values()) == sorted(inner), (sorted(inner), sorted(mapping.values()))
    for k, j in mapping.items():
        assert torch.equal(inner[j], src[k].float()), k
    loss = loss.double()
    inner = ext.vgg_net.state_dict()
    with torch.no_grad():
        for k, j in mapping.items():
            inner[j].copy_(src[k])
    assert not any(p.requires_grad for p in loss.parameters()) and not ext.vgg_net.training
    assert ext.mean.dtype == torch.float64
    return loss


# ------------------------------------------------------------------------------------------------
# Parameters by formula

def phase(key):
    return 2 * math.pi * (sum((j + 1) * b for j, b in enumerate(key.encode("utf-8"))) % 997) / 997


def formula_values(key, numel, amp, off):
    i = np.arange(numel, dtype=np.float64)
    return off + (amp * math.sqrt(2)) * np.sin(0.37 * i + phase(key))


def formula_keys(net_name, model):
    params = {k for k, _ in model.named_parameters()}
    keys = []
    for k in model.state_dict().keys():
        if k in params or (net_name == "g" and k.startswith("stylegan_decoder.noises.")):
            keys.append(k)
        else:
            raise SystemExit(f"{net_name}: unexpected non-parameter state {k}")
    return keys


def set_formula(model, keys, init):
    state = model.state_dict()  # references to the live tensors
    with torch.no_grad():
        for k in keys:
            amp, off = init[k]
            v = formula_values(k, state[k].numel(), amp, off)
            state[k].copy_(torch.from_numpy(v).view(state[k].shape))


def linear_layers(model):
    """(module name, weight key) of the layers whose output is linear in their weight."""
    kinds = (torch.nn.Conv2d, torch.nn.Linear)
    return [(n, f"{n}.weight") for n, m in model.named_modules()
            if (isinstance(m, kinds) or type(m).__name__ in ("EqualConv2d", "EqualLinear"))
            and m.weight.ndim >= 2]


def weight_part(m, inputs):
    """The layer's output with its bias set to zero (homogeneous of degree 1 in the weight, the
    fused leaky ReLU of EqualLinear included)."""
    b = getattr(m, "bias", None)
    if b is None:
        return m.forward(*inputs)
    saved = b.detach().clone()
    b.zero_()
    out = m.forward(*inputs)  # forward, not __call__: no hooks
    b.copy_(saved)
    return out


@torch.no_grad()
def calibrate(model, ref, forward, init):
    """Rescales [amp, off] of each linear layer's weight, in execution order, so that the std of
    the layer's bias-free output equals that of the same layer in the constructor-initialised
    network, on the same inputs.

    Why: the sinusoid steps 0.37 rad per element, so a 3x3 kernel spans 9 * 0.37 = 3.33 rad and
    consecutive kernels are nearly sign-flipped copies of each other. That pattern lines up from
    layer to layer, and with the plain constructor std the activations grow 2-4x per conv (the
    64x64 generator's output reached ~1e11, the discriminator's ~1e7, softplus saturated).
    Only the two stored numbers change; the value formula is the same."""
    layers = linear_layers(model)
    target, hooks = {}, []
    for n, _ in layers:
        def record(m, i, o, n=n):
            target.setdefault(n, weight_part(m, i).std(correction=0).item())
        hooks.append(dict(ref.named_modules())[n].register_forward_hook(record))
    forward(ref)
    for h in hooks:
        h.remove()
    mods = dict(model.named_modules())
    done, hooks = set(), []
    for n, k in layers:
        def rescale(m, i, o, n=n, k=k):
            if n in done:  # a layer called twice keeps its first calibration
                return o
            done.add(n)
            r = target[n] / weight_part(m, i).std(correction=0).item()
            amp, off = init[k]
            init[k] = (amp * r, off * r)
            set_formula(model, [k], init)
            return m.forward(*i)  # the output with the rescaled weight, for the layers after
        hooks.append(mods[n].register_forward_hook(rescale))
    forward(model)
    for h in hooks:
        h.remove()
    assert done == set(target), "calibration missed layers"


def build(net_name, cls, kwargs, forward):
    """Constructs (seed 0), records [amp, off] of each tensor (mean and population std of the
    constructor's values), casts to float64, sets the formula values and calibrates the linear
    layers' amplitudes (see calibrate). Returns the model, its formula keys in state-dict order
    and the init dict."""
    torch.manual_seed(0)
    model = cls(**kwargs)
    keys = formula_keys(net_name, model)
    state = model.state_dict()
    init = {}
    for k in keys:
        t = state[k].detach().to(torch.float64).flatten()
        off = t.mean().item()
        std = t.std(correction=0).item() if t.numel() > 1 else 0.0
        amp = std if (t.numel() > 1 and std > 1e-6) else 0.1 * max(abs(off), 1.0)
        init[k] = (amp, off)
    model = model.double()
    ref = copy.deepcopy(model)
    set_formula(model, keys, init)
    if CALIBRATE:
        calibrate(model, ref, forward, init)
    return model, keys, init


# ------------------------------------------------------------------------------------------------
# Inputs

def gaussian_blur(x, sigma):
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, (0, 0, r, r), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def make_inputs(size, seed, eye, mouth):
    gen = torch.Generator().manual_seed(seed)
    x = gaussian_blur(torch.randn(BATCH, 3, size, size, generator=gen, dtype=torch.float64), size / 24)
    gt = torch.tanh(1.5 * x / x.std())
    lq = gaussian_blur(gt, size / 64) + 0.08 * torch.randn(gt.shape, generator=gen, dtype=torch.float64)
    lq = lq.clamp(-1, 1)
    boxes = {}
    for name, cx, cy, crop in [("left_eye", 0.35, 0.45, eye), ("right_eye", 0.65, 0.45, eye),
                               ("mouth", 0.5, 0.75, mouth)]:
        j = torch.rand(BATCH, 3, generator=gen, dtype=torch.float64) - 0.5  # dx, dy, size jitter
        x0 = cx * size + 0.06 * size * j[:, 0]
        y0 = cy * size + 0.04 * size * j[:, 1]
        half = 0.5 * crop * (1 + 0.3 * j[:, 2])
        boxes[name] = torch.stack([x0 - half, y0 - half, x0 + half, y0 + half], 1)
    # stored as float32, used as float64 after the cast
    return gt.float(), lq.float(), boxes


# ------------------------------------------------------------------------------------------------
# The official loss pieces (gfpgan_model.GFPGANModel), with the crop sizes scaled

def roi_crops(img, boxes, eye, mouth):
    """gfpgan_model.get_roi_regions with face_ratio 1 and the given output sizes."""
    rois_eyes, rois_mouths = [], []
    for b in range(img.shape[0]):
        inds = boxes["left_eye"].new_full((2, 1), b)
        bbox = torch.stack([boxes["left_eye"][b], boxes["right_eye"][b]], 0)
        rois_eyes.append(torch.cat([inds, bbox], -1))
        rois_mouths.append(torch.cat([boxes["left_eye"].new_full((1, 1), b), boxes["mouth"][b:b + 1]], -1))
    rois_eyes = torch.cat(rois_eyes, 0)
    rois_mouths = torch.cat(rois_mouths, 0)
    eyes = roi_align(img, boxes=rois_eyes, output_size=eye)
    mouths = roi_align(img, boxes=rois_mouths, output_size=mouth)
    return {"left_eye": eyes[0::2], "right_eye": eyes[1::2], "mouth": mouths}


def gram_mat(x):
    n, c, h, w = x.size()
    features = x.view(n, c, w * h)
    return features.bmm(features.transpose(1, 2)) / (c * h * w)


def img_pyramid(gt, log_size):
    pyramid = [gt]
    down = gt
    for _ in range(log_size - 3):
        down = F.interpolate(down, scale_factor=0.5, mode="bilinear", align_corners=False)
        pyramid.insert(0, down)
    return pyramid


def summary(t):
    t = t.detach().to(torch.float64).flatten()
    n = t.numel()
    u = torch.sin(1.1 * torch.arange(n, dtype=torch.float64) + 0.5)
    head = torch.zeros(8, dtype=torch.float64)
    head[:min(8, n)] = t[:8]
    return torch.cat([torch.stack([t.sum(), (t * t).sum(), (t * u).sum(), t.abs().max()]), head])


# ------------------------------------------------------------------------------------------------

def compute(off, nets, gt, lq, boxes, eye, mouth):
    """All forward values, loss terms, gradient summaries and Adam results from the given
    (float64, formula-set) networks and inputs. Returns (tensors, metadata)."""
    g, d = nets["g"], nets["d"]
    dc = {c: nets[f"d_{c}"] for c in COMPONENTS}
    log_size = int(math.log2(gt.shape[-1]))
    cri_gan = off.GANLoss("wgan_softplus", loss_weight=1.0)  # gan_opt of the official configs
    cri_comp = off.GANLoss("vanilla", loss_weight=1.0)  # gan_component_opt
    perc = make_perceptual(off, nets["vgg"])  # perceptual_opt
    out, meta = {}, {}

    def forward_g(net=g):
        return net(lq, return_rgb=True, randomize_noise=False)

    # ---- forward values (float32); fwdsum.* always, fwd.* in full up to FULL_LIMIT elements
    fwd = {}
    with torch.no_grad():
        image, rgbs = forward_g()
        fwd["image"] = image
        for i, r in enumerate(rgbs):
            fwd[f"out_rgb.{i}"] = r
        fwd["d_real"] = d(gt)
        fwd["d_fake"] = d(image)
        crops_real = roi_crops(gt, boxes, eye, mouth)
        crops_fake = roi_crops(image, boxes, eye, mouth)
        for c in COMPONENTS:
            fwd[f"crop.{c}.real"] = crops_real[c]
            fwd[f"crop.{c}.fake"] = crops_fake[c]
            pred, feats = dc[c](crops_real[c], return_feats=True)
            fwd[f"dc.{c}.real"] = pred
            fwd[f"dc.{c}.feat0.real"] = feats[0]
            fwd[f"dc.{c}.feat1.real"] = feats[1]
        for layer, v in perc.vgg(image).items():
            fwd[f"vgg.{layer}"] = v
    x = gt.clone().requires_grad_(True)
    fwd["r1_grad"] = autograd.grad(d(x).sum(), x)[0]
    for k, v in fwd.items():
        out[f"fwdsum.{k}"] = summary(v)
        if v.numel() <= FULL_LIMIT:
            out[f"fwd.{k}"] = v.detach().float()
    fake_fixed = image.detach()

    # ---- loss terms
    def g_loss(term):
        image, rgbs = forward_g()
        if term == "l1":
            return F.l1_loss(image, gt)
        if term == "pyramid":
            pyr = img_pyramid(gt, log_size)
            assert [r.shape for r in rgbs] == [p.shape for p in pyr]
            return sum(F.l1_loss(r, p) for r, p in zip(rgbs, pyr))
        if term == "g_gan":
            return cri_gan(d(image), True, is_disc=False)
        if term == "perceptual":
            return perc(image, gt)[0]
        if term == "percep_style":
            return perc(image, gt)[1]
        fake = roi_crops(image, boxes, eye, mouth)
        if term == "comp_gan":
            return sum(cri_comp(dc[c](fake[c], return_feats=True)[0], True, is_disc=False) for c in COMPONENTS)
        if term == "comp_style":
            real = roi_crops(gt, boxes, eye, mouth)
            total = 0
            for c in COMPONENTS:
                _, ff = dc[c](fake[c], return_feats=True)
                _, fr = dc[c](real[c], return_feats=True)
                total = total + F.l1_loss(gram_mat(ff[0]), gram_mat(fr[0].detach())) * 0.5 \
                    + F.l1_loss(gram_mat(ff[1]), gram_mat(fr[1].detach()))
            return total
        raise ValueError(term)

    def d_loss(term):
        if term == "d_gan":
            return cri_gan(d(gt), True, is_disc=True) + cri_gan(d(fake_fixed), False, is_disc=True)
        if term == "d_r1":
            x = gt.clone().requires_grad_(True)
            return off.r1_penalty(d(x), x)
        if term == "d_comp":
            real = roi_crops(gt, boxes, eye, mouth)
            fake = roi_crops(fake_fixed, boxes, eye, mouth)
            # the official code scores the fake crops with cri_gan (wgan_softplus) and the real
            # ones with cri_component (vanilla); both are mean softplus(-x) / mean softplus(x)
            return sum(cri_comp(dc[c](real[c])[0], True, is_disc=True)
                       + cri_gan(dc[c](fake[c])[0], False, is_disc=True) for c in COMPONENTS)
        raise ValueError(term)

    terms = [(t, g_loss, ["g"]) for t in G_TERMS] + [(t, d_loss, ["d"]) for t in ["d_gan", "d_r1"]]
    terms += [("d_comp", d_loss, [f"d_{c}" for c in COMPONENTS])]
    for term, fn, net_names in terms:
        loss = fn(term)
        out[f"loss.{term}"] = loss.detach().reshape(1)
        params = [(n, k, p) for n in net_names for k, p in nets[n].named_parameters()]
        grads = autograd.grad(loss, [p for _, _, p in params], allow_unused=True)
        nograd = []
        for (n, k, p), gr in zip(params, grads):
            if gr is None:
                nograd.append(f"{n}.{k}")
                out[f"grad.{term}.{n}.{k}"] = torch.zeros(12, dtype=torch.float64)
            else:
                out[f"grad.{term}.{n}.{k}"] = summary(gr)
        meta[f"nograd.{term}"] = ",".join(nograd)

    # ---- three Adam steps from the formula parameters
    g3 = copy.deepcopy(g)
    opt = torch.optim.Adam(g3.parameters(), lr=G_LR, betas=(0.0, 0.99), eps=1e-8, foreach=False)
    losses = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        image, rgbs = forward_g(g3)
        loss = F.l1_loss(image, gt) + sum(F.l1_loss(r, p) for r, p in zip(rgbs, img_pyramid(gt, log_size)))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["adam3_loss.g"] = torch.tensor(losses, dtype=torch.float64)
    for k, p in g3.named_parameters():
        out[f"adam3.g.{k}"] = summary(p)

    d3 = copy.deepcopy(d)
    opt = torch.optim.Adam(d3.parameters(), lr=G_LR * D_RATIO, betas=(0.0**D_RATIO, 0.99**D_RATIO), eps=1e-8,
                           foreach=False)
    losses = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        loss = cri_gan(d3(gt), True, is_disc=True) + cri_gan(d3(fake_fixed), False, is_disc=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["adam3_loss.d"] = torch.tensor(losses, dtype=torch.float64)
    for k, p in d3.named_parameters():
        out[f"adam3.d.{k}"] = summary(p)
    return out, meta


def run_config(name, cfg, off):
    size = cfg["g"]["out_size"]
    eye, mouth = round(80 * size / 512), round(120 * size / 512)
    print(f"== {name}: S={size} eye crop {eye} mouth crop {mouth}")

    gt32, lq32, boxes = make_inputs(size, cfg["seed"], eye, mouth)
    gt, lq = gt32.double(), lq32.double()
    crops_gt = roi_crops(gt, boxes, eye, mouth)

    nets, keys, inits = {}, {}, {}
    nets["g"], keys["g"], inits["g"] = build(
        "g", off.G, cfg["g"], lambda m: m(lq, return_rgb=True, randomize_noise=False))
    nets["d"], keys["d"], inits["d"] = build("d", off.D, cfg["d"], lambda m: m(gt))
    for c in COMPONENTS:
        n = f"d_{c}"
        nets[n], keys[n], inits[n] = build(n, off.DC, {}, lambda m, c=c: m(crops_gt[c], return_feats=True))
    nets["vgg"], keys["vgg"], inits["vgg"] = build("vgg", VGG19Features, {}, lambda m: m.features(vgg_input(gt)))

    out = {"gt": gt32, "lq": lq32}
    for c in COMPONENTS:
        out[f"boxes.{c}"] = boxes[c].clone()
    for net, ks in keys.items():
        for k in ks:
            out[f"init.{net}.{k}"] = torch.tensor(inits[net][k], dtype=torch.float64)
    meta = {f"keys.{n}": ",".join(ks) for n, ks in keys.items()}
    computed, computed_meta = compute(off, nets, gt, lq, boxes, eye, mouth)
    out.update(computed)
    meta.update(computed_meta)

    g_cfg = dict(cfg["g"])
    d_cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg["d"].items()}
    meta.update({
        "g_config": json.dumps(g_cfg, sort_keys=True),
        "d_config": json.dumps(d_cfg, sort_keys=True),
        "dc_config": json.dumps({}),
        "perceptual_config": json.dumps(PERCEPTUAL, sort_keys=True),
        "eye_crop": str(eye),
        "mouth_crop": str(mouth),
        "batch": str(BATCH),
        "input_seed": str(cfg["seed"]),
        "calibrated": str(CALIBRATE).lower(),
        "fwd_full_limit": str(FULL_LIMIT),
        "adam_g": json.dumps(dict(lr=G_LR, betas=[0.0, 0.99], eps=1e-8)),
        "adam_d": json.dumps(dict(lr=G_LR * D_RATIO, betas=[0.0**D_RATIO, 0.99**D_RATIO], eps=1e-8)),
        "torch": torch.__version__,
        "basicsr": importlib.metadata.version("basicsr"),
        "gfpgan": importlib.metadata.version("gfpgan"),
        "torchvision": importlib.metadata.version("torchvision"),
    })
    out = {k: v.contiguous() for k, v in out.items()}
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.safetensors")
    save_file(out, path, metadata=meta)
    canonical_header(path)
    for t in [t for t in G_TERMS + ["d_gan", "d_r1", "d_comp"]]:
        nograd = [k for k in meta[f"nograd.{t}"].split(",") if k]
        print(f"  loss.{t} = {out[f'loss.{t}'].item():.12g}  ({len(nograd)} params without grad)")
    print(f"  adam3_loss.g {out['adam3_loss.g'].tolist()}\n  adam3_loss.d {out['adam3_loss.d'].tolist()}")
    print(f"  wrote {os.path.relpath(path, ROOT)}: {len(out)} tensors, {os.path.getsize(path)} bytes")
    return path


def canonical_header(path):
    """Rewrites the safetensors header with sorted keys (safetensors writes the metadata in hash
    order), so that regenerating gives the same bytes. Same length: only the order changes."""
    import struct
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        meta = header.pop("__metadata__")
        text = json.dumps({"__metadata__": dict(sorted(meta.items())), **dict(sorted(header.items()))},
                          separators=(",", ":")).encode()
        assert len(text) <= n
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def verify(off, path):
    """Rebuilds the networks from the file alone (fresh constructors, every key in keys.<net> set
    from init.<net>.<key> by the formula, nothing else touched), recomputes everything and checks
    that it equals what is stored."""
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        stored = {k: f.get_tensor(k) for k in f.keys()}
    eye, mouth = int(meta["eye_crop"]), int(meta["mouth_crop"])
    classes = {"g": (off.G, json.loads(meta["g_config"])), "d": (off.D, json.loads(meta["d_config"]))}
    for c in COMPONENTS:
        classes[f"d_{c}"] = (off.DC, {})
    classes["vgg"] = (VGG19Features, {})
    nets = {}
    for n, (cls, kwargs) in classes.items():
        if "resample_kernel" in kwargs:
            kwargs["resample_kernel"] = tuple(kwargs["resample_kernel"])
        torch.manual_seed(0)
        model = cls(**kwargs).double()
        state = model.state_dict()
        keys = meta[f"keys.{n}"].split(",")
        with torch.no_grad():
            for k in keys:
                amp, off_ = stored[f"init.{n}.{k}"].tolist()
                # element by element with Python's math.sin, independently of formula_values
                v = [off_ + amp * math.sqrt(2) * math.sin(0.37 * i + phase(k)) for i in range(state[k].numel())]
                state[k].copy_(torch.tensor(v, dtype=torch.float64).view(state[k].shape))
        nets[n] = model
    boxes = {c: stored[f"boxes.{c}"] for c in COMPONENTS}
    out, vmeta = compute(off, nets, stored["gt"].double(), stored["lq"].double(), boxes, eye, mouth)
    worst = (-1.0, "")
    for k, v in out.items():
        s = stored[k].double()
        scale = max(s.abs().max().item(), 1e-300)
        err = (v.double() - s).abs().max().item() / scale
        if v.dtype == torch.float32:
            err = 0.0 if torch.equal(v, stored[k]) else err
        worst = max(worst, (err, k))
    assert set(out) | {"gt", "lq"} | {f"boxes.{c}" for c in COMPONENTS} | {k for k in stored if k.startswith("init.")} \
        == set(stored), "key sets differ"
    assert all(vmeta[k] == meta[k] for k in vmeta), "nograd lists differ"
    print(f"  verify {os.path.relpath(path, ROOT)}: rebuilt from init.* alone, worst relative difference "
          f"{worst[0]:.3g} ({worst[1]})")
    assert worst[0] < 1e-10, worst


def main():
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    off = load_official()
    args = sys.argv[1:]
    check = "--no-verify" not in args
    names = [a for a in args if not a.startswith("--")] or list(CONFIGS)
    for name in names:
        path = run_config(name, CONFIGS[name], off)
        if check:
            verify(off, path)


if __name__ == "__main__":
    main()
