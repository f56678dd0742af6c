"""Camera RAW files → `RawImage` through LibRaw (rawpy), plus headerless Bayer dumps.

The reader returns the visible sensor mosaic in DN (linear, black level not subtracted) and the metadata
the pipeline needs. Everything LibRaw cannot tell us is replaced by a documented default and written,
as a sentence a person can read, into `RawImage.assumptions`:

- no usable colour matrix → `isp.color.DEFAULT_CAM_TO_SRGB` (identity);
- missing / zero / unity as-shot white balance → grey-world gains (Buchsbaum 1980) on the mosaic;
- missing white level → the data maximum rounded up to 2ⁿ − 1;
- odd visible size → the last row / column is dropped so every 2×2 Bayer tile is complete;
- non-Bayer sensors (Fujifilm X-Trans, Foveon / linear DNG, CYGM) → LibRaw's own demosaic to linear
  RGB, re-sampled onto an RGGB mosaic so the pipeline can still run.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rawpy
import tifffile

from isp.color import DEFAULT_CAM_TO_SRGB, cam_to_srgb_from_xyz_to_cam
from isp.errors import EmptyFileError, ImageTooLargeError, ImageTooSmallError, RawFormatError, SettingError
from isp.rawimage import CFA_PATTERNS, RawImage
from isp.stages.white_balance import grey_world_gains

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 300_000_000

# Extensions LibRaw reads. Plain ".raw" is left out on purpose: it names Panasonic/Leica files as well as
# headerless sensor dumps (like the openISP capture), which need `read_headerless_bayer` and their size.
RAW_EXTENSIONS = frozenset({
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".pef",
    ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".rwl", ".mrw", ".dcr", ".kdc", ".erf", ".mef", ".mos",
})

_UNDECODABLE = (rawpy.LibRawError, rawpy.NotSupportedError)


def is_raw_filename(name: str | os.PathLike) -> bool:
    """True if the file name has a camera-RAW extension LibRaw reads (case-insensitive; not ".raw")."""
    return Path(name).suffix.lower() in RAW_EXTENSIONS


def _check_file(path: Path, max_bytes: int) -> None:
    """Existence and size limits, checked before any decoding."""
    if not path.is_file():
        raise RawFormatError(f"Cannot read the RAW file '{path.name}': it does not exist or is not a file.")
    size = path.stat().st_size
    if size == 0:
        raise EmptyFileError(f"The RAW file '{path.name}' is empty (0 bytes).")
    if size > max_bytes:
        raise ImageTooLargeError(
            f"The RAW file '{path.name}' is {size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB.")


def _check_pixels(name: str, height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"The RAW file '{name}' has {height * width / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels.")


def _crop_even(mosaic: np.ndarray, notes: list[str]) -> np.ndarray:
    h, w = mosaic.shape[:2]
    if h < 4 or w < 4:
        raise ImageTooSmallError(f"The image is {w}×{h} pixels; a Bayer mosaic needs at least 4×4.")
    if h % 2 or w % 2:
        notes.append(f"The visible area is {w}×{h} pixels (odd); the last row/column was dropped so that "
                     "every 2×2 Bayer tile is complete.")
    return mosaic[: h // 2 * 2, : w // 2 * 2]


def _bayer_layout(raw: rawpy.RawPy) -> tuple[str, np.ndarray] | None:
    """(pattern, colour indices of the visible top-left 2×2 tile) for an RGB Bayer sensor, else None.

    LibRaw's `raw_pattern` is relative to the full sensor (margins included), so it is rolled by the
    visible area's offset. Colour index 3 is the second green of a 3-colour camera ("RGBG").
    """
    try:
        indices = raw.raw_pattern
    except NotImplementedError:  # exotic `filters` values (e.g. Leaf Catchlight)
        return None
    if indices is None or indices.shape != (2, 2):
        return None
    sizes = raw.sizes
    indices = np.roll(indices, (-sizes.top_margin, -sizes.left_margin), axis=(0, 1))
    desc = raw.color_desc.decode("ascii", "replace")
    letters = "".join(desc[i] if i < len(desc) else "?" for i in indices.ravel())
    return (letters, indices) if letters in CFA_PATTERNS else None


def _usable_cam_to_srgb(matrix: np.ndarray) -> np.ndarray | None:
    """The matrix if it is a plausible camera→sRGB matrix (finite, invertible, rows sum to 1), else None."""
    m = np.asarray(matrix, np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)) or not np.any(m):
        return None
    if abs(np.linalg.det(m)) < 1e-6 or np.abs(m).max() > 50 or not np.allclose(m.sum(axis=1), 1.0, atol=1e-2):
        return None
    return m.astype(np.float32)


def _camera_matrix(raw: rawpy.RawPy, notes: list[str]) -> tuple[np.ndarray, bool]:
    """(camera→sRGB matrix, whether it came from the file).

    First LibRaw's `rgb_xyz_matrix` (XYZ→camera from its camera table), converted with the dcraw
    convention; then LibRaw's `color_matrix`, which for DNG files is the same conversion applied to the
    file's own ColorMatrix tag (dcraw `cam_xyz_coeff`). Otherwise the documented default.
    """
    candidate = None
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3]
    if np.all(np.isfinite(xyz_to_cam)) and np.any(xyz_to_cam):
        with np.errstate(all="ignore"):
            try:
                candidate = _usable_cam_to_srgb(cam_to_srgb_from_xyz_to_cam(xyz_to_cam))
            except np.linalg.LinAlgError:
                candidate = None
    if candidate is None:
        candidate = _usable_cam_to_srgb(np.asarray(raw.color_matrix, np.float64)[:3, :3])
    if candidate is None:
        notes.append("The file has no usable colour matrix (missing, all zero, NaN or singular), so camera RGB "
                     "is treated as sRGB (identity matrix); colours will be approximate.")
        return DEFAULT_CAM_TO_SRGB.copy(), False
    if np.allclose(candidate, np.eye(3), atol=1e-3):  # snap away the rational-tag rounding
        notes.append("The file's colour matrix is the identity (camera RGB treated as sRGB), which usually means "
                     "the camera's colour response is unknown; colours will be approximate.")
        return DEFAULT_CAM_TO_SRGB.copy(), True
    return candidate, True


def _as_shot_gains(cam_mul) -> tuple[float, float, float] | None:
    """(R/G, 1, B/G) from LibRaw's `camera_whitebalance`, or None if missing, zero, NaN or unity."""
    mul = np.asarray(cam_mul, np.float64)[:3]
    if not np.all(np.isfinite(mul)) or np.any(mul[:3] <= 0):
        return None
    gains = (float(mul[0] / mul[1]), 1.0, float(mul[2] / mul[1]))
    if np.allclose(gains, 1.0, atol=1e-3):
        return None
    return gains


