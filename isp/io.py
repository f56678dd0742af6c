"""Photo files ⇄ float32 sRGB-encoded arrays, with every user mistake turned into a readable `InputError`.

Reading is defensive: the file size and the header's pixel count are checked before any pixel is
decoded (Pillow's `Image.open` only parses the header), truncated files are errors rather than
half-grey pictures (Pillow's `LOAD_TRUNCATED_IMAGES` is left at its default, False, and every image
is fully decoded inside the `try`), and EXIF orientation (TIFF/EXIF tag 0x0112, all 8 values) is
applied. 8-bit images are decoded by Pillow; 16-bit PNG by OpenCV (Pillow truncates 16-bit RGB PNG to
8 bits) and high-bit-depth TIFF by tifffile. Embedded ICC profiles are not applied: pixel values are
taken to be sRGB-encoded.
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from isp.raw import is_raw_filename
from isp.errors import (CorruptFileError, EmptyFileError, ImageTooLargeError, ImageTooSmallError, InputError,
                        SettingError, UnsupportedFormatError)

# Pillow format names we decode (MPO = the multi-picture JPEG many phones write; the first frame is used).
SUPPORTED_FORMATS = ("PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP")
EXIF_ORIENTATION = 0x0112
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")   # classic and BigTIFF, both byte orders
# Exceptions the decoders raise on damaged data (zlib/struct for PNG/TIFF internals, SyntaxError for Pillow).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, zlib.error, RuntimeError, tifffile.TiffFileError)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Every image file below `folder` (recursively, by suffix), sorted by path; a clear error when there is none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"Image folder '{folder}' does not exist or is not a folder.")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"No images (PNG/JPEG/TIFF/BMP) found in '{folder}'.")
    return paths


def load_image(path: str | os.PathLike, *, max_pixels: int = 50_000_000, max_bytes: int = 200 * 1024 * 1024,
               min_side: int = 16) -> np.ndarray:
    """Read a PNG/JPEG/TIFF (also BMP/WebP) file → float32 H×W×3 **sRGB-encoded** image in [0, 1].

    Orientation is applied; greyscale/palette/CMYK become RGB; alpha is dropped (not composited).
    Raises an `InputError` subclass naming the file for anything a user can get wrong.
    """
    path = Path(path)
    name = path.name or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"'{name}' does not exist. Check the path and try again.") from None
    except OSError as exc:
        raise InputError(f"'{name}' cannot be opened ({exc.strerror or exc}).") from None
    if path.is_dir():
        raise InputError(f"'{name}' is a folder, not an image file.")
    _check_byte_size(name, size, max_bytes)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"'{name}' cannot be read ({exc.strerror or exc}).") from None
    return load_image_bytes(data, name, max_pixels=max_pixels, max_bytes=max_bytes, min_side=min_side)


def load_image_bytes(data: bytes, name: str, *, max_pixels: int = 50_000_000,
                     max_bytes: int = 200 * 1024 * 1024, min_side: int = 16) -> np.ndarray:
    """Like `load_image` but for an in-memory file; `name` is only used in error messages."""
    name = Path(name).name or name
    _check_byte_size(name, len(data), max_bytes)
    if is_raw_filename(name):
        raise UnsupportedFormatError(
            f"'{name}' looks like a camera RAW file; open it with the RAW reader, not as a photo.")
    pil = None
    try:
        with warnings.catch_warnings():
            # We enforce our own `max_pixels` below; Pillow's softer bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))       # parses the header only, no pixel data yet
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(found.group(1)) / 1e6:,.0f} megapixels" if found else "an enormous number of pixels"
        raise ImageTooLargeError(
            f"'{name}' claims to be {claimed}, more than the limit of {max_pixels / 1e6:.1f} megapixels "
            "(it may be a decompression bomb).") from None
    except UnidentifiedImageError:
        if not data.startswith(TIFF_MAGIC):          # Pillow cannot open e.g. float RGB TIFF; tifffile can
            raise UnsupportedFormatError(_not_an_image_message(name, data)) from None
    except _DECODE_ERRORS as exc:
        raise CorruptFileError(f"'{name}' is damaged: its header cannot be read ({exc}).") from None

    try:
        if pil is None:
            fmt, (width, height), orientation = "TIFF", _tiff_header(data), 1
        else:
            fmt, (width, height), orientation = pil.format or "?", pil.size, _orientation(pil)
    except _DECODE_ERRORS as exc:
        raise CorruptFileError(f"'{name}' is damaged: its TIFF header cannot be read ({exc}).") from None
    try:
        if fmt == "TIFF" and _is_dng(data):
            raise UnsupportedFormatError(_camera_raw_message(name))
        if fmt not in SUPPORTED_FORMATS:
            raise UnsupportedFormatError(
                f"'{name}' is a {fmt} image, which is not supported; please use PNG, JPEG or TIFF.")
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"'{name}' is {width}×{height} = {width * height / 1e6:.1f} megapixels, more than the limit of "
                f"{max_pixels / 1e6:.1f} megapixels. Please downscale it first.")
        if min(width, height) < min_side:
            raise ImageTooSmallError(
                f"'{name}' is only {width}×{height} pixels; both sides must be at least {min_side} pixels.")
        if fmt == "PNG" and _png_bit_depth(data) == 16:
            img = _decode_png16(data)
        elif fmt == "TIFF" and (pil is None or _tiff_is_high_bit_depth(pil)):
            img, tiff_orientation = _decode_tiff(data, name)
            orientation = orientation if pil is not None else tiff_orientation
        else:
            img = _decode_pil(pil)
    except InputError:
        raise
    except MemoryError:
        raise ImageTooLargeError(
            f"'{name}' ({width}×{height}) is too large to decode in the memory this machine has free; "
            "please downscale it first.") from None
    except _DECODE_ERRORS as exc:
        if "imagecodecs" in str(exc):   # tifffile without the codec package: a valid file, not a damaged one
            raise UnsupportedFormatError(
                f"'{name}' uses a TIFF compression this installation cannot decode ({exc}); install the "
                "'imagecodecs' package or re-save it as an uncompressed or ZIP TIFF, or a 16-bit PNG.") from None
        raise CorruptFileError(
            f"'{name}' is damaged or truncated: its {fmt} pixel data cannot be decoded ({exc}).") from None
    finally:
        if pil is not None:
            pil.close()
    img = apply_orientation(img, orientation)
    return np.ascontiguousarray(np.clip(img, 0.0, 1.0), dtype=np.float32)


SAVE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def check_save_name(path: str | os.PathLike) -> None:
    """Refuse a file name `save_image` cannot write (by its extension), so callers can check before any work."""
    if Path(path).suffix.lower() not in SAVE_SUFFIXES:
        raise SettingError(f"Cannot save '{Path(path).name}': use a .png, .tif or .jpg file name.")


def save_image(path: str | os.PathLike, img: np.ndarray, *, bits: int = 8, quality: int = 95) -> Path:
    """Write an sRGB-encoded float image in [0, 1] (H×W×3 or H×W) as PNG (8/16-bit), TIFF (8/16) or JPEG (8).

    Values are clipped to [0, 1] (NaN → 0) and rounded to the nearest code value.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if bits not in (8, 16):
        raise SettingError(f"Bit depth must be 8 or 16, not {bits}.")
    check_save_name(path)
    if ext in (".jpg", ".jpeg") and bits != 8:
        raise SettingError(f"JPEG is 8-bit only; save '{path.name}' as .png or .tif for 16-bit output.")
    arr = np.asarray(img, np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"save_image expects H×W×3 or H×W, got shape {arr.shape}")
    peak = 255 if bits == 8 else 65535
    code = np.round(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * peak).astype(np.uint8 if bits == 8 else np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in (".tif", ".tiff"):
        tifffile.imwrite(path, code, photometric="rgb" if code.ndim == 3 else "minisblack", compression="zlib")
    elif ext == ".png" and bits == 16:
        ok, buf = cv2.imencode(".png", code[..., ::-1] if code.ndim == 3 else code)
        if not ok:
            raise OSError(f"OpenCV could not encode '{path.name}'")
        path.write_bytes(buf.tobytes())
    elif ext == ".png":
        Image.fromarray(code).save(path, optimize=False, compress_level=6)
    else:
        Image.fromarray(code).save(path, quality=int(quality), subsampling=0 if quality >= 90 else 2)
    return path


def fit_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale (area averaging, OpenCV INTER_AREA) so max(H, W) ≤ `long_side`; never upscales.

    Works on linear or sRGB-encoded data alike (the caller decides; averaging in linear is more correct).
    """
    if long_side < 1:
        raise SettingError(f"The processing size must be at least 1 pixel, not {long_side}.")
    h, w = img.shape[:2]
    if max(h, w) <= long_side:
        return img
    scale = long_side / max(h, w)
    new_w, new_h = max(1, min(long_side, round(w * scale))), max(1, min(long_side, round(h * scale)))
    out = cv2.resize(np.ascontiguousarray(img, np.float32), (new_w, new_h), interpolation=cv2.INTER_AREA)
    if img.ndim == 3 and out.ndim == 2:             # OpenCV drops a trailing 1-channel axis
        out = out[..., None]
    return out.astype(np.float32)


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image upright per EXIF/TIFF tag 0x0112 (TIFF 6.0 spec, p. 36; same as Pillow's
    `ImageOps.exif_transpose`). 1 = upright, 2 = mirrored, 3 = 180°, 4 = flipped, 5 = transposed,
    6 = needs 90° clockwise, 7 = transverse, 8 = needs 90° counter-clockwise. Unknown values are ignored."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return img.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(img, k=-1)
    if orientation == 7:
        return img[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(img, k=1)
    return img


# ---------------------------------------------------------------------------------------------- helpers

def _check_byte_size(name: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise EmptyFileError(f"'{name}' is empty (0 bytes); the upload or copy probably failed.")
    if size > max_bytes:
        raise ImageTooLargeError(
            f"'{name}' is {size / 2**20:.1f} MB, more than the limit of {max_bytes / 2**20:.1f} MB.")


def _not_an_image_message(name: str, data: bytes) -> str:
    """Say what the file seems to be instead, from its first bytes."""
    head = data[:1024]
    kinds = [(b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
             (b"GIF8", "a GIF image, which is not supported"), (b"\x1f\x8b", "a gzip archive"),
             (b"8BPS", "a Photoshop document"), (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image, which is not supported")]
    what = next((label for magic, label in kinds if head.startswith(magic)), None)
    if what is None and head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):
        what = "a HEIC/AVIF photo, which is not supported; export it as JPEG"
    if what is None and head[:1] == b"\x89" and head[1:4] == b"PNG":
        what = "a damaged PNG"
    if what is None and head[:3] == b"\xff\xd8\xff":
        what = "a damaged JPEG"
    if what is None:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
            what = "an HTML page" if "<html" in text.lower() or "<!doctype" in text.lower() else "text"
    if what is None:
        return f"'{name}' is not an image we can read; please use PNG, JPEG or TIFF."
    if what.startswith("a damaged"):
        return f"'{name}' is {what}: its header cannot be read."
    return f"'{name}' is not an image (it looks like {what})."


def _orientation(pil: Image.Image) -> int:
    try:
        value = pil.getexif().get(EXIF_ORIENTATION, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a malformed EXIF block must not make an otherwise good photo unreadable
        return 1


def _png_bit_depth(data: bytes) -> int:
    """Bit depth from the IHDR chunk (PNG spec §11.2.2: byte 24 of the file)."""
    return data[24] if len(data) > 25 and data[12:16] == b"IHDR" else 8


def _tiff_is_high_bit_depth(pil: Image.Image) -> bool:
    bits = pil.tag_v2.get(258, (8,))                # BitsPerSample
    bits = bits if isinstance(bits, tuple) else (bits,)
    sample_format = pil.tag_v2.get(339, (1,))       # SampleFormat: 1 uint, 2 int, 3 float
    sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
    return max(bits) > 8 or 3 in sample_format


def _to_unit_float(arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        return np.nan_to_num(arr.astype(np.float32), nan=0.0)
    if np.issubdtype(arr.dtype, np.integer):
        return np.maximum(arr, 0).astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    raise ValueError(f"unsupported sample type {arr.dtype}")


def _to_rgb(arr: np.ndarray) -> np.ndarray:
    """H×W, H×W×1, grey+alpha, RGB or RGBA (already in RGB order) → H×W×3, alpha dropped."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (1, 2):
        return np.repeat(arr[..., :1], 3, axis=2)
    return arr[..., :3]


def _decode_pil(pil: Image.Image) -> np.ndarray:
    pil.load()                                      # full decode here, so truncation raises inside the caller's try
    mode = pil.mode
    if mode.startswith("I;16"):
        return _to_rgb(_to_unit_float(np.asarray(pil).astype(np.uint16)))
    if mode in ("I", "F"):                          # 32-bit int (a 16-bit grey PNG in old Pillow) or float
        arr = np.asarray(pil).astype(np.float32)
        return _to_rgb(arr / 65535.0 if mode == "I" else arr)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in pil.info):
        pil = pil.convert("RGBA")                   # PA/LA/La/RGBa/P+tRNS → RGBA, then alpha is dropped
    elif mode != "RGB":
        pil = pil.convert("RGB")                    # 1/L/P/CMYK/YCbCr/LAB/RGBX → RGB
    return _to_rgb(_to_unit_float(np.asarray(pil)))


