"""Scoring a comparison: what each variant is scored against, its quality numbers, and the tables, headline
and summary built from them (sRGB-encoded images throughout).

Photos are compared with their ground truth (the photo the simulated capture was made from; with the enhance
stage on, the photo passed through the enhance stage's reference operator: the fast local Laplacian filter of
Aubry et al. 2014 with the remapping of Paris, Hasinoff & Kautz 2011, `isp.stages.enhance`). Camera RAW files
have no ground truth, so every variant is compared with the reference variant's output instead (the heavy one
when present): `agreement`, not quality. The benchmark's R and G are computed as `pixelnas eval` does
(`relative_to_heavy`).
"""
from __future__ import annotations

import numpy as np

from isp import metrics
from isp.capture import Capture
from isp.compare_types import Comparison, Settings
from isp.errors import SettingError
from isp.stages.enhance import local_laplacian

STAGE_LABELS = {"black_level": "BLC", "denoise_raw": "denoise", "white_balance": "WB", "demosaic": "demosaic",
                "ccm": "CCM", "tone": "tone", "sr_x2": "SR ×2", "enhance": "enhance"}
ENERGY_PHOTO_COLUMN = "est. mJ/photo (12 MP)"
ENERGY_VIDEO_COLUMN = "est. mW @30 fps (1080p)"


def scoring_target(capture: Capture, settings: Settings) -> tuple[np.ndarray | None, str]:
    """(what photos are scored against, its description); (None, "") for a camera RAW file."""
    if capture.truth is None:
        return None, ""
    if settings.enhance:
        return local_laplacian(capture.truth), "the photo + reference enhancement (local Laplacian)"
    return capture.truth, "the original photo"


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


def update_agreement(comparison: Comparison) -> None:
    """RAW files: score every finished variant not scored yet against the reference variant's output."""
    if comparison.target is not None:
        return
    reference = comparison.run(comparison.reference_label)
    if reference is None:
        return
    for run in comparison.runs:
        if run is not reference and run.agreement is None:
            run.agreement = quality(run.result.image, crop_to(reference.result.image, run.result.image.shape))



def quality_columns(comparison: Comparison) -> tuple[str, str, str]:
    """Names of the PSNR, SSIM and ΔE2000 columns ('vs <reference>' when there is no ground truth)."""
    suffix = "" if comparison.target is not None else f" vs {comparison.reference_label}"
    return f"PSNR{suffix} (dB)", f"SSIM{suffix}", f"ΔE2000{suffix}"


def significant(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant figures: the energy estimates span 0.01 to 10 000 mJ, where a fixed
    number of decimals shows either noise digits (321.2901) or too few (0.0012)."""
    return float(f"{value:.{digits}g}") if value else 0.0


def metrics_rows(comparison: Comparison) -> list[dict]:
    """One row per finished variant: quality (or agreement), measured ms, MACs, params, estimated energy."""
    psnr_col, ssim_col, de_col = quality_columns(comparison)
    tasks = comparison.settings.active_tasks()
    rows = []
    for run in comparison.runs:
        quality = run.scores if run.scores is not None else run.agreement
        row = {"variant": run.label,
               "models": " · ".join(f"{STAGE_LABELS[t]}: {run.models_used.get(t, run.learned[t])}" for t in tasks)}
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
        row[ENERGY_PHOTO_COLUMN] = significant(run.energy_mj)
        row[ENERGY_VIDEO_COLUMN] = significant(run.power_mw)
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


def learned_totals(run, tasks) -> tuple[float, float]:
    """(MACs, ms) of a variant's learned stages alone — what `pixelnas eval`'s R and time ratio compare — without
    the fixed stages (BLC, WB, demosaic, colour, tone) every variant shares."""
    reports = [r for r in (run.result.report(t) for t in tasks) if r is not None]
    return float(sum(r.macs for r in reports)), float(sum(r.ms for r in reports))


def headline(comparison: Comparison) -> str:
    """'searched vs heavy: learned stages 1/125× MACs, 1/45× time; whole pipeline 1/118× MACs, 1/30× time,
    1/30× energy (estimated), ΔPSNR −0.2 dB' (Markdown)."""
    ref = comparison.run(comparison.reference_label)
    label = comparison.candidate_label
    cand = comparison.run(label) if label else None
    if cand is None or ref is None:
        done = ", ".join(r.label for r in comparison.runs)
        return f"Finished: {done or 'nothing yet'} — waiting for the other variant…" if not comparison.done else \
            f"Only one variant ({done}) to show."
    tasks = comparison.settings.active_tasks()
    c_macs, c_ms = learned_totals(cand, tasks)
    r_macs, r_ms = learned_totals(ref, tasks)
    parts = [f"**{cand.label} vs {ref.label}:** learned stages {_ratio(c_macs, r_macs)} MACs, {_ratio(c_ms, r_ms)} "
             f"time; whole pipeline {_ratio(cand.result.total_macs, ref.result.total_macs)} MACs",
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
            "settings": {"iso": None if comparison.capture.is_raw_file else s.iso,     # a RAW has its own noise
                         "zoom": s.zoom, "enhance": s.enhance, "demosaic": s.demosaic,
                         "long_side": s.long_side, "variants": list(s.variants), "device": s.device},
            "size": list(comparison.runs[0].result.image.shape[:2]) if comparison.runs else None,
            "load_ms": round(comparison.load_ms, 1),
            "other_load_cores": comparison.load_meter.reported,
            "score_ms": {r.label: round(r.score_ms, 1) for r in comparison.runs},
            "headline": headline(comparison).replace("**", ""), "notes": list(comparison.notes),
            "rows": metrics_rows(comparison), "stages": stage_rows(comparison)}


def relative_to_heavy(means: dict[str, dict[str, float]]) -> dict[str, tuple[float | None, float | None]]:
    """variant → (R, G) from unrounded means {"psnr", "macs"}: R = MACs(heavy)/MACs(variant),
    G = (PSNR − PSNR_classical)/(PSNR_heavy − PSNR_classical), as `pixelnas eval` (`metrics.cost_ratio_and_gain`)."""
    heavy, classical = means.get("heavy"), means.get("classical")
    return {v: metrics.cost_ratio_and_gain(m["macs"], m["psnr"], heavy and (heavy["macs"], heavy["psnr"]),
                                           classical["psnr"] if classical else None) for v, m in means.items()}
