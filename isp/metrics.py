"""Image-quality metrics against a ground truth: PSNR, SSIM, MS-SSIM and CIEDE2000.

Unless a docstring says otherwise, images are float32 H×W×3 (or H×W) in [0, 1], sRGB-encoded
(display-referred), compared as they would be shown. `score` bundles the four numbers the reports use.
PSNR, SSIM and ΔE2000 run in float32 with float64 means (the app scores every 1 MP result with them);
MS-SSIM runs in float64.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import correlate1d
from skimage.metrics import structural_similarity

from isp.color import luminance_bt601, srgb_eotf
from isp.errors import SettingError

# Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality assessment",
# Asilomar 2003: the per-scale exponents β_1..β_5 (α_5 = β_5 = γ_5 for the coarsest scale).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW = 11        # Gaussian window 11×11, σ = 1.5 (Wang et al. 2004, SSIM; same in MS-SSIM)
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
_SSIM_WINDOW = 7    # scikit-image's default SSIM window: 7×7 uniform, sample covariance (N/(N−1))
# sRGB → CIELAB as scikit-image's rgb2lab: sRGB→XYZ matrix ("from sRGB specification") with the D65 2° white
# (0.95047, 1, 1.08883) folded in, then CIE 1976 L*a*b*: f(t) = t^(1/3) above ε = 0.008856, else 7.787·t + 16/116;
# L = 116·f_y − 16, a = 500·(f_x − f_y), b = 200·(f_y − f_z)
_LAB_XYZ_MATRIX = (np.array([[0.412453, 0.357580, 0.180423],
                             [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]]) / np.array([[0.95047], [1.0], [1.08883]])).T.astype(np.float32)
_LAB_EPSILON, _LAB_SLOPE = 0.008856, 7.787
_CHUNK = 1 << 16    # ΔE2000 works through 64 K pixels at a time: temporaries stay in the CPU cache


def _pair(a: np.ndarray, b: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype)
    b = np.asarray(b, dtype)
    if a.shape != b.shape:
        raise SettingError(f"Cannot compare images of different shapes: {a.shape} vs {b.shape}. "
                           "Crop or resize the ground truth to the result's size first.")
    return a, b


def _shave(image: np.ndarray, shave: int) -> np.ndarray:
    return image[shave:-shave, shave:-shave] if shave > 0 else image


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(range² / MSE) over all pixels and channels; inf if equal."""
    a, b = np.asarray(a), np.asarray(b)
    a, b = _pair(a, b, np.float32 if np.result_type(a, b) == np.float32 else np.float64)
    mse = float(np.mean(np.square(a - b), dtype=np.float64))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range**2 / mse))


def luma_for_scoring(image: np.ndarray, shave: int, y_8bit: bool) -> np.ndarray:
    """BT.601 Y with `shave` px cut from each border; `y_8bit` rounds it to 8-bit codes first, as MATLAB's
    `rgb2ycbcr` does on uint8 images (the papers' tables); without it Y stays float, as BasicSR and
    EDSR-PyTorch score."""
    y = luminance_bt601(image)
    return _shave(np.round(y * 255.0) / 255.0 if y_8bit else y, shave)


