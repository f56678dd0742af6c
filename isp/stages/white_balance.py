"""White balance on the mosaic: as-shot gains from the capture, or grey-world AWB (Buchsbaum 1980)."""
from __future__ import annotations

import numpy as np

from isp.rawimage import channel_masks
from isp.stages.base import Frame, Stage


def grey_world_gains(mosaic: np.ndarray, pattern: str, clip: float = 0.98) -> tuple[float, float, float]:
    """Gains that make the mean of R, G and B equal (G = 1), ignoring clipped and black pixels.

    Grey-world assumption: the average reflectance of a scene is achromatic (Buchsbaum, J. Franklin
    Inst. 1980).
    """
    masks = channel_masks(pattern, *mosaic.shape)
    valid = (mosaic < clip) & (mosaic > 0.0)
    means = {}
    for colour in "RGB":
        values = mosaic[masks[colour] & valid]
        means[colour] = float(values.mean()) if values.size else 0.0
    if min(means.values()) <= 1e-6:
        return 1.0, 1.0, 1.0
    return means["G"] / means["R"], 1.0, means["G"] / means["B"]


def apply_gains(mosaic: np.ndarray, pattern: str, gains: tuple[float, float, float]) -> np.ndarray:
    """Multiply each CFA site by its channel gain and clip to [0, 1] (sensor saturation)."""
    out = mosaic.astype(np.float32, copy=True)
    gain_of = dict(zip("RGB", gains))
    for index, colour in enumerate(pattern):        # strided views of the four CFA sites: no boolean masks
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] *= np.float32(gain_of[colour])
    return np.clip(out, 0.0, 1.0, out=out)


class WhiteBalance(Stage):
    name = "white_balance"
    variants = ("as_shot", "grey_world")
    takes, gives = "raw", "raw_wb"
    ops_per_pixel = {"as_shot": 1.0, "grey_world": 2.0}

    def gains(self, frame: Frame, variant: str) -> tuple[float, float, float]:
        if variant == "grey_world":
            return grey_world_gains(frame.data, frame.raw.pattern)
        return tuple(frame.raw.wb_gains)

    def run(self, frame: Frame, variant: str) -> Frame:
        return frame.with_data(apply_gains(frame.data, frame.raw.pattern, self.gains(frame, variant)), "raw_wb")
