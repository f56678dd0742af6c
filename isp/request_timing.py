"""`pixelnas bench-app`: the server time of the app's `/process` request for one photo, part by part.

Times what the handler runs — `isp.compare.compare_file` (read the file and simulate the capture, develop
every variant, estimate its energy, score it), `compare_scores.summary`, and `views.write_output` of every
variant's final image — on the photo resized to `megapixels` first and processed at that full size; one
warm-up run, then the median of `repeats` runs per part. A benchmark to run by hand on a quiet machine:
speed is measured here, never asserted in tests.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from isp import compare, compare_scores, compare_types, views
from isp.errors import SettingError
from isp.cli_types import iso_value, non_negative_float, positive_int
from isp.cpu_load import LOAD_NOTE_PREFIX, LoadMeter, busy_warning
from isp.io import load_image, save_image
from isp.models import ModelCache


def resized_photo(path: str | Path, megapixels: float | None, directory: str | Path) -> Path:
    """The photo resized to about `megapixels` MP (OpenCV area averaging down, bicubic up) as a lossless PNG
    in `directory`; the file itself when `megapixels` is None or 0."""
    path = Path(path)
    limit = compare_types.FULL_RES_MAX_PIXELS / 1e6
    if not megapixels:
        size = compare.source_size(path)
        if size is not None and size[0] * size[1] / 1e6 > limit:
            raise SettingError(f"'{path.name}' is {size[1]}×{size[0]} = {size[0] * size[1] / 1e6:.1f} megapixels; "
                               f"the app processes at most {limit:.0f} megapixels at full size, so time it with "
                               f"--mp {limit:.0f} or less.")
        return path
    if not 0.01 <= megapixels <= limit:
        raise SettingError(f"--mp must be 0 (the photo as is) or 0.01–{limit:.0f} megapixels (the app's full-size "
                           f"limit), not {megapixels:g}.")
    photo = load_image(path)
    scale = (megapixels * 1e6 / (photo.shape[0] * photo.shape[1])) ** 0.5
    size = (max(16, round(photo.shape[1] * scale)), max(16, round(photo.shape[0] * scale)))
    resized = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return save_image(Path(directory) / f"{path.stem}_{megapixels:g}mp.png", np.clip(resized, 0.0, 1.0))


def time_request(path: str | Path, settings: compare_types.Settings, models: ModelCache,
                 out_dir: str | Path) -> dict:
    """One `/process` request, timed in ms: total, read (file → simulated capture), pipeline per variant
    (wall time of planning and developing it, energy estimate included), scoring, summary, writing the
    outputs. Also returns the summary the handler would send."""
    start = time.perf_counter()
    marks, comparison = [], None
    for comparison in compare.compare_file(path, settings, models, strips=False):   # as the handler
        marks.append(time.perf_counter())
    summary_start = time.perf_counter()
    data = compare_scores.summary(comparison)
    write_start = time.perf_counter()
    for run in comparison.runs:
        views.write_output(views.to_uint8(run.result.image), out_dir)
    end = time.perf_counter()
    ms = {"total": (end - start) * 1e3, "read": comparison.load_ms}
    previous = start + comparison.load_ms / 1e3
    for run, mark in zip(comparison.runs, marks):
        ms[f"pipeline {run.label}"] = (mark - previous) * 1e3 - run.score_ms
        previous = mark
    ms["scoring"] = sum(run.score_ms for run in comparison.runs)
    ms["summary"] = (write_start - summary_start) * 1e3
    ms["writing outputs"] = (end - write_start) * 1e3
    return {"ms": ms, "summary": data, "load": comparison.load_meter}


def bench_app(path: str | Path, variants: tuple[str, ...] = ("searched",), megapixels: float | None = 1.0,
              repeats: int = 3, models: ModelCache | None = None, iso: int = 800) -> dict:
    """Median (over `repeats` runs after one warm-up) of every part of a `/process` request for `path`
    resized to `megapixels` (None = as is), at full processing size with the app's other defaults."""
    if repeats < 1:
        raise SettingError(f"--repeats must be at least 1, not {repeats}.")
    models = models or ModelCache()
    settings = compare_types.Settings(iso=iso, long_side=None, variants=tuple(variants))
    settings.check()
    with tempfile.TemporaryDirectory(prefix="pixelnas_bench_") as tmp:
        photo = resized_photo(path, megapixels, tmp)
        time_request(photo, settings, models, tmp)                       # warm-up: model loading, caches
        runs = [time_request(photo, settings, models, tmp) for _ in range(repeats)]
    data = runs[-1]["summary"]
    load = LoadMeter()
    for r in runs:
        load.add(r["load"])
    notes = [n for n in data["notes"] if not n.startswith(LOAD_NOTE_PREFIX)]      # one run's; the total's below
    notes += [w for w in [busy_warning(load.cores, "the timed requests ran", torch.get_num_threads())] if w]
    parts = {key: round(statistics.median(r["ms"][key] for r in runs), 1) for key in runs[0]["ms"]}
    return {"file": Path(path).name, "megapixels": megapixels, "output_hw": data["size"],
            "variants": [r["variant"] for r in data["rows"]], "repeats": repeats, "median_ms": parts,
            "runs_total_ms": [round(r["ms"]["total"], 1) for r in runs],
            "stage_ms": {r["variant"]: r["ms total"] for r in data["rows"]}, "stages": data["stages"],
            "other_load_cores": load.reported, "notes": notes}