def _decode_png16(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)   # ignores EXIF; applied later
    if arr is None:
        raise ValueError("libpng rejected the data (truncated or corrupt)")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[..., 2::-1]                       # BGR(A) → RGB, alpha dropped
    return _to_rgb(_to_unit_float(arr))


def _camera_raw_message(name: str) -> str:
    return (f"'{name}' holds camera RAW sensor data (a DNG or TIFF/EP file), not a photo; give it a .dng "
            "extension to develop it as a RAW capture.")


def _is_dng(data: bytes) -> bool:
    """A TIFF whose first IFD has the DNGVersion tag (50706, DNG spec 1.4 §"DNGVersion"): a camera RAW, whose
    first image is often only an 8-bit preview that would otherwise pass for the photo."""
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return 50706 in tif.pages.first.tags
    except Exception:        # an unreadable TIFF is reported by the decoding that follows
        return False


def _tiff_header(data: bytes) -> tuple[int, int]:
    """(width, height) of the first TIFF page, read from its IFD only."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        return int(page.imagewidth), int(page.imagelength)


def _decode_tiff(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """First page of a (high-bit-depth or float) TIFF → (RGB float image, orientation tag)."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        arr = page.asarray()
        photometric = int(page.photometric)
        tag = page.tags.get(274)
        orientation = int(tag.value) if tag is not None and int(tag.value) in range(1, 9) else 1
        if page.planarconfig == 2 and arr.ndim == 3:   # PLANARCONFIG SEPARATE: samples first
            arr = np.moveaxis(arr, 0, -1)
    arr = _to_unit_float(arr)
    if photometric == 0:                            # MINISWHITE
        return _to_rgb(1.0 - arr), orientation
    if photometric in (1, 2):                       # MINISBLACK, RGB
        return _to_rgb(arr), orientation
    if photometric == 5 and arr.ndim == 3 and arr.shape[2] >= 4:   # SEPARATED (CMYK), naive conversion
        return (1.0 - arr[..., :3]) * (1.0 - arr[..., 3:4]), orientation
    if photometric in (32803, 34892):              # CFA (TIFF/EP) or LinearRaw (DNG): camera raw data
        raise UnsupportedFormatError(_camera_raw_message(name))
    raise UnsupportedFormatError(
        f"'{name}' is a high-bit-depth TIFF with a colour model we do not read (photometric {photometric}); "
        "please convert it to 16-bit RGB TIFF or PNG.")
