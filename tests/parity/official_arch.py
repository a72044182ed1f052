"""Imports the official GFPGANv1Clean from the installed gfpgan==1.3.8 package.

Only gfpgan/archs/gfpganv1_clean_arch.py and stylegan2_clean_arch.py are loaded. Their two
imports from BasicSR (an architecture registry, and the weight-init helper used at construction)
are provided here so that BasicSR and its heavy dependencies are not needed; the fixtures perturb
every parameter afterwards, so the init helper only has to produce sane magnitudes.
"""
import importlib
import importlib.util
import math
import sys
import types

import torch
from torch import nn


def _install_basicsr_stubs():
    class Registry:
        def register(self, obj=None):
            return obj if obj is not None else (lambda o: o)

    @torch.no_grad()
    def default_init_weights(module_list, scale=1, bias_fill=0, **kwargs):
        if not isinstance(module_list, list):
            module_list = [module_list]
        for module in module_list:
            for m in module.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, **kwargs)
                    m.weight.data *= scale
                    if m.bias is not None:
                        m.bias.data.fill_(bias_fill)

    registry = types.ModuleType("basicsr.utils.registry")
    registry.ARCH_REGISTRY = Registry()
    arch_util = types.ModuleType("basicsr.archs.arch_util")
    arch_util.default_init_weights = default_init_weights
    for name in ["basicsr", "basicsr.utils", "basicsr.archs"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["basicsr.utils.registry"] = registry
    sys.modules["basicsr.archs.arch_util"] = arch_util


def load():
    """Returns the official GFPGANv1Clean class."""
    if "gfpgan.archs.gfpganv1_clean_arch" in sys.modules:
        return sys.modules["gfpgan.archs.gfpganv1_clean_arch"].GFPGANv1Clean
    _install_basicsr_stubs()
    # Register empty parent packages pointing at the installed files, so that the two modules
    # import without running gfpgan/__init__.py (which pulls in BasicSR, OpenCV, facexlib...).
    root = importlib.util.find_spec("gfpgan").submodule_search_locations[0]
    for name, path in [("gfpgan", root), ("gfpgan.archs", f"{root}/archs")]:
        pkg = types.ModuleType(name)
        pkg.__path__ = [path]
        sys.modules[name] = pkg
    return importlib.import_module("gfpgan.archs.gfpganv1_clean_arch").GFPGANv1Clean


RELEASED = dict(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None,
                fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1,
                sft_half=True)
