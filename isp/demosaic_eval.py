"""The standard demosaicing benchmark on a folder of colour images (e.g. Kodak, McMaster).

Each image is taken as the full-colour truth (sRGB-encoded, as stored), sampled on a Bayer grid with
`isp.simulate.mosaic` (noise-free, no unprocessing — the protocol of the demosaicing literature, e.g.
Zhang, Wu, Buades & Li, J. Electron. Imaging 2011), demosaiced, clipped to [0, 1] and compared on RGB with
a 10-pixel border shaved. Timing is wall-clock per call, reported as ms per megapixel.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from isp.errors import SettingError
from isp.io import list_images, load_image
from isp.metrics import psnr
from isp.simulate import crop_even, mosaic
from isp.stages.demosaic import DEMOSAICERS

SHAVE = 10


def load_srgb(path: Path) -> np.ndarray:
    """An image file → float32 H×W×3 sRGB-encoded in [0, 1] (8- or 16-bit, `isp.io.load_image`); an
    `InputError` naming the file when it is not a readable image or too small for the shaved comparison."""
    return load_image(path, min_side=2 * SHAVE + 2)


def evaluate_demosaic(folder: str | Path, methods=("bilinear", "malvar", "menon"), pattern: str = "RGGB") -> dict:
    """Run the benchmark; returns {"folder", "pattern", "images": {name: {method: psnr}},
    "mean_psnr": {method: dB}, "ms_per_mp": {method: ms}}."""
    folder = Path(folder)
    unknown = [m for m in methods if m not in DEMOSAICERS]
    if unknown:
        raise SettingError(f"Unknown demosaicing method(s) {unknown}; choose from {', '.join(DEMOSAICERS)}.")
    files = sorted(list_images(folder), key=lambda p: (len(p.stem), p.stem))   # kodim2 before kodim10
    images: dict[str, dict[str, float]] = {}
    seconds = {m: 0.0 for m in methods}
    megapixels = 0.0
    for path in files:              # every file is checked before any timing, one in memory at a time
        load_srgb(path)
    for path in files:
        truth = crop_even(load_srgb(path))
        cfa = mosaic(truth, pattern)
        megapixels += truth.shape[0] * truth.shape[1] / 1e6
        row = {}
        for method in methods:
            start = time.perf_counter()
            rgb = DEMOSAICERS[method](cfa, pattern)
            seconds[method] += time.perf_counter() - start
            inner = (slice(SHAVE, -SHAVE), slice(SHAVE, -SHAVE))
            row[method] = psnr(np.clip(rgb, 0.0, 1.0)[inner], truth[inner])
        images[path.relative_to(folder).as_posix()] = row                  # = the file name in a flat folder
    return {
        "folder": str(folder),
        "pattern": pattern,
        "images": images,
        "mean_psnr": {m: float(np.mean([row[m] for row in images.values()])) for m in methods},
        "ms_per_mp": {m: 1000.0 * seconds[m] / megapixels for m in methods},
    }


def format_table(results: dict) -> str:
    """A plain-text table: one row per image, then the mean PSNR and the speed per method."""
    methods = list(results["mean_psnr"])
    width = max([len("mean PSNR (dB)")] + [len(name) for name in results["images"]])
    header = f"{'image':<{width}}" + "".join(f"{m:>10}" for m in methods)
    lines = [f"Demosaicing, {results['folder']} ({results['pattern']}, RGB PSNR, {SHAVE}-px border shaved)",
             header, "-" * len(header)]
    for name, row in results["images"].items():
        lines.append(f"{name:<{width}}" + "".join(f"{row[m]:>10.2f}" for m in methods))
    lines.append("-" * len(header))
    lines.append(f"{'mean PSNR (dB)':<{width}}" + "".join(f"{results['mean_psnr'][m]:>10.2f}" for m in methods))
    lines.append(f"{'ms per MP':<{width}}" + "".join(f"{results['ms_per_mp'][m]:>10.1f}" for m in methods))
    return "\n".join(lines)
