import numpy as np
import pytest

from isp.errors import InputError, SettingError
from isp.io import load_image
from isp.pipeline import DEFAULT_CONFIG, Pipeline, develop_photo, score_against
from isp.rawimage import pack, unpack
from isp.simulate import unprocess


@pytest.fixture(scope="module")
def photo(assets_dir):
    return load_image(assets_dir / "astronaut_nasa.png")[128:384, 128:384]


def test_every_stage_runs_and_is_timed(photo):
    result, truth = develop_photo(photo, iso=800, zoom=True, enhance="classical")
    names = [r.stage for r in result.reports]
    assert names == ["black_level", "denoise_raw", "white_balance", "demosaic", "ccm", "tone", "sr_x2", "enhance"]
    assert all(r.ms >= 0 for r in result.reports) and result.total_ms > 0
    assert all(r.macs > 0 for r in result.reports)
    assert result.image.shape == truth.shape == (256, 256, 3)
    assert set(result.intermediates) == set(names)
    assert result.intermediates["black_level"].ndim == 2 and result.intermediates["demosaic"].ndim == 3
    assert "stage" in result.table() and "total" in result.table()


def test_noise_free_pipeline_is_close_to_the_photo(photo):
    result, truth = develop_photo(photo, iso=None)
    assert score_against(result, truth)["psnr"] > 28.0   # limited by demosaicing (Malvar) on the astronaut


def test_denoising_helps_at_high_iso(photo):
    noisy, truth = develop_photo(photo, iso=3200, config={"denoise_raw": None})
    clean, _ = develop_photo(photo, iso=3200)
    assert score_against(clean, truth)["psnr"] > score_against(noisy, truth)["psnr"] + 2.0


def test_demosaic_variants_rank_as_published(photo):
    scores = {}
    for method in ("bilinear", "malvar", "menon"):
        result, truth = develop_photo(photo, iso=None, config={"demosaic": method})
        assert result.report("demosaic").variant == method
        scores[method] = score_against(result, truth)["psnr"]
    assert scores["malvar"] > scores["bilinear"] + 2.0 and scores["menon"] > scores["bilinear"] + 2.0


def test_grey_world_on_a_grey_scene_is_neutral():
    photo = np.full((64, 64, 3), 0.5, np.float32)
    raw, _ = unprocess(photo, iso=None)
    out = Pipeline({"white_balance": "grey_world", "denoise_raw": None}).run(raw).image
    assert np.ptp(out.reshape(-1, 3).mean(axis=0)) < 0.01


def test_enhance_reference_and_sr_lanczos(photo):
    result, _ = develop_photo(photo, iso=None, zoom=True, config={"sr_x2": "lanczos"}, enhance="reference")
    assert result.report("sr_x2").variant == "lanczos" and result.report("enhance").variant == "reference"


def test_unknown_variant_and_stage_are_clear_errors():
    with pytest.raises(SettingError, match="demosaic"):
        Pipeline({"demosaic": "magic"})
    with pytest.raises(InputError, match="Unknown stage"):
        Pipeline({"warp": "x"})
    with pytest.raises(SettingError, match="cannot be skipped"):
        Pipeline({"demosaic": None})
    with pytest.raises(SettingError, match="sr_x2"):
        Pipeline({"sr_x2": "no_such_model"})


def test_default_config_has_every_stage():
    assert set(DEFAULT_CONFIG) == {s.name for s in Pipeline().stages}


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_pack_unpack_round_trip(pattern):
    mosaic = np.random.default_rng(0).random((8, 10)).astype(np.float32)
    packed = pack(mosaic, pattern)
    assert packed.shape == (4, 5, 4)
    np.testing.assert_array_equal(unpack(packed, pattern), mosaic)
    red = {"RGGB": (0, 0), "BGGR": (1, 1), "GRBG": (0, 1), "GBRG": (1, 0)}[pattern]
    np.testing.assert_array_equal(packed[..., 0], mosaic[red[0]::2, red[1]::2])


def test_a_classical_stage_is_charged_for_its_input_and_its_output(photo, tmp_path):
    from isp.energy_estimate import stage_values
    from isp.models import ModelCache

    result, _ = develop_photo(photo[:64, :64], iso=None, zoom=True, models=ModelCache(tmp_path))
    zoom = result.report("sr_x2")
    assert zoom.output_shape[:2] == (2 * zoom.input_shape[0], 2 * zoom.input_shape[1])
    assert stage_values(zoom, ModelCache(tmp_path)) == pytest.approx(5 * np.prod(zoom.input_shape))   # in + 4× out
    demosaic = result.report("demosaic")
    assert stage_values(demosaic, ModelCache(tmp_path)) == pytest.approx(4 * np.prod(demosaic.input_shape))


def test_the_zoom_stage_keeps_an_rgb_networks_luma_and_the_bicubic_chroma(photo):
    """In the ISP the heavy (an RGB network) changes only Y′ of the bicubic upscale: every channel moves by the
    same amount, and that amount is the network's own luma change."""
    from isp.stages.enhance import luma
    from isp.stages.resize import classical_sr

    result, _ = develop_photo(photo[:48, :48], iso=None, zoom=True, config={"sr_x2": "heavy"})
    base = classical_sr(result.intermediates["tone"])
    change = result.image - base
    inside = (result.image > 0.01).all(-1) & (result.image < 0.99).all(-1)       # away from clipping
    assert inside.mean() > 0.5 and np.abs(change).max() > 1e-3                     # the network did something
    np.testing.assert_allclose(change[..., 0][inside], change[..., 1][inside], atol=1e-5)
    np.testing.assert_allclose(change[..., 2][inside], change[..., 1][inside], atol=1e-5)
    assert result.report("sr_x2").variant == "heavy"
    from isp.layout import to_chw, to_hwc
    from isp.models import ModelCache

    own = np.clip(to_hwc(ModelCache().run("sr_x2", "heavy", to_chw(result.intermediates["tone"]))), 0, 1)
    np.testing.assert_allclose(luma(result.image)[inside], luma(own)[inside], atol=1e-4)
    assert np.abs(own - result.image)[inside].max() > 1e-3                  # its own chroma was not kept


def test_a_role_is_resolved_outside_the_timed_call_and_a_loaded_model_reads_no_cards(photo, monkeypatch):
    """The stage's ms must be the network's, not a scan of the zoo folder (one card read per card per lookup)."""
    import time
    from types import SimpleNamespace

    from isp.models import ModelCache
    from searched_models import zoo

    models = ModelCache()
    raw, _ = unprocess(photo[:64, :64], iso=None, seed=0)
    pipeline = Pipeline({"denoise_raw": None, "enhance": "searched"}, models)
    pipeline.run(raw)                                            # loads the model
    reads, timing = [], []
    real_list_models, real_clock = zoo.list_models, time.perf_counter

    def counting_list_models(*args, **kwargs):
        reads.append("timed" if len(timing) % 2 else "untimed")   # odd number of clock reads: inside a timed block
        return real_list_models(*args, **kwargs)

    def clock():
        timing.append(1)
        return real_clock()

    monkeypatch.setattr(zoo, "list_models", counting_list_models)
    monkeypatch.setattr("isp.pipeline.time", SimpleNamespace(perf_counter=clock))   # the pipeline's clock only
    result = pipeline.run(raw)
    assert result.report("enhance").variant == "searched"
    assert reads == ["untimed"]                                  # the role lookup, before the clock starts
    name = models.resolve("enhance", "searched")
    reads.clear()
    assert models.get("enhance", name) is models.get("enhance", "searched")
    assert reads == ["untimed"]                                  # only the role asked the cards
