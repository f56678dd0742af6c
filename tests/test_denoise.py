"""Classical raw denoising: real PSNR gains at high ISO, noise estimation, and no harm to clean input."""

import numpy as np
import pytest

from isp.errors import SettingError
from isp.rawimage import RawImage
from isp.simulate import add_noise, iso_to_noise, mosaic
from isp.stages.base import Frame
from isp.stages.denoise import (anscombe_forward, anscombe_inverse, classical_denoise_frame, denoise_bayer,
                                estimate_noise)


def scene(h=192, w=256):
    """Linear camera RGB: smooth shading, a few sharp edges, colours kept inside (0.02, 0.9)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    luminance = 0.3 + 0.2 * np.sin(xx / 23.0) * np.cos(yy / 31.0) + 0.15 * (xx / w)
    luminance[40:120, 60:140] *= 1.6
    luminance[(yy - 140) ** 2 + (xx - 200) ** 2 < 30 ** 2] *= 0.3
    tint = np.stack([0.8 + 0.1 * np.sin(yy / 50.0), np.ones_like(xx), 0.6 + 0.1 * np.cos(xx / 40.0)], -1)
    return np.clip(luminance[..., None] * tint, 0.02, 0.9).astype(np.float32)


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_iso_3200_gains_at_least_3_db(pattern):
    clean = mosaic(scene(), pattern)
    shot, read = iso_to_noise(3200)
    noisy = add_noise(clean, shot, read, np.random.default_rng(0))
    out = denoise_bayer(noisy, pattern, shot, read)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert psnr(out, clean) >= psnr(noisy, clean) + 3.0, (psnr(noisy, clean), psnr(out, clean))


def test_stronger_setting_smooths_more_and_zero_is_identity():
    clean = mosaic(scene(96, 128), "RGGB")
    shot, read = iso_to_noise(1600)
    noisy = add_noise(clean, shot, read, np.random.default_rng(1))
    assert np.array_equal(denoise_bayer(noisy, "RGGB", shot, read, strength=0.0), noisy)
    weak = denoise_bayer(noisy, "RGGB", shot, read, strength=0.5)
    strong = denoise_bayer(noisy, "RGGB", shot, read, strength=2.0)
    assert np.std(strong - noisy) > np.std(weak - noisy)


def test_noise_free_input_changes_little():
    clean = mosaic(scene(), "BGGR")
    out = denoise_bayer(clean, "BGGR", *iso_to_noise(3200))
    assert psnr(out, clean) >= 40.0


def test_anscombe_roundtrip_and_stabilisation():
    shot, read = iso_to_noise(3200)
    x = np.linspace(0.05, 0.9, 50, dtype=np.float32)
    # The unbiased inverse of the transformed *expectation* returns the signal (Mäkitalo & Foi 2013).
    rng = np.random.default_rng(2)
    samples = add_noise(np.repeat(x[None], 20000, 0), shot, read, rng)
    stable = anscombe_forward(samples, shot, read)
    assert np.allclose(stable.std(axis=0), 1.0, atol=0.05)
    np.testing.assert_allclose(anscombe_inverse(stable.mean(axis=0), shot, read), x, rtol=0.01, atol=2e-3)


@pytest.mark.parametrize("iso", [800, 3200])
def test_estimate_noise_within_factor_1_5(iso):
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 256
    flat_ish = mosaic(np.stack([0.02 + 0.8 * xx, 0.05 + 0.7 * xx * (0.8 + 0.2 * np.sin(3 * yy)), 0.3 * yy + 0.1],
                               -1).astype(np.float32))
    shot, read = iso_to_noise(iso)
    noisy = add_noise(flat_ish, shot, read, np.random.default_rng(3))
    est_shot, est_read = estimate_noise(noisy, "RGGB")
    assert 1 / 1.5 < est_shot / shot < 1.5
    for level in (0.05, 0.2, 0.6):  # the variance the model predicts, where read noise matters and where not
        assert 1 / 1.5 < (est_shot * level + est_read) / (shot * level + read) < 1.5


def test_frame_helper_uses_metadata_or_estimate():
    clean = mosaic(scene(128, 128), "RGGB")
    shot, read = iso_to_noise(3200)
    noisy = add_noise(clean, shot, read, np.random.default_rng(4))
    raw = RawImage(mosaic=noisy, pattern="RGGB", black_level=(0, 0, 0, 0), white_level=1.0, wb_gains=(1, 1, 1),
                   cam_to_srgb=np.eye(3, dtype=np.float32), noise=(shot, read))
    for r in (raw, raw.with_(noise=None)):
        out = classical_denoise_frame(Frame(noisy, "raw", r))
        assert out.space == "raw" and out.data.shape == noisy.shape
        assert psnr(out.data, clean) > psnr(noisy, clean) + 3.0


def test_bad_settings_raise():
    with pytest.raises(SettingError):
        denoise_bayer(np.zeros((16, 16), np.float32), "RGGB", 0.0, 1e-5)
    with pytest.raises(SettingError):
        denoise_bayer(np.zeros((16, 16), np.float32), "XYZW", 1e-3, 1e-5)


def test_estimate_noise_on_a_small_mosaic_is_finite():
    rng = np.random.default_rng(0)
    shot, read = iso_to_noise(1600)
    small = add_noise(rng.random((64, 64)).astype(np.float32) * 0.5, shot, read, rng)
    est = estimate_noise(small, "RGGB")
    assert all(np.isfinite(v) and v > 0 for v in est)
