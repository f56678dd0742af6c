"""`pixelnas eval`: the one source of every quality / cost figure the app and README show.

Per task and per image folder (and per ISO for denoise_raw): each model's params, MACs per input MP, measured
ms per input MP, PSNR and SSIM, and relative to the heavy original R = MACs(heavy)/MACs(model) and
G = (PSNR_model − PSNR_classical)/(PSNR_heavy − PSNR_classical). Deterministic for a given seed.

Protocols: sr_x2 — HR cropped to even size, LR by bicubic ↓2, PSNR/SSIM on Y (BT.601) with 2 px shaved;
denoise_raw — each photo unprocessed (default camera) with ISO noise, denoised, developed by the classical
rest of the ISP; PSNR/SSIM of that final sRGB image against the same ISP's development of the noise-free
capture (the sRGB protocol of the Darmstadt Noise Dataset, Plötz & Roth, CVPR 2017, also used by Brooks et
al., CVPR 2019: clean and denoised raw go through one ISP, so the score isolates the denoiser), plus
`psnr_photo`, the PSNR against the original photo (which also charges demosaicking and the simulation's
clipping: even a perfect denoiser scores only the noise-free development's own PSNR against the photo);
enhance — PSNR/SSIM on RGB against the local Laplacian reference operator applied to the photo.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from isp import metrics
from isp.cpu_load import LoadMeter, busy_warning, ratios_unreliable, usable_cores
from isp.errors import InputError, SettingError
from isp.models import ModelCache
from isp.pipeline import Pipeline, develop_photo
from isp.power import PHOTO_12MP, PROFILES, VIDEO_1080P, energy_mj, power_mw
from isp.simulate import crop_even, downscale_x2, quantise_8bit, unprocess
from isp.stages.denoise import RawDenoise
from isp.stages.enhance import Enhance, enhance_classical, local_laplacian
from isp.stages.resize import SuperResolution, classical_sr
from searched_models import targets, zoo
from searched_models.cost import spec_cost
from searched_models.data import load_folder
from searched_models.floors import check_floors, format_floors
from searched_models.infer import run_chw
from isp.layout import to_chw, to_hwc
from searched_models.tasks import get_task

TIMING_SIZE = 256          # network-input side used for the latency measurement
TIMING_RUNS, TIMING_WARMUP = 5, 2   # timed rounds (the median is kept) and warm-up runs per model
CLASSICAL_STAGE = {"denoise_raw": RawDenoise(), "sr_x2": SuperResolution(), "enhance": Enhance()}


def input_pixels_for_output(task: str, output_hw: tuple[int, int]) -> float:
    """Network-input pixels needed to produce an output of `output_hw` (packed pixels for raw, LR for ×2)."""
    h, w = output_hw
    return h * w / 4.0 if task in ("denoise_raw", "sr_x2") else float(h * w)


def seed_for(seed: int, index: int, iso: int) -> int:
    return int(np.random.SeedSequence([seed, index, iso]).generate_state(1)[0])


def model_rows(task: str, names: list[str], cache: ModelCache) -> list[dict]:
    """Static facts per model: role, params as it runs (rep blocks merged; `params_trained`: the weights file's,
    branches included), MACs per input pixel, values moved per input pixel."""
    rows = []
    for name in names:
        if name == "reference" and task != "enhance":
            raise SettingError(f"'reference' is a model of the enhance task only; {task} has classical and zoo models.")
        if name in ("classical", "reference"):
            ops = CLASSICAL_STAGE[task].ops_per_pixel["classical" if name == "classical" else "reference"]
            if task == "denoise_raw":
                ops *= 4.0       # ops_per_pixel is per mosaic pixel; report per packed (network-input) pixel
            channels = {"denoise_raw": 8, "sr_x2": 3 + 12, "enhance": 6}[task]
            rows.append({"name": name, "role": name, "params": 0, "macs_per_pixel": ops, "macs_per_image": 0.0,
                         "values_per_pixel": float(channels), "values_per_image": 0.0, "module": None})
            continue
        module, card = cache.get(task, name)
        cost = spec_cost(card["spec"])
        training = card.get("training", {})
        rows.append({"name": card["name"], "role": card.get("role", "peer"), "params": cost.deployed_params,
                     "params_trained": cost.params,
                     "training_status": training.get("status"), "steps_done": training.get("steps_done"),
                     "steps": training.get("steps"), "plateau": card.get("validation", {}).get("plateau"),
                     "macs_per_pixel": cost.macs_per_pixel, "macs_per_image": cost.macs_per_image,
                     "values_per_pixel": cost.activations_per_pixel, "values_per_image": float(cost.deployed_params),
                     "module": module, "requested": name})
    return rows


def timing_call(task: str, row: dict):
    """A no-argument function that runs one model (or classical operator) once on a TIMING_SIZE² network input."""
    size = TIMING_SIZE
    rng = np.random.default_rng(0)
    if row["module"] is not None:
        module = row["module"].eval()
        x = torch.from_numpy(rng.random((1, module.spec["in_channels"], size, size), dtype=np.float32))

        def run_network() -> None:
            with torch.inference_mode():
                module(x)
        return run_network
    image = rng.random((size, size, 3), dtype=np.float32)
    if task == "denoise_raw":
        from isp.stages.base import Frame

        raw, _ = unprocess(rng.random((2 * size, 2 * size, 3), dtype=np.float32), iso=800)
        frame = Frame(raw.normalised(), "raw", raw)
        return lambda: RawDenoise().run(frame, "classical")
    if task == "sr_x2":
        return lambda: classical_sr(image)
    return (lambda: enhance_classical(image)) if row["name"] == "classical" else (lambda: local_laplacian(image))


def measure_ms_per_mp(task: str, rows: list[dict], runs: int = TIMING_RUNS,
                      warmup: int = TIMING_WARMUP) -> list[float]:
    """Median latency of every row, in ms per input megapixel of a TIMING_SIZE² network input.

    The rows are timed in turn — one run of each, `runs` rounds, after `warmup` runs of each — so a change in the
    machine's load during the measurement lands on every model alike and the time ratios stay fair."""
    calls = [timing_call(task, row) for row in rows]
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in rows]
    for _ in range(runs):
        for index, call in enumerate(calls):
            start = time.perf_counter()
            call()
            times[index].append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(t) / (TIMING_SIZE * TIMING_SIZE / 1e6) for t in times]