def _white_level(reported: float, data: np.ndarray, black: tuple[float, ...], notes: list[str]) -> float:
    if reported and np.isfinite(reported) and reported > max(black):
        return float(reported)
    peak = float(data.max()) if data.size else 0.0
    white = float(2 ** max(1, int(np.ceil(np.log2(peak + 1)))) - 1)
    notes.append(f"The file gives no usable white level, so {white:.0f} DN (the data maximum {peak:.0f} "
                 "rounded up to 2ⁿ − 1) was assumed.")
    return white


def _grey_world(raw: RawImage, notes: list[str], why: str) -> RawImage:
    gains = grey_world_gains(raw.normalised(), raw.pattern)
    notes.append(f"{why}, so grey-world gains (R {gains[0]:.3f}, G 1, B {gains[2]:.3f}) were estimated from the "
                 "image (Buchsbaum 1980) and stand in as its as-shot gains (white_balance 'as_shot').")
    return raw.with_(wb_gains=gains, assumptions=tuple(notes))


def _dng_noise_profile(path: Path) -> tuple[float, float] | None:
    """(shot, read) from a DNG's NoiseProfile tag (DNG 1.3+: variance = S·x + O, x black-normalised).

    LibRaw does not expose the tag, so the TIFF structure is read with tifffile; with one pair per colour
    plane, the first (the DNG spec's order: CFA plane 0) is used.
    """
    if path.suffix.lower() != ".dng":
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            for page in tif.pages:
                for ifd in [page, *(getattr(page, "pages", None) or [])]:
                    tag = ifd.tags.get(51041)
                    if tag is not None and len(tag.value) >= 2:
                        shot, read = float(tag.value[0]), float(tag.value[1])
                        if np.isfinite(shot) and np.isfinite(read) and shot >= 0 and read >= 0:
                            return shot, read
    except Exception:  # noqa: BLE001 - the noise profile is optional; LibRaw already validated the file
        return None
    return None


