"""Image folders for training and validation, loaded once into memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isp.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_images(folder: str | Path) -> list[Path]:
    """Every image below `folder` (recursively), sorted; a clear error when there is none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"Image folder '{folder}' does not exist or is not a folder.")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"No images (PNG/JPEG/TIFF/BMP) found in '{folder}'.")
    return paths


def load_folder(folder: str | Path, limit: int | None = None, min_side: int = 64) -> list[np.ndarray]:
    """Load the images of a folder as float32 sRGB H×W×3 arrays (via isp.io), skipping tiny ones."""
    from isp.io import load_image

    images = []
    for path in list_images(folder)[:limit]:
        image = load_image(path)
        if min(image.shape[:2]) >= min_side:
            images.append(image)
    return images


def random_crop(rng: np.random.Generator, arrays: list[np.ndarray], size: int, scales: list[int]) -> list[np.ndarray]:
    """Aligned random crops of several arrays that differ by integer scale factors (e.g. LR/HR pairs).

    `size` is the crop size at scale 1 (the smallest array); array i is cropped at `size * scales[i]`.
    """
    base_h, base_w = arrays[0].shape[0] // scales[0], arrays[0].shape[1] // scales[0]
    y = int(rng.integers(0, base_h - size + 1))
    x = int(rng.integers(0, base_w - size + 1))
    return [a[y * s:(y + size) * s, x * s:(x + size) * s] for a, s in zip(arrays, scales)]


def augment(rng: np.random.Generator, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The same random flip / 90° rotation (8 dihedral cases) applied to every array (H×W×C)."""
    k = int(rng.integers(0, 4))
    flip = bool(rng.integers(0, 2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
    return out
