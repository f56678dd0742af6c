import cv2
import numpy as np
import pytest

from isp.errors import SettingError
from isp.rawimage import RawImage
from isp.stages.base import Frame
from isp.stages.enhance import (Enhance, _gaussian_levels, _laplacian_levels, default_levels, enhance_classical,
                                fit_classical, local_laplacian, local_laplacian_gray, luma, remap)
from isp.stages.sharpen import unsharp_mask


def psnr(a, b):
    return 10 * np.log10(1.0 / max(np.mean((np.asarray(a, np.float64) - b) ** 2), 1e-12))


def textured(h=96, w=80, seed=0):
    """Smooth shading + a hard edge + fine texture of a few % amplitude, sRGB-encoded, in [0.05, 0.95]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.3 + 0.3 * (xx / w) + 0.25 * (yy > h / 2)
    texture = 0.04 * np.sin(xx * 0.9) * np.sin(yy * 0.7) + cv2.GaussianBlur(
        rng.normal(0, 0.04, (h, w)).astype(np.float32), (0, 0), 1.0)
    grey = base + texture
    img = np.stack([grey * 0.9 + 0.05, grey, grey * 0.8 + 0.1], -1)
    return np.clip(img, 0.05, 0.95).astype(np.float32)


def laplacian_energy(img):
    return float(np.abs(cv2.Laplacian(luma(img), cv2.CV_32F)).mean())


def frame(img):
    raw = RawImage(np.zeros((2, 2), np.float32), "RGGB", (0.0,) * 4, 1.0, (1.0, 1.0, 1.0), np.eye(3, dtype=np.float32))
    return Frame(img, "srgb", raw)


def exact_local_laplacian(y, sigma_r, alpha, beta):
    """Brute-force Paris et al. 2011: remap the whole image around every pyramid coefficient's own value."""
    levels = default_levels(*y.shape)
    gauss = _gaussian_levels(y, levels)
    out = [np.zeros_like(g) for g in gauss[:-1]]
    for level in range(levels - 1):
        for (i, j), g in np.ndenumerate(gauss[level]):
            out[level][i, j] = _laplacian_levels(remap(y, float(g), sigma_r, alpha, beta), levels)[level][i, j]
    result = gauss[-1]
    for level in range(levels - 2, -1, -1):
        result = cv2.pyrUp(result, dstsize=(out[level].shape[1], out[level].shape[0])) + out[level]
    return result


def test_remap_is_identity_for_alpha_beta_one_and_continuous_at_sigma_r():
    i = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(remap(i, 0.4, 0.2, 1.0, 1.0), i, atol=1e-6)
    boosted = remap(i, 0.4, 0.2, 0.5, 1.0)
    assert np.max(np.abs(np.diff(boosted))) < 0.01          # continuous (grid step is 0.001)
    assert abs(remap(np.float32(0.45), 0.4, 0.2, 0.5, 1.0) - 0.4) > 0.05 + 1e-3   # detail amplified
    assert remap(np.float32(0.9), 0.4, 0.2, 0.5, 1.0) == pytest.approx(0.9, abs=1e-6)  # edges kept for β = 1
    assert remap(np.float32(0.9), 0.4, 0.2, 0.5, 0.5) < 0.9                         # β < 1 compresses edges


def test_alpha_beta_one_is_identity():
    img = textured(61, 47)
    assert psnr(local_laplacian(img, alpha=1.0, beta=1.0), img) > 40


def test_alpha_below_one_increases_local_contrast():
    img = textured()
    before = laplacian_energy(img)
    assert laplacian_energy(local_laplacian(img, alpha=0.5)) > 1.15 * before
    assert laplacian_energy(local_laplacian(img)) > 1.05 * before


def test_constant_image_stays_constant():
    img = np.full((33, 40, 3), (0.2, 0.5, 0.7), np.float32)
    np.testing.assert_allclose(local_laplacian(img), img, atol=1e-6)
    np.testing.assert_allclose(enhance_classical(img), img, atol=0.01)   # only the global curve acts


@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (5, 3), (1, 9)])
def test_shape_kept_and_range(shape):
    img = textured(*shape, seed=1)
    for out in (local_laplacian(img, alpha=0.3), enhance_classical(img)):
        assert out.shape == img.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_fast_filter_converges_to_exact_local_laplacian():
    y = luma(textured(16, 16, seed=2))
    exact = exact_local_laplacian(y, 0.2, 0.5, 1.0)
    fast = local_laplacian_gray(y, 0.2, 0.5, 1.0, levels=None, n_samples=256)
    coarse = local_laplacian_gray(y, 0.2, 0.5, 1.0, levels=None, n_samples=8)
    assert np.abs(fast - exact).max() < 2e-3
    assert np.abs(fast - exact).max() < np.abs(coarse - exact).max()


def test_chroma_untouched():
    img = textured()
    out = local_laplacian(img, alpha=0.5)
    inside = (out > 0.0).all(-1) & (out < 1.0).all(-1)
    delta = out - img
    np.testing.assert_allclose(delta[inside][:, 0], delta[inside][:, 2], atol=1e-5)


def test_classical_is_closer_to_reference_than_identity():
    img = textured(128, 128, seed=3)
    reference = local_laplacian(img)
    assert psnr(enhance_classical(img), reference) > psnr(img, reference) + 0.1


def test_fit_classical_beats_identity():
    img = textured(64, 64, seed=4)
    fit = fit_classical([img], radii=(1, 2))
    target = luma(local_laplacian(img)) - luma(img)
    assert fit["radius"] in (1, 2)
    assert fit["rmse"] < np.sqrt(np.mean(target ** 2))


def test_bad_settings_raise_setting_error():
    with pytest.raises(SettingError):
        local_laplacian(textured(16, 16), sigma_r=0.0)
    with pytest.raises(SettingError):
        local_laplacian(textured(16, 16), n_samples=1)
    with pytest.raises(SettingError):
        unsharp_mask(textured(16, 16), radius=-1)


def test_unsharp_on_constant_is_identity_and_sharpens_an_edge():
    flat = np.full((20, 24, 3), 0.4, np.float32)
    np.testing.assert_allclose(unsharp_mask(flat, radius=2.0, amount=1.0), flat, atol=1e-6)
    edge = np.zeros((20, 24, 3), np.float32) + 0.3
    edge[:, 12:] = 0.7
    out = unsharp_mask(edge, radius=1.0, amount=1.0)
    assert out[:, 11].mean() < 0.3 and out[:, 12].mean() > 0.7      # overshoot on both sides
    np.testing.assert_allclose(unsharp_mask(edge, amount=1.0, threshold=0.5), edge)  # below threshold: untouched


def test_stages_run_and_count_ops():
    img = textured(40, 30)
    enhance = Enhance()
    for variant in enhance.variants:
        out = enhance(frame(img), variant)
        assert out.space == "srgb" and out.data.shape == img.shape
        assert enhance.macs(out, variant) > 0
    assert enhance.ops_per_pixel["reference"] > 3 * enhance.ops_per_pixel["classical"]
    assert laplacian_energy(unsharp_mask(img)) > laplacian_energy(img)
    with pytest.raises(SettingError):
        enhance(frame(img), "learned-nonexistent")


def test_reference_operator_is_local():
    """A crop's enhancement equals the whole image's in the crop's interior (tiles/patches see what matters)."""
    img = textured(160, 200, seed=4)
    whole = local_laplacian(img)
    crop = local_laplacian(img[16:144, 40:168])
    np.testing.assert_allclose(crop[40:-40, 40:-40], whole[56:104, 80:128], atol=2e-3)