def _read_bayer(raw: rawpy.RawPy, pattern: str, indices: np.ndarray, name: str, notes: list[str]) -> RawImage:
    mosaic = _crop_even(np.asarray(raw.raw_image_visible, np.float32).copy(), notes)
    per_colour = raw.black_level_per_channel
    black = tuple(float(per_colour[i]) for i in indices.ravel())
    white = _white_level(raw.white_level, mosaic, black, notes)
    cam_to_srgb, _ = _camera_matrix(raw, notes)
    gains = _as_shot_gains(raw.camera_whitebalance)
    image = RawImage(mosaic=mosaic, pattern=pattern, black_level=black, white_level=white,
                     wb_gains=gains or (1.0, 1.0, 1.0), cam_to_srgb=cam_to_srgb, source=name)
    if gains is None:
        return _grey_world(image, notes, "The file has no usable as-shot white balance (missing, zero or unity)")
    return image.with_(assumptions=tuple(notes))


def _sensor_kind(raw: rawpy.RawPy) -> str:
    if raw.raw_type == rawpy.RawType.Stack:
        return "a sensor with three colours per pixel (Foveon or linear DNG)"
    try:
        pattern = raw.raw_pattern
    except NotImplementedError:
        pattern = None
    if pattern is not None and pattern.shape == (6, 6):
        return "an X-Trans sensor (6×6 colour filter pattern)"
    if raw.num_colors == 4:
        return f"a four-colour sensor ({raw.color_desc.decode('ascii', 'replace')})"
    return "a sensor layout that is not an RGB Bayer pattern"


def _read_via_libraw_demosaic(raw: rawpy.RawPy, path: Path, notes: list[str]) -> RawImage:
    """Non-Bayer sensors: LibRaw demosaics to 16-bit linear RGB, which is re-sampled onto an RGGB mosaic."""
    kind = _sensor_kind(raw)
    cam_to_srgb, from_file = _camera_matrix(raw, [])
    in_camera_space = from_file and raw.num_colors == 3
    mul = np.asarray(raw.camera_whitebalance, np.float64)[: raw.num_colors]
    camera_wb = bool(np.all(np.isfinite(mul)) and np.all(mul > 0) and not np.allclose(mul, mul[0], rtol=1e-3))
    params = dict(gamma=(1, 1), no_auto_bright=True, output_bps=16, user_flip=0,
                  use_camera_wb=camera_wb, use_auto_wb=not camera_wb,
                  output_color=rawpy.ColorSpace.raw if in_camera_space else rawpy.ColorSpace.sRGB)
    try:
        rgb = raw.postprocess(**params)
    except rawpy.LibRawError:
        # LibRaw's default (AHD / Markesteijn) can fail on small or unusual files and leaves the handle
        # unusable, so retry on a fresh one with bilinear interpolation.
        with rawpy.imread(str(path)) as again:
            rgb = again.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, **params)
        notes.append("LibRaw's default demosaic failed on this file; its bilinear demosaic was used instead.")
    rgb = _crop_even(np.asarray(rgb, np.float32), notes)
    mosaic = np.empty(rgb.shape[:2], np.float32)
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    space = "white-balanced camera RGB" if in_camera_space else "sRGB primaries"
    wb = "the as-shot white balance" if camera_wb else "LibRaw's automatic white balance (no as-shot values)"
    notes.append(f"The file comes from {kind}. LibRaw demosaiced it to linear {space} with {wb} already "
                 "applied, and that image was re-sampled onto an RGGB mosaic so the pipeline can run; "
                 "the pipeline's demosaic therefore re-interpolates already demosaiced data.")
    if not in_camera_space:
        cam_to_srgb = DEFAULT_CAM_TO_SRGB.copy()
    return RawImage(mosaic=mosaic, pattern="RGGB", black_level=(0.0,) * 4, white_level=65535.0,
                    wb_gains=(1.0, 1.0, 1.0), cam_to_srgb=cam_to_srgb, source=path.name, assumptions=tuple(notes))


