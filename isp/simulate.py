"""sRGB photo → realistic sensor RAW (“unprocessing”) and the sensor noise model.

Unprocessing follows Brooks et al., “Unprocessing Images for Learned Raw Denoising”, CVPR 2019:
inverse tone curve → inverse sRGB gamma → inverse CCM → inverse white balance with highlight
protection → Bayer mosaic. The noise model is heteroscedastic Gaussian (shot + read); ISO is mapped to
(shot, read) by the PMRID phone-sensor calibration (Wang et al., “Practical Deep Raw Image Denoising on
Mobile Devices”, ECCV 2020, OPPO Reno 10x, 10-bit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from isp.color import (XYZ_FROM_SRGB, apply_matrix, inverse_smoothstep_tone, normalise_rows, smoothstep_tone,
                       srgb_eotf, srgb_oetf)
from isp.errors import SettingError
from isp.rawimage import RawImage

# XYZ→camera matrices of the Darmstadt Noise Dataset cameras, as used by Brooks et al. 2019 (random_ccm).
XYZ_TO_CAM_DARMSTADT = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
])

# Simulated sensor: 10-bit, like the PMRID calibration target and the shipped openISP capture.
SIM_BLACK_LEVEL = 64.0
SIM_WHITE_LEVEL = 1023.0
ISO_RANGE = (50, 12800)


@dataclass(frozen=True)
class UnprocessParams:
    """The random camera behind one unprocessed image (Brooks et al. 2019, section 3)."""

    rgb_to_cam: np.ndarray          # 3×3, linear sRGB → camera RGB, rows sum to 1
    red_gain: float                 # as-shot WB gain for red, U(1.9, 2.4)
    blue_gain: float                # as-shot WB gain for blue, U(1.5, 1.9)
    rgb_gain: float                 # global brightness gain, 1 / N(0.8, 0.1)


def default_params() -> UnprocessParams:
    """A fixed, typical camera: the mean Darmstadt CCM and the centre of Brooks' gain ranges."""
    xyz_to_cam = XYZ_TO_CAM_DARMSTADT.mean(axis=0)
    return UnprocessParams(normalise_rows(xyz_to_cam @ XYZ_FROM_SRGB).astype(np.float32), 2.15, 1.7, 1.25)


def random_params(rng: np.random.Generator) -> UnprocessParams:
    """Sample a camera as in Brooks et al. 2019: random convex mix of CCMs and random WB/brightness gains."""
    weights = rng.uniform(1e-8, 1e8, size=len(XYZ_TO_CAM_DARMSTADT))
    xyz_to_cam = np.tensordot(weights / weights.sum(), XYZ_TO_CAM_DARMSTADT, axes=1)
    rgb_to_cam = normalise_rows(xyz_to_cam @ XYZ_FROM_SRGB).astype(np.float32)
    return UnprocessParams(rgb_to_cam, float(rng.uniform(1.9, 2.4)), float(rng.uniform(1.5, 1.9)),
                           float(1.0 / np.clip(rng.normal(0.8, 0.1), 0.5, 1.2)))


def iso_to_noise(iso: float, white_minus_black: float = SIM_WHITE_LEVEL - SIM_BLACK_LEVEL) -> tuple[float, float]:
    """ISO → (shot, read) in black-normalised units, so that variance = shot·x + read.

    PMRID calibration (Wang et al. 2020), in DN of a 10-bit sensor:
    K = 5.995e-4·ISO + 8.69e-3 DN/e⁻ (system gain), σ²_read = 7.12e-7·ISO² + 6.51e-4·ISO + 0.115 DN².
    A signal of x (normalised) is x·W DN; its shot variance K·x·W DN² is K·x/W in normalised units.
    """
    if not ISO_RANGE[0] <= iso <= ISO_RANGE[1]:
        raise SettingError(f"ISO {iso} is outside the supported range {ISO_RANGE[0]}–{ISO_RANGE[1]}.")
    gain = 5.995e-4 * iso + 8.69e-3
    read_dn2 = 7.12e-7 * iso * iso + 6.51e-4 * iso + 0.115
    return float(gain / white_minus_black), float(read_dn2 / white_minus_black**2)