def psnr_y(a: np.ndarray, b: np.ndarray, shave: int = 0, y_8bit: bool = False) -> float:
    """PSNR on the BT.601 luma (Y of YCbCr, 16–235 range) of sRGB-encoded images, `shave` px cut from each
    border: the super-resolution benchmark protocol (shave = scale; `y_8bit`: see `luma_for_scoring`)."""
    a, b = _pair(a, b)
    return psnr(luma_for_scoring(a, shave, y_8bit), luma_for_scoring(b, shave, y_8bit))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al., IEEE TIP 2004), data range 1, colour channels averaged: scikit-image's
    `structural_similarity` defaults (7×7 uniform window, sample covariance, K1 = 0.01, K2 = 0.03, a 3 px
    border left out), computed in float32 with OpenCV box filters on all channels at once."""
    a, b = (np.ascontiguousarray(x) for x in _pair(a, b, np.float32))
    if min(a.shape[:2]) < _SSIM_WINDOW:
        raise SettingError(f"SSIM needs images of at least {_SSIM_WINDOW}×{_SSIM_WINDOW} px, "
                           f"got {a.shape[1]}×{a.shape[0]}.")
    c1, c2 = np.float32(_K1**2), np.float32(_K2**2)
    cov_norm = np.float32(_SSIM_WINDOW**2 / (_SSIM_WINDOW**2 - 1.0))

    def mean(x):
        return cv2.boxFilter(x, -1, (_SSIM_WINDOW, _SSIM_WINDOW), normalize=True, borderType=cv2.BORDER_REFLECT)

    ux, uy = mean(a), mean(b)
    ux_uy = ux * uy
    squares = ux * ux + uy * uy
    # vx + vy = cov_norm·(mean(a² + b²) − ux² − uy²): one filter for both variances (the filter is linear)
    numerator = (2 * ux_uy + c1) * (2 * cov_norm * (mean(a * b) - ux_uy) + c2)
    denominator = (squares + c1) * (cov_norm * (mean(a * a + b * b) - squares) + c2)
    r = (_SSIM_WINDOW - 1) // 2
    return float((numerator / denominator)[r:-r, r:-r].mean(dtype=np.float64))


def ssim_y(a: np.ndarray, b: np.ndarray, shave: int = 0, y_8bit: bool = False) -> float:
    """SSIM on BT.601 luma with `shave` border pixels removed (SR protocol; `y_8bit`: see `luma_for_scoring`)."""
    a, b = _pair(a, b)
    return float(structural_similarity(luma_for_scoring(a, shave, y_8bit), luma_for_scoring(b, shave, y_8bit),
                                       data_range=1.0))


def srgb_to_lab(image: np.ndarray) -> np.ndarray:
    """sRGB-encoded H×W×3 in [0, 1] (clipped) → CIELAB (D65, 2° observer), float32. The same arithmetic and
    constants as scikit-image's `rgb2lab` (sRGB decoding, its sRGB→XYZ matrix and white point, CIE ε and κ/116),
    so scores stay comparable; branches are mask arithmetic instead of fancy indexing, and the 3×3 product is
    OpenCV's one-pass `transform` (15× faster than a NumPy matmul on H×W×3)."""
    linear = srgb_eotf(image)
    t = cv2.transform(np.ascontiguousarray(linear), _LAB_XYZ_MATRIX.T)
    f = np.cbrt(t)
    f += (t <= _LAB_EPSILON) * (_LAB_SLOPE * t + 16.0 / 116.0 - f)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lab = np.empty_like(f)
    np.multiply(fy, 116.0, out=lab[..., 0])
    lab[..., 0] -= 16.0
    np.multiply(fx - fy, 500.0, out=lab[..., 1])
    np.multiply(fy - fz, 200.0, out=lab[..., 2])
    return lab


