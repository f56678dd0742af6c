"""Develop one capture with several variants of the learned stages and score them — the app's logic, no widgets.

A *variant* is one choice for every active learned stage (denoise_raw always; sr_x2 when zooming; enhance when
enhancing): "classical", a role ("heavy", "searched") or a zoo model name (a peer). A variant that has no model
for some active stage uses that stage's classical algorithm there, and one that has a model for none of them is
replaced by "classical" — each substitution is written into `Comparison.notes`, so the UI can say so.

Scores: photos are compared with their ground truth (the photo the simulated capture was made from; with the
enhance stage on, the photo passed through the enhance stage's reference operator, the local Laplacian filter
of Paris, Hasinoff & Kautz 2011). Camera RAW files have no ground truth, so every variant is compared with the
reference variant's output instead (the heavy one when present): `agreement`, not quality.

Energy and power are *estimates* (isp.power): each stage's MACs plus the values it moves — for a network every
layer's activations read and written once and its weights read once (`ModelCache.values_moved`, the same traffic
`pixelnas eval` uses), for a classical stage its input and output values moved once. Like `pixelnas eval` they
are given for a 12 MP photo (`isp.power.PHOTO_12MP`) and a 1080p video at 30 fps (`isp.power.VIDEO_1080P`):
every stage's cost is scaled from the processed frame to that output size.

Memory: full resolution ("long_side=None") is refused above `FULL_RES_MAX_PIXELS`, checked from the file's header
before anything is decoded; after each variant its full-resolution intermediates are dropped and only display
thumbnails of them (`VariantRun.strip`) are kept.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from isp import metrics
from isp.capture import Capture, load_capture
from isp.errors import SettingError
from isp.models import ModelCache
from isp.pipeline import LEARNED_STAGES, Pipeline, Result, StageReport
from isp.power import DEFAULT_PROFILE, PHOTO_12MP, VIDEO_1080P, energy_mj, power_mw, profile
from isp.raw import is_raw_filename
from isp.stages.demosaic import DEMOSAICERS
from isp.stages.enhance import local_laplacian

ROLE_ORDER = ("classical", "searched", "peer", "heavy")     # cheapest first: the order results appear in
STAGE_LABELS = {"black_level": "BLC", "denoise_raw": "denoise", "white_balance": "WB", "demosaic": "demosaic",
                "ccm": "CCM", "tone": "tone", "sr_x2": "SR ×2", "enhance": "enhance"}
NON_NETWORK_VARIANTS = ("classical", "reference", "lanczos")    # the learned stages' own algorithms
FULL_RES_MAX_PIXELS = 16_000_000     # "full" processing size above this would need several GB per request
DISPLAY_LONG_SIDE = 1024             # long side of every picture kept after a run (crop sources, stage strip)
ENERGY_PHOTO_COLUMN = "est. mJ/photo (12 MP)"
ENERGY_VIDEO_COLUMN = "est. mW @30 fps (1080p)"
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Settings:
    """Everything the Camera tab (and the `/process` API) lets a user choose.

    long_side: shrink the input so its long side is at most this many pixels (None = full resolution).
    apply_to: the learned stages the variants are applied to (None = every active one); the others run
    their classical algorithm. The benchmark uses it to isolate one task.
    """

    iso: int = 800
    zoom: bool = False
    enhance: bool = False
    demosaic: str = "malvar"
    long_side: int | None = 1024
    variants: tuple[str, ...] = ("heavy", "searched")
    device: str = DEFAULT_PROFILE
    seed: int = 0
    apply_to: tuple[str, ...] | None = None

    def active_tasks(self) -> tuple[str, ...]:
        """Learned stages that run: denoise always, SR with zoom, enhance when on."""
        return tuple(t for t in LEARNED_STAGES if t == "denoise_raw" or (t == "sr_x2" and self.zoom)
                     or (t == "enhance" and self.enhance))

    def check(self) -> None:
        if self.demosaic not in DEMOSAICERS:
            raise SettingError(f"Unknown demosaic {self.demosaic!r}; choose one of {', '.join(DEMOSAICERS)}.")
        if self.long_side is not None and not 64 <= self.long_side <= 20000:
            raise SettingError(f"The processing size must be 64–20000 pixels (long side), not {self.long_side}.")
        profile(self.device)
        if not self.variants:
            raise SettingError("Choose at least one variant to compare.")

    def check_size(self, height: int, width: int) -> None:
        """Refuse full resolution (long_side None) for inputs above FULL_RES_MAX_PIXELS: every variant's pipeline
        holds several float32 copies of the frame, which at 50–100 MP runs a server out of memory."""
        if self.long_side is None and height * width > FULL_RES_MAX_PIXELS:
            raise SettingError(
                f"This file is {width}×{height} = {height * width / 1e6:.1f} megapixels; processing at full size "
                f"is limited to {FULL_RES_MAX_PIXELS / 1e6:.0f} megapixels. Choose a processing size of 1024 px "
                "(or 512/256) instead — or use `pixelnas process` on the command line for the full size.")


def source_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) of a photo or camera RAW read from its header only (nothing is decoded); None when the
    header cannot be read — the loader then reports what is wrong with the file."""
    path = Path(path)
    try:
        if is_raw_filename(path):
            import rawpy

            raw = rawpy.RawPy()
            try:
                raw.open_file(str(path))
                return int(raw.sizes.raw_height), int(raw.sizes.raw_width)
            finally:
                raw.close()
        from PIL import Image

        with Image.open(path) as image:
            return int(image.height), int(image.width)
    except Exception:  # noqa: BLE001 - any unreadable header: leave the message to the loader
        return None


