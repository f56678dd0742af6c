"""RAW reading (rawpy) and DNG writing: round trips, damaged files, missing metadata, the shipped asset."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from tifffile import DATATYPE

from isp.color import DEFAULT_CAM_TO_SRGB
from isp.dng import dng_tags, headerless_to_dng, write_dng, xyz_to_cam_from_cam_to_srgb
from isp.errors import EmptyFileError, ImageTooLargeError, InputError, RawFormatError
from isp.raw import _as_shot_gains, _white_level, is_raw_filename, read_headerless_bayer, read_raw
from isp.rawimage import CFA_PATTERNS, RawImage, channel_masks
from isp.simulate import default_params
from isp.stages.white_balance import grey_world_gains

H, W = 32, 48  # LibRaw refuses images smaller than 22 pixels on a side


def make_raw(pattern="RGGB", seed=0, cast=(1.0, 1.0, 1.0), noise=(1e-3, 2e-5), shape=(H, W)) -> RawImage:
    """An integer-valued 10-bit mosaic with a per-position black level and a realistic colour matrix."""
    rng = np.random.default_rng(seed)
    mosaic = rng.integers(70, 1000, shape).astype(np.float32)
    masks = channel_masks(pattern, *shape)
    for colour, factor in zip("RGB", cast):
        mosaic[masks[colour]] = np.rint(64 + (mosaic[masks[colour]] - 64) * factor)
    cam_to_srgb = np.linalg.inv(default_params().rgb_to_cam).astype(np.float32)
    return RawImage(mosaic=mosaic, pattern=pattern, black_level=(60.0, 61.0, 62.0, 63.0), white_level=1023.0,
                    wb_gains=(2.15, 1.0, 1.7), cam_to_srgb=cam_to_srgb, noise=noise,
                    source="simulated from café.jpg …")  # non-ASCII: the TIFF description must cope


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_dng_round_trip_is_exact(tmp_path, pattern):
    raw = make_raw(pattern)
    back = read_raw(write_dng(raw, tmp_path / "rt.dng"))
    assert back.pattern == pattern
    assert back.mosaic.dtype == np.float32 and np.array_equal(back.mosaic, raw.mosaic)
    assert back.black_level == raw.black_level  # per 2×2 position, raster order
    assert back.white_level == raw.white_level
    np.testing.assert_allclose(back.wb_gains, raw.wb_gains, atol=1e-4)
    np.testing.assert_allclose(back.cam_to_srgb, raw.cam_to_srgb, atol=1e-3)
    np.testing.assert_allclose(back.noise, raw.noise, rtol=1e-9)
    assert back.assumptions == ()


def test_colour_matrix_tag_inverts_the_color_module_convention():
    from isp.color import cam_to_srgb_from_xyz_to_cam
    cam_to_srgb = make_raw().cam_to_srgb
    xyz_to_cam = xyz_to_cam_from_cam_to_srgb(cam_to_srgb)
    np.testing.assert_allclose(cam_to_srgb_from_xyz_to_cam(xyz_to_cam), cam_to_srgb, atol=1e-5)


def test_float_mosaic_is_rounded_and_clipped(tmp_path):
    raw = make_raw()
    mosaic = raw.mosaic + 0.4
    mosaic[0, :4] = [-5.0, 70000.0, 100.6, 100.4]
    back = read_raw(write_dng(raw.with_(mosaic=mosaic), tmp_path / "q.dng"))
    assert back.mosaic[0, :4].tolist() == [0.0, 65535.0, 101.0, 100.0]
    assert np.array_equal(back.mosaic[1:], raw.mosaic[1:])


def test_truncated_dng_raises_raw_format_error(tmp_path):
    data = write_dng(make_raw(), tmp_path / "full.dng").read_bytes()
    for keep in (len(data) // 2, 200):
        damaged = tmp_path / f"cut{keep}.dng"
        damaged.write_bytes(data[:keep])
        with pytest.raises(RawFormatError, match="could not be decoded"):
            read_raw(damaged)


def test_random_bytes_empty_and_missing_files_raise_input_errors(tmp_path):
    noise = tmp_path / "noise.dng"
    noise.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(RawFormatError, match="noise.dng"):
        read_raw(noise)
    empty = tmp_path / "empty.dng"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError):
        read_raw(empty)
    with pytest.raises(InputError, match="does not exist"):
        read_raw(tmp_path / "missing.dng")


def test_size_limits_are_checked(tmp_path):
    path = write_dng(make_raw(), tmp_path / "a.dng")
    with pytest.raises(ImageTooLargeError, match="MB"):
        read_raw(path, max_bytes=1000)
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        read_raw(path, max_pixels=H * W - 1)
    assert read_raw(path, max_pixels=H * W).height == H


def test_all_zero_colour_matrix_falls_back_to_default(tmp_path):
    zero = {50721: (50721, DATATYPE.SRATIONAL, 9, (0, 1) * 9, True)}
    back = read_raw(write_dng(make_raw(), tmp_path / "z.dng", tag_overrides=zero))
    np.testing.assert_array_equal(back.cam_to_srgb, DEFAULT_CAM_TO_SRGB)
    assert any("no usable colour matrix" in note for note in back.assumptions)
    back = read_raw(write_dng(make_raw(), tmp_path / "none.dng", tag_overrides={50721: None}))
    np.testing.assert_array_equal(back.cam_to_srgb, DEFAULT_CAM_TO_SRGB)
    assert any("no usable colour matrix" in note for note in back.assumptions)


@pytest.mark.parametrize("override", [
    {50728: (50728, DATATYPE.RATIONAL, 3, (1, 1) * 3, True)},   # unity AsShotNeutral
    {50728: None},                                               # no AsShotNeutral at all
])
def test_unity_or_missing_as_shot_wb_uses_grey_world(tmp_path, override):
    raw = make_raw(cast=(0.5, 1.0, 0.8))  # a strong colour cast so grey world is far from unity
    back = read_raw(write_dng(raw, tmp_path / "wb.dng", tag_overrides=override))
    expected = grey_world_gains(raw.normalised(), raw.pattern)
    np.testing.assert_allclose(back.wb_gains, expected, rtol=1e-6)
    assert back.wb_gains[0] > 1.6 and 1.1 < back.wb_gains[2] < 1.4
    assert any("grey-world" in note and "white balance" in note for note in back.assumptions)


def test_as_shot_gain_and_white_level_traps():
    assert _as_shot_gains([0.0, 1.0, 0.0, 0.0]) is None
    assert _as_shot_gains([np.nan, 1.0, 1.5, 0.0]) is None
    assert _as_shot_gains([512.0, 512.0, 512.0, 512.0]) is None
    assert _as_shot_gains([4.0, 2.0, 3.0, 0.0]) == (2.0, 1.0, 1.5)
    notes: list[str] = []
    assert _white_level(0, np.array([[64.0, 900.0]]), (64.0,) * 4, notes) == 1023.0
    assert len(notes) == 1 and "1023" in notes[0]
    assert _white_level(4095, np.array([[64.0, 900.0]]), (64.0,) * 4, notes) == 4095.0 and len(notes) == 1


def test_odd_visible_size_is_cropped_to_even(tmp_path):
    raw = make_raw("GBRG", shape=(33, 49))
    back = read_raw(write_dng(raw, tmp_path / "odd.dng"))
    assert back.mosaic.shape == (32, 48) and back.pattern == "GBRG"
    assert np.array_equal(back.mosaic, raw.mosaic[:32, :48])
    assert any("odd" in note for note in back.assumptions)


def test_xtrans_dng_falls_back_to_libraw_demosaic(tmp_path):
    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,  # Fujifilm X-Trans, 0=R 1=G 2=B
              1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    overrides = {33421: (33421, DATATYPE.SHORT, 2, (6, 6), True),
                 33422: (33422, DATATYPE.BYTE, 36, bytes(xtrans), True)}
    back = read_raw(write_dng(make_raw(shape=(72, 96)), tmp_path / "xt.dng", tag_overrides=overrides))
    assert back.pattern == "RGGB" and back.mosaic.shape == (72, 96)
    assert back.wb_gains == (1.0, 1.0, 1.0) and back.white_level == 65535.0
    assert 0 < back.mosaic.mean() < 65535
    assert any("X-Trans" in note and "RGGB mosaic" in note for note in back.assumptions)


def test_linear_dng_falls_back_to_libraw_demosaic(tmp_path):
    raw = make_raw()
    tags = {code: tag for code, tag in dng_tags(raw).items() if code not in (33421, 33422, 50710, 50711)}
    rgb = np.random.default_rng(2).integers(70, 1000, (H, W, 3)).astype(np.uint16)
    path = tmp_path / "linear.dng"
    tifffile.imwrite(path, rgb, photometric=34892, planarconfig="contig", subfiletype=0, metadata=None,
                     extratags=[tags[c] for c in sorted(tags)])
    back = read_raw(path)
    assert back.pattern == "RGGB" and back.mosaic.shape == (H, W)
    np.testing.assert_allclose(back.cam_to_srgb, raw.cam_to_srgb, atol=1e-3)
    assert any("three colours per pixel" in note for note in back.assumptions)


def test_is_raw_filename():
    for name in ("a.DNG", "b.nef", "c.CR3", "x/y.arw", "d.raf", "e.rw2", "f.x3f"):
        assert is_raw_filename(name), name
    for name in ("a.raw", "b.jpg", "c.png", "dng", "c.tif"):
        assert not is_raw_filename(name), name


def test_headerless_reader_and_dng_conversion(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 1024, (24, 40)).astype("<u2")
    src = tmp_path / "dump.raw"
    data.tofile(src)
    raw = read_headerless_bayer(src, 40, 24, "BGGR", 10, 16)
    assert np.array_equal(raw.mosaic, data.astype(np.float32))
    assert raw.black_level == (16.0,) * 4 and raw.white_level == 1023.0 and raw.pattern == "BGGR"
    assert any("grey-world" in note for note in raw.assumptions)
    written = headerless_to_dng(src, tmp_path / "dump.dng", 40, 24, "BGGR", 10, 16)
    assert written.wb_gains == (1.0, 1.0, 1.0)
    back = read_raw(tmp_path / "dump.dng")
    assert np.array_equal(back.mosaic, raw.mosaic) and back.pattern == "BGGR"
    np.testing.assert_allclose(back.wb_gains, raw.wb_gains, rtol=1e-6)  # unity neutral → same grey world
    with pytest.raises(RawFormatError, match="bytes"):
        read_headerless_bayer(src, 41, 24, "BGGR", 10, 16)
    with pytest.raises(RawFormatError, match="bits"):
        read_headerless_bayer(src, 40, 24, "BGGR", 8, 16)


def test_shipped_openisp_asset(assets_dir):
    raw = read_raw(assets_dir / "openisp_rggb_10bit.dng")
    assert raw.pattern == "RGGB" and raw.mosaic.shape == (1080, 1920)
    assert raw.black_level == (0.0,) * 4 and raw.white_level == 1023.0
    assert raw.mosaic.max() <= 1023 and np.array_equal(raw.mosaic, np.rint(raw.mosaic))
    np.testing.assert_array_equal(raw.cam_to_srgb, DEFAULT_CAM_TO_SRGB)
    assert raw.wb_gains != (1.0, 1.0, 1.0)
    assert any("grey-world" in note for note in raw.assumptions)
    assert any("colour matrix is the identity" in note for note in raw.assumptions)
    assert (assets_dir / "openisp_LICENSE.txt").read_text().count("MIT License") == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_read_and_the_developed_picture_is_turned_upright(tmp_path, orientation):
    """A portrait shot stores its mosaic sideways plus an Orientation tag: the developed picture (and every
    thumbnail of the stage strip) must come out upright, the mosaic itself stays in sensor order."""
    from isp.compare_types import VariantRun
    from isp.io import apply_orientation
    from isp.pipeline import Pipeline
    from isp.views import stage_strip

    raw = make_raw(shape=(32, 64)).with_(orientation=orientation)
    back = read_raw(write_dng(raw, tmp_path / "turned.dng"))
    assert back.orientation == orientation and back.mosaic.shape == (32, 64)
    upright = Pipeline().run(back.with_(orientation=1))
    turned = Pipeline().run(back)
    assert np.array_equal(turned.image, apply_orientation(upright.image, orientation))
    assert turned.image.shape[:2] == ((64, 32) if orientation in (5, 6, 7, 8) else (32, 64))
    run = VariantRun(label="classical", learned={}, result=turned, params=0, energy_mj=0.0, power_mw=0.0)
    assert {image.shape[:2] for image, _ in stage_strip(run)} == {turned.image.shape[:2]}
