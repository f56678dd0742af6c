"""Bayer demosaicing: bilinear, Malvar–He–Cutler 2004 and Menon 2007 (DDFAPD), plus the `Demosaic` stage.

All functions take an H×W float32 mosaic (linear, black-normalised, usually white-balanced) and a CFA
pattern, and return H×W×3 float32 linear camera RGB. The sample the sensor measured at each site is
returned unchanged. Borders are handled by reflect padding without repeating the edge sample
(numpy "reflect" = OpenCV BORDER_REFLECT_101 = scipy "mirror"), which keeps the Bayer phase of the
padded pixels, so a constant mosaic gives exactly that constant everywhere.
"""
from __future__ import annotations

import cv2
import numpy as np

from isp.errors import ImageTooSmallError, SettingError
from isp.rawimage import CFA_PATTERNS, channel_masks
from isp.stages.base import Frame, Stage

MIN_SIZE = 4  # two Bayer tiles: the 5×5 filters need 2 px of reflect padding, i.e. a side of at least 3.


def _conv(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True 2-D convolution (kernel flipped), same size, reflect-101 borders, float32."""
    flipped = np.ascontiguousarray(np.asarray(kernel, np.float32)[::-1, ::-1])
    return cv2.filter2D(np.ascontiguousarray(image, np.float32), cv2.CV_32F, flipped,
                        borderType=cv2.BORDER_REFLECT_101)


def _conv_h(image: np.ndarray, taps) -> np.ndarray:
    return _conv(image, np.asarray(taps, np.float32)[None, :])


def _conv_v(image: np.ndarray, taps) -> np.ndarray:
    return _conv(image, np.asarray(taps, np.float32)[:, None])


def _check(mosaic: np.ndarray, pattern: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if pattern not in CFA_PATTERNS:
        raise SettingError(f"Unknown CFA pattern {pattern!r}; choose one of {', '.join(CFA_PATTERNS)}.")
    mosaic = np.asarray(mosaic, np.float32)
    if mosaic.ndim != 2:
        raise ValueError(f"a Bayer mosaic must be a 2-D H×W array, got shape {mosaic.shape}")
    if min(mosaic.shape) < MIN_SIZE:
        raise ImageTooSmallError(f"The mosaic is {mosaic.shape[1]}×{mosaic.shape[0]} px; demosaicing needs at "
                                 f"least {MIN_SIZE}×{MIN_SIZE}.")
    return mosaic, channel_masks(pattern, *mosaic.shape)


def _keep_known(rgb: np.ndarray, mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Write the measured samples back, so they survive bit-exactly whatever the filters did."""
    for index, colour in enumerate(pattern):        # strided views of the four CFA sites: no boolean indexing
        dy, dx = divmod(index, 2)
        rgb[dy::2, dx::2, "RGB".index(colour)] = mosaic[dy::2, dx::2]
    return rgb


def demosaic_bilinear(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Bilinear interpolation of each colour plane from its own samples (linear in, linear out).

    Green: mean of the 4 direct neighbours; red/blue: mean of the 2 or 4 nearest same-colour samples
    (the classic kernels [[0,1,0],[1,4,1],[0,1,0]]/4 and [[1,2,1],[2,4,2],[1,2,1]]/4 on zero-filled planes).
    """
    mosaic, masks = _check(mosaic, pattern)
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    rgb = np.stack([_conv(mosaic * masks["R"], k_rb), _conv(mosaic * masks["G"], k_g),
                    _conv(mosaic * masks["B"], k_rb)], axis=-1)
    return _keep_known(rgb, mosaic, pattern)


# Malvar, He & Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned color images",
# ICASSP 2004, Fig. 2 (coefficients ×1/8; α = 1/2, β = 5/8, γ = 3/4 gradient-correction gains).
_MHC_G_AT_RB = np.array([[0, 0, -1, 0, 0],
                         [0, 0, 2, 0, 0],
                         [-1, 2, 4, 2, -1],
                         [0, 0, 2, 0, 0],
                         [0, 0, -1, 0, 0]], np.float32) / 8
# R at a green site whose row holds red samples (and B at a green site in a blue row): same-colour neighbours
# left and right.
_MHC_RB_AT_G_ROW = np.array([[0, 0, 0.5, 0, 0],
                             [0, -1, 0, -1, 0],
                             [-1, 4, 5, 4, -1],
                             [0, -1, 0, -1, 0],
                             [0, 0, 0.5, 0, 0]], np.float32) / 8
_MHC_RB_AT_G_COL = np.ascontiguousarray(_MHC_RB_AT_G_ROW.T)
# R at a blue site and B at a red site.
_MHC_RB_AT_BR = np.array([[0, 0, -1.5, 0, 0],
                          [0, 2, 0, 2, 0],
                          [-1.5, 0, 6, 0, -1.5],
                          [0, 2, 0, 2, 0],
                          [0, 0, -1.5, 0, 0]], np.float32) / 8


def _rows_cols(masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Boolean H×W maps: pixel lies in a row that contains red samples / in a column that contains red."""
    red_row = np.broadcast_to(masks["R"].any(axis=1)[:, None], masks["R"].shape)
    red_col = np.broadcast_to(masks["R"].any(axis=0)[None, :], masks["R"].shape)
    return red_row, red_col


def demosaic_malvar(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Malvar–He–Cutler (ICASSP 2004) gradient-corrected bilinear interpolation, 5×5 linear filters.

    Each missing value is the bilinear estimate plus a scaled Laplacian of the colour measured at that
    site (published coefficients, see the `_MHC_*` kernels). Linear in, linear out; may overshoot [0, 1].
    """
    mosaic, masks = _check(mosaic, pattern)
    red_row, _ = _rows_cols(masks)
    green = masks["G"]
    g_at_rb = _conv(mosaic, _MHC_G_AT_RB)
    along_row = _conv(mosaic, _MHC_RB_AT_G_ROW)
    along_col = _conv(mosaic, _MHC_RB_AT_G_COL)
    across = _conv(mosaic, _MHC_RB_AT_BR)
    g = np.where(green, mosaic, g_at_rb)
    r = np.where(green & red_row, along_row, np.where(green, along_col, np.where(masks["B"], across, mosaic)))
    b = np.where(green & ~red_row, along_row, np.where(green, along_col, np.where(masks["R"], across, mosaic)))
    return _keep_known(np.stack([r, g, b], axis=-1), mosaic, pattern)


def demosaic_menon(mosaic: np.ndarray, pattern: str, refine: bool = True) -> np.ndarray:
    """Menon, Andriani & Calvagno, "Demosaicing with directional filtering and a posteriori decision"
    (IEEE TIP 16(1), 2007), "DDFAPD", with the refining step of their section IV.

    1. Green is interpolated horizontally and vertically with the filter h0 + h1,
       h0 = [0, ½, 0, ½, 0] on green and h1 = [−¼, 0, ½, 0, −¼] on the site's own colour (eq. 4–5).
    2. A posteriori decision: the colour-difference gradients D = |C(x) − C(x+2)| along each direction are
       summed over a 5×5 causal-ish neighbourhood with weights [[1,0,1],[0,1,0],[3,0,3],[0,1,0],[1,0,1]]
       (eq. 9); the direction with the smaller sum wins.
    3. Red/blue at green sites by bilinear interpolation of the colour differences; at blue/red sites
       along the chosen direction (section III-B).
    4. Refining (section IV): colour differences re-filtered with a 3-tap mean along the chosen direction
       to update green, then red/blue at green sites, then red/blue at blue/red sites.
    Linear in, linear out; measured samples are returned unchanged.
    """
    mosaic, masks = _check(mosaic, pattern)
    m_r, m_g, m_b = masks["R"], masks["G"], masks["B"]
    red_row, red_col = _rows_cols(masks)
    blue_row, blue_col = ~red_row, ~red_col
    r, g, b = mosaic * m_r, mosaic * m_g, mosaic * m_b

    h0 = [0.0, 0.5, 0.0, 0.5, 0.0]
    h1 = [-0.25, 0.0, 0.5, 0.0, -0.25]
    g_h = np.where(m_g, mosaic, _conv_h(mosaic, h0) + _conv_h(mosaic, h1))
    g_v = np.where(m_g, mosaic, _conv_v(mosaic, h0) + _conv_v(mosaic, h1))

    # Chrominance (R−G or B−G) at red/blue sites for each hypothesis, 0 at green sites.
    rb = ~m_g
    c_h = np.where(rb, mosaic - g_h, 0.0).astype(np.float32)
    c_v = np.where(rb, mosaic - g_v, 0.0).astype(np.float32)
    d_h = np.abs(c_h - np.pad(c_h, ((0, 0), (0, 2)), mode="reflect")[:, 2:])
    d_v = np.abs(c_v - np.pad(c_v, ((0, 2), (0, 0)), mode="reflect")[2:, :])
    k = np.array([[0, 0, 1, 0, 1],
                  [0, 0, 0, 1, 0],
                  [0, 0, 3, 0, 3],
                  [0, 0, 0, 1, 0],
                  [0, 0, 1, 0, 1]], np.float32)
    sum_h = _conv(d_h, k)
    sum_v = _conv(d_v, np.ascontiguousarray(k.T))
    horizontal = sum_v >= sum_h
    g = np.where(horizontal, g_h, g_v).astype(np.float32)

    k_b = [0.5, 0.0, 0.5]
    # Red and blue at green sites: bilinear on the colour difference along the axis holding that colour.
    r = np.where(m_g & red_row, g + _conv_h(r, k_b) - _conv_h(g, k_b), r)
    r = np.where(m_g & blue_row, g + _conv_v(r, k_b) - _conv_v(g, k_b), r)
    b = np.where(m_g & blue_row, g + _conv_h(b, k_b) - _conv_h(g, k_b), b)
    b = np.where(m_g & red_row, g + _conv_v(b, k_b) - _conv_v(g, k_b), b)
    # Red at blue sites and blue at red sites along the chosen direction.
    r = np.where(m_b, np.where(horizontal, b + _conv_h(r, k_b) - _conv_h(b, k_b),
                               b + _conv_v(r, k_b) - _conv_v(b, k_b)), r)
    b = np.where(m_r, np.where(horizontal, r + _conv_h(b, k_b) - _conv_h(r, k_b),
                               r + _conv_v(b, k_b) - _conv_v(r, k_b)), b)

    if refine:
        r, g, b = _menon_refine(r.astype(np.float32), g, b.astype(np.float32), masks, horizontal,
                                red_row, red_col, blue_row, blue_col)
    return _keep_known(np.stack([r, g, b], axis=-1).astype(np.float32), mosaic, pattern)


def _menon_refine(r, g, b, masks, horizontal, red_row, red_col, blue_row, blue_col):
    """Refining step of Menon et al. 2007, section IV (eq. 13–15 and the R/B updates that follow)."""
    m_r, m_g, m_b = masks["R"], masks["G"], masks["B"]
    mean3 = [1 / 3, 1 / 3, 1 / 3]

    # Green at red/blue sites from the low-passed colour difference along the chosen direction.
    r_g, b_g = r - g, b - g
    r_g_f = np.where(horizontal, _conv_h(r_g, mean3), _conv_v(r_g, mean3))
    b_g_f = np.where(horizontal, _conv_h(b_g, mean3), _conv_v(b_g, mean3))
    g = np.where(m_r, r - r_g_f, np.where(m_b, b - b_g_f, g)).astype(np.float32)

    # Red and blue at green sites, from the updated green.
    k_b = [0.5, 0.0, 0.5]
    r_g, b_g = r - g, b - g
    r = np.where(m_g & blue_row, g + _conv_v(r_g, k_b), r)
    r = np.where(m_g & blue_col, g + _conv_h(r_g, k_b), r)
    b = np.where(m_g & red_row, g + _conv_v(b_g, k_b), b)
    b = np.where(m_g & red_col, g + _conv_h(b_g, k_b), b)

    # Red at blue sites and blue at red sites from the R−B difference along the chosen direction.
    r_b = (r - b).astype(np.float32)
    r_b_f = np.where(horizontal, _conv_h(r_b, mean3), _conv_v(r_b, mean3))
    r = np.where(m_b, b + r_b_f, r)
    b = np.where(m_r, r - r_b_f, b)
    return r.astype(np.float32), g, b.astype(np.float32)


DEMOSAICERS = {"bilinear": demosaic_bilinear, "malvar": demosaic_malvar, "menon": demosaic_menon}


class Demosaic(Stage):
    """White-balanced mosaic → linear camera RGB, clipped to [0, 1] (sensor range) after interpolation.

    ops_per_pixel counts the non-zero filter taps that produce the two missing colours, averaged over
    the four sites of a Bayer tile (MAC-equivalents; the vectorised code evaluates more, on zeros):
    - bilinear: R/B sites 4 + 4 taps, G sites 2 + 2 → (8 + 8 + 4 + 4) / 4 = 6.
    - malvar: G at R/B 9 taps, R/B at G 11, R at B / B at R 9 → (18 + 18 + 22 + 22) / 4 = 20.
    - menon: directional green 2×5 taps at half the sites (5), two gradient differences (2), the 7-tap
      decision sums at half the sites (7), R/B interpolation ≈ 7.5, refining ≈ 8.5 → ≈ 30.
    """

    name = "demosaic"
    variants = tuple(DEMOSAICERS)
    takes, gives = "raw_wb", "camera_rgb"
    ops_per_pixel = {"bilinear": 6.0, "malvar": 20.0, "menon": 30.0}

    def run(self, frame: Frame, variant: str) -> Frame:
        rgb = DEMOSAICERS[variant](frame.data, frame.raw.pattern)
        return frame.with_data(np.clip(rgb, 0.0, 1.0), "camera_rgb")
