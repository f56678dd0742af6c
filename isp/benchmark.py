"""The benchmark over several photos: eval-style tables per learned stage (quality, time, MACs, params,
estimated energy, R and G), each variant applied to that stage only. Reported by `isp.report`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from isp.compare import compare_all
from isp.compare_scores import relative_to_heavy
from isp.compare_types import Progress, Settings
from isp.cpu_load import LoadMeter, busy_warning
from isp.energy_estimate import model_params, stage_energy_mj
from isp.models import ModelCache
from isp.pipeline import LEARNED_STAGES
from isp.power import DEFAULT_PROFILE, PHOTO_12MP
from isp.raw import is_raw_filename
from isp.views import thumbnail, to_uint8

PREVIEWS_PER_TASK = 2          # thumbnails per task in the gallery and the HTML report: every task gets its own

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


def variant_role(models: ModelCache, task: str, variant: str) -> str:
    """The role a benchmark row stands for: classical, heavy, searched, or a zoo model's card role (peer, candidate
    — a search front member trained for comparison), with the model's name where the variant is a role."""
    if variant in ("heavy", "searched"):
        return models.describe(task, variant)
    try:
        roles = {c["name"]: c.get("role") for c in models.cards(task)}
    except Exception:  # noqa: BLE001 - unreadable zoo: the variant is all we know
        roles = {}
    return roles.get(variant) or variant


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
    load = LoadMeter()       # other processes' load over every variant of every photo (isp.cpu_load)
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
            load.add(final.load_meter)
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
            if sum(p["task"] == task for p in report["previews"]) < PREVIEWS_PER_TASK:
                report["previews"].append({"task": task, "image": path.name,
                                           "tiles": [(to_uint8(thumbnail(r.result.image, 256)), r.label)
                                                     for r in final.runs]})
            final = None
        means = {v: {"psnr": float(np.mean(a["psnr"])), "macs": float(np.mean(a["macs"]))}
                 for v, a in acc.items() if a["psnr"]}
        relative = relative_to_heavy(means)
        rows = []
        for variant, a in acc.items():
            if not a["psnr"]:
                continue
            r, g = relative[variant]
            rows.append({"variant": variant, "role": variant_role(models, task, variant), "images": len(a["psnr"]),
                         "PSNR (dB)": round(means[variant]["psnr"], 2), "SSIM": round(float(np.mean(a["ssim"])), 4),
                         "ΔE2000": round(float(np.mean(a["delta_e2000"])), 3),
                         "stage ms": round(float(np.mean(a["ms"])), 1),
                         "stage GMACs": round(means[variant]["macs"] / 1e9, 4), "params": a["params"],
                         "est. stage mJ / 12 MP photo": round(float(np.mean(a["mj"])), 5),
                         "R": None if r is None else round(r, 1), "G": None if g is None else round(g, 2)})
        report["tasks"][task] = rows
    warning = busy_warning(load.cores, "the benchmark ran", torch.get_num_threads())
    if warning:
        notes.append(warning)
    report["other_load_cores"] = load.reported
    if progress is not None:
        progress(1.0, "done")
    return report

