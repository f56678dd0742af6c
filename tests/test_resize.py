import numpy as np
import pytest

from isp.errors import SettingError
from isp.rawimage import RawImage
from isp.stages.base import Frame
from isp.stages.resize import SuperResolution, classical_sr, downscale_x2_bicubic, upscale_x2


def psnr(a, b):
    return 10 * np.log10(1.0 / max(np.mean((np.asarray(a, np.float64) - b) ** 2), 1e-12))


def smooth(h=64, w=48):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grey = 0.5 + 0.2 * np.sin(xx / 9.0) * np.cos(yy / 11.0)
    return np.stack([grey, 0.3 + 0.4 * xx / w, 0.8 - 0.5 * yy / h], -1).astype(np.float32)


def matlab_bicubic_weights(in_len, out_len, scale):
    """MATLAB imresize 'bicubic' weights (Keys a = −0.5, kernel widened by 1/scale when shrinking)."""
    def cubic(x):
        a = np.abs(x)
        return ((1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1)
                + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2)))
    k = min(scale, 1.0)
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    j = np.arange(1, in_len + 1)
    w = k * cubic(k * (u[:, None] - j[None]))
    return w / w.sum(1, keepdims=True)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_upscale_shape_range_and_constant(method):
    img = smooth(13, 8)
    out = upscale_x2(img, method)
    assert out.shape == (26, 16, 3) and out.dtype == np.float32
    flat = np.full((9, 7, 3), (0.1, 0.5, 0.9), np.float32)
    np.testing.assert_allclose(upscale_x2(flat, method), np.broadcast_to(flat[:1, :1], (18, 14, 3)), atol=1e-5)
    step = np.zeros((8, 8, 3), np.float32)
    step[:, 4:] = 1.0
    ringing = upscale_x2(step, method)
    assert ringing.min() >= 0.0 and ringing.max() <= 1.0      # overshoot clipped


def test_downscale_shapes():
    assert downscale_x2_bicubic(smooth(64, 48)).shape == (32, 24, 3)
    assert downscale_x2_bicubic(smooth(65, 49)).shape == (32, 24, 3)


def test_smooth_round_trips_are_accurate():
    img = smooth()
    assert psnr(downscale_x2_bicubic(upscale_x2(img)), img) >= 35
    assert psnr(classical_sr(downscale_x2_bicubic(img))[4:-4, 4:-4], img[4:-4, 4:-4]) >= 35


def test_bicubic_matches_matlab_imresize_in_the_interior():
    rng = np.random.default_rng(0)
    img = rng.uniform(0.2, 0.8, (40, 36, 3)).astype(np.float32)
    down = downscale_x2_bicubic(img)
    wh, ww = matlab_bicubic_weights(40, 20, 0.5), matlab_bicubic_weights(36, 18, 0.5)
    expected = np.einsum("ij,jkc,lk->ilc", wh, img.astype(np.float64), ww)
    np.testing.assert_allclose(down[3:-3, 3:-3], expected[3:-3, 3:-3], atol=1e-4)
    up = upscale_x2(down)
    wh, ww = matlab_bicubic_weights(20, 40, 2.0), matlab_bicubic_weights(18, 36, 2.0)
    expected_up = np.clip(np.einsum("ij,jkc,lk->ilc", wh, down.astype(np.float64), ww), 0, 1)
    np.testing.assert_allclose(up[4:-4, 4:-4], expected_up[4:-4, 4:-4], atol=1e-4)


def test_unknown_method_is_a_setting_error():
    with pytest.raises(SettingError):
        upscale_x2(smooth(8, 8), "nearest-ish")


def test_stage_doubles_size_and_counts_ops_per_input_pixel():
    raw = RawImage(np.zeros((2, 2), np.float32), "RGGB", (0.0,) * 4, 1.0, (1.0, 1.0, 1.0), np.eye(3, dtype=np.float32))
    stage = SuperResolution()
    frame = Frame(smooth(10, 12), "srgb", raw)
    for variant in stage.variants:
        out = stage(frame, variant)
        assert out.data.shape == (20, 24, 3) and out.space == "srgb"
    assert stage.macs(frame, "classical") == 10 * 12 * 4 * 16 * 3


def test_the_isp_zoom_takes_a_networks_luma_on_the_bicubic_chroma():
    """isp.stages.learned.luma_only_zoom: a network's colour change that keeps luma is dropped, its luma change is
    kept on all three channels (Cb, Cr of the bicubic upscale)."""
    import numpy as np

    from isp.stages.enhance import luma
    from isp.stages.learned import luma_only_zoom
    from isp.stages.resize import classical_sr

    rng = np.random.default_rng(0)
    low = rng.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
    base = classical_sr(low)
    tint = np.float32([0.05, -0.02, -0.05]) - np.float32(0.05 * 0.299 - 0.02 * 0.587 - 0.05 * 0.114)
    assert abs(float(tint @ np.float32([0.299, 0.587, 0.114]))) < 1e-7          # a pure chroma shift
    np.testing.assert_allclose(luma_only_zoom(low, base + tint), base, atol=1e-6)
    sharper = base + 0.03 * (base - base.mean())
    out = luma_only_zoom(low, sharper)
    np.testing.assert_allclose(luma(out), luma(np.clip(sharper, 0, 1)), atol=2e-3)
    np.testing.assert_allclose(out - base, np.repeat((luma(out) - luma(base))[..., None], 3, -1), atol=1e-6)
