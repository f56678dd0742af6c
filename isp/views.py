"""Pictures of a comparison for display: 8-bit conversion, thumbnails, the stage strip (false-colour mosaics
included), the crop picker and zoomed crops, and writing a picture to a PNG file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from isp.compare_scores import crop_to
from isp.compare_types import Comparison, VariantRun
from isp.io import apply_orientation

DISPLAY_LONG_SIDE = 1024             # long side of every picture kept after a run (crop sources, stage strip)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """sRGB-encoded float [0, 1] → 8-bit code values (rounded)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


FAST_PNG_MAX_PIXELS = 4_000_000   # up to here outputs are written as uncompressed PNG


def write_output(image: np.ndarray, directory: str | Path) -> str:
    """Write an 8-bit H×W×3 (or H×W) image to a fresh lossless PNG file in `directory`; returns its path.

    Up to 4 MP the PNG is stored unfiltered and uncompressed (13 ms for 0.8 MP instead of 116 ms at zlib level 1,
    measured with OpenCV here; the app serves on localhost, where 3 bytes per pixel cost nothing); larger images get
    zlib level 1 with the Sub filter and RLE (85 ms for 0.8 MP, the size of level 1). A fresh name per call, so no
    reader ever sees a half-written picture."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    pixels = image[..., ::-1] if image.ndim == 3 else image          # OpenCV wants BGR
    if image.shape[0] * image.shape[1] <= FAST_PNG_MAX_PIXELS:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    else:
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB,
                  cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if not cv2.imwrite(path, np.ascontiguousarray(pixels), params):
        raise OSError(f"cannot write {path}")
    return path


def thumbnail(image: np.ndarray, long_side: int = 384) -> np.ndarray:
    """`image` shrunk by area averaging to a long side of at most `long_side` (as is when already that small)."""
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    scale = long_side / max(h, w)
    return cv2.resize(np.ascontiguousarray(image, np.float32), (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def _fit(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = long_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _false_colour_linear(mosaic: np.ndarray, pattern: str, wb_gains=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A black-normalised (linear) mosaic as colour: every site lit in its filter's colour, scaled by the
    white-balance gains (shown after `_expose`). For display only."""
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    out = np.zeros((h, w, 3), np.float32)
    channel = {"R": 0, "G": 1, "B": 2}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy:h:2, dx:w:2, channel[colour]] = mosaic[dy:h:2, dx:w:2] * float(wb_gains[channel[colour]])
    return out


def _expose(linear: np.ndarray, peak: float | None = None) -> np.ndarray:
    """Display a linear image: `peak` (default: its own 99th percentile) maps to white, then a 1/2.2 gamma."""
    peak = peak or float(np.percentile(linear, 99)) or 1.0
    return np.clip(linear / peak, 0.0, 1.0) ** (1 / 2.2)


def stage_strip(run: VariantRun, long_side: int = 384) -> list[tuple[np.ndarray, str]]:
    """Per-stage pictures for display (8-bit thumbnails, long side ≤ `long_side`): mosaic (false colour), after
    denoise, after demosaic, after SR, final. After a comparison the intermediates are gone and the thumbnails
    made then (`run.strip`) are returned."""
    if run.strip is not None:
        return run.strip
    inter, raw = run.result.intermediates, run.result.raw
    pattern, gains = (raw.pattern, raw.wb_gains) if raw is not None else ("RGGB", (1.0, 1.0, 1.0))
    turn = raw.orientation if raw is not None else 1
    # shrink before exposing (cheap at 16 MP); sensor-order intermediates are turned upright like the output
    small = lambda image: apply_orientation(thumbnail(image, long_side), turn)  # noqa: E731
    items, peak = [], None          # mosaic and denoised mosaic share the capture's exposure: brightness is data
    if "black_level" in inter:
        mosaic = small(_false_colour_linear(inter["black_level"], pattern, gains))
        peak = float(np.percentile(mosaic, 99)) or None
        items.append((_expose(mosaic, peak), "sensor mosaic (false colour)"))
    if "denoise_raw" in inter:
        items.append((_expose(small(_false_colour_linear(inter["denoise_raw"], pattern, gains)), peak),
                      f"after denoise ({run.learned.get('denoise_raw')})"))
    if "demosaic" in inter:
        # its own exposure: a false-colour thumbnail lights one channel in 2–4 per site, so its peak is lower
        items.append((_expose(np.clip(small(inter["demosaic"]), 0, None)), "after demosaic (linear, exposed)"))
    if "sr_x2" in inter:
        items.append((small(inter["sr_x2"]), f"after SR ×2 ({run.learned.get('sr_x2')})"))
    items.append((thumbnail(run.result.image, long_side), f"final — {run.label}"))
    return [(to_uint8(image), f"{run.label} · {caption}") for image, caption in items]