# LibRaw's sizes.flip (bit 0 mirror, bit 1 upside down, bit 2 transpose; 0 none, 3 180°, 5 90° counter-clockwise,
# 6 90° clockwise: rawpy `user_flip` docs, LibRaw's tiff_flip table) → the EXIF Orientation value that turns the
# developed picture upright. Round trip through our DNG writer checked for all 8 values (tests/test_raw.py).
LIBRAW_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


def read_raw(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS,
             max_bytes: int = DEFAULT_MAX_BYTES) -> RawImage:
    """Read a camera RAW file (DNG, NEF, CR2, ARW, …) into a `RawImage` (linear mosaic in DN).

    File size is checked before opening and the pixel count (LibRaw's sizes) before unpacking. Anything
    LibRaw cannot decode raises `RawFormatError`; every default assumed is listed in `assumptions`.
    """
    path = Path(path)
    _check_file(path, max_bytes)
    notes: list[str] = []
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            _check_pixels(path.name, sizes.raw_height, sizes.raw_width, max_pixels)
            orientation = LIBRAW_FLIP_TO_ORIENTATION.get(int(sizes.flip), 1)
            layout = _bayer_layout(raw)
            if layout is None:
                return _read_via_libraw_demosaic(raw, path, notes).with_(orientation=orientation)
            image = _read_bayer(raw, layout[0], layout[1], path.name, notes).with_(orientation=orientation)
    except _UNDECODABLE as error:
        detail = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        raise RawFormatError(
            f"'{path.name}' could not be decoded as a camera RAW file ({type(error).__name__}: {detail}). "
            "It may be truncated, damaged, or from a camera LibRaw does not support.") from error
    noise = _dng_noise_profile(path)
    return image if noise is None else image.with_(noise=noise)


def read_headerless_bayer(path: str | os.PathLike, width: int, height: int, pattern: str, bits: int,
                          black_level: float | tuple[float, float, float, float], *,
                          white_level: float | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> RawImage:
    """A headerless Bayer dump (little-endian uint16 per pixel, row-major) → `RawImage` (linear, DN).

    Such files carry no metadata, so white balance is estimated by grey world (Buchsbaum 1980), the colour
    matrix is the identity default, and the white level is 2^bits − 1 unless given; all are recorded.
    """
    path = Path(path)
    if pattern not in CFA_PATTERNS:
        raise SettingError(f"Unknown Bayer pattern {pattern!r}; choose one of {', '.join(CFA_PATTERNS)}.")
    if not 1 <= bits <= 16:
        raise SettingError(f"A headerless dump stores 1 to 16 bits per pixel in uint16, not {bits}.")
    _check_file(path, max_bytes)
    expected = width * height * 2
    actual = path.stat().st_size
    if actual != expected:
        raise RawFormatError(f"'{path.name}' has {actual} bytes, but {width}×{height} pixels of uint16 need "
                             f"{expected}; check the width, height and bit depth.")
    data = np.fromfile(path, dtype="<u2").reshape(height, width)
    if int(data.max()) >= 2 ** bits:
        raise RawFormatError(f"'{path.name}' holds values up to {int(data.max())}, more than {bits} bits allow; "
                             "check the bit depth and byte order (little-endian expected).")
    black = tuple(float(b) for b in np.broadcast_to(np.asarray(black_level, np.float64), (4,)))
    notes = ["The file is a headerless sensor dump: pattern, bit depth and black level come from the caller."]
    mosaic = _crop_even(data.astype(np.float32), notes)
    if white_level is None:
        white_level = float(2 ** bits - 1)
        notes.append(f"White level {white_level:.0f} DN assumed from the {bits}-bit depth.")
    notes.append("The file has no colour matrix, so camera RGB is treated as sRGB (identity matrix); colours "
                 "will be approximate.")
    image = RawImage(mosaic=mosaic, pattern=pattern, black_level=black, white_level=float(white_level),
                     wb_gains=(1.0, 1.0, 1.0), cam_to_srgb=DEFAULT_CAM_TO_SRGB.copy(), source=path.name)
    return _grey_world(image, notes, "The file has no as-shot white balance")
