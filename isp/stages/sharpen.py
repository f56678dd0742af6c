"""Unsharp masking on the display-referred image, out = x + amount · (x − G_σ * x), and the Gaussian blur and
operation count that the classical enhance stage (`isp.stages.enhance.enhance_classical`) builds its own
luma sharpening from."""
from __future__ import annotations

import cv2
import numpy as np

from isp.errors import SettingError


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation `sigma` px, kernel 2·⌈4σ⌉+1 taps, mirrored borders (reflect-101)."""
    size = 2 * int(np.ceil(4.0 * sigma)) + 1
    return cv2.GaussianBlur(np.asarray(img, np.float32), (size, size), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def unsharp_mask(img: np.ndarray, radius: float = 1.0, amount: float = 0.5, threshold: float = 0.0) -> np.ndarray:
    """Classic unsharp mask (as in GIMP / PIL `UnsharpMask`) on sRGB-encoded data, clipped to [0, 1].

    radius: Gaussian σ in pixels; amount: gain on the high-pass x − blur(x); threshold: high-pass values
    with |x − blur(x)| ≤ threshold are left alone (keeps flat, noisy areas from being sharpened).
    """
    if radius <= 0 or amount < 0 or threshold < 0:
        raise SettingError(f"Unsharp mask needs radius > 0, amount ≥ 0 and threshold ≥ 0 "
                           f"(got radius={radius}, amount={amount}, threshold={threshold}).")
    img = np.asarray(img, np.float32)
    detail = img - gaussian_blur(img, radius)
    if threshold > 0:
        detail = np.where(np.abs(detail) > threshold, detail, 0.0)
    return np.clip(img + amount * detail, 0.0, 1.0).astype(np.float32)


def unsharp_ops(radius: float = 1.0) -> float:
    """MAC-equivalent operations per pixel and channel: separable blur (2 × taps) + subtract, multiply-add, clip."""
    return 2.0 * (2 * int(np.ceil(4.0 * radius)) + 1) + 3.0