@dataclass(frozen=True)
class Plan:
    """One variant to run: its label and the variant of every active learned stage."""

    label: str
    learned: dict[str, str]
    cost_rank: float = 0.0


@dataclass
class VariantRun:
    label: str
    learned: dict[str, str]
    result: Result
    params: int
    energy_mj: float
    power_mw: float
    scores: dict[str, float] | None = None        # vs ground truth (photos)
    agreement: dict[str, float] | None = None     # vs the reference variant (RAW files)
    score_ms: float = 0.0                         # time spent scoring (not part of the pipeline's time)
    strip: list[tuple[np.ndarray, str]] | None = None   # display thumbnails of the stages (see stage_strip)


@dataclass
class Comparison:
    """The runs finished so far (cheapest first), what they are scored against, and every note to show."""

    capture: Capture
    settings: Settings
    plans: list[Plan]
    runs: list[VariantRun] = field(default_factory=list)
    target: np.ndarray | None = None        # what scores are against (None for RAW files)
    target_label: str = ""
    notes: list[str] = field(default_factory=list)
    load_ms: float = 0.0
    target_lab: np.ndarray | None = None    # CIELAB of `target`, computed once for every variant's ΔE2000

    @property
    def done(self) -> bool:
        return len(self.runs) == len(self.plans)

    def run(self, label: str) -> VariantRun | None:
        return next((r for r in self.runs if r.label == label), None)

    @property
    def reference_label(self) -> str:
        """The variant the others are measured against: heavy if run, else the costliest one."""
        labels = [p.label for p in self.plans]
        return "heavy" if "heavy" in labels else labels[-1]

    @property
    def candidate_label(self) -> str | None:
        """The variant the headline is about: searched if run, else the cheapest other one."""
        labels = [p.label for p in self.plans if p.label != self.reference_label]
        if not labels:
            return None
        return "searched" if "searched" in labels else labels[0]


# ---------------------------------------------------------------------------------------------------- planning

def model_params(models: ModelCache, task: str, variant: str) -> int:
    """Parameters of the network a learned stage runs (0 for its own algorithms)."""
    if variant in NON_NETWORK_VARIANTS:
        return 0
    _, card = models.get(task, variant)
    return int(card.get("params", 0))


def _has_model(models: ModelCache, task: str, variant: str) -> bool:
    try:
        return variant in models.names(task)
    except Exception:  # noqa: BLE001 - an unreadable zoo folder means "no model", never a crash
        return False


