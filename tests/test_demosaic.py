"""Published properties of the demosaicing algorithms (colour-demosaicing style)."""
import numpy as np
import pytest

from isp.errors import ImageTooSmallError, SettingError
from isp.rawimage import CFA_PATTERNS, RawImage, channel_masks
from isp.simulate import mosaic
from isp.stages.base import Frame
from isp.stages.demosaic import DEMOSAICERS, Demosaic, demosaic_bilinear, demosaic_malvar

METHODS = sorted(DEMOSAICERS)


def smooth_colour_image(h: int = 96, w: int = 128) -> np.ndarray:
    """A stand-in for a natural photo: luminance detail and sharp-edged shapes (luminance steps) times a
    slowly varying tint — the inter-channel correlation that gradient-corrected demosaicing relies on."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    luminance = 0.5 + 0.2 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.08 * np.cos((xx + 2 * yy) / 3.0)
    disc = (yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2
    luminance = np.where(disc, 0.5 * luminance, luminance)
    luminance[10:40, 80:115] *= 1.25
    tint = np.stack([0.9 + 0.1 * np.sin(xx / 40.0), np.full_like(xx, 0.85), 0.7 + 0.1 * np.cos(yy / 30.0)], -1)
    return np.clip(luminance[..., None] * tint, 0.0, 1.0).astype(np.float32)


def psnr(a, b, border=4):
    inner = (slice(border, -border), slice(border, -border))
    return 10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1)[inner] - b[inner]) ** 2))


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", METHODS)
def test_constant_image_returns_the_constant(method, pattern):
    cfa = np.full((14, 18), 0.3712, np.float32)
    out = DEMOSAICERS[method](cfa, pattern)
    assert out.shape == (14, 18, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.3712, atol=1e-6)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", METHODS)
def test_known_samples_are_kept_exactly(method, pattern):
    rng = np.random.default_rng(3)
    cfa = rng.uniform(0.0, 1.0, (20, 26)).astype(np.float32)
    out = DEMOSAICERS[method](cfa, pattern)
    for index, colour in enumerate("RGB"):
        mask = channel_masks(pattern, *cfa.shape)[colour]
        assert np.array_equal(out[..., index][mask], cfa[mask])


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_bilinear_reproduces_a_horizontal_ramp(pattern):
    xx = np.tile(np.linspace(0.1, 0.9, 40, dtype=np.float32), (30, 1))
    truth = np.stack([xx, 0.5 * xx + 0.2, 1.0 - xx], axis=-1)
    out = demosaic_bilinear(mosaic(truth, pattern), pattern)
    np.testing.assert_allclose(out[2:-2, 2:-2], truth[2:-2, 2:-2], atol=1e-5)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_malvar_beats_bilinear_on_a_smooth_colour_image_with_edges(pattern):
    truth = smooth_colour_image()
    cfa = mosaic(truth, pattern)
    bilinear = psnr(demosaic_bilinear(cfa, pattern), truth)
    malvar = psnr(demosaic_malvar(cfa, pattern), truth)
    assert malvar > bilinear + 2.0, (bilinear, malvar)
    assert bilinear > 25.0  # sanity: the image is reconstructable at all


def test_menon_beats_bilinear_and_all_patterns_agree():
    truth = smooth_colour_image()
    scores = {p: psnr(DEMOSAICERS["menon"](mosaic(truth, p), p), truth) for p in CFA_PATTERNS}
    assert min(scores.values()) > psnr(demosaic_bilinear(mosaic(truth, "RGGB"), "RGGB"), truth) + 2.0
    assert max(scores.values()) - min(scores.values()) < 0.5, scores


def test_bad_inputs_raise_readable_errors():
    with pytest.raises(SettingError, match="CFA pattern"):
        demosaic_malvar(np.zeros((8, 8), np.float32), "RGBG")
    with pytest.raises(ImageTooSmallError):
        demosaic_malvar(np.zeros((2, 8), np.float32), "RGGB")


def test_stage_interface_and_costs():
    stage = Demosaic()
    assert stage.variants == ("bilinear", "malvar", "menon")
    truth = smooth_colour_image(32, 40)
    raw = RawImage(mosaic=mosaic(truth, "GRBG"), pattern="GRBG", black_level=(0, 0, 0, 0), white_level=1.0,
                   wb_gains=(1, 1, 1), cam_to_srgb=np.eye(3, dtype=np.float32))
    frame = Frame(raw.mosaic, "raw_wb", raw)
    for variant in stage.variants:
        out = stage(frame, variant)
        assert out.space == "camera_rgb" and out.data.shape == (32, 40, 3) and out.data.dtype == np.float32
        assert out.data.min() >= 0.0 and out.data.max() <= 1.0
        assert stage.macs(frame, variant) == int(stage.ops_per_pixel[variant] * 32 * 40)
    assert stage.ops_per_pixel["bilinear"] < stage.ops_per_pixel["malvar"] < stage.ops_per_pixel["menon"]
    with pytest.raises(SettingError):
        stage(frame, "vng")


def test_benchmark_on_a_folder(tmp_path):
    from PIL import Image

    from isp.demosaic_eval import evaluate_demosaic, format_table
    from isp.errors import InputError

    for index in range(2):
        image = smooth_colour_image(64 + 2 * index, 80)
        Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(tmp_path / f"{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    results = evaluate_demosaic(tmp_path, methods=("bilinear", "malvar"))
    assert set(results["images"]) == {"0.png", "1.png"}
    assert results["mean_psnr"]["malvar"] > results["mean_psnr"]["bilinear"] + 2.0
    assert all(ms > 0 for ms in results["ms_per_mp"].values())
    table = format_table(results)
    assert "mean PSNR" in table and "malvar" in table and "1.png" in table
    with pytest.raises(InputError):
        evaluate_demosaic(tmp_path / "missing")
    with pytest.raises(SettingError):
        evaluate_demosaic(tmp_path, methods=("vng",))