def predict_scores(task: str, row: dict, photos: list[np.ndarray], iso: int | None, seed: int,
                   cache: ModelCache, references: list[np.ndarray] | None = None,
                   y_8bit: bool = False) -> dict[str, float]:
    """Mean PSNR and SSIM of one model over the photos of one folder (denoise_raw: also `psnr_photo`).

    references: for denoise_raw, each photo's noise-free capture developed by the same ISP (the simulated
    camera is the same at every ISO and seed, only the noise changes), one per photo."""
    psnrs, ssims, photo_psnrs = [], [], []
    for index, photo in enumerate(photos):
        if task == "sr_x2":
            hr = crop_even(photo, 2)
            lr = quantise_8bit(downscale_x2(hr))            # the benchmark LR images are 8-bit files
            out = classical_sr(lr) if row["module"] is None else to_hwc(run_chw(row["module"], to_chw(lr)))
            out = quantise_8bit(out)                        # scored as saved 8-bit images, as in the papers
            psnrs.append(metrics.psnr_y(out, hr, shave=2, y_8bit=y_8bit))
            ssims.append(metrics.ssim_y(out, hr, shave=2, y_8bit=y_8bit))
        elif task == "enhance":
            target = local_laplacian(photo)
            out = enhance_classical(photo) if row["module"] is None else \
                np.clip(to_hwc(run_chw(row["module"], to_chw(photo))), 0, 1)
            psnrs.append(metrics.psnr(out, target))
            ssims.append(metrics.ssim(out, target))
        else:
            raw, truth = unprocess(photo, iso=iso, seed=seed_for(seed, index, iso))
            variant = "classical" if row["module"] is None else row["requested"]
            out = Pipeline({"denoise_raw": variant}, cache).run(raw, keep_intermediates=False).image
            psnrs.append(metrics.psnr(out, references[index]))
            ssims.append(metrics.ssim(out, references[index]))
            photo_psnrs.append(metrics.psnr(out, truth))
    scores = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}
    if photo_psnrs:
        scores["psnr_photo"] = float(np.mean(photo_psnrs))
    return scores


def relative(rows: list[dict], key: str = "psnr") -> None:
    """Fill R and G in place (needs a classical and a heavy row)."""
    classical = next((r for r in rows if r["role"] == "classical"), None)
    heavy = next((r for r in rows if r["role"] == "heavy"), None)
    for r in rows:
        r["R"], r["G"] = metrics.cost_ratio_and_gain(r["macs_per_input_mp"], r.get(key),
                                                     heavy and (heavy["macs_per_input_mp"], heavy[key]),
                                                     classical[key] if classical else None)


