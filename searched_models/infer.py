"""Run a spec network on an image of any size: pad to the network's stride, and tile large inputs.

Tiles overlap by the network's receptive-field radius (the halo), so tiled output equals untiled output
up to float rounding; networks with a `dynamic` block mix kernels from the whole input's average, so for
them tiles are only approximately equal (documented, and `tile=None` avoids it).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from searched_models.spec import expand_blocks, normalise_spec


def stride_multiple(spec: dict) -> int:
    """Input sizes must be multiples of this: pixel-unshuffle × 2 per U-Net level (× 2^(L−1) for an L-level pyramid)."""
    s = normalise_spec(spec)
    if s["pyramid"]:
        return s["unshuffle"] * 2 ** (s["pyramid"] - 1)
    downs = sum(1 for b in expand_blocks(s["blocks"]) if b["type"] == "down")
    return s["unshuffle"] * 2 ** downs


def receptive_radius(spec: dict) -> int:
    """How many input pixels on each side can influence an output pixel (upper bound)."""
    s = normalise_spec(spec)
    step = s["unshuffle"]           # input pixels per layer pixel
    radius = step - 1 + (s["stem"]["kernel"] // 2) * step
    for block in expand_blocks(s["blocks"]):
        k = block["kernel"] // 2
        kind = block["type"]
        if kind == "down":
            radius += k * step
            step *= 2
        elif kind == "up":
            radius += k * step
            step //= 2
        elif kind == "residual":
            radius += 2 * k * step
        elif kind == "inverted" or kind == "dwsep":
            radius += k * step
        else:
            radius += k * step
    radius += (s["tail"]["kernel"] // 2) * step
    if s["pyramid"]:
        # longest path, in level-0 pixels: pyrDowns to level L − 1 (2 px of each level: < 2·2^(L−1)), the pyrUp
        # of the band at level L − 2 (1.5 px of level L − 1: 3·2^(L−2)), the body there (radius·2^(L−2)), and the
        # collapse's pyrUps back to level 0 (< 3·2^(L−2)).
        return (10 + radius) * 2 ** (s["pyramid"] - 2) + 4
    return radius + 4  # the bicubic skip reaches two LR pixels; round up


def _run_padded(model: torch.nn.Module, x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    y = model(x)
    scale = y.shape[-1] // x.shape[-1]
    return y[..., : h * scale, : w * scale]


def run_chw(model: torch.nn.Module, x: np.ndarray, *, tile: int | None = 512, bf16: bool = False) -> np.ndarray:
    """Apply `model` (a SpecNet) to one C×H×W float32 array; returns C×H'×W' float32.

    tile: the core tile size in input pixels (None = whole image at once). Memory stays bounded by the tile.
    """
    spec = model.spec
    multiple = stride_multiple(spec)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        tensor = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
        h, w = tensor.shape[-2:]
        if tile is None or (h <= tile and w <= tile):
            return _run_padded(model, tensor, multiple)[0].float().numpy()
        tile = max(multiple, tile // multiple * multiple)
        halo = int(math.ceil(receptive_radius(spec) / multiple) * multiple)
        scale = spec.get("scale", 1)
        out = None
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
                ya, xa = max(0, y0 - halo), max(0, x0 - halo)
                yb, xb = min(h, y1 + halo), min(w, x1 + halo)
                piece = _run_padded(model, tensor[..., ya:yb, xa:xb], multiple)[0].float()
                if out is None:
                    out = torch.empty(piece.shape[0], h * scale, w * scale)
                out[:, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                    piece[:, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
        return out.numpy()