def add_noise(linear: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Heteroscedastic Gaussian noise: x + N(0, shot·x + read) (Brooks et al. 2019, eq. 2)."""
    variance = shot * np.clip(linear, 0.0, None) + read
    return (linear + rng.standard_normal(linear.shape, dtype=np.float32) * np.sqrt(variance)).astype(np.float32)


def downscale_x2(srgb: np.ndarray) -> np.ndarray:
    """Bicubic ×½ with antialiasing (PIL, MATLAB-imresize-like), the SR benchmark protocol."""
    h, w = srgb.shape[0] // 2, srgb.shape[1] // 2
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(srgb[..., c]), mode="F").resize((w, h), Image.BICUBIC))
                for c in range(3)]
    return np.clip(np.stack(channels, -1), 0.0, 1.0).astype(np.float32)


def quantise_8bit(image: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels (clipped to [0, 1]), as the SR benchmarks' LR input files and saved outputs are."""
    return (np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def invert_white_balance(linear_cam: np.ndarray, params: UnprocessParams) -> np.ndarray:
    """Divide by the WB and brightness gains, protecting highlights (Brooks et al. 2019, safe_invert_gains)."""
    gains = np.array([1.0 / params.red_gain, 1.0, 1.0 / params.blue_gain], np.float32) / params.rgb_gain
    gray = linear_cam.mean(axis=-1, keepdims=True)
    inflection = 0.9
    mask = (np.clip(gray - inflection, 0.0, None) / (1.0 - inflection)) ** 2
    safe_gains = np.maximum(mask + (1.0 - mask) * gains, gains)
    return (linear_cam * safe_gains).astype(np.float32)


def mosaic(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Sample an H×W×3 image on a Bayer grid → H×W."""
    out = np.empty(rgb.shape[:2], np.float32)
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(colour)]
    return out


def crop_even(image: np.ndarray, multiple: int = 2) -> np.ndarray:
    """Crop so height and width are multiples of `multiple` (Bayer tiles, ×2 zoom)."""
    h, w = image.shape[0] // multiple * multiple, image.shape[1] // multiple * multiple
    return image[:h, :w]


def unprocess_rgb(photo_srgb: np.ndarray, params: UnprocessParams, tone_curve: bool = True) -> np.ndarray:
    """Display sRGB → linear sensor RGB before mosaicing and noise (inverse tone, gamma, CCM and WB)."""
    linear = srgb_eotf(inverse_smoothstep_tone(photo_srgb) if tone_curve else photo_srgb)
    camera = np.clip(apply_matrix(linear, params.rgb_to_cam), 0.0, 1.0)
    return invert_white_balance(camera, params)


def process_rgb(sensor_rgb: np.ndarray, wb_gains, cam_to_srgb: np.ndarray, tone_curve: bool = True) -> np.ndarray:
    """The forward colour path on a full-colour sensor image: WB gains (clipped at 1), CCM, sRGB OETF, tone.

    The same operations as the pipeline's WB, CCM and tone stages, minus the mosaic; `unprocess_rgb`'s inverse.
    """
    balanced = np.clip(sensor_rgb * np.asarray(wb_gains, np.float32), 0.0, 1.0)
    encoded = srgb_oetf(np.clip(apply_matrix(balanced, cam_to_srgb), 0.0, 1.0))
    return smoothstep_tone(encoded) if tone_curve else encoded


def unprocess(photo_srgb: np.ndarray, *, iso: float | None = None, zoom: bool = False,
              params: UnprocessParams | None = None, rng: np.random.Generator | None = None,
              seed: int = 0, pattern: str = "RGGB", source: str = "photo",
              tone_curve: bool = True) -> tuple[RawImage, np.ndarray]:
    """Turn a display-referred sRGB photo into a simulated 10-bit sensor capture.

    Returns (raw, ground_truth): ground_truth is the photo cropped to what the pipeline reproduces
    (×2 the mosaic size when `zoom`). `iso=None` means noise-free. Deterministic for a given seed/rng.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    params = params or default_params()
    truth = crop_even(np.asarray(photo_srgb, np.float32), 4 if zoom else 2)
    scene = downscale_x2(truth) if zoom else truth
    sensor = mosaic(unprocess_rgb(scene, params, tone_curve), pattern)
    noise = None
    if iso is not None:
        noise = iso_to_noise(iso)
        sensor = add_noise(sensor, *noise, rng)
    span = SIM_WHITE_LEVEL - SIM_BLACK_LEVEL
    raw = RawImage(
        mosaic=(SIM_BLACK_LEVEL + sensor * span).astype(np.float32),
        pattern=pattern,
        black_level=(SIM_BLACK_LEVEL,) * 4,
        white_level=SIM_WHITE_LEVEL,
        wb_gains=(params.red_gain * params.rgb_gain, params.rgb_gain, params.blue_gain * params.rgb_gain),
        cam_to_srgb=np.linalg.inv(params.rgb_to_cam).astype(np.float32),
        noise=noise,
        iso=int(iso) if iso is not None else None,
        source=f"simulated from {source}" + (f" at ISO {int(iso)}" if iso is not None else " (noise-free)")
        + (", ×2 zoom" if zoom else ""),
    )
    return raw, truth