def crop_box(shape: tuple[int, ...], cx: float, cy: float, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a square crop centred at fractions (cx, cy) ∈ [0, 1], kept inside."""
    h, w = shape[:2]
    side = max(8, min(size, h, w))
    top = int(round(np.clip(cy, 0, 1) * h - side / 2))
    left = int(round(np.clip(cx, 0, 1) * w - side / 2))
    return int(np.clip(top, 0, h - side)), int(np.clip(left, 0, w - side)), side, side


FULL_CROP_SOURCE_BYTES = 160 * 2**20  # full-resolution crop sources per session up to this (four 12 MP images)


def crop_sources(comparison: Comparison, long_side: int = DISPLAY_LONG_SIDE,
                 full_bytes: int = FULL_CROP_SOURCE_BYTES) -> list[tuple[np.ndarray, str]]:
    """(uint8 final image, label) per finished variant, plus the ground truth: all the crops need, kept per
    session. At full resolution (1:1 pixels) while they take at most `full_bytes` together, else shrunk to a long
    side of `long_side` (`crops_are_previews` tells which)."""
    images = [(run.result.image, run.label) for run in comparison.runs]
    if comparison.target is not None and comparison.runs:
        images.append((crop_to(comparison.target, comparison.runs[0].result.image.shape), "ground truth"))
    full = sum(image.shape[0] * image.shape[1] * 3 for image, _ in images) <= full_bytes
    return [(to_uint8(image if full else thumbnail(image, long_side)), label) for image, label in images]


def crops_are_previews(comparison: Comparison, sources: list[tuple[np.ndarray, str]]) -> bool:
    """True when the crop sources were shrunk (the result is larger than what is kept per session)."""
    return bool(comparison.runs and sources) and sources[0][0].shape[:2] != comparison.runs[0].result.image.shape[:2]


def zoom_crops(sources: list[tuple[np.ndarray, str]], cx: float, cy: float, size: int = 128,
               display: int = 320) -> list[tuple[np.ndarray, str]]:
    """The same region of every image, enlarged with nearest neighbour to about `display` px."""
    out = []
    for image, label in sources:
        top, left, hh, ww = crop_box(image.shape, cx, cy, size)
        patch = image[top:top + hh, left:left + ww]
        factor = max(1, display // max(hh, ww))
        out.append((np.repeat(np.repeat(patch, factor, 0), factor, 1), label))
    return out


def mark_crop(image: np.ndarray, cx: float, cy: float, size: int = 128, long_side: int = 640) -> np.ndarray:
    """A thumbnail of `image` with the crop region outlined (for the 'click to choose the crop' picture)."""
    top, left, hh, ww = crop_box(image.shape, cx, cy, size)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    thumb = np.ascontiguousarray(cv2.resize(image, _fit(image.shape, long_side), interpolation=cv2.INTER_AREA)
                                 if max(image.shape[:2]) > long_side else image.copy())
    s = thumb.shape[0] / image.shape[0]
    p0 = (int(left * s), int(top * s))
    p1 = (int((left + ww) * s) - 1, int((top + hh) * s) - 1)
    cv2.rectangle(thumb, p0, p1, (255, 255, 255), 3)
    cv2.rectangle(thumb, p0, p1, (230, 60, 40), 1)
    return thumb