def format_bench(result: dict) -> str:
    """The breakdown as a printable table."""
    h, w = result["output_hw"]
    lines = [f"/process server time for {result['file']} at {w}×{h} ({w * h / 1e6:.2f} MP), variants "
             f"{', '.join(result['variants'])}: median of {result['repeats']} runs after a warm-up",
             f"{'part':<28}{'ms':>9}"]
    lines += [f"{part:<28}{ms:>9.1f}" for part, ms in result["median_ms"].items()]
    lines.append(f"runs (total ms): {', '.join(f'{t:.1f}' for t in result['runs_total_ms'])}")
    lines.append("stages of the last run (variant · ms · MMAC): " + "; ".join(
        f"{row['stage']}: " + ", ".join(str(v) for k, v in row.items() if k != "stage") for row in result["stages"]))
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def add_command(sub) -> None:
    """Register `pixelnas bench-app` on an argparse subparsers object."""
    p = sub.add_parser("bench-app", help="server time of the app's /process request for a photo, part by part",
                       description="Time the code the app's /process handler runs (read + simulate, pipeline per "
                                   "variant, scoring, summary, writing the outputs) on PHOTO resized to --mp "
                                   "megapixels; median of --repeats runs after a warm-up. The photo is processed "
                                   "at that size (the app's 'full' processing size; the app's default shrinks it "
                                   "to 1024 px).")
    p.add_argument("photo", metavar="PHOTO", help="a photo (PNG/JPEG/TIFF)")
    p.add_argument("--variants", default="searched",
                   help="comma-separated variants: searched, heavy, classical or zoo names (default searched)")
    p.add_argument("--mp", type=non_negative_float, default=1.0,
                   help=f"resize the photo to this many megapixels, 0.01–{compare_types.FULL_RES_MAX_PIXELS // 10**6} "
                        "(the app's full-size limit; default 1; 0 = as is)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs after the warm-up (default 3)")
    p.add_argument("--iso", type=iso_value, default=800, help="simulated ISO, 50–12800 (default 800, as the app)")
    p.set_defaults(func=run)


def run(args) -> int:
    """`pixelnas bench-app`: print the breakdown."""
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    print(format_bench(bench_app(args.photo, variants, args.mp or None, args.repeats, iso=round(args.iso))))
    return 0