def _ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 of N×3 CIELAB rows (Sharma, Wu & Dalal, Color Res. Appl. 30(1) 2005, eqs. 1–18;
    kL = kC = kH = 1), in the arrays' dtype; hue angles in radians. Branches are written as arithmetic on
    boolean masks and powers as products: NumPy's `where`, `%` and `**` cost several times more."""
    dtype = lab1.dtype.type
    two_pi, pi, deg = dtype(2 * np.pi), dtype(np.pi), dtype(np.pi / 180.0)
    pow25_7 = dtype(25.0**7)

    def pow7(x):
        x2 = x * x
        return x2 * x2 * x2 * x

    L1, a1, b1 = lab1[:, 0], lab1[:, 1], lab1[:, 2]
    L2, a2, b2 = lab2[:, 0], lab2[:, 1], lab2[:, 2]
    c7 = pow7((np.sqrt(a1 * a1 + b1 * b1) + np.sqrt(a2 * a2 + b2 * b2)) * dtype(0.5))        # eqs. 2–3
    g1 = dtype(1.5) - dtype(0.5) * np.sqrt(c7 / (c7 + pow25_7))                              # eq. 4: 1 + G
    a1p, a2p = g1 * a1, g1 * a2                                                              # eq. 5
    c1p, c2p = np.sqrt(a1p * a1p + b1 * b1), np.sqrt(a2p * a2p + b2 * b2)                    # eq. 6
    h1p, h2p = np.arctan2(b1, a1p), np.arctan2(b2, a2p)                                      # eq. 7: 0 when a'=b=0
    h1p += two_pi * (h1p < 0)
    h2p += two_pi * (h2p < 0)
    cc = c1p * c2p
    chromatic = cc != 0
    dh = h2p - h1p                                                                           # eq. 10
    far = np.abs(dh) > pi
    dh -= two_pi * (dh > pi)
    dh += two_pi * (dh < -pi)
    dh *= chromatic
    d_l = L2 - L1                                                                            # eq. 8
    d_c = c2p - c1p                                                                          # eq. 9
    d_h = 2 * np.sqrt(cc) * np.sin(dh * dtype(0.5))                                          # eq. 11
    l_mean = (L1 + L2) * dtype(0.5)                                                          # eq. 12
    cp_mean = (c1p + c2p) * dtype(0.5)                                                       # eq. 13
    h_sum = h1p + h2p                                                                        # eq. 14
    h_mean = h_sum + two_pi * far * (dtype(1) - dtype(2) * (h_sum >= two_pi))
    h_mean = np.where(chromatic, h_mean * dtype(0.5), h_sum)
    t = (1 - dtype(0.17) * np.cos(h_mean - 30 * deg) + dtype(0.24) * np.cos(2 * h_mean)      # eq. 15
         + dtype(0.32) * np.cos(3 * h_mean + 6 * deg) - dtype(0.20) * np.cos(4 * h_mean - 63 * deg))
    z = (h_mean - 275 * deg) / (25 * deg)
    d_theta = 30 * deg * np.exp(-(z * z))                                                    # eq. 16
    cp7 = pow7(cp_mean)
    r_c = 2 * np.sqrt(cp7 / (cp7 + pow25_7))                                                 # eq. 17
    l50 = (l_mean - 50) * (l_mean - 50)
    s_l = 1 + dtype(0.015) * l50 / np.sqrt(20 + l50)                                         # eq. 18
    s_c = 1 + dtype(0.045) * cp_mean
    s_h = 1 + dtype(0.015) * cp_mean * t
    r_t = -np.sin(2 * d_theta) * r_c
    tl, tc, th = d_l / s_l, d_c / s_c, d_h / s_h
    return np.sqrt(np.maximum(tl * tl + tc * tc + th * th + r_t * tc * th, 0))               # eq. 1 (Sharma eq. 22)


def delta_e2000_lab(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation) between CIELAB arrays (…×3), shape …;
    computed in float32 when both are float32, else in float64."""
    lab_a, lab_b = np.asarray(lab_a), np.asarray(lab_b)
    dtype = np.float32 if lab_a.dtype == np.float32 and lab_b.dtype == np.float32 else np.float64
    if lab_a.shape != lab_b.shape or lab_a.shape[-1:] != (3,):
        raise SettingError(f"ΔE2000 needs two CIELAB arrays of the same shape …×3, got {lab_a.shape} and "
                           f"{lab_b.shape}.")
    flat_a = np.ascontiguousarray(lab_a, dtype).reshape(-1, 3)
    flat_b = np.ascontiguousarray(lab_b, dtype).reshape(-1, 3)
    out = np.empty(flat_a.shape[0], dtype)
    for start in range(0, flat_a.shape[0], _CHUNK):
        part = slice(start, start + _CHUNK)
        out[part] = _ciede2000(flat_a[part], flat_b[part])
    return out.reshape(lab_a.shape[:-1])


def delta_e2000(a: np.ndarray, b: np.ndarray, lab_b: np.ndarray | None = None) -> float:
    """Mean CIEDE2000 between two sRGB-encoded H×W×3 images (D65 CIELAB via `srgb_to_lab`, float32).
    `lab_b`: `srgb_to_lab(b)` when the caller already has it (e.g. one ground truth scored many times)."""
    a, b = _pair(a, b, np.float32)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise SettingError(f"ΔE2000 needs colour images of shape H×W×3, got {a.shape}.")
    lab_b = srgb_to_lab(b) if lab_b is None else lab_b
    return float(np.mean(delta_e2000_lab(srgb_to_lab(a), lab_b), dtype=np.float64))


def _gaussian_valid(image: np.ndarray) -> np.ndarray:
    """Filter with the normalised 11×11 σ = 1.5 Gaussian, keeping only fully covered pixels ('valid')."""
    x = np.arange(_WINDOW) - _WINDOW // 2
    taps = np.exp(-(x**2) / (2 * _SIGMA**2))
    taps /= taps.sum()
    out = correlate1d(correlate1d(image, taps, axis=0, mode="nearest"), taps, axis=1, mode="nearest")
    r = _WINDOW // 2
    return out[r:-r, r:-r]


def _ssim_terms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM (l·cs) and mean contrast-structure term cs at one scale (data range 1)."""
    c1, c2 = _K1**2, _K2**2
    mu_x, mu_y = _gaussian_valid(x), _gaussian_valid(y)
    var_x = _gaussian_valid(x * x) - mu_x**2
    var_y = _gaussian_valid(y * y) - mu_y**2
    cov = _gaussian_valid(x * y) - mu_x * mu_y
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return float((lum * cs).mean()), float(cs.mean())


