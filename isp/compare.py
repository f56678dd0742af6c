"""Develop one capture with several variants of the learned stages — planning and running, cheapest first.

A *variant* is one choice for every active learned stage (denoise_raw always; sr_x2 when zooming; enhance when
enhancing): "classical", a role ("heavy", "searched") or a zoo model name (a peer). A variant that has no model
for some active stage uses that stage's classical algorithm there, and one that has a model for none of them is
replaced by "classical" — each substitution is written into `Comparison.notes`, so the UI can say so.

Each finished variant gets its estimated energy (isp.energy_estimate) and its scores (isp.compare_scores).
Memory: full resolution is refused above `FULL_RES_MAX_PIXELS`, checked from the file's header before anything is
decoded; after each variant its full-resolution intermediates are dropped and only display thumbnails of them
(`VariantRun.strip`, isp.views) are kept.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from isp import metrics
from isp.capture import Capture, load_capture
from isp.compare_scores import crop_to, quality, scoring_target, update_agreement
from isp.compare_types import Comparison, Plan, Progress, Settings, VariantRun
from isp.cpu_load import LOAD_NOTE_PREFIX, busy_warning
from isp.energy_estimate import estimate_energy
from isp.errors import SettingError
from isp.models import ModelCache
from isp.pipeline import LEARNED_STAGES, Pipeline
from isp.power import PHOTO_12MP, VIDEO_1080P, power_mw
from isp.raw import is_raw_filename
from isp.views import stage_strip


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
    """The `Pipeline` config of one planned variant."""
    config = {"demosaic": settings.demosaic, "sr_x2": None, "enhance": None}
    config.update(plan.learned)
    return config


def compare_capture(capture: Capture, settings: Settings, models: ModelCache | None = None,
                    progress: Progress | None = None, load_ms: float = 0.0,
                    strips: bool = True) -> Iterator[Comparison]:
    """Run every planned variant on `capture`, cheapest first; yields the growing Comparison after each one.

    strips: keep display thumbnails of every stage (`VariantRun.strip`); the full-resolution intermediates are
    dropped after each variant either way."""
    settings.check()
    source = capture.truth if capture.truth is not None else capture.raw.mosaic
    settings.check_size(*source.shape[:2], raw_file=capture.truth is None)
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
        with comparison.load_meter:
            result = Pipeline(pipeline_config(settings, plan), models).run(capture.raw, progress=stage_progress)
        note_other_load(comparison)
        mj, params = estimate_energy(result, models, settings.device, PHOTO_12MP)
        video_mj, _ = estimate_energy(result, models, settings.device, VIDEO_1080P)
        run = VariantRun(plan.label, dict(plan.learned), result, params, mj, power_mw(video_mj, 30.0))
        run.models_used = {task: models.describe(task, variant) for task, variant in plan.learned.items()}
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
        update_agreement(comparison)
        run.score_ms = (time.perf_counter() - start) * 1000.0
        yield comparison


def note_other_load(comparison: Comparison) -> None:
    """Keep one note, updated after each variant, while other processes' load (over all variants so far) and the
    pipeline's threads oversubscribe the CPU (`isp.cpu_load`)."""
    import torch

    comparison.notes[:] = [n for n in comparison.notes if not n.startswith(LOAD_NOTE_PREFIX)]
    warning = busy_warning(comparison.other_load, "the variants ran", torch.get_num_threads())
    if warning:
        comparison.notes.append(warning)


def compare_file(path: str | Path, settings: Settings, models: ModelCache | None = None,
                 progress: Progress | None = None, strips: bool = True) -> Iterator[Comparison]:
    """Load a photo or camera RAW file (raises an InputError subclass for a bad file) and compare variants.
    At full resolution the size limit is checked from the file's header, before the image is decoded."""
    settings.check()
    if settings.long_side is None:
        size = source_size(path)
        if size is not None:
            settings.check_size(*size, raw_file=is_raw_filename(path))
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
