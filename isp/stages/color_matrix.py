"""Colour correction: white-balanced camera RGB → linear sRGB with the capture's 3×3 matrix."""
from __future__ import annotations

import numpy as np

from isp.color import apply_matrix
from isp.stages.base import Frame, Stage


class ColorMatrix(Stage):
    name = "ccm"
    variants = ("standard",)
    takes, gives = "camera_rgb", "linear_srgb"
    ops_per_pixel = {"standard": 9.0}  # 3×3 matrix multiply

    def run(self, frame: Frame, variant: str) -> Frame:
        return frame.with_data(np.clip(apply_matrix(frame.data, frame.raw.cam_to_srgb), 0.0, 1.0), "linear_srgb")