def ms_ssim_scales(height: int, width: int) -> int:
    """How many of the 5 MS-SSIM scales fit: the coarsest must still hold one 11×11 window."""
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and min(height, width) // 2**scales >= _WINDOW:
        scales += 1
    return scales


def ms_ssim(a: np.ndarray, b: np.ndarray, on: str = "rgb") -> float:
    """Multi-scale SSIM, Wang, Simoncelli & Bovik, Asilomar 2003.

    MS-SSIM = mean(l_M·cs_M)^β_M · Π_{j<M} mean(cs_j)^β_j (as the authors' MATLAB `msssim.m`), with
    β = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), an 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
    K2 = 0.03, data range 1, and a 2×2 average + subsample between scales.
    `on="rgb"` averages the per-channel scores, `on="y"` uses BT.601 luma.
    Small images: five scales need a side of at least 176 px; below that the coarsest scales that no
    longer hold one window are dropped and the remaining weights renormalised to sum to 1 (images under
    11 px raise). Negative means (anti-correlated content) are clipped to 0 so the power is defined.
    """
    if on not in ("rgb", "y"):
        raise SettingError(f"ms_ssim: 'on' must be 'rgb' or 'y', got {on!r}.")
    a, b = np.asarray(a), np.asarray(b)
    a, b = _pair(a, b, np.result_type(a, b, np.float32))      # float64 one channel at a time (memory at 48 MP)
    if min(a.shape[:2]) < _WINDOW:
        raise SettingError(f"MS-SSIM needs images of at least {_WINDOW}×{_WINDOW} px, "
                           f"got {a.shape[1]}×{a.shape[0]}.")
    if on == "y":
        a, b = luminance_bt601(np.asarray(a, np.float64)), luminance_bt601(np.asarray(b, np.float64))
    if a.ndim == 3:
        return float(np.mean([ms_ssim(a[..., c], b[..., c], on="rgb") for c in range(a.shape[-1])]))
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scales = ms_ssim_scales(*a.shape)
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    x, y = a, b
    value = 1.0
    for j in range(scales):
        full, cs = _ssim_terms(x, y)
        if j == scales - 1:
            value *= max(full, 0.0) ** weights[j]
        else:
            value *= max(cs, 0.0) ** weights[j]
            h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return float(value)


def score(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The report's quality numbers for an sRGB result vs its sRGB ground truth (H×W×3, [0, 1]).

    PSNR in dB (2 decimals), SSIM and MS-SSIM (4 decimals), mean ΔE2000 (3 decimals). The images are taken in
    float32 (a 48 MP pair in float64 alone would be 2.3 GB); each metric picks its own precision from there.
    """
    pred, truth = _pair(pred, truth, np.float32)
    return {
        "psnr": round(psnr(pred, truth), 2),
        "ssim": round(ssim(pred, truth), 4),
        "delta_e2000": round(delta_e2000(pred, truth), 3),
        "ms_ssim": round(ms_ssim(pred, truth), 4),
    }


def cost_ratio_and_gain(macs: float, psnr: float | None, heavy: tuple[float, float] | None,
                        classical_psnr: float | None) -> tuple[float | None, float | None]:
    """The headline's two numbers for a model with `macs` and `psnr`, against heavy = (MACs, PSNR) and the
    classical stage's PSNR: R = MACs(heavy)/MACs(model), G = (PSNR − PSNR_classical)/(PSNR_heavy − PSNR_classical)
    (the share of the heavy's quality gain kept); None where undefined (no heavy, no classical, zero MACs or gain)."""
    ratio = heavy[0] / macs if heavy and macs else None
    gain = heavy[1] - classical_psnr if heavy and classical_psnr is not None else 0.0
    share = (psnr - classical_psnr) / gain if gain and psnr is not None else None
    return ratio, share