def evaluate(task: str, folders: list[str], models: list[str] | None = None, isos: list[int] | None = None,
             seed: int = 0, limit: int | None = None, zoo_dir: Path | None = None, progress=print,
             y_8bit: bool = False) -> dict:
    """Evaluate `models` on every folder (and ISO); returns the JSON-ready report. y_8bit (sr_x2): score Y rounded
    to 8-bit codes (`isp.metrics.luma_for_scoring`)."""
    get_task(task)
    cache = ModelCache(zoo_dir)
    if models is None:
        models = ["classical"] + [c["name"] for c in zoo.list_models(task, **({"zoo_dir": zoo_dir} if zoo_dir else {}))]
    rows = model_rows(task, models, cache)      # an unknown model fails before any image is read
    photos_by_folder = {}                       # every image is read (and checked) before the models are timed
    for folder in folders:
        photos_by_folder[folder] = load_folder(folder, limit=limit, min_side=16)
        if not photos_by_folder[folder]:
            raise InputError(f"No image in '{folder}' is at least 16 px on each side.")
    if task == "enhance" and not any(r["name"] == "reference" for r in rows):
        rows += model_rows(task, ["reference"], cache)
    progress(f"timing {', '.join(row['name'] for row in rows)} (in turn) …")
    meter = LoadMeter()
    with meter:
        for row, ms in zip(rows, measure_ms_per_mp(task, rows)):
            row["ms_per_mp"] = ms
    for row in rows:
        row["macs_per_input_mp"] = row["macs_per_pixel"] * 1e6 + row["macs_per_image"]
        row["energy"] = {}
        for name in PROFILES:
            photo_px = input_pixels_for_output(task, PHOTO_12MP)
            video_px = input_pixels_for_output(task, VIDEO_1080P)
            row["energy"][name] = {
                "mj_per_12mp_photo": energy_mj(row["macs_per_pixel"] * photo_px + row["macs_per_image"],
                                               row["values_per_pixel"] * photo_px + row["values_per_image"], name),
                "mw_at_30fps_1080p": power_mw(energy_mj(row["macs_per_pixel"] * video_px + row["macs_per_image"],
                                                        row["values_per_pixel"] * video_px + row["values_per_image"], name)),
            }
    threads = torch.get_num_threads()
    iso_list = (isos or [800, 3200]) if task == "denoise_raw" else [None]
    groups = []
    for folder in folders:
        photos = photos_by_folder[folder]
        references = [develop_photo(p, iso=None, models=cache)[0].image for p in photos] \
            if task == "denoise_raw" else None
        for iso in iso_list:
            group_rows = []
            for row in rows:
                if row["name"] == "reference":
                    continue
                progress(f"{Path(folder).name}{'' if iso is None else f' ISO {iso}'}: {row['name']} …")
                scores = predict_scores(task, row, photos, iso, seed, cache, references, y_8bit)
                group_rows.append({"name": row["name"], "role": row["role"], **scores,
                                   "macs_per_input_mp": row["macs_per_input_mp"]})
            relative(group_rows)
            groups.append({"folder": str(folder), "set": Path(folder).name, "iso": iso, "images": len(photos),
                           "rows": group_rows})
    summary = []
    for row in rows:
        entry = {k: row.get(k) for k in ("name", "role", "params", "params_trained", "macs_per_input_mp", "ms_per_mp",
                                         "energy", "training_status", "steps_done", "steps", "plateau")}
        scores = [r for g in groups for r in g["rows"] if r["name"] == row["name"]]
        entry["psnr"] = float(np.mean([s["psnr"] for s in scores])) if scores else None
        entry["ssim"] = float(np.mean([s["ssim"] for s in scores])) if scores else None
        if scores and "psnr_photo" in scores[0]:
            entry["psnr_photo"] = float(np.mean([s["psnr_photo"] for s in scores]))
        summary.append(entry)
    relative([s for s in summary if s["psnr"] is not None])
    heavy = next((s for s in summary if s["role"] == "heavy"), None)
    for s in summary:
        ratio = heavy["macs_per_input_mp"] / s["macs_per_input_mp"] if heavy and s["macs_per_input_mp"] else None
        s.setdefault("R", ratio)
        s.setdefault("G", None)
        s["ms_ratio_heavy"] = (heavy["ms_per_mp"] / s["ms_per_mp"]) if heavy and s["ms_per_mp"] else None
    report = {"task": task, "folders": [str(f) for f in folders], "isos": iso_list if task == "denoise_raw" else None,
              "seed": seed, "limit": limit, **({"y_8bit": True} if y_8bit else {}),
              "timing_input": TIMING_SIZE, "timing_runs": TIMING_RUNS, "timing_warmup": TIMING_WARMUP,
              "threads": threads, "cpu_cores": usable_cores(), "timing_other_load_cores": meter.reported,
              "timing_ratios_unreliable": ratios_unreliable(meter.cores, threads),
              "energy_note": "estimated from published per-operation energies (isp/power.py)",
              "groups": groups, "summary": summary, "zoo_peers": zoo_peers(task, zoo_dir)}
    report["floors"] = check_floors(report)
    return report


