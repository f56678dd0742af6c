"""isp.io: every broken input is a readable InputError; every good one becomes float32 H×W×3 sRGB in [0, 1]."""
import contextlib
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from isp.errors import (CorruptFileError, EmptyFileError, ImageTooLargeError, ImageTooSmallError, InputError,
                        SettingError, UnsupportedFormatError)
from isp.io import apply_orientation, fit_long_side, load_image, load_image_bytes, save_image


def _rgb8(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width×height 8-bit RGB, with one row of real data (PNG spec §11.2)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 3 * min(width, 64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _check_image(img, shape):
    assert img.dtype == np.float32 and img.shape == shape
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


# ------------------------------------------------------------------------------------------ bad inputs

def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(EmptyFileError, match="'empty.png' is empty"):
        load_image(p)


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="'nope.jpg' does not exist"):
        load_image(tmp_path / "nope.jpg")


def test_folder_is_input_error(tmp_path):
    (tmp_path / "photos.png").mkdir()
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path / "photos.png")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_8bit_file_is_an_error_not_a_grey_picture(tmp_path, ext):
    full = tmp_path / f"full{ext}"
    Image.fromarray(_rgb8(64, 64)).save(full, **({"quality": 90} if ext == ".jpg" else {}))
    data = full.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert load_image(full).shape == (64, 64, 3)          # the intact file is fine …
    with pytest.raises(CorruptFileError, match=f"'cut{ext}' is damaged or truncated"):
        load_image(cut)                                    # … two thirds of it is not


def test_truncated_16bit_png(tmp_path):
    ok, buf = cv2.imencode(".png", (_rgb8(64, 64).astype(np.uint16) * 257))
    assert ok
    p = tmp_path / "deep.png"
    p.write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(CorruptFileError, match="'deep.png'"):
        load_image(p)


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "holiday.jpg"
    p.write_text("Dear friend,\nhere are the photos from our trip.\n" * 5)
    with pytest.raises(UnsupportedFormatError) as info:
        load_image(p)
    assert str(info.value) == "'holiday.jpg' is not an image (it looks like text)."


def test_pdf_and_raw_extension_are_named(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="PDF"):
        load_image_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj" + bytes(200), "scan.png")
    with pytest.raises(UnsupportedFormatError, match="camera RAW"):
        load_image_bytes(b"II*\x00" + bytes(100), "shot.dng")


def test_a_dng_under_a_photo_extension_is_named_as_camera_raw(tmp_path):
    from pathlib import Path

    dng = (Path(__file__).parent.parent / "assets" / "openisp_rggb_10bit.dng").read_bytes()
    for name in ("raw.jpg", "raw.tif"):
        (tmp_path / name).write_bytes(dng)
        with pytest.raises(UnsupportedFormatError, match="camera RAW sensor data.*\\.dng extension"):
            load_image(tmp_path / name)
    # a camera's DNG puts an 8-bit RGB preview first (DNG spec): the DNGVersion tag still gives it away
    preview = tmp_path / "preview_first.tif"
    tifffile.imwrite(preview, _rgb8(64, 96), photometric="rgb", extratags=[(50706, "B", 4, (1, 4, 0, 0), True)])
    with pytest.raises(UnsupportedFormatError, match="camera RAW sensor data"):
        load_image(preview)
    tifffile.imwrite(tmp_path / "plain.tif", _rgb8(64, 96), photometric="rgb")
    assert load_image(tmp_path / "plain.tif").shape == (64, 96, 3)


def test_pixel_bomb_header_is_rejected_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(30000, 30000))
    assert p.stat().st_size < 200                          # a tiny file claiming 900 megapixels
    with pytest.raises(ImageTooLargeError, match="'bomb.png' claims to be 900 megapixels"):
        load_image(p)


