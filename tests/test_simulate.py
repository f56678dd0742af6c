import numpy as np
import pytest

from isp.io import load_image
from isp.metrics import psnr
from isp.simulate import (add_noise, default_params, iso_to_noise, process_rgb, random_params, unprocess,
                          unprocess_rgb)

ASSET_PHOTOS = ["astronaut_nasa.png", "canal-street_seondol-son_unsplash.jpg", "dog_ja-san-miguel_unsplash.jpg",
                "duck_dennis-buchner_unsplash.jpg", "ferris-wheel-night_raynaldy-dachlan_unsplash.jpg",
                "text_chart.png"]


@pytest.mark.parametrize("name", ASSET_PHOTOS)
def test_forward_of_unprocess_reproduces_every_asset(assets_dir, name):
    """Brooks et al. 2019: the colour path (tone, gamma, CCM, WB) is inverted by the forward pipeline."""
    photo = load_image(assets_dir / name)
    raw, truth = unprocess(photo, iso=None)
    out = process_rgb(unprocess_rgb(truth, default_params()), raw.wb_gains, raw.cam_to_srgb)
    assert psnr(out, truth) >= 40.0


def test_identity_holds_for_random_cameras(assets_dir):
    photo = load_image(assets_dir / "astronaut_nasa.png")
    rng = np.random.default_rng(3)
    for _ in range(3):
        params = random_params(rng)
        raw, truth = unprocess(photo, iso=None, params=params)
        assert psnr(process_rgb(unprocess_rgb(truth, params), raw.wb_gains, raw.cam_to_srgb), truth) >= 40.0


def test_random_params_follow_brooks_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = random_params(rng)
        assert 1.9 <= p.red_gain <= 2.4 and 1.5 <= p.blue_gain <= 1.9
        np.testing.assert_allclose(p.rgb_to_cam.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("iso", [100, 800, 3200, 6400])
def test_noise_variance_of_flat_patches_matches_model(iso):
    shot, read = iso_to_noise(iso)
    rng = np.random.default_rng(iso)
    for level in (0.02, 0.1, 0.4, 0.8):
        patch = np.full((300, 300), level, np.float32)
        measured = float(np.var(add_noise(patch, shot, read, rng) - level))
        expected = shot * level + read
        assert abs(measured / expected - 1.0) < 0.05, (iso, level, measured, expected)


def test_noise_in_a_simulated_capture_matches_model():
    photo = np.full((256, 256, 3), 0.5, np.float32)
    clean, _ = unprocess(photo, iso=None)
    noisy, _ = unprocess(photo, iso=3200, seed=1)
    x = clean.normalised()
    residual = noisy.normalised() - x
    shot, read = noisy.noise
    for site in [(0, 0), (0, 1), (1, 1)]:
        r = residual[site[0]::2, site[1]::2]
        expected = shot * float(x[site[0]::2, site[1]::2].mean()) + read
        assert abs(float(r.var()) / expected - 1.0) < 0.05


def test_iso_mapping_uses_pmrid_calibration_and_grows_with_iso():
    shot, read = iso_to_noise(1600)
    w = 1023 - 64
    assert shot == pytest.approx((5.995e-4 * 1600 + 8.69e-3) / w)
    assert read == pytest.approx((7.12e-7 * 1600**2 + 6.51e-4 * 1600 + 0.115) / w**2)
    assert iso_to_noise(3200)[0] > shot and iso_to_noise(3200)[1] > read


def test_iso_out_of_range_is_a_clear_error():
    from isp.errors import InputError

    with pytest.raises(InputError, match="ISO"):
        iso_to_noise(10)


def test_noise_is_seeded():
    photo = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    a, _ = unprocess(photo, iso=800, seed=5)
    b, _ = unprocess(photo, iso=800, seed=5)
    c, _ = unprocess(photo, iso=800, seed=6)
    np.testing.assert_array_equal(a.mosaic, b.mosaic)
    assert not np.array_equal(a.mosaic, c.mosaic)


def test_zoom_halves_the_sensor_and_keeps_full_size_truth():
    photo = np.random.default_rng(0).random((130, 98, 3)).astype(np.float32)
    raw, truth = unprocess(photo, iso=None, zoom=True)
    assert truth.shape == (128, 96, 3)
    assert raw.mosaic.shape == (64, 48)
    plain, truth2 = unprocess(photo, iso=None)
    assert plain.mosaic.shape == (130, 98) and truth2.shape == (130, 98, 3)


def test_mosaic_levels_are_10_bit_and_pattern_is_rggb():
    photo = np.ones((32, 32, 3), np.float32)
    raw, _ = unprocess(photo, iso=None)
    assert raw.pattern == "RGGB" and raw.black_level == (64.0,) * 4 and raw.white_level == 1023.0
    assert raw.mosaic.min() >= 64.0 and raw.mosaic.max() <= 1023.0 + 1e-3
