"""Image folders for training and validation, loaded once into memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isp.errors import SettingError
from isp.io import list_images, load_image


def load_folder(folder: str | Path, limit: int | None = None, min_side: int = 64) -> list[np.ndarray]:
    """The first `limit` images of a folder (all when None) that are at least `min_side` px on each side, as
    float32 sRGB H×W×3 arrays (via isp.io); smaller ones (of any size) are skipped, an unreadable file is an
    error."""
    images = []
    for path in list_images(folder):
        if limit is not None and len(images) >= limit:
            break
        image = load_image(path, min_side=1)
        if min(image.shape[:2]) >= min_side:
            images.append(image)
    return images


def load_training_photos(folder: str | Path, min_side: int) -> list[np.ndarray]:
    """Every photo of a folder big enough for one training crop (`min_side` photo pixels a side, at least 64);
    smaller ones are skipped. A SettingError when none is left, before any training starts."""
    side = max(64, min_side)
    images = load_folder(folder, min_side=side)
    if not images:
        raise SettingError(f"No training image in '{folder}' is at least {side}×{side} pixels, the size one "
                           "training crop needs; add larger photos or use a smaller --patch.")
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