def plan_variants(settings: Settings, models: ModelCache) -> tuple[list[Plan], list[str]]:
    """Map the requested variants onto the active learned stages, falling back to classical where a model is
    missing; returns the plans (cheapest first, duplicates removed) and the notes explaining every fallback."""
    tasks = settings.active_tasks()
    apply_to = tasks if settings.apply_to is None else tuple(t for t in tasks if t in settings.apply_to)
    notes: list[str] = []
    plans: list[Plan] = []
    known = {"classical", "heavy", "searched"}
    for task in LEARNED_STAGES:
        try:
            known.update(models.names(task))
        except Exception:  # noqa: BLE001 - an unreadable zoo folder means "no model"
            pass
    unknown = [v for v in settings.variants if v not in known]
    if unknown:
        raise SettingError(f"Unknown variant(s) {', '.join(map(repr, unknown))}; choose from "
                           f"{', '.join(sorted(known))}.")
    for requested in dict.fromkeys(settings.variants):
        if requested == "classical":
            if not any(p.label == "classical" for p in plans):
                plans.append(Plan("classical", {t: "classical" for t in tasks}, 0.0))
            continue
        learned, missing = {}, []
        for task in tasks:
            if task in apply_to and _has_model(models, task, requested):
                learned[task] = requested
            else:
                learned[task] = "classical"
                if task in apply_to:
                    missing.append(task)
        if all(v == "classical" for v in learned.values()):
            where = ", ".join(apply_to)
            notes.append(f"No {requested!r} model is available for {where} yet, so 'classical' is shown in its place.")
            if not any(p.label == "classical" for p in plans):
                plans.append(Plan("classical", {t: "classical" for t in tasks}, 0.0))
            continue
        if missing:
            notes.append(f"{requested!r} has no model for {', '.join(missing)}: that stage runs its classical "
                         "algorithm in this variant.")
        rank = sum(models.macs(t, v, 64, 64) for t, v in learned.items() if v != "classical")
        plans.append(Plan(requested, learned, float(rank)))
    plans.sort(key=lambda p: p.cost_rank)
    labels = [p.label for p in plans]
    if "heavy" in settings.variants and "searched" in settings.variants and "searched" not in labels:
        pair = " vs ".join(labels)
        notes.insert(0, f"No searched model is registered yet: comparing {pair} instead of heavy vs searched.")
    return plans, notes


def pipeline_config(settings: Settings, plan: Plan) -> dict:
    config = {"demosaic": settings.demosaic, "sr_x2": None, "enhance": None}
    config.update(plan.learned)
    return config


# ---------------------------------------------------------------------------------------------------- running

