"""Black-level subtraction and normalisation: DN → [0, 1] with white = 1."""
from __future__ import annotations

from isp.stages.base import Frame, Stage


class BlackLevel(Stage):
    """(mosaic − black) / (white − black) per CFA position; not clipped, so noise stays unbiased."""

    name = "black_level"
    variants = ("standard",)
    takes, gives = "raw_dn", "raw"
    ops_per_pixel = {"standard": 1.0}  # one subtract-multiply per pixel

    def run(self, frame: Frame, variant: str) -> Frame:
        return frame.with_data(frame.raw.with_(mosaic=frame.data).normalised(), "raw")
