"""argparse value types and output-path checks shared by every `pixelnas` sub-command.

A bad number fails at parse time with argparse's one-line usage error (exit status 2), and an output path
that cannot be written fails before any work is done, so no run is lost to a typo in `--json`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

from isp.compare_types import LONG_SIDE_RANGE
from isp.errors import SettingError
from isp.simulate import ISO_RANGE


def _number(kind, minimum, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (steps, batch, patch, repeats…)."""
    return _number(int, 1, text)


def int_at_least(minimum: int):
    """An argparse type: an integer ≥ `minimum` (e.g. an NSGA-II population, which needs two)."""
    def parse(text: str) -> int:
        return _number(int, minimum, text)

    parse.__name__ = f"integer ≥ {minimum}"
    return parse


def non_negative_int(text: str) -> int:
    """An integer ≥ 0 (seeds)."""
    return _number(int, 0, text)


def image_side(text: str) -> int:
    """A processing size (long side in pixels) in `isp.compare_types.LONG_SIDE_RANGE`, as `Settings` checks it."""
    value = _number(int, LONG_SIDE_RANGE[0], text)
    if value > LONG_SIDE_RANGE[1]:
        raise argparse.ArgumentTypeError(f"must be at most {LONG_SIDE_RANGE[1]}, got {text}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (ISO, learning rate…); 0 itself is refused."""
    value = _number(float, 0.0, text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (a size where 0 means 'as is')."""
    return _number(float, 0.0, text)


def unit_fraction(text: str) -> float:
    """A number in [0, 1] (a mixing weight)."""
    value = _number(float, 0.0, text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1, got {text}")
    return value


def _in_iso_range(value, text) -> None:
    """Refuse an ISO outside `isp.simulate.ISO_RANGE` (the range the noise model is calibrated for)."""
    if not ISO_RANGE[0] <= value <= ISO_RANGE[1]:
        raise argparse.ArgumentTypeError(f"ISO must be {ISO_RANGE[0]}–{ISO_RANGE[1]}, got {text}")


def iso_value(text: str) -> float:
    """A sensor ISO within `isp.simulate.ISO_RANGE`."""
    value = _number(float, -math.inf, text)
    _in_iso_range(value, text)
    return value


def iso_list(text: str) -> list[int]:
    """A comma-separated list of whole ISOs within `isp.simulate.ISO_RANGE`, e.g. '800,3200'."""
    values = int_list(text)
    for value in values:
        _in_iso_range(value, value)
    return values


def int_list(text: str) -> list[int]:
    """A comma-separated list of positive integers, e.g. '800,3200'."""
    values = [positive_int(item.strip()) for item in text.split(",") if item.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}")
    return values


def output_file(path: str | Path, what: str = "output file") -> Path:
    """Check before the work starts that `path` can be written: not a folder, and its nearest existing
    parent is a writable folder (missing folders are created when the file is written). Returns the Path."""
    path = Path(path)
    if path.is_dir():
        raise SettingError(f"The {what} '{path}' is a folder; give a file name.")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise SettingError(f"Cannot write the {what} '{path}': '{parent}' is a file, not a folder.")
    if not os.access(parent, os.W_OK):
        raise SettingError(f"Cannot write the {what} '{path}': no write permission in '{parent}'.")
    try:                     # the permission bits can say yes where writing fails (root, /proc, a read-only mount)
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as error:
        raise SettingError(f"Cannot write the {what} '{path}': '{parent}' does not take new files "
                           f"({error.strerror or error}).") from None
    return path


def distinct_files(**named: str | Path | None) -> None:
    """Refuse two roles naming one file (say the output image and `--json`, or the input and the output): the
    later write would silently replace the earlier file. `named` maps a description to a path (None skipped)."""
    seen: list[tuple[Path, str]] = []
    for what, path in named.items():
        if path is None:
            continue
        path = Path(path)
        for other, other_what in seen:
            same_file = path.exists() and other.exists() and os.path.samefile(path, other)
            if path.resolve() == other.resolve() or same_file:
                raise SettingError(f"The {other_what} and the {what} are the same file ('{path}'); "
                                   "give them different names, or one would overwrite the other.")
        seen.append((path, what))


def write_text(path: str | Path, text: str) -> None:
    """Write a checked output file, creating its missing folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def json_report(obj) -> str:
    """`obj` as indented JSON with every non-finite float (an infinite PSNR: result identical to its target) as null,
    since JSON has no inf or NaN and strict readers reject Python's `Infinity`."""
    def finite(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(obj), indent=2, allow_nan=False) + "\n"
