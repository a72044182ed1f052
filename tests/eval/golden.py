#!/usr/bin/env python3
"""Golden PSNR / SSIM / NIQE values computed by BasicSR 1.4.2's own metric functions.

Reads the committed pairs tests/fixtures/eval/NN_gt.png / NN_lq.png (made by make_pairs.py) and
writes tests/fixtures/eval/golden.json and tests/fixtures/eval/niqe_debug_01.json.

    "$(tests/eval/setup.sh)" tests/eval/golden.py

Calls, unmodified, as GFP-GAN's validation does (crop_border=0, HWC, uint8 images):
  basicsr.metrics.psnr_ssim.calculate_psnr(img, img2, crop_border=0, input_order='HWC', test_y_channel=False)
  basicsr.metrics.psnr_ssim.calculate_ssim(img, img2, crop_border=0, input_order='HWC', test_y_channel=False)
  basicsr.metrics.niqe.calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y')

Channel order: BasicSR expects BGR (its Y conversion is bgr2ycbcr). The PNGs are RGB files, so they
are read with cv2.imread(path, cv2.IMREAD_COLOR), which returns BGR uint8 (h, w, 3): what BasicSR's
scripts/metrics/calculate_niqe.py passes to calculate_niqe, and what BasicSR/GFP-GAN validation
passes to the metrics (tensor2img: BGR uint8). PSNR/SSIM on all three channels do not depend on the
channel order; NIQE's Y does (Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 on the RGB pixels).

Import note: `import basicsr` runs basicsr/__init__.py, which imports the whole toolbox (archs,
data with torchvision.transforms.functional_tensor, lmdb, ...). Only the metric modules are needed,
so load_basicsr() registers empty package objects for `basicsr` and `basicsr.utils` (pointing at the
installed package's folders, so their submodules import from the installed files) and sets
basicsr.utils.bgr2ycbcr, the one name metric_util takes from basicsr/utils/__init__.py. The metric
modules themselves (niqe.py, psnr_ssim.py, metric_util.py, color_util.py, matlab_functions.py)
run unmodified.
"""
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import types
import warnings

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "eval")
BASICSR_VERSION = "1.4.2"
PAIRS = ["01", "02", "03", "04", "05", "06"]


def load_basicsr():
    version = importlib.metadata.version("basicsr")
    if version != BASICSR_VERSION:
        sys.exit(f"basicsr {version} installed, {BASICSR_VERSION} needed (tests/eval/setup.sh)")
    spec = importlib.util.find_spec("basicsr")  # finds the package without running its __init__
    root = list(spec.submodule_search_locations)[0]
    pkg = types.ModuleType("basicsr")
    pkg.__path__ = [root]
    sys.modules["basicsr"] = pkg
    utils = types.ModuleType("basicsr.utils")
    utils.__path__ = [os.path.join(root, "utils")]
    sys.modules["basicsr.utils"] = utils
    pkg.utils = utils
    utils.bgr2ycbcr = importlib.import_module("basicsr.utils.color_util").bgr2ycbcr
    with warnings.catch_warnings():  # niqe.py imports the deprecated scipy.ndimage.filters
        warnings.simplefilter("ignore", DeprecationWarning)
        niqe = importlib.import_module("basicsr.metrics.niqe")
    psnr_ssim = importlib.import_module("basicsr.metrics.psnr_ssim")
    metric_util = importlib.import_module("basicsr.metrics.metric_util")
    return niqe, psnr_ssim, metric_util, root


