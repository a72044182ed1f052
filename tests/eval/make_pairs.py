#!/usr/bin/env python3
"""Makes the committed image-quality test pairs in tests/fixtures/eval/.

Ground truth (NN_gt.png): a region around the largest face of face-api's demo photos
weights/face-api/demo/sampleN.jpg (fetched by weights/fetch-face-models.sh), resized with Pillow's
Lanczos filter. Degraded version (NN_lq.png): one distortion per pair, seeded, so the same pinned
packages (tests/eval/setup.sh) give byte-identical PNGs. All PNGs are 8-bit RGB without alpha.

    python tests/eval/make_pairs.py      # with the venv from tests/eval/setup.sh

Sizes are width x height. NIQE (BasicSR, 96x96 blocks, two scales) needs at least two whole
blocks: with a single 96x96 block np.cov over one row gives NaN and np.linalg.pinv raises
"SVD did not converge", so the smallest pair (06) is 96x192 (one block column, two block rows)
instead of 96x96. Pair 05 (200x150) is cropped by NIQE to 192x96 (two blocks side by side).
"""
import io
import os
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "weights", "face-api", "demo")
OUT = os.path.join(ROOT, "tests", "fixtures", "eval")
SEED = 20240611

# Largest face per photo: (x, y, side) of face-api's square crop around its ssd_mobilenetv1 box,
# copied from tests/faceapi/fixtures/reference.json ("crop_square" of each photo's face 0).
FACES = {
    1: (1457, 200, 241),
    2: (1422, 153, 243),
    3: (1036, 215, 299),
    4: (629, 52, 258),
    5: (313, 859, 300),
    6: (1446, 263, 294),
}


def gaussian_blur(img, rng, sigma):
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def add_noise(img, rng, sigma):
    noisy = img.astype(np.float64) + rng.normal(0.0, sigma, img.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img, rng, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)  # Pillow default: 4:2:0
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def down_up(img, rng, factor):
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((w // factor, h // factor), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def motion_blur(img, rng, length):
    kernel = np.full((1, length), 1.0 / length)  # horizontal box blur
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def mixed(img, rng):
    """GFP-GAN-like chain: blur, noise, JPEG."""
    return jpeg(add_noise(gaussian_blur(img, rng, 1.2), rng, 6.0), rng, 40)


# (pair id, photo, output width, output height, crop width / face side, crop height / face side,
#  distortion description, distortion)
PAIRS = [
    ("01", 1, 192, 192, 1.4, 1.4, "gaussian blur sigma 2.0", lambda im, r: gaussian_blur(im, r, 2.0)),
    ("02", 2, 192, 192, 1.4, 1.4, "gaussian noise sigma 12", lambda im, r: add_noise(im, r, 12.0)),
    ("03", 3, 192, 192, 1.4, 1.4, "JPEG quality 20", lambda im, r: jpeg(im, r, 20)),
    ("04", 4, 192, 192, 1.4, 1.4, "bicubic down-up x4", lambda im, r: down_up(im, r, 4)),
    ("05", 5, 200, 150, 1.6, 1.2, "blur 1.2 + noise 6 + JPEG 40", mixed),
    ("06", 6, 96, 192, 0.8, 1.6, "horizontal motion blur 7 px", lambda im, r: motion_blur(im, r, 7)),
]


def crop_face(photo, face, out_w, out_h, fw, fh):
    x, y, side = face
    cx, cy = x + side / 2.0, y + side / 2.0
    cw, ch = side * fw, side * fh
    left = int(round(min(max(cx - cw / 2.0, 0), photo.width - cw)))
    top = int(round(min(max(cy - ch / 2.0, 0), photo.height - ch)))
    box = (left, top, left + int(round(cw)), top + int(round(ch)))
    return np.asarray(photo.crop(box).resize((out_w, out_h), Image.LANCZOS))


def save_png(path, img):
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    Image.fromarray(img, "RGB").save(path, format="PNG", optimize=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    lines = []
    for pid, photo_no, w, h, fw, fh, desc, distort in PAIRS:
        path = os.path.join(DEMO, f"sample{photo_no}.jpg")
        if not os.path.exists(path):
            sys.exit(f"{path} missing: run weights/fetch-face-models.sh first")
        photo = Image.open(path).convert("RGB")
        gt = crop_face(photo, FACES[photo_no], w, h, fw, fh)
        lq = distort(gt.copy(), rng)
        assert lq.shape == gt.shape and lq.dtype == np.uint8
        save_png(os.path.join(OUT, f"{pid}_gt.png"), gt)
        save_png(os.path.join(OUT, f"{pid}_lq.png"), lq)
        lines.append(f"{pid} sample{photo_no}.jpg {w}x{h} {desc}")
    with open(os.path.join(OUT, "pairs.txt"), "w") as f:
        f.write("# made by tests/eval/make_pairs.py: pair, source photo, width x height, distortion of NN_lq.png\n")
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(PAIRS)} pairs to {OUT} ({total} bytes in the folder)")


if __name__ == "__main__":
    main()
