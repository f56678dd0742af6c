"""`RawImage`: a sensor mosaic plus the camera metadata needed to develop it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


@dataclass(frozen=True)
class RawImage:
    """A Bayer mosaic and its metadata.

    mosaic: H×W float32 sensor values in DN (black level not yet subtracted).
    pattern: colours of the top-left 2×2 tile in raster order, e.g. "RGGB".
    black_level: per position of the 2×2 tile (raster order), in DN.
    white_level: saturation in DN.
    wb_gains: as-shot white-balance multipliers (R, G, B); G = 1 for real captures, while simulated
        ones fold Brooks' global brightness gain into all three.
    cam_to_srgb: 3×3 matrix from white-balanced linear camera RGB to linear sRGB (rows sum to 1).
    noise: (shot, read) in black-normalised units, variance = shot·x + read; None if unknown.
    iso: the ISO the noise was simulated (or shot) at, if known.
    source: where it came from (file name or "simulated from …").
    assumptions: human-readable notes on every default we had to assume while reading it.
    orientation: how the developed picture is turned upright, as the EXIF/TIFF Orientation tag (1 = as stored,
        3 = 180°, 6 = 90° clockwise, 8 = 90° counter-clockwise; `isp.io.apply_orientation`). The mosaic and
        every stage stay in sensor order; the pipeline turns only its developed output.
    """

    mosaic: np.ndarray
    pattern: str
    black_level: tuple[float, float, float, float]
    white_level: float
    wb_gains: tuple[float, float, float]
    cam_to_srgb: np.ndarray
    noise: tuple[float, float] | None = None
    iso: int | None = None
    source: str = ""
    assumptions: tuple[str, ...] = field(default=())
    orientation: int = 1

    def __post_init__(self):
        if self.pattern not in CFA_PATTERNS:
            raise ValueError(f"unsupported CFA pattern {self.pattern!r}; expected one of {CFA_PATTERNS}")
        if self.mosaic.ndim != 2:
            raise ValueError(f"mosaic must be H×W, got shape {self.mosaic.shape}")
        if len(self.black_level) != 4 or len(self.wb_gains) != 3:
            raise ValueError("black_level needs 4 values and wb_gains 3")
        if self.orientation not in range(1, 9):
            raise ValueError(f"orientation must be an EXIF value 1–8, got {self.orientation!r}")

    @property
    def height(self) -> int:
        return int(self.mosaic.shape[0])

    @property
    def width(self) -> int:
        return int(self.mosaic.shape[1])

    def black_map(self) -> np.ndarray:
        """The per-pixel black level as an H×W float32 array."""
        tile = np.asarray(self.black_level, np.float32).reshape(2, 2)
        return np.tile(tile, (self.height // 2 + 1, self.width // 2 + 1))[: self.height, : self.width]

    def normalised(self) -> np.ndarray:
        """Mosaic with black subtracted and scaled so white is 1 (not clipped)."""
        black = self.black_map()
        return ((self.mosaic - black) / (self.white_level - black)).astype(np.float32)

    def with_(self, **changes) -> "RawImage":
        return replace(self, **changes)


def channel_masks(pattern: str, height: int, width: int) -> dict[str, np.ndarray]:
    """Boolean masks of the R, G and B sites of a Bayer pattern."""
    masks = {c: np.zeros((height, width), bool) for c in "RGB"}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        masks[colour][dy::2, dx::2] = True
    return masks


def pack(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """H×W Bayer mosaic → (H/2)×(W/2)×4 with channels always in R, G1, G2, B order."""
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    planes = {}
    greens = []
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        plane = mosaic[dy:h:2, dx:w:2]
        if colour == "G":
            greens.append(plane)
        else:
            planes[colour] = plane
    return np.stack([planes["R"], greens[0], greens[1], planes["B"]], axis=-1).astype(np.float32)


def unpack(packed: np.ndarray, pattern: str) -> np.ndarray:
    """Inverse of `pack`."""
    h2, w2, _ = packed.shape
    out = np.empty((h2 * 2, w2 * 2), np.float32)
    order = {"R": [0], "G": [1, 2], "B": [3]}
    used = {"R": 0, "G": 0, "B": 0}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] = packed[..., order[colour][used[colour]]]
        used[colour] += 1
    return out
