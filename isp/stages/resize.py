"""×2 resampling on sRGB-encoded images: the super-resolution benchmark's bicubic, and Lanczos.

The bicubic is the one of the SR benchmark protocol (SRCNN, VDSR, EDSR, …): MATLAB `imresize`, Keys'
cubic convolution with a = −0.5 (Keys, IEEE TASSP 1981), antialiased (kernel stretched by the scale) when
downscaling. PIL's `resize(…, BICUBIC)` on mode "F" uses the same kernel, the same pixel-centre alignment
and the same antialiasing; it differs from MATLAB only within ~2 px of the border (PIL renormalises the
truncated kernel, MATLAB mirrors the image). Measured with this module: bicubic ×2 on Set5, Y (BT.601,
16–235), 2 px shaved = 33.69 dB in float, 33.65 dB with uint8 LR/SR/Y rounding (published: 33.66);
Set14 30.33 / 30.32 dB (published: 30.24). Do not use cv2.INTER_CUBIC for the protocol: a = −0.75 and
no antialiasing.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from isp.errors import SettingError
from isp.simulate import downscale_x2
from isp.stages.base import Frame, Stage

UPSCALE_METHODS = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def downscale_x2_bicubic(img: np.ndarray) -> np.ndarray:
    """sRGB-encoded H×W×3 → (H//2)×(W//2)×3, MATLAB-imresize-like antialiased bicubic, clipped to [0, 1].

    The LR generator of the SR benchmark protocol; `isp.simulate.downscale_x2` is the one implementation.
    Crop to even size first (`isp.simulate.crop_even`) for an exact ×½ grid.
    """
    return downscale_x2(np.asarray(img, np.float32))


def upscale_x2(img: np.ndarray, method: str = "bicubic") -> np.ndarray:
    """sRGB-encoded H×W×3 → 2H×2W×3, resampled per channel in float32 and clipped to [0, 1].

    "bicubic": Keys a = −0.5 (= MATLAB imresize, the SR benchmark baseline); "lanczos": Lanczos-3
    windowed sinc (PIL), sharper with slightly more ringing.
    """
    if method not in UPSCALE_METHODS:
        raise SettingError(f"Unknown upscaling method {method!r}; choose one of {', '.join(UPSCALE_METHODS)}.")
    img = np.asarray(img, np.float32)
    h, w = img.shape[0] * 2, img.shape[1] * 2
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c]), mode="F")
                           .resize((w, h), UPSCALE_METHODS[method])) for c in range(img.shape[2])]
    return np.clip(np.stack(channels, -1), 0.0, 1.0).astype(np.float32)


def classical_sr(img: np.ndarray) -> np.ndarray:
    """The classical ×2 super-resolution: bicubic upscaling (sRGB-encoded in and out)."""
    return upscale_x2(img, "bicubic")


class SuperResolution(Stage):
    """×2 zoom on the display-referred image. Learned variants are added elsewhere."""

    name = "sr_x2"
    variants = ("classical", "lanczos")
    takes, gives = "srgb", "srgb"
    # Per INPUT pixel, counted as a direct 2-D kernel: 4 outputs × taps² × 3 channels (bicubic 4×4 taps,
    # Lanczos-3 6×6 taps). PIL runs it separably (bicubic: 3·(2·4 + 4·4) = 72), so these are upper bounds
    # comparable to how a convolution's MACs are counted.
    ops_per_pixel = {"classical": 4 * 16 * 3.0, "lanczos": 4 * 36 * 3.0}

    def run(self, frame: Frame, variant: str) -> Frame:
        method = "bicubic" if variant == "classical" else "lanczos"
        return frame.with_data(upscale_x2(frame.data, method), "srgb")
