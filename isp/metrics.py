"""Image-quality metrics against a ground truth: PSNR, SSIM, MS-SSIM and CIEDE2000.

Unless a docstring says otherwise, images are float32 H×W×3 (or H×W) in [0, 1], sRGB-encoded
(display-referred), compared as they would be shown. `score` bundles the four numbers the reports use.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from isp.color import luminance_bt601
from isp.errors import SettingError

# Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality assessment",
# Asilomar 2003: the per-scale exponents β_1..β_5 (α_5 = β_5 = γ_5 for the coarsest scale).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WINDOW = 11        # Gaussian window 11×11, σ = 1.5 (Wang et al. 2004, SSIM; same in MS-SSIM)
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise SettingError(f"Cannot compare images of different shapes: {a.shape} vs {b.shape}. "
                           "Crop or resize the ground truth to the result's size first.")
    return a, b


def _shave(image: np.ndarray, shave: int) -> np.ndarray:
    return image[shave:-shave, shave:-shave] if shave > 0 else image


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(range² / MSE) over all pixels and channels; inf if equal."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(data_range**2 / mse))


def psnr_y(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """PSNR on the BT.601 luma (Y of YCbCr, 16–235 range) of sRGB-encoded images, `shave` px cut from each
    border: the super-resolution benchmark protocol (shave = scale)."""
    a, b = _pair(a, b)
    return psnr(_shave(luminance_bt601(a), shave), _shave(luminance_bt601(b), shave))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al., IEEE TIP 2004) via scikit-image, data range 1, colour channels averaged."""
    a, b = _pair(a, b)
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1 if a.ndim == 3 else None))


def ssim_y(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """SSIM on BT.601 luma with `shave` border pixels removed (SR protocol)."""
    a, b = _pair(a, b)
    return float(structural_similarity(_shave(luminance_bt601(a), shave), _shave(luminance_bt601(b), shave),
                                       data_range=1.0))


def delta_e2000_lab(lab_a: np.ndarray, lab_b: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005 formulation) between CIELAB arrays (…×3)."""
    return deltaE_ciede2000(np.asarray(lab_a, np.float64), np.asarray(lab_b, np.float64))


def delta_e2000(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two sRGB-encoded H×W×3 images (D65 CIELAB via scikit-image rgb2lab)."""
    a, b = _pair(a, b)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise SettingError(f"ΔE2000 needs colour images of shape H×W×3, got {a.shape}.")
    lab_a = rgb2lab(np.clip(a, 0.0, 1.0))
    lab_b = rgb2lab(np.clip(b, 0.0, 1.0))
    return float(np.mean(delta_e2000_lab(lab_a, lab_b)))


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
    a, b = _pair(a, b)
    if on == "y":
        a, b = luminance_bt601(a), luminance_bt601(b)
    elif on != "rgb":
        raise SettingError(f"ms_ssim: 'on' must be 'rgb' or 'y', got {on!r}.")
    if min(a.shape[:2]) < _WINDOW:
        raise SettingError(f"MS-SSIM needs images of at least {_WINDOW}×{_WINDOW} px, "
                           f"got {a.shape[1]}×{a.shape[0]}.")
    if a.ndim == 3:
        return float(np.mean([ms_ssim(a[..., c], b[..., c], on="rgb") for c in range(a.shape[-1])]))
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

    PSNR in dB (2 decimals), SSIM and MS-SSIM (4 decimals), mean ΔE2000 (3 decimals).
    """
    pred, truth = _pair(pred, truth)
    return {
        "psnr": round(psnr(pred, truth), 2),
        "ssim": round(ssim(pred, truth), 4),
        "delta_e2000": round(delta_e2000(pred, truth), 3),
        "ms_ssim": round(ms_ssim(pred, truth), 4),
    }