def read_bgr(name):
    img = cv2.imread(os.path.join(FIX, name), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {name}: run tests/eval/make_pairs.py first")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    return img


def num(x):
    """A float for JSON: repr precision (json writes float.__repr__); +inf as the string "inf"."""
    x = float(x)
    if math.isinf(x) and x > 0:
        return "inf"
    assert math.isfinite(x), x
    return x


def grid(a, n=5):
    return [[float(v) for v in row[:n]] for row in np.asarray(a)[:n]]


def niqe_debug(niqe_mod, metric_util, img_bgr, pris):
    """calculate_niqe / niqe() again, step by step, to record intermediate values. The control flow
    is copied from basicsr/metrics/niqe.py (1.4.2); every computation is BasicSR's own function."""
    mu_pris, cov_pris, window = pris["mu_pris_param"], pris["cov_pris_param"], pris["gaussian_window"]
    # calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y')
    img = img_bgr.astype(np.float32)
    img = metric_util.reorder_image(img, input_order="HWC")
    img = metric_util.to_y_channel(img)
    img = np.squeeze(img)
    img = img.round()
    y = img
    # niqe(img, ...), block 96x96
    bh = bw = 96
    h, w = img.shape
    nbh, nbw = math.floor(h / bh), math.floor(w / bw)
    img = img[0:nbh * bh, 0:nbw * bw]
    distparam = []
    resized = None
    for scale in (1, 2):
        mu = niqe_mod.convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(niqe_mod.convolve(np.square(img), window, mode="nearest") - np.square(mu)))
        normalized = (img - mu) / (sigma + 1)
        feat = []
        for iw in range(nbw):
            for ih in range(nbh):
                block = normalized[ih * bh // scale:(ih + 1) * bh // scale, iw * bw // scale:(iw + 1) * bw // scale]
                feat.append(niqe_mod.compute_feature(block))
        distparam.append(np.array(feat))
        if scale == 1:
            img = niqe_mod.imresize(img / 255., scale=0.5, antialiasing=True)
            img = img * 255.
            resized = img
    distparam = np.concatenate(distparam, axis=1)
    mu_dist = np.nanmean(distparam, axis=0)
    no_nan = distparam[~np.isnan(distparam).any(axis=1)]
    cov_dist = np.cov(no_nan, rowvar=False)
    invcov = np.linalg.pinv((cov_pris + cov_dist) / 2)
    quality = float(np.squeeze(np.sqrt(np.matmul(np.matmul(mu_pris - mu_dist, invcov), np.transpose(mu_pris - mu_dist)))))
    return {
        "y": {"dtype": str(y.dtype), "shape": list(y.shape), "first_5x5": grid(y)},
        "resized_x255": {"dtype": str(resized.dtype), "shape": list(resized.shape), "first_5x5": grid(resized)},
        "distparam": {"dtype": str(distparam.dtype), "shape": list(distparam.shape),
                      "rows": [[float(v) for v in r] for r in distparam]},
        "mu_distparam": [float(v) for v in mu_dist],
        "quality": quality,
    }


def main():
    niqe_mod, psnr_ssim, metric_util, root = load_basicsr()
    pris = np.load(os.path.join(root, "metrics", "niqe_pris_params.npz"))

    def psnr(a, b):
        return psnr_ssim.calculate_psnr(a, b, crop_border=0, input_order="HWC", test_y_channel=False)

    def ssim(a, b):
        return psnr_ssim.calculate_ssim(a, b, crop_border=0, input_order="HWC", test_y_channel=False)

    def niqe(a):
        return niqe_mod.calculate_niqe(a, crop_border=0, input_order="HWC", convert_to="y")

    pairs = {}
    for pid in PAIRS:
        gt, lq = read_bgr(f"{pid}_gt.png"), read_bgr(f"{pid}_lq.png")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of empty slice on a NaN feature, if any
            pairs[pid] = {
                "width": gt.shape[1],
                "height": gt.shape[0],
                "psnr_lq_gt": num(psnr(lq, gt)),
                "ssim_lq_gt": num(ssim(lq, gt)),
                "niqe_gt": num(niqe(gt)),
                "niqe_lq": num(niqe(lq)),
                "psnr_gt_gt": num(psnr(gt, gt)),
                "ssim_gt_gt": num(ssim(gt, gt)),
            }
        print(pid, json.dumps(pairs[pid]))

    versions = {name: importlib.metadata.version(name)
                for name in ("basicsr", "numpy", "scipy", "opencv-python-headless", "torch")}
    golden = {
        "about": "PSNR/SSIM/NIQE of tests/fixtures/eval/NN_{gt,lq}.png by BasicSR 1.4.2's own functions; "
                 "regenerate with tests/eval/golden.py (venv: tests/eval/setup.sh)",
        "calls": {
            "psnr_lq_gt": "calculate_psnr(lq, gt, crop_border=0, input_order='HWC', test_y_channel=False)",
            "ssim_lq_gt": "calculate_ssim(lq, gt, crop_border=0, input_order='HWC', test_y_channel=False)",
            "niqe_gt / niqe_lq": "calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y')",
            "psnr_gt_gt / ssim_gt_gt": "the same with gt as both images",
        },
        "images": "read with cv2.imread(path, cv2.IMREAD_COLOR): uint8 HWC in BGR order (the PNGs are RGB)",
        "inf": "an infinite PSNR (mse == 0) is written as the string \"inf\"",
        "floats": "float64 written with repr precision",
        "sizes": "pair 06 is 96x192 (w x h), not 96x96: BasicSR's NIQE fails on a single 96x96 block "
                 "(np.cov of one row is NaN, np.linalg.pinv raises 'SVD did not converge'); two blocks "
                 "is the minimum. Pair 05 (200x150) is cropped by NIQE to 192x96",
        "precision": "BasicSR's NIQE runs in float32 up to the features (Y, convolutions, normalised image, "
                     "imresize, AGGD moments); a float32-faithful reimplementation agreed within 4e-6 "
                     "relative on these 12 images, one in float64 throughout differed by up to 7e-3",
        "ssim_gaussian_kernel": {
            "source": "cv2.getGaussianKernel(11, 1.5) as used by basicsr.metrics.psnr_ssim._ssim "
                      "(window = outer(k, k)); OpenCV computes it bit-exactly, the plain normalised "
                      "exp(-(i-5)^2 / 4.5) formula differs by up to 1 ulp",
            "values": [float(v) for v in cv2.getGaussianKernel(11, 1.5)[:, 0]],
        },
        "versions": versions,
        "pairs": pairs,
    }
    with open(os.path.join(FIX, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")

    lq = read_bgr("01_lq.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        debug = niqe_debug(niqe_mod, metric_util, lq, pris)
    if debug["quality"] != pairs["01"]["niqe_lq"]:
        sys.exit(f"step-by-step NIQE {debug['quality']!r} != calculate_niqe {pairs['01']['niqe_lq']!r}")
    debug = {
        "about": "intermediate values of BasicSR 1.4.2's calculate_niqe on tests/fixtures/eval/01_lq.png "
                 "(read as BGR uint8 with cv2.imread); made by tests/eval/golden.py",
        "notes": {
            "y": "Y after to_y_channel and round(), the input of niqe(); first_5x5 is rows 0..4, cols 0..4",
            "resized_x255": "imresize(img / 255., scale=0.5, antialiasing=True) * 255. of the cropped Y "
                            "(the scale-2 input)",
            "distparam": "per-block features, blocks in BasicSR's order (block column outer, block row inner); "
                         "columns 0..17 scale 1, 18..35 scale 2",
            "mu_distparam": "np.nanmean(distparam, axis=0)",
            "quality": "final NIQE, equal to golden.json pairs.01.niqe_lq (checked)",
        },
        **debug,
    }
    with open(os.path.join(FIX, "niqe_debug_01.json"), "w") as f:
        json.dump(debug, f, indent=1)
        f.write("\n")
    print("wrote golden.json and niqe_debug_01.json to", FIX)


if __name__ == "__main__":
    main()
