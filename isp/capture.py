"""Turn a user's file into a capture the pipeline can develop: a photo is unprocessed into a simulated sensor
RAW (and kept as ground truth); a camera RAW is read as it is (no ground truth)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isp.errors import ImageTooSmallError
from isp.io import fit_long_side, load_image
from isp.raw import is_raw_filename, read_raw
from isp.rawimage import RawImage
from isp.simulate import unprocess


@dataclass(frozen=True)
class Capture:
    raw: RawImage
    truth: np.ndarray | None      # the photo the simulated capture was made from (display sRGB), if any
    is_raw_file: bool
    notes: tuple[str, ...]


def downscale_raw(raw: RawImage, long_side: int) -> RawImage:
    """Bin a Bayer mosaic by 2×2 tiles (averaging like sites) until its long side fits; keeps the pattern."""
    mosaic = raw.mosaic
    while max(mosaic.shape) > long_side and min(mosaic.shape) >= 64:
        h, w = mosaic.shape[0] // 4 * 4, mosaic.shape[1] // 4 * 4
        tiles = mosaic[:h, :w].reshape(h // 4, 2, 2, w // 4, 2, 2)
        # average the same CFA site over each 2×2 group of tiles → one tile
        mosaic = tiles.mean(axis=(1, 4)).reshape(h // 2, w // 2)
    noise = raw.noise
    if noise is not None and mosaic.shape != raw.mosaic.shape:
        factor = (raw.mosaic.shape[0] / mosaic.shape[0]) ** 2        # averaging N samples divides variance by N
        noise = (noise[0] / factor, noise[1] / factor)
    return raw.with_(mosaic=mosaic.astype(np.float32), noise=noise)


MIN_SENSOR_SIDE = 16         # the smallest side `isp.io.load_image` takes; below it the stages have nothing to work on


def check_sensor_side(shape: tuple[int, int], zoom: bool, name: str) -> None:
    """Refuse a photo whose simulated sensor would be thinner than MIN_SENSOR_SIDE pixels — a very elongated
    image shrunk to the processing size, or a small one halved by the ×2 zoom — before any work is done."""
    height, width = shape
    factor = 2 if zoom else 1
    if min(height, width) // factor < MIN_SENSOR_SIDE:
        raise ImageTooSmallError(
            f"'{name}' would reach the sensor as {width // factor}×{height // factor} pixels"
            + (" (the ×2 zoom halves it)" if zoom else "") + f"; both sides must be at least {MIN_SENSOR_SIDE}. "
            "Choose a larger processing size, turn the zoom off, or use a less elongated image.")


def load_capture(path: str | Path, *, iso: float | None = 800, zoom: bool = False, long_side: int | None = None,
                 seed: int = 0) -> Capture:
    """Photo → simulated capture (+ truth) at `iso` (None = noise-free); RAW file → its mosaic.

    long_side: the processing size, the most pixels the developed picture has on its long side (None = full
    size): a photo is shrunk to it first (with `zoom` its simulated sensor then sees half of it), a RAW mosaic
    is binned to it, or with `zoom` to half of it, since the ×2 zoom doubles what the sensor gives.
    """
    path = Path(path)
    if is_raw_filename(path):
        raw = read_raw(path)
        notes = list(raw.assumptions)
        sensor_side = long_side // 2 if long_side and zoom else long_side
        if sensor_side and max(raw.mosaic.shape) > sensor_side:
            raw = downscale_raw(raw, sensor_side)
            notes.append(f"RAW binned to {raw.width}×{raw.height} for the processing size"
                         + (" (half of it: the ×2 zoom doubles it)" if zoom else ""))
        return Capture(raw, None, True, tuple(notes))
    photo = load_image(path)
    if long_side:
        photo = fit_long_side(photo, long_side)
    check_sensor_side(photo.shape[:2], zoom, path.name)
    raw, truth = unprocess(photo, iso=iso, zoom=zoom, seed=seed, source=path.name)
    return Capture(raw, truth, False, ())