def network_input_size(task: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of a learned stage's network input: a raw mosaic is packed to ½ × ½ (RGGB planes)."""
    h, w = input_shape[:2]
    return (h // 2, w // 2) if task == "denoise_raw" else (h, w)


def stage_values(report: StageReport, models: ModelCache, output_values: float | None = None) -> float:
    """Values one stage moves (estimate): a network's activations and weights (`ModelCache.values_moved`), or a
    classical stage's input plus its output (`output_values`; the input's size when not given)."""
    if report.stage in LEARNED_STAGES and report.variant not in NON_NETWORK_VARIANTS:
        return models.values_moved(report.stage, report.variant, *network_input_size(report.stage, report.input_shape))
    values = float(np.prod(report.input_shape))
    return values + (values if output_values is None else output_values)


def stage_energy_mj(report: StageReport, models: ModelCache, device: str, scale: float = 1.0,
                    output_values: float | None = None) -> float:
    """Estimated mJ of one stage when the frame has `scale` × the pixels it was run at: a network's MACs and
    traffic are recomputed for the scaled input (its weights are read once per frame whatever the size), a
    classical stage's MACs and values moved scale with the pixels."""
    if report.stage in LEARNED_STAGES and report.variant not in NON_NETWORK_VARIANTS:
        h, w = network_input_size(report.stage, report.input_shape)
        k = math.sqrt(scale)
        h, w = max(1, round(h * k)), max(1, round(w * k))
        return energy_mj(models.macs(report.stage, report.variant, h, w),
                         models.values_moved(report.stage, report.variant, h, w), device)
    return energy_mj(report.macs * scale, stage_values(report, models, output_values) * scale, device)


def estimate_energy(result: Result, models: ModelCache, device: str,
                    output_hw: tuple[int, int] | None = PHOTO_12MP) -> tuple[float, int]:
    """(estimated mJ per frame, parameters of the networks used), see the module docstring. The frame is
    `output_hw` output pixels (default a 12 MP photo, as `pixelnas eval`; None = the size it was run at).
    Needs `result.intermediates` (the output size of every stage)."""
    h, w = result.image.shape[:2]
    scale = 1.0 if output_hw is None else output_hw[0] * output_hw[1] / float(h * w)
    total_mj, params = 0.0, 0
    for report in result.reports:
        out = result.intermediates.get(report.stage)
        params += model_params(models, report.stage, report.variant) if report.stage in LEARNED_STAGES else 0
        total_mj += stage_energy_mj(report, models, device, scale, None if out is None else float(out.size))
    return total_mj, params


def scoring_target(capture: Capture, settings: Settings) -> tuple[np.ndarray | None, str]:
    if capture.truth is None:
        return None, ""
    if settings.enhance:
        return local_laplacian(capture.truth), "the photo + reference enhancement (local Laplacian)"
    return capture.truth, "the original photo"


def compare_capture(capture: Capture, settings: Settings, models: ModelCache | None = None,
                    progress: Progress | None = None, load_ms: float = 0.0,
                    strips: bool = True) -> Iterator[Comparison]:
    """Run every planned variant on `capture`, cheapest first; yields the growing Comparison after each one.

    strips: keep display thumbnails of every stage (`VariantRun.strip`); the full-resolution intermediates are
    dropped after each variant either way."""
    settings.check()
    source = capture.truth if capture.truth is not None else capture.raw.mosaic
    settings.check_size(*source.shape[:2])
    models = models or ModelCache()
    plans, notes = plan_variants(settings, models)
    notes = list(capture.notes) + notes
    target, target_label = scoring_target(capture, settings)
    comparison = Comparison(capture, settings, plans, [], target, target_label, notes, load_ms)
    if capture.truth is None:
        comparison.notes.append("Camera RAW file: there is no ground truth, so the table shows each variant's "
                                f"agreement with the {comparison.reference_label!r} output, not quality.")
    for index, plan in enumerate(plans):
        def stage_progress(fraction: float, text: str, index=index, plan=plan) -> None:
            if progress is not None:
                progress((index + fraction) / len(plans), f"{plan.label} · {text}")
        result = Pipeline(pipeline_config(settings, plan), models).run(capture.raw, progress=stage_progress)
        mj, params = estimate_energy(result, models, settings.device, PHOTO_12MP)
        video_mj, _ = estimate_energy(result, models, settings.device, VIDEO_1080P)
        run = VariantRun(plan.label, dict(plan.learned), result, params, mj, power_mw(video_mj, 30.0))
        if strips:
            run.strip = stage_strip(run)
        result.intermediates = {}          # full-resolution copies of every stage: only thumbnails are kept
        start = time.perf_counter()
        if target is not None:
            if comparison.target_lab is None:
                comparison.target_lab = metrics.srgb_to_lab(target)
            shape = result.image.shape
            run.scores = quality(result.image, crop_to(target, shape), crop_to(comparison.target_lab, shape))
        comparison.runs.append(run)
        _update_agreement(comparison)
        run.score_ms = (time.perf_counter() - start) * 1000.0
        yield comparison


def quality(image: np.ndarray, target: np.ndarray, target_lab: np.ndarray | None = None) -> dict[str, float]:
    """The table's numbers (sRGB-encoded H×W×3 in [0, 1]): PSNR (dB, 2 decimals), SSIM (4), mean ΔE2000 (3).
    `target_lab`: `metrics.srgb_to_lab(target)` if already known. MS-SSIM is left out here: at 1 MP it costs
    more than the classical pipeline itself. Run one after another: threads measured no faster on this
    2-core machine (the pipeline and other requests keep both cores busy)."""
    return {"psnr": round(metrics.psnr(image, target), 2), "ssim": round(metrics.ssim(image, target), 4),
            "delta_e2000": round(metrics.delta_e2000(image, target, target_lab), 3)}


def crop_to(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Top-left crop to `shape` (results can lose a row/column to Bayer tiling)."""
    if image.shape == shape:
        return image
    if image.shape[0] < shape[0] or image.shape[1] < shape[1]:
        raise SettingError(f"ground truth {image.shape} is smaller than the result {shape}")
    return image[: shape[0], : shape[1]]


def _update_agreement(comparison: Comparison) -> None:
    if comparison.target is not None:
        return
    reference = comparison.run(comparison.reference_label)
    if reference is None:
        return
    for run in comparison.runs:
        if run is not reference and run.agreement is None:
            run.agreement = quality(run.result.image, crop_to(reference.result.image, run.result.image.shape))


def compare_file(path: str | Path, settings: Settings, models: ModelCache | None = None,
                 progress: Progress | None = None, strips: bool = True) -> Iterator[Comparison]:
    """Load a photo or camera RAW file (raises an InputError subclass for a bad file) and compare variants.
    At full resolution the size limit is checked from the file's header, before the image is decoded."""
    settings.check()
    if settings.long_side is None:
        size = source_size(path)
        if size is not None:
            settings.check_size(*size)
    if progress is not None:
        progress(0.0, "reading the file")
    start = time.perf_counter()
    capture = load_capture(path, iso=settings.iso, zoom=settings.zoom, long_side=settings.long_side,
                           seed=settings.seed)
    load_ms = (time.perf_counter() - start) * 1000.0
    yield from compare_capture(capture, settings, models, progress, load_ms, strips)


def compare_all(path: str | Path, settings: Settings, models: ModelCache | None = None,
                strips: bool = False) -> Comparison:
    """The finished comparison (no partial results)."""
    comparison = None
    for comparison in compare_file(path, settings, models, strips=strips):
        pass
    return comparison


# ---------------------------------------------------------------------------------------------------- tables

def quality_columns(comparison: Comparison) -> tuple[str, str, str]:
    suffix = "" if comparison.target is not None else f" vs {comparison.reference_label}"
    return f"PSNR{suffix} (dB)", f"SSIM{suffix}", f"ΔE2000{suffix}"


def metrics_rows(comparison: Comparison) -> list[dict]:
    """One row per finished variant: quality (or agreement), measured ms, MACs, params, estimated energy."""
    psnr_col, ssim_col, de_col = quality_columns(comparison)
    tasks = comparison.settings.active_tasks()
    rows = []
    for run in comparison.runs:
        quality = run.scores if run.scores is not None else run.agreement
        row = {"variant": run.label,
               "models": " · ".join(f"{STAGE_LABELS[t]}: {run.learned[t]}" for t in tasks)}
        if quality is None:           # the reference of a RAW comparison
            row.update({psnr_col: None, ssim_col: None, de_col: None})
        else:
            row.update({psnr_col: quality["psnr"], ssim_col: quality["ssim"], de_col: quality["delta_e2000"]})
        for task in tasks:
            report = run.result.report(task)
            row[f"ms {STAGE_LABELS[task]}"] = round(report.ms, 1) if report else None
        row["ms total"] = round(run.result.total_ms, 1)
        row["GMACs"] = round(run.result.total_macs / 1e9, 3)
        row["params"] = run.params
        row[ENERGY_PHOTO_COLUMN] = round(run.energy_mj, 4)
        row[ENERGY_VIDEO_COLUMN] = round(run.power_mw, 2)
        rows.append(row)
    return rows


def stage_rows(comparison: Comparison) -> list[dict]:
    """Per-stage detail: stage, then 'variant · ms · MMACs' for every finished variant."""
    rows = []
    for stage in (r.stage for r in comparison.runs[0].result.reports) if comparison.runs else ():
        row = {"stage": STAGE_LABELS.get(stage, stage)}
        for run in comparison.runs:
            report = run.result.report(stage)
            row[run.label] = (f"{report.variant} · {report.ms:.1f} ms · {report.macs / 1e6:.1f} MMAC"
                              if report else "–")
        rows.append(row)
    return rows


def _ratio(a: float, b: float) -> str:
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 1 else f"1/{1 / r:.1f}×"


def headline(comparison: Comparison) -> str:
    """'searched vs heavy: 1/120× MACs, 1/30× time, 1/110× energy (estimated), ΔPSNR −0.2 dB' (Markdown)."""
    ref = comparison.run(comparison.reference_label)
    label = comparison.candidate_label
    cand = comparison.run(label) if label else None
    if cand is None or ref is None:
        done = ", ".join(r.label for r in comparison.runs)
        return f"Finished: {done or 'nothing yet'} — waiting for the other variant…" if not comparison.done else \
            f"Only one variant ({done}) to show."
    parts = [f"**{cand.label} vs {ref.label}:** {_ratio(cand.result.total_macs, ref.result.total_macs)} MACs",
             f"{_ratio(cand.result.total_ms, ref.result.total_ms)} time",
             f"{_ratio(cand.energy_mj, ref.energy_mj)} energy (estimated)"]
    if cand.scores is not None and ref.scores is not None:
        parts.append(f"ΔPSNR {cand.scores['psnr'] - ref.scores['psnr']:+.2f} dB")
    elif cand.agreement is not None:
        parts.append(f"PSNR vs {ref.label} {cand.agreement['psnr']:.2f} dB (RAW: no ground truth)")
    return ", ".join(parts)


def summary(comparison: Comparison) -> dict:
    """JSON-ready summary for the API: settings, notes, headline, rows, per-stage rows."""
    s = comparison.settings
    return {"source": comparison.capture.raw.source, "is_raw_file": comparison.capture.is_raw_file,
            "ground_truth": comparison.target_label or None, "reference": comparison.reference_label,
            "settings": {"iso": s.iso, "zoom": s.zoom, "enhance": s.enhance, "demosaic": s.demosaic,
                         "long_side": s.long_side, "variants": list(s.variants), "device": s.device},
            "size": list(comparison.runs[0].result.image.shape[:2]) if comparison.runs else None,
            "load_ms": round(comparison.load_ms, 1),
            "score_ms": {r.label: round(r.score_ms, 1) for r in comparison.runs},
            "headline": headline(comparison).replace("**", ""), "notes": list(comparison.notes),
            "rows": metrics_rows(comparison), "stages": stage_rows(comparison)}


# ---------------------------------------------------------------------------------------------------- pictures

def to_uint8(image: np.ndarray) -> np.ndarray:
    """sRGB-encoded float [0, 1] → 8-bit code values (rounded)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_output(image: np.ndarray, directory: str | Path) -> str:
    """Write an 8-bit H×W×3 (or H×W) image to a fresh lossless PNG file in `directory`; returns its path.

    zlib level 1 through OpenCV (≈ 20% faster than Pillow at the same level, files within 1%): the app writes
    one per variant per request. A fresh name per call, so no reader ever sees a half-written picture."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    pixels = image[..., ::-1] if image.ndim == 3 else image          # OpenCV wants BGR
    if not cv2.imwrite(path, np.ascontiguousarray(pixels), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"cannot write {path}")
    return path


def thumbnail(image: np.ndarray, long_side: int = 384) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    scale = long_side / max(h, w)
    return cv2.resize(np.ascontiguousarray(image, np.float32), (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def _fit(shape: tuple[int, ...], long_side: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = long_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def false_colour(mosaic: np.ndarray, pattern: str, wb_gains=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A black-normalised (linear) mosaic shown as colour: every site lit in its filter's colour, scaled by the
    white-balance gains, then a 99th-percentile exposure and a 1/2.2 display gamma. For display only."""
    return _expose(_false_colour_linear(mosaic, pattern, wb_gains))


def _false_colour_linear(mosaic: np.ndarray, pattern: str, wb_gains=(1.0, 1.0, 1.0)) -> np.ndarray:
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    out = np.zeros((h, w, 3), np.float32)
    channel = {"R": 0, "G": 1, "B": 2}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        out[dy:h:2, dx:w:2, channel[colour]] = mosaic[dy:h:2, dx:w:2] * float(wb_gains[channel[colour]])
    return out


def _expose(linear: np.ndarray) -> np.ndarray:
    peak = float(np.percentile(linear, 99)) or 1.0
    return np.clip(linear / peak, 0.0, 1.0) ** (1 / 2.2)


def stage_strip(run: VariantRun, long_side: int = 384) -> list[tuple[np.ndarray, str]]:
    """Per-stage pictures for display (8-bit thumbnails, long side ≤ `long_side`): mosaic (false colour), after
    denoise, after demosaic, after SR, final. After a comparison the intermediates are gone and the thumbnails
    made then (`run.strip`) are returned."""
    if run.strip is not None:
        return run.strip
    inter, raw = run.result.intermediates, run.result.raw
    pattern, gains = (raw.pattern, raw.wb_gains) if raw is not None else ("RGGB", (1.0, 1.0, 1.0))
    small = lambda image: thumbnail(image, long_side)  # noqa: E731 - shrink before exposing: cheap at 16 MP
    items = []
    if "black_level" in inter:
        items.append((_expose(small(_false_colour_linear(inter["black_level"], pattern, gains))),
                      "sensor mosaic (false colour)"))
    if "denoise_raw" in inter:
        items.append((_expose(small(_false_colour_linear(inter["denoise_raw"], pattern, gains))),
                      f"after denoise ({run.learned.get('denoise_raw')})"))
    if "demosaic" in inter:
        items.append((_expose(np.clip(small(inter["demosaic"]), 0, None)), "after demosaic (linear, exposed)"))
    if "sr_x2" in inter:
        items.append((small(inter["sr_x2"]), f"after SR ×2 ({run.learned.get('sr_x2')})"))
    items.append((small(run.result.image), f"final — {run.label}"))
    return [(to_uint8(image), f"{run.label} · {caption}") for image, caption in items]


def crop_box(shape: tuple[int, ...], cx: float, cy: float, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a square crop centred at fractions (cx, cy) ∈ [0, 1], kept inside."""
    h, w = shape[:2]
    side = max(8, min(size, h, w))
    top = int(round(np.clip(cy, 0, 1) * h - side / 2))
    left = int(round(np.clip(cx, 0, 1) * w - side / 2))
    return int(np.clip(top, 0, h - side)), int(np.clip(left, 0, w - side)), side, side


def crop_sources(comparison: Comparison, long_side: int = DISPLAY_LONG_SIDE) -> list[tuple[np.ndarray, str]]:
    """(uint8 final image, label) per finished variant, plus the ground truth, shrunk to a long side of at most
    `long_side`: all the crops need, small enough to keep per session."""
    items = [(to_uint8(thumbnail(run.result.image, long_side)), run.label) for run in comparison.runs]
    if comparison.target is not None and comparison.runs:
        truth = crop_to(comparison.target, comparison.runs[0].result.image.shape)
        items.append((to_uint8(thumbnail(truth, long_side)), "ground truth"))
    return items


def zoom_crops(sources: list[tuple[np.ndarray, str]], cx: float, cy: float, size: int = 128,
               display: int = 320) -> list[tuple[np.ndarray, str]]:
    """The same region of every image, enlarged with nearest neighbour to about `display` px."""
    out = []
    for image, label in sources:
        top, left, hh, ww = crop_box(image.shape, cx, cy, size)
        patch = image[top:top + hh, left:left + ww]
        factor = max(1, display // max(hh, ww))
        out.append((np.repeat(np.repeat(patch, factor, 0), factor, 1), label))
    return out


def mark_crop(image: np.ndarray, cx: float, cy: float, size: int = 128, long_side: int = 640) -> np.ndarray:
    """A thumbnail of `image` with the crop region outlined (for the 'click to choose the crop' picture)."""
    top, left, hh, ww = crop_box(image.shape, cx, cy, size)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    thumb = np.ascontiguousarray(cv2.resize(image, _fit(image.shape, long_side), interpolation=cv2.INTER_AREA)
                                 if max(image.shape[:2]) > long_side else image.copy())
    s = thumb.shape[0] / image.shape[0]
    p0 = (int(left * s), int(top * s))
    p1 = (int((left + ww) * s) - 1, int((top + hh) * s) - 1)
    cv2.rectangle(thumb, p0, p1, (255, 255, 255), 3)
    cv2.rectangle(thumb, p0, p1, (230, 60, 40), 1)
    return thumb


# ---------------------------------------------------------------------------------------------------- benchmark

BENCH_TASKS: dict[str, dict] = {
    # what each task's run looks like: the capture settings that make that learned stage matter
    "denoise_raw": {"iso": 1600, "zoom": False, "enhance": False},
    "sr_x2": {"iso": 100, "zoom": True, "enhance": False},
    "enhance": {"iso": 100, "zoom": False, "enhance": True},
}


def task_variants(models: ModelCache, task: str) -> list[str]:
    """classical + the registered roles + every other zoo model of the task (a role's own name is not repeated)."""
    try:
        names = models.names(task)
    except Exception:  # noqa: BLE001 - unreadable zoo: classical only
        return ["classical"]
    roles, taken = [], set()
    for role in (n for n in names if n in ("heavy", "searched")):
        try:
            taken.add(models.get(task, role)[1]["name"])
        except Exception:  # noqa: BLE001 - a half-written checkpoint: skip the role
            continue
        roles.append(role)
    return ["classical"] + roles + [n for n in names if n not in ("heavy", "searched") and n not in taken]


def benchmark(paths: list[str | Path], models: ModelCache | None = None, long_side: int = 256,
              tasks: tuple[str, ...] = LEARNED_STAGES, device: str = DEFAULT_PROFILE, seed: int = 0,
              progress: Progress | None = None) -> dict:
    """Eval-style tables per task over photos: mean PSNR/SSIM/ΔE2000 vs ground truth, measured ms and MACs of
    the task's stage, params, estimated energy of the stage for a 12 MP photo, and R = MACs(heavy)/MACs,
    G = gain over classical relative to heavy's gain (as `pixelnas eval`, from the unrounded means). The variant
    is applied to that task's stage only; RAW files are skipped."""
    models = models or ModelCache()
    photos, skipped = [], []
    for path in paths:
        path = Path(path)
        (skipped if is_raw_filename(path) else photos).append(path)
    notes = [f"{p.name}: camera RAW files have no ground truth, so they are left out of the benchmark."
             for p in skipped]
    report = {"long_side": long_side, "device": device, "images": [p.name for p in photos], "tasks": {},
              "notes": notes, "previews": []}
    steps = max(1, len(tasks) * len(photos))
    step = 0
    for task in tasks:
        variants = task_variants(models, task)
        acc = {v: {"psnr": [], "ssim": [], "delta_e2000": [], "ms": [], "macs": [], "mj": [], "params": 0}
               for v in variants}
        for path in photos:
            if progress is not None:
                progress(step / steps, f"{task}: {path.name}")
            step += 1
            settings = Settings(variants=tuple(variants), long_side=long_side, demosaic="malvar", device=device,
                                seed=seed, apply_to=(task,), **BENCH_TASKS[task])
            try:
                final = compare_all(path, settings, models)
            except Exception as error:  # noqa: BLE001 - one bad file must not stop the benchmark
                notes.append(f"{path.name} ({task}): {error}")
                continue
            for run in final.runs:
                report_stage = run.result.report(task)
                a = acc[run.label]
                for key in ("psnr", "ssim", "delta_e2000"):
                    a[key].append(run.scores[key])
                a["ms"].append(report_stage.ms)
                a["macs"].append(report_stage.macs)
                a["params"] = model_params(models, task, report_stage.variant)
                h, w = run.result.image.shape[:2]
                scale = PHOTO_12MP[0] * PHOTO_12MP[1] / float(h * w)
                a["mj"].append(stage_energy_mj(report_stage, models, device, scale))
            if task == tasks[0] or len(report["previews"]) < 2 * len(tasks):
                report["previews"].append({"task": task, "image": path.name,
                                           "tiles": [(to_uint8(thumbnail(r.result.image, 256)), r.label)
                                                     for r in final.runs]})
            final = None
        means = {v: {"psnr": float(np.mean(a["psnr"])), "macs": float(np.mean(a["macs"]))}
                 for v, a in acc.items() if a["psnr"]}
        relative = _relative(means)
        rows = []
        for variant, a in acc.items():
            if not a["psnr"]:
                continue
            r, g = relative[variant]
            rows.append({"variant": variant, "images": len(a["psnr"]),
                         "PSNR (dB)": round(means[variant]["psnr"], 2), "SSIM": round(float(np.mean(a["ssim"])), 4),
                         "ΔE2000": round(float(np.mean(a["delta_e2000"])), 3),
                         "stage ms": round(float(np.mean(a["ms"])), 1),
                         "stage GMACs": round(means[variant]["macs"] / 1e9, 4), "params": a["params"],
                         "est. stage mJ / 12 MP photo": round(float(np.mean(a["mj"])), 5),
                         "R": None if r is None else round(r, 1), "G": None if g is None else round(g, 2)})
        report["tasks"][task] = rows
    if progress is not None:
        progress(1.0, "done")
    return report


def _relative(means: dict[str, dict[str, float]]) -> dict[str, tuple[float | None, float | None]]:
    """variant → (R, G) from unrounded means {"psnr", "macs"}: R = MACs(heavy)/MACs(variant),
    G = (PSNR − PSNR_classical)/(PSNR_heavy − PSNR_classical), as `pixelnas eval`; None where undefined."""
    heavy, classical = means.get("heavy"), means.get("classical")
    gain = heavy["psnr"] - classical["psnr"] if heavy and classical else 0.0
    return {v: (heavy["macs"] / m["macs"] if heavy and m["macs"] else None,
                (m["psnr"] - classical["psnr"]) / gain if gain else None) for v, m in means.items()}
