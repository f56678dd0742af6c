"""`RawImage` → a minimal CFA DNG that LibRaw (rawpy) reads back; headerless Bayer dumps → DNG.

Tags follow the Adobe DNG Specification 1.4.0.0 (2012): CFA layout (TIFF/EP tags 33421/33422),
BlackLevelRepeatDim/BlackLevel, WhiteLevel, ColorMatrix1 with CalibrationIlluminant1 = 21 (D65),
AsShotNeutral and NoiseProfile. The mosaic is stored as uncompressed uint16: float mosaics are rounded
and clipped to 0…65535, so only integer-valued mosaics survive a round trip bit-exactly.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from tifffile import DATATYPE

from isp.color import XYZ_FROM_SRGB
from isp.raw import read_headerless_bayer
from isp.rawimage import RawImage

# CFAPattern colour codes (TIFF/EP): 0 = red, 1 = green, 2 = blue.
_CFA_CODES = {"R": 0, "G": 1, "B": 2}
CALIBRATION_ILLUMINANT_D65 = 21
UNIQUE_CAMERA_MODEL = "PixelNAS"


def _rationals(values, denominator: int = 1_000_000, signed: bool = False) -> tuple[int, ...]:
    """Flat (numerator, denominator) pairs as tifffile expects for (S)RATIONAL tags."""
    limit = 2 ** 31 - 1 if signed else 2 ** 32 - 1
    values = np.asarray(values, np.float64).ravel()
    while denominator > 1 and np.abs(values).max(initial=0.0) * denominator > limit:
        denominator //= 10
    out: list[int] = []
    for v in values:
        out += [int(round(v * denominator)), denominator]
    return tuple(out)


def xyz_to_cam_from_cam_to_srgb(cam_to_srgb: np.ndarray) -> np.ndarray:
    """Inverse of `isp.color.cam_to_srgb_from_xyz_to_cam`: camera→sRGB → XYZ→camera (D65).

    cam_from_srgb = cam_to_srgb⁻¹ (rows sum to 1 when cam_to_srgb's do), and XYZ→camera =
    cam_from_srgb · XYZ_FROM_SRGB⁻¹, so that D65 white maps to camera neutral (1, 1, 1).
    """
    cam_from_srgb = np.linalg.inv(np.asarray(cam_to_srgb, np.float64))
    return cam_from_srgb @ np.linalg.inv(XYZ_FROM_SRGB)


def dng_tags(raw: RawImage) -> dict[int, tuple]:
    """The DNG tags describing `raw`, keyed by tag code, as tifffile extratags (code, type, count, value, once)."""
    gains = np.asarray(raw.wb_gains, np.float64)
    neutral = gains[1] / gains  # AsShotNeutral: camera values of a neutral, G = 1 (DNG 1.4 p. 42)
    tags = {
        33421: (33421, DATATYPE.SHORT, 2, (2, 2), True),                                  # CFARepeatPatternDim
        33422: (33422, DATATYPE.BYTE, 4, bytes(_CFA_CODES[c] for c in raw.pattern), True),  # CFAPattern
        50706: (50706, DATATYPE.BYTE, 4, bytes((1, 4, 0, 0)), True),                      # DNGVersion
        50707: (50707, DATATYPE.BYTE, 4, bytes((1, 1, 0, 0)), True),                      # DNGBackwardVersion
        50708: (50708, DATATYPE.ASCII, 0, UNIQUE_CAMERA_MODEL, True),                     # UniqueCameraModel
        50710: (50710, DATATYPE.BYTE, 3, bytes((0, 1, 2)), True),                         # CFAPlaneColor
        50711: (50711, DATATYPE.SHORT, 1, (1,), True),                                    # CFALayout: square
        50713: (50713, DATATYPE.SHORT, 2, (2, 2), True),                                  # BlackLevelRepeatDim
        50714: (50714, DATATYPE.RATIONAL, 4, _rationals(raw.black_level, 1000), True),    # BlackLevel
        50717: (50717, DATATYPE.LONG, 1, (int(round(raw.white_level)),), True),           # WhiteLevel
        50721: (50721, DATATYPE.SRATIONAL, 9,                                             # ColorMatrix1
                _rationals(xyz_to_cam_from_cam_to_srgb(raw.cam_to_srgb), signed=True), True),
        50728: (50728, DATATYPE.RATIONAL, 3, _rationals(neutral), True),                  # AsShotNeutral
        50778: (50778, DATATYPE.SHORT, 1, (CALIBRATION_ILLUMINANT_D65,), True),           # CalibrationIlluminant1
    }
    if raw.orientation != 1:
        tags[274] = (274, DATATYPE.SHORT, 1, (int(raw.orientation),), True)                # Orientation
    if raw.noise is not None:  # NoiseProfile (DNG 1.3+): variance = S·x + O on black-normalised data
        tags[51041] = (51041, DATATYPE.DOUBLE, 2, tuple(float(v) for v in raw.noise), True)
    return tags


def write_dng(raw: RawImage, path: str | os.PathLike, *, tag_overrides: dict[int, tuple | None] | None = None) -> Path:
    """Write `raw` as an uncompressed 16-bit CFA DNG readable by LibRaw/rawpy and Adobe tools.

    The mosaic (DN, linear) is rounded and clipped to uint16, so float mosaics are quantised. The G gain
    of `wb_gains` is not stored (AsShotNeutral is relative to green), nor is `iso` or `assumptions`.
    `tag_overrides` replaces a tag by code, or drops it when the value is None (for tests and tools).
    """
    path = Path(path)
    tags = dng_tags(raw)
    for code, tag in (tag_overrides or {}).items():
        if tag is None:
            tags.pop(code, None)
        else:
            tags[code] = tag
    data = np.clip(np.rint(raw.mosaic), 0, 65535).astype(np.uint16)
    tifffile.imwrite(path, data, photometric=32803, subfiletype=0, software=UNIQUE_CAMERA_MODEL,
                     description=raw.source.encode("ascii", "replace").decode() or None, metadata=None,
                     extratags=[tags[code] for code in sorted(tags)])
    return path


def headerless_to_dng(src: str | os.PathLike, dst: str | os.PathLike, width: int, height: int, pattern: str,
                      bits: int, black_level: float | tuple[float, float, float, float], *,
                      white_level: float | None = None) -> RawImage:
    """Convert a headerless little-endian uint16 Bayer dump to DNG; returns the image as written.

    The capture's camera is unknown, so the DNG states AsShotNeutral (1, 1, 1) — readers fall back to
    grey-world white balance — and an identity camera→sRGB matrix (ColorMatrix1 = XYZ→sRGB); an
    all-zero ColorMatrix1 would be rejected by some readers.
    """
    raw = read_headerless_bayer(src, width, height, pattern, bits, black_level, white_level=white_level)
    raw = raw.with_(wb_gains=(1.0, 1.0, 1.0), source=Path(src).name)
    write_dng(raw, dst)
    return raw
