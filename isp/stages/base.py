"""The one interface every ISP stage implements, and the frame that flows between stages."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from isp.errors import SettingError
from isp.rawimage import RawImage


@dataclass(frozen=True)
class Frame:
    """Data between two stages plus the capture's metadata.

    space: "raw_dn" (mosaic in DN) → "raw" (black-normalised mosaic, white = 1) → "raw_wb" (white-balanced
    mosaic) → "camera_rgb" (demosaiced, linear) → "linear_srgb" → "srgb" (display-referred, in [0, 1]).
    Mosaics are H×W, images H×W×3, all float32.
    """

    data: np.ndarray
    space: str
    raw: RawImage

    def with_data(self, data: np.ndarray, space: str | None = None) -> "Frame":
        return replace(self, data=np.asarray(data, np.float32), space=space or self.space)


class Stage:
    """A pipeline stage: a name, the variants it offers, and a call that maps one frame to the next.

    Subclasses set `name`, `variants`, `takes`, `gives`, `ops_per_pixel` (variant → MAC-equivalent
    operations per input pixel, for the cost report) and implement `run`.
    """

    name: str = ""
    variants: tuple[str, ...] = ()
    takes: str = ""
    gives: str = ""
    ops_per_pixel: dict[str, float] = {}

    def check_variant(self, variant: str) -> None:
        if variant not in self.variants:
            raise SettingError(f"Stage '{self.name}' has no variant {variant!r}; "
                               f"choose one of {', '.join(self.variants)}.")

    def resolve(self, variant: str) -> str:
        """The concrete variant to run (a learned slot maps a zoo role to its model's name)."""
        return variant

    def run(self, frame: Frame, variant: str) -> Frame:
        raise NotImplementedError

    def macs(self, frame: Frame, variant: str) -> int:
        """MACs (or MAC-equivalent operations for classical code) spent on this frame."""
        pixels = frame.data.shape[0] * frame.data.shape[1]
        return int(round(self.ops_per_pixel.get(variant, 0.0) * pixels))

    def __call__(self, frame: Frame, variant: str) -> Frame:
        self.check_variant(variant)
        if frame.space != self.takes:
            raise ValueError(f"stage {self.name} takes {self.takes} frames, got {frame.space}")
        out = self.run(frame, variant)
        assert out.space == self.gives, (self.name, out.space)
        return out