def test_pixel_limit_below_pillow_bomb_threshold(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(_png_header_only(8000, 7000))            # 56 MP: Pillow only warns; our 50 MP limit rejects
    with _no_bomb_warning():
        with pytest.raises(ImageTooLargeError, match=r"'big.png' is 8000×7000 = 56.0 megapixels"):
            load_image(p)
    small = tmp_path / "small.png"
    Image.fromarray(_rgb8(40, 50)).save(small)
    with pytest.raises(ImageTooLargeError):
        load_image(small, max_pixels=1999)
    assert load_image(small, max_pixels=2000).shape == (40, 50, 3)


@contextlib.contextmanager
def _no_bomb_warning():
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        yield
    assert not [w for w in log if issubclass(w.category, Image.DecompressionBombWarning)]


def test_file_over_max_bytes(tmp_path):
    p = tmp_path / "heavy.png"
    Image.fromarray(_rgb8(64, 64)).save(p)
    size = p.stat().st_size
    with pytest.raises(ImageTooLargeError, match="'heavy.png' is .* MB, more than the limit"):
        load_image(p, max_bytes=size - 1)
    assert load_image(p, max_bytes=size).shape == (64, 64, 3)


@pytest.mark.parametrize("size", [(1, 1), (15, 300), (300, 15)])
def test_too_small(tmp_path, size):
    p = tmp_path / "dot.png"
    Image.new("RGB", size, (10, 20, 30)).save(p)
    with pytest.raises(ImageTooSmallError, match=f"'dot.png' is only {size[0]}×{size[1]} pixels"):
        load_image(p)
    assert load_image(p, min_side=1).shape == (size[1], size[0], 3)


def test_messages_are_sentences_naming_the_file(tmp_path):
    cases = {"a.png": b"", "b.jpg": b"just some words", "c.png": _png_header_only(30000, 30000),
             "d.jpg": _png_header_only(20, 20)[:40]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as info:
            load_image(tmp_path / name)
        msg = str(info.value)
        assert isinstance(info.value, ValueError)
        assert msg.startswith(f"'{name}' ") and msg.endswith(".") and str(tmp_path) not in msg
        assert "Traceback" not in msg and "\n" not in msg and len(msg.split()) >= 5


# ------------------------------------------------------------------------------------------ good inputs

def test_16bit_png_keeps_16bit_precision(tmp_path):
    rgb16 = np.random.default_rng(1).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(".png", rgb16[..., ::-1])      # OpenCV writes BGR
    assert ok
    p = tmp_path / "deep.png"
    p.write_bytes(buf.tobytes())
    img = load_image(p)
    _check_image(img, (20, 30, 3))
    assert np.abs(img - rgb16 / 65535.0).max() < 0.5 / 65535  # channel order right, low byte kept
    assert len(np.unique(np.round(img * 65535) % 257)) > 200    # not 8-bit data scaled up


def test_16bit_tiff_and_float_tiff(tmp_path):
    rgb16 = np.random.default_rng(2).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", rgb16, photometric="rgb")
    img = load_image(tmp_path / "deep.tif")
    _check_image(img, (20, 30, 3))
    assert np.abs(img - rgb16 / 65535.0).max() < 0.5 / 65535
    planar = np.moveaxis(rgb16, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    assert np.array_equal(load_image(tmp_path / "planar.tif"), img)
    f32 = (rgb16 / 65535.0).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", f32, photometric="rgb")   # Pillow cannot even open this one
    assert np.abs(load_image(tmp_path / "float.tif") - f32).max() < 1e-6


@pytest.mark.parametrize("compression, predictor", [("lzw", True), ("zlib", True), ("lzw", False)])
def test_compressed_16bit_and_float_tiff(tmp_path, compression, predictor):
    """LZW with a predictor is what image editors write for 16-bit exports; it needs the imagecodecs codecs."""
    rgb16 = np.random.default_rng(3).integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", rgb16, photometric="rgb", compression=compression, predictor=predictor)
    assert np.abs(load_image(tmp_path / "deep.tif") - rgb16 / 65535.0).max() < 0.5 / 65535
    f32 = (rgb16 / 65535.0).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", f32, photometric="rgb", compression=compression, predictor=predictor)
    assert np.abs(load_image(tmp_path / "float.tif") - f32).max() < 1e-6


def test_tiff_codec_missing_is_not_called_damaged(tmp_path, monkeypatch):
    rgb16 = np.random.default_rng(4).integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", rgb16, photometric="rgb", compression="lzw")

    def no_codec(*args, **kwargs):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_codec)
    with pytest.raises(UnsupportedFormatError, match="imagecodecs.*re-save"):
        load_image(tmp_path / "deep.tif")


def test_out_of_memory_while_decoding_is_a_size_error(tmp_path, monkeypatch):
    rgb16 = np.random.default_rng(5).integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", rgb16, photometric="rgb")

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(tifffile.TiffPage, "asarray", out_of_memory)
    with pytest.raises(ImageTooLargeError, match="too large to decode.*downscale"):
        load_image(tmp_path / "deep.tif")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    cmyk = np.zeros((32, 32, 4), np.uint8)
    cmyk[:, :16, 0] = 255                                  # left: pure cyan ink → (0, 1, 1)
    cmyk[:, 16:, 3] = 255                                  # right: pure black ink → (0, 0, 0)
    p = tmp_path / "print.jpg"
    Image.fromarray(cmyk, "CMYK").save(p, quality=100)
    assert Image.open(p).mode == "CMYK"
    img = load_image(p)
    _check_image(img, (32, 32, 3))
    assert np.allclose(img[8:24, 2:12].mean(axis=(0, 1)), [0, 1, 1], atol=0.03)
    assert np.allclose(img[8:24, 20:30].mean(axis=(0, 1)), [0, 0, 0], atol=0.03)


def test_rgba_png_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.dstack([_rgb8(20, 20), np.zeros((20, 20), np.uint8)])
    rgba[:10, :, 3] = 255
    p = tmp_path / "sticker.png"
    Image.fromarray(rgba, "RGBA").save(p)
    img = load_image(p)
    _check_image(img, (20, 20, 3))
    assert np.array_equal(np.round(img * 255).astype(np.uint8), rgba[..., :3])   # even where alpha = 0


def test_greyscale_8_and_16_bit_become_three_equal_channels(tmp_path):
    grey = np.random.default_rng(3).integers(0, 256, (20, 24), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g8.png")
    img = load_image(tmp_path / "g8.png")
    _check_image(img, (20, 24, 3))
    assert np.array_equal(img[..., 0], img[..., 2]) and np.allclose(img[..., 1], grey / 255.0)
    grey16 = grey.astype(np.uint16) * 256 + 77
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    img16 = load_image(tmp_path / "g16.png")
    assert np.abs(img16 - (grey16 / 65535.0)[..., None]).max() < 0.5 / 65535
    Image.fromarray(np.dstack([grey, 255 - grey]), "LA").save(tmp_path / "ga.png")
    assert np.allclose(load_image(tmp_path / "ga.png"), img)


def test_palette_png(tmp_path):
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 40, 50, 60]
    index = np.random.default_rng(4).integers(0, 4, (16, 18), dtype=np.uint8)
    pal = Image.fromarray(index, "P")
    pal.putpalette(palette)
    pal.save(tmp_path / "pal.png")
    assert Image.open(tmp_path / "pal.png").mode == "P"
    img = load_image(tmp_path / "pal.png")
    _check_image(img, (16, 18, 3))
    expected = np.array(palette, np.float32).reshape(4, 3)[index] / 255.0
    assert np.allclose(img, expected)


def _jpeg_with_orientation(path, rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    p = tmp_path / f"o{orientation}.jpg"
    _jpeg_with_orientation(p, _rgb8(24, 40), orientation)
    with Image.open(p) as pil:
        assert pil.getexif()[0x0112] == orientation
        expected = np.asarray(ImageOps.exif_transpose(pil.convert("RGB"))) / 255.0   # Pillow as the oracle
    img = load_image(p)
    assert img.shape == (expected.shape[0], expected.shape[1], 3)
    assert np.allclose(img, expected, atol=1e-6)


def test_exif_orientation_6_turns_the_picture_clockwise(tmp_path):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:8, :8] = (255, 0, 0)                              # red marker at the stored top-left
    p = tmp_path / "portrait.jpg"
    _jpeg_with_orientation(p, rgb, 6)                      # "rotate 90° clockwise to display"
    img = load_image(p)
    assert img.shape == (48, 32, 3)                        # now portrait
    assert img[1:7, -7:-1, 0].mean() > 0.9                 # the marker moved to the top-right corner
    assert img[1:7, 1:7, 0].mean() < 0.1


def test_orientation_in_tiff_tag(tmp_path):
    rgb16 = np.random.default_rng(5).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rot.tif", rgb16, photometric="rgb", extratags=[(274, 3, 1, 8, True)])
    img = load_image(tmp_path / "rot.tif")
    assert img.shape == (30, 20, 3)
    assert np.abs(img - np.rot90(rgb16, 1) / 65535.0).max() < 0.5 / 65535


def test_apply_orientation_inverts_itself_for_flips():
    a = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    for o in (2, 3, 4, 5, 7):                              # the involutions
        assert np.array_equal(apply_orientation(apply_orientation(a, o), o), a)
    assert np.array_equal(apply_orientation(apply_orientation(a, 6), 8), a)


def test_bytes_api_matches_path_api(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_rgb8()).save(p)
    assert np.array_equal(load_image_bytes(p.read_bytes(), "x.png"), load_image(p))


# ------------------------------------------------------------------------------------------ saving, resizing

@pytest.mark.parametrize("name,bits,tol", [("a.png", 8, 0.5 / 255), ("b.png", 16, 0.5 / 65535),
                                           ("c.tif", 16, 0.5 / 65535), ("d.jpg", 8, 0.06)])
def test_save_then_load_round_trip(tmp_path, name, bits, tol):
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    img = np.dstack([x / 47, y / 39, (x + y) / 86]).astype(np.float32)
    save_image(tmp_path / name, img, bits=bits)
    back = load_image(tmp_path / name)
    assert back.shape == img.shape and np.abs(back - img).max() <= tol + 1e-7


def test_save_rejects_bad_requests(tmp_path):
    img = np.zeros((20, 20, 3), np.float32)
    with pytest.raises(SettingError):
        save_image(tmp_path / "x.jpg", img, bits=16)
    with pytest.raises(SettingError):
        save_image(tmp_path / "x.png", img, bits=12)
    with pytest.raises(SettingError):
        save_image(tmp_path / "x.gif", img)


def test_fit_long_side():
    img = np.full((300, 200, 3), 0.25, np.float32)
    img[:, :100] = 0.75
    out = fit_long_side(img, 150)
    assert out.shape == (150, 100, 3) and out.dtype == np.float32
    assert np.allclose(out[:, :48], 0.75) and np.allclose(out[:, 52:], 0.25)   # area average keeps levels
    assert fit_long_side(img, 300) is img and fit_long_side(img, 1000) is img  # never upscales
    assert fit_long_side(np.zeros((100, 1000), np.float32), 64).shape == (6, 64)
    with pytest.raises(SettingError):
        fit_long_side(img, 0)


def test_pillow_fallback_scales_16_bit_and_32_bit_grey_modes_to_unit_range():
    from isp.io import _decode_pil     # the fallback decoder; 16-bit PNG/TIFF files normally go to OpenCV/tifffile
    grey = np.array([[0, 32768, 65535]], np.uint16)
    for pil in (Image.fromarray(grey), Image.fromarray(grey.astype(np.int32))):      # modes I;16 and I
        assert pil.mode in ("I;16", "I")
        out = _decode_pil(pil)
        assert out.dtype == np.float32 and out.shape == (1, 3, 3)
        np.testing.assert_allclose(out[0, :, 0], grey[0] / 65535.0, atol=1e-6)
        assert (out[..., 0] == out[..., 2]).all()