def zoo_peers(task: str, zoo_dir: Path | None = None) -> list[dict]:
    """Every peer of the task's zoo with its MACs per input MP, so the peer target can tell a peer that was not
    evaluated from one that does not exist."""
    peers = []
    for card in zoo.list_models(task, **({"zoo_dir": zoo_dir} if zoo_dir else {})):
        if card.get("role") == "peer":
            peers.append({"name": card["name"], "macs_per_input_mp": spec_cost(card["spec"]).macs_per_mp()})
    return peers


def format_report(report: dict) -> str:
    """Printable tables: one per folder/ISO, then the summary with cost columns."""
    lines = []
    for g in report["groups"]:
        title = f"{report['task']} — {g['set']} ({g['images']} images)" + (f", ISO {g['iso']}" if g["iso"] else "")
        photo = "psnr_photo" in (g["rows"] or [{}])[0]
        lines += ["", title, f"{'model':<18}{'role':<10}{'PSNR':>8}{'SSIM':>8}{'R':>9}{'G':>7}"
                  + (f"{'vs photo':>10}" if photo else "")]
        for r in g["rows"]:
            lines.append(f"{r['name']:<18}{r['role']:<10}{r['psnr']:>8.2f}{r['ssim']:>8.4f}"
                         f"{fmt_optional(r['R'], '{:>9.1f}', 9)}{fmt_optional(r['G'], '{:>7.2f}', 7)}"
                         + (f"{r['psnr_photo']:>10.2f}" if photo else ""))
    if report["task"] == "denoise_raw":
        lines.append("PSNR/SSIM against the noise-free capture developed by the same ISP (DND protocol); "
                     "'vs photo' against the original photo")
    lines += ["", f"{report['task']} — summary (mean over sets; energy estimated, npu_int8, 12 MP photo)",
              f"{'model':<18}{'role':<10}{'params':>9}{'GMAC/MP':>9}{'ms/MP':>9}{'×ms':>7}{'PSNR':>8}{'R':>9}{'G':>7}"
              f"{'mJ':>9}"]
    for s in report["summary"]:
        lines.append(f"{s['name']:<18}{s['role']:<10}{s['params']:>9d}{s['macs_per_input_mp'] / 1e9:>9.3f}"
                     f"{s['ms_per_mp']:>9.1f}{fmt_optional(s.get('ms_ratio_heavy'), '{:>7.1f}', 7)}"
                     f"{fmt_optional(s['psnr'], '{:>8.2f}', 8)}{fmt_optional(s['R'], '{:>9.1f}', 9)}"
                     f"{fmt_optional(s['G'], '{:>7.2f}', 7)}{s['energy']['npu_int8']['mj_per_12mp_photo']:>9.2f}")
    lines.append("params as the network runs (rep blocks merged); ×ms = measured CPU latency (wall time) of the "
                 "heavy / this model"
                 + ("; MACs per input MP are per packed (2×2 sensor) MP for denoise_raw, per LR MP for sr_x2"
                    if report["task"] != "enhance" else ""))
    warning = busy_warning(report.get("timing_other_load_cores"), "the models were timed", report.get("threads", 1))
    if warning:
        lines.append("warning: " + warning)
    lines += format_floors(report.get("floors", []))
    lines += targets.format_check(targets.check(report))
    for s in report["summary"]:
        if s.get("training_status") == "training":
            lines.append(f"note: {s['name']} is still training ({s['steps_done']}/{s['steps']} steps)")
    return "\n".join(lines)


def fmt_optional(value, pattern: str, width: int) -> str:
    """`pattern.format(value)`, or a dash right-aligned in `width` when the value is missing."""
    return " " * (width - 1) + "–" if value is None else pattern.format(value)


def expand_folders(values: list[str]) -> list[str]:
    folders = [f for v in values for f in v.split(",") if f]
    if not folders:
        raise SettingError("Give at least one image folder with --images.")
    return folders              # `evaluate` reads (and checks) every folder before it times a model
