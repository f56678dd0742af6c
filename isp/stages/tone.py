"""Tone and gamma: linear sRGB → display sRGB (IEC 61966-2-1 OETF), optionally with the global
smoothstep tone curve of Brooks et al. 2019 (the curve `isp.simulate.unprocess` inverts)."""
from __future__ import annotations

from isp.color import smoothstep_tone, srgb_oetf
from isp.stages.base import Frame, Stage


class Tone(Stage):
    name = "tone"
    variants = ("srgb_tone", "srgb")
    takes, gives = "linear_srgb", "srgb"
    ops_per_pixel = {"srgb_tone": 3 * 6.0, "srgb": 3 * 4.0}

    def run(self, frame: Frame, variant: str) -> Frame:
        encoded = srgb_oetf(frame.data)
        return frame.with_data(smoothstep_tone(encoded) if variant == "srgb_tone" else encoded, "srgb")
