"""Metrics: identities, known values, a published CIEDE2000 pair, MS-SSIM monotonicity."""
import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from isp.errors import InputError
from isp.metrics import (delta_e2000, delta_e2000_lab, ms_ssim, ms_ssim_scales, psnr, psnr_y, score, ssim,
                         ssim_y)


def natural_ish(h=96, w=112, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.2 * np.sin(xx / 6.0) * np.cos(yy / 9.0)
    image = np.stack([base * 0.9, base, base * 0.8 + 0.1], -1)
    image[20:60, 30:80] += 0.15
    return np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1).astype(np.float32)


def test_identical_images_are_perfect():
    a = natural_ish()
    assert psnr(a, a) == math.inf and psnr_y(a, a, shave=2) == math.inf
    assert ssim(a, a) == pytest.approx(1.0) and ssim_y(a, a) == pytest.approx(1.0)
    assert delta_e2000(a, a) == pytest.approx(0.0, abs=1e-9)
    assert ms_ssim(a, a) == pytest.approx(1.0) and ms_ssim(a, a, on="y") == pytest.approx(1.0)
    assert score(a, a) == {"psnr": math.inf, "ssim": 1.0, "delta_e2000": 0.0, "ms_ssim": 1.0}


def test_psnr_of_a_constant_offset():
    a = np.full((16, 16, 3), 0.4, np.float32)
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)
    assert psnr(a * 255, a * 255 + 0.1 * 255, data_range=255.0) == pytest.approx(20.0, abs=1e-4)
    # Y of BT.601 studio range scales an equal RGB offset by 219/255.
    assert psnr_y(a, a + 0.1) == pytest.approx(20 - 20 * math.log10(219 / 255), abs=1e-3)
    y_codes = np.full((4, 4, 3), 100 / 255, np.float32)          # Y = 16 + 219·100/255 = 101.88 → code 102
    assert psnr_y(y_codes, y_codes + 0.001) < 80                                      # float Y sees 0.22 codes
    assert psnr_y(y_codes, y_codes + 0.001, y_8bit=True) == math.inf                  # both round to code 102


def test_delta_e_matches_skimage_on_one_colour_pair():
    a = np.zeros((4, 4, 3), np.float32) + np.array([0.8, 0.2, 0.1], np.float32)
    b = np.zeros((4, 4, 3), np.float32) + np.array([0.7, 0.3, 0.15], np.float32)
    expected = float(deltaE_ciede2000(rgb2lab(a[0, 0][None, None]), rgb2lab(b[0, 0][None, None]))[0, 0])
    assert delta_e2000(a, b) == pytest.approx(expected, rel=1e-5)
    assert expected > 5  # clearly different colours


@pytest.mark.parametrize("lab1, lab2, expected", [
    # Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula", Color Res. Appl. 30(1) 2005, Table 1.
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),   # pair 1
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),               # pair 7
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),            # pair 17
])
def test_delta_e_matches_sharma_2005_test_data(lab1, lab2, expected):
    assert float(delta_e2000_lab(np.array(lab1), np.array(lab2))) == pytest.approx(expected, abs=1e-4)


def test_ms_ssim_decreases_with_noise():
    clean = natural_ish(192, 192)
    rng = np.random.default_rng(1)
    values = [ms_ssim(np.clip(clean + rng.normal(0, s, clean.shape), 0, 1).astype(np.float32), clean)
              for s in (0.01, 0.03, 0.08, 0.2)]
    assert all(x > y for x, y in zip(values, values[1:])), values
    assert values[0] > 0.95 and values[-1] < 0.8


def test_ms_ssim_uses_fewer_scales_on_small_images():
    assert ms_ssim_scales(176, 300) == 5 and ms_ssim_scales(175, 300) == 4 and ms_ssim_scales(40, 40) == 2
    small = natural_ish(40, 40)
    noisy = np.clip(small + 0.05, 0, 1)
    assert 0.5 < ms_ssim(noisy, small) < 1.0


def test_shape_mismatch_is_a_clear_value_error():
    a, b = np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32)
    for metric in (psnr, ssim, delta_e2000, ms_ssim, score):
        with pytest.raises(ValueError, match="different shapes"):
            metric(a, b)
    with pytest.raises(InputError):
        psnr(a, b)


def test_fast_ssim_and_delta_e_agree_with_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(7)
    a = rng.random((64, 80, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape).astype(np.float32), 0, 1)
    assert ssim(a, b) == pytest.approx(
        structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=-1, data_range=1.0), abs=1e-4)
    reference = float(np.mean(deltaE_ciede2000(rgb2lab(a.astype(np.float64)), rgb2lab(b.astype(np.float64)))))
    assert delta_e2000(a, b) == pytest.approx(reference, abs=1e-3)
