"""PixelNAS demo app (Gradio 6, native components only). Thin: widgets → isp.compare (+ compare_scores, views,
benchmark) / isp.report / searched_models.search_report → outputs.

Tabs: Camera (develop one photo or RAW with several variants of the learned stages, side by side), Search (the
logged NAS trials' Pareto front and the searched model's blocks), Benchmark (eval-style tables over a set of
photos + a downloadable HTML/CSV report). One public API endpoint, `/process`.

    python app.py [--host 127.0.0.1] [--port 7860]
    python app.py --bench FILE [--bench-variants searched,heavy] [--bench-mp 1]   (pixelnas bench-app's timing)
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from isp import benchmark, compare, compare_scores, compare_types, report, views
from isp.cli_types import non_negative_float
from isp.errors import InputError
from isp.models import ModelCache
from isp.pipeline import LEARNED_STAGES
from isp.power import DEFAULT_PROFILE, PROFILES
from isp.raw import is_raw_filename
from isp.stages.demosaic import DEMOSAICERS
from searched_models import search_report, zoo

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
ISO_CHOICES = [100, 200, 400, 800, 1600, 3200, 6400]
SIZE_CHOICES = ["256", "512", "1024", "full"]      # "full": up to compare_types.FULL_RES_MAX_PIXELS
DEFAULT_SIZE = "1024"
DEFAULT_VARIANTS = ["heavy", "searched"]
MAX_FILE_SIZE = "200mb"
CONCURRENCY, QUEUE_SIZE = 2, 64
PIPELINE_JOBS = 1     # one pipeline at a time (camera, API, benchmark): measured times are not shared with another
EXAMPLES = sorted(p for p in ASSETS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".dng")) \
    if ASSETS.is_dir() else []
PHOTO_EXAMPLES = [p for p in EXAMPLES if not is_raw_filename(p)]
INTRO = """# PixelNAS — a phone camera pipeline, heavy vs searched
Upload a **photo** (it becomes a simulated sensor capture at the chosen ISO, and stays as ground truth) or a
**camera RAW** (DNG, CR2, NEF, ARW, RAF, …), or pick a shipped example. Every number comes from the real pipeline
on this machine; energy and power are **estimated** from published per-operation energies."""


OUT_DIR = Path(tempfile.gettempdir()) / "pixelnas_app"
REPORT_DIR = OUT_DIR / "reports"
OUT_MAX_AGE_S = 3600
STATE_TTL_S = 900          # per-session state (crop sources, trials) is dropped after 15 min


def _png(image: np.ndarray) -> str:
    """Write a uint8 image to a fresh PNG file and return its path.

    Images are handed to Gradio as unique files rather than arrays: Gradio caches arrays under a content hash
    and rewrites that file in place, so two users developing the same example at once could download a
    half-written picture; files are copied into its cache atomically.
    """
    return views.write_output(image, OUT_DIR)


def _prune_outputs(max_age_s: float = OUT_MAX_AGE_S) -> None:
    """Delete this app's output files and benchmark report folders older than `max_age_s` (Gradio keeps its own
    cached copies)."""
    if not OUT_DIR.is_dir():
        return
    cutoff = time.time() - max_age_s
    for path in OUT_DIR.glob("*.png"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass
    for folder in REPORT_DIR.glob("pixelnas_report_*") if REPORT_DIR.is_dir() else ():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _size(size: str | int | None) -> int | None:
    if size in (None, "", "full"):
        return None
    try:
        return int(size)
    except (TypeError, ValueError):
        raise gr.Error(f"Processing size must be one of {', '.join(SIZE_CHOICES)}, not {size!r}.") from None


def _settings(iso, zoom, enhance, demosaic, size, variants, device) -> compare_types.Settings:
    try:
        iso = int(iso)
    except (TypeError, ValueError):
        raise gr.Error(f"The ISO must be a number (50–12800), not {iso!r}.") from None
    return compare_types.Settings(iso=iso, zoom=bool(zoom), enhance=bool(enhance), demosaic=demosaic,
                            long_side=_size(size), variants=tuple(variants or ()), device=device)


def _file_path(upload) -> str:
    if isinstance(upload, (list, tuple)):       # an API client may send a one-file list
        if len(upload) > 1:
            raise gr.Error("Send one file per request (the Benchmark tab takes several).")
        upload = upload[0] if upload else None
    path = upload if isinstance(upload, str) else getattr(upload, "name", None) or (
        upload.get("path") if isinstance(upload, dict) else None)
    if not path:
        raise gr.Error("Upload a photo or a camera RAW file first, or click one of the examples "
                       "(if an upload is in progress, wait until its file shows a size).")
    return path


def _friendly(error: Exception) -> gr.Error:
    if isinstance(error, InputError):
        return gr.Error(str(error))
    if isinstance(error, MemoryError):
        return gr.Error("The image is too large to process on this server; choose a smaller processing size.")
    return gr.Error(f"Processing failed ({type(error).__name__}: {error}). The server is still running.")


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else pd.DataFrame({"": []})


def _notes_md(comparison: compare_types.Comparison) -> str:
    lines = []
    if comparison.target_label:
        lines.append(f"Scores are against **{comparison.target_label}**.")
    lines += [f"- {n}" for n in comparison.notes]
    if not comparison.done:
        pending = [p.label for p in comparison.plans[len(comparison.runs):]]
        lines.append(f"**Still running:** {', '.join(pending)} — the results above are already final"
                     + (" (the agreement columns fill in when the reference variant is done)."
                        if comparison.target is None else "."))
    return "\n".join(lines)


def _slider(comparison: compare_types.Comparison):
    """(A, B) for the ImageSlider: reference ↔ candidate when both exist, else ground truth ↔ first result."""
    ref, cand = comparison.run(comparison.reference_label), comparison.run(comparison.candidate_label or "")
    if ref is not None and cand is not None:
        return (_png(views.to_uint8(ref.result.image)), _png(views.to_uint8(cand.result.image))), \
            f"{ref.label} ↔ {cand.label}"
    first = comparison.runs[-1]
    if comparison.target is not None:
        truth = compare_scores.crop_to(comparison.target, first.result.image.shape)
        return (_png(views.to_uint8(truth)), _png(views.to_uint8(first.result.image))), \
            f"ground truth ↔ {first.label}"
    path = _png(views.to_uint8(first.result.image))
    return (path, path), f"{first.label}"


def _files(items: list[tuple[np.ndarray, str]]) -> list[tuple[str, str]]:
    return [(_png(image), label) for image, label in items]


def camera_outputs(comparison: compare_types.Comparison, cx: float, cy: float, crop: int):
    sources = views.crop_sources(comparison)
    pair, label = _slider(comparison)
    strip = [item for run in comparison.runs for item in views.stage_strip(run)]
    picker = _png(views.mark_crop(sources[0][0], cx / 100, cy / 100, crop))
    return (gr.ImageSlider(value=pair, label=f"A ↔ B: {label}", format="png"), picker,
            _files(views.zoom_crops(sources, cx / 100, cy / 100, crop)),
            gr.Gallery(value=_files(strip), columns=len(strip) // max(len(comparison.runs), 1) or 5),   # a row each
            _table(compare_scores.metrics_rows(comparison)), _table(compare_scores.stage_rows(comparison)),
            compare_scores.headline(comparison), _notes_md(comparison)
            + ("\n- Zoomed crops come from a 1024 px preview of the result (too large to keep at full size per "
               "session)." if views.crops_are_previews(comparison, sources) else ""), sources)


def make_camera_handler(models: ModelCache):
    def run_camera(upload, iso, zoom, enhance, demosaic, size, variants, device, cx, cy, crop,
                   progress=gr.Progress()):
        path = _file_path(upload)
        _prune_outputs()
        try:
            settings = _settings(iso, zoom, enhance, demosaic, size, variants, device)
            for comparison in compare.compare_file(path, settings, models, progress=progress):
                yield camera_outputs(comparison, cx, cy, crop)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes a message; the server keeps serving
            raise _friendly(error) from None
    return run_camera


def make_api_handler(models: ModelCache):
    def process(upload, iso=800, zoom=False, enhance=False, demosaic="malvar", size=DEFAULT_SIZE,
                variants=DEFAULT_VARIANTS, device=DEFAULT_PROFILE, progress=gr.Progress()):
        """Develop one photo or RAW file with every variant; returns the final images and the metrics as JSON."""
        path = _file_path(upload)
        start = time.perf_counter()
        try:
            settings = _settings(iso, zoom, enhance, demosaic, size, variants or DEFAULT_VARIANTS, device)
            comparison = None
            for comparison in compare.compare_file(path, settings, models, progress=progress, strips=False):
                pass
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001
            raise _friendly(error) from None
        data = compare_scores.summary(comparison)
        data["server_ms"] = round((time.perf_counter() - start) * 1000.0, 1)
        _prune_outputs()
        images = _files([(views.to_uint8(run.result.image), run.label) for run in comparison.runs])
        return images, data
    return process


def update_crops(sources, cx, cy, crop):
    """Crop slider moved → new picker and crops, from the images kept in the session state (`views.crop_sources`)."""
    if not sources:     # nothing developed yet, or the session's thumbnails expired (STATE_TTL_S): keep the view
        return gr.skip(), gr.skip()
    return (_png(views.mark_crop(sources[0][0], cx / 100, cy / 100, crop)),
            _files(views.zoom_crops(sources, cx / 100, cy / 100, crop)))


def pick_crop(sources, crop, evt: gr.SelectData):
    """Click on the picture → centre the crop there (the picture is a thumbnail of the first result)."""
    if not sources or evt is None or evt.index is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    image = sources[0][0]
    thumb = views.mark_crop(image, 0.5, 0.5, crop)
    cx = 100.0 * float(evt.index[0]) / thumb.shape[1]
    cy = 100.0 * float(evt.index[1]) / thumb.shape[0]
    picker, crops = update_crops(sources, cx, cy, crop)
    return round(cx, 1), round(cy, 1), picker, crops


# ------------------------------------------------------------------------------------------------ search tab

def zoo_cards(task: str, zoo_dir=None) -> list[dict]:
    try:
        return zoo.list_models(task, **({"zoo_dir": zoo_dir} if zoo_dir else {}))
    except Exception:  # noqa: BLE001 - an unreadable zoo shows as empty
        return []


def trials_path(task: str, zoo_dir=None) -> Path:
    return Path(zoo_dir or zoo.ZOO_DIR) / task / "search_trials.jsonl"


def search_view(task: str, study: str | None = None, zoo_dir=None):
    """The Search tab for one study of a task (default: the newest): studies differ in their proxy training, so
    their PSNRs are never drawn on one axis or merged into one front."""
    every, others = search_report.load_trials(trials_path(task, zoo_dir))
    studies = search_report.studies_newest_first(every)
    study = study if study in studies else (studies[0] if studies else None)
    trials = [t for t in every if str(t.get("study")) == study]
    cards = zoo_cards(task, zoo_dir)
    refs = search_report.references(task, zoo_dir)
    # zoo models sit on the trials' PSNR scale only when scored on the same validation crops (the heavy, by the
    # search, and a model registered from one of these trials); the others are marked by their MACs alone; peers
    # already drawn as trials and candidates (trials themselves) are not repeated (`search_report.zoo_mark`)
    marks = [search_report.zoo_mark(c, refs, trials)
             for c in cards if c.get("macs_per_input_mp") and c.get("role") != "candidate"
             and not (c.get("role") == "peer" and any(t.get("peer") == c["name"] for t in trials))]
    figure = search_report.pareto_figure(trials, marks, f"{task}: proxy quality vs cost of every search trial", task,
                                         classical=(refs or {}).get("classical"))
    zoo_rows = []
    for c in cards:
        training = c.get("training") or {}
        best = (c.get("validation") or {}).get("best_psnr")
        zoo_rows.append({"name": c["name"], "role": c.get("role"),
                         "params": zoo.deployed_params(c) or c.get("params"),
                         f"GMACs / {search_report.mp_unit(task)}": round((c.get("macs_per_input_mp") or 0) / 1e9, 3),
                         "val PSNR (dB)": None if best is None else round(best, 2),
                         "training": f"{training.get('steps_done', '?')}/{training.get('steps', '?')} steps, "
                                     f"{training.get('status', '')}"})
    searched = next((c for c in cards if c.get("role") == "searched"), None)
    shown = searched or next((c for c in cards if c.get("role") == "heavy"), None)
    if not trials:
        log = trials_path(task, zoo_dir)
        shown_log = log.relative_to(ROOT) if log.is_relative_to(ROOT) else log
        status = f"No completed search trials logged for **{task}** yet (`{shown_log}`" + \
            (f" holds {others} unfinished or failed trial(s))." if others else " is missing or empty).")
    else:
        front = search_report.front_keys(trials)
        steps = {t.get("proxy_steps") for t in trials} - {None}
        status = (f"**{len(trials)}** completed trials for **{task}** in study **{study}**"
                  + (f" (proxy: {', '.join(str(s) for s in sorted(steps))} training steps per trial)" if steps else "")
                  + f", **{len(front)}** on the Pareto front (within the MAC budget)"
                  + (f"; {others} failed, diverged or unfinished trial(s) of the task's log not shown." if others
                     else ".")
                  + (f" Other studies of this task (choose above; their proxies differ, so they are not drawn "
                     f"together): {', '.join(s for s in studies if s != study)}." if len(studies) > 1 else ""))
    if task == "denoise_raw":
        status += " MACs per MP are per *packed* megapixel (one packed pixel = 4 sensor pixels)."
    if searched is None:
        status += " No searched model is registered for this task yet" + \
            (f" — the block table shows the heavy original **{shown['name']}**." if shown else ".")
    blocks = search_report.blocks_table(shown["spec"]) if shown else []
    title = (f"Blocks of {shown.get('role')} model **{shown['name']}** ({zoo.deployed_params(shown) or '?'} params)"
             if shown else "No model to show.")
    return figure, status, _table(search_report.trial_rows(trials, task)), _table(zoo_rows), title, \
        _table(blocks), trials, gr.update(choices=studies, value=study)


def select_trial(trials, table, evt: gr.SelectData):
    """Row clicked in the trials table → that trial's spec (trials are keyed by (study, number))."""
    if not trials or evt is None or evt.index is None:
        return gr.skip()
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    values = getattr(evt, "row_value", None)       # the clicked row itself: right even after sorting in the UI
    try:
        if values is not None and len(values) == len(table.columns):
            clicked = dict(zip(table.columns, values))
            study, number = clicked["study"], clicked["trial"]
        else:
            study, number = table.iloc[row]["study"], table.iloc[row]["trial"]
    except Exception:  # noqa: BLE001
        return gr.skip()
    trial = search_report.find_trial(trials, study, number)
    return trial.get("spec") if trial else gr.skip()


# ------------------------------------------------------------------------------------------------ benchmark tab

def make_bench_handler(models: ModelCache):
    def run_bench(chosen, uploads, size, device, progress=gr.Progress()):
        _prune_outputs()
        paths = [str(ASSETS / name) for name in (chosen or [])] + [_file_path(u) for u in (uploads or [])]
        if not paths:
            raise gr.Error("Choose some shipped examples or upload photos to benchmark.")
        try:
            bench = benchmark.benchmark(paths, models, long_side=int(size), device=device, progress=progress)
            REPORT_DIR.mkdir(parents=True, exist_ok=True)
            out_dir = Path(tempfile.mkdtemp(prefix="pixelnas_report_", dir=REPORT_DIR))   # pruned with the outputs
            html_path, csv_path = report.write_report(bench, out_dir)
            previews = [(_png(img), f"{p['task']} · {p['image']} · {label}")
                        for p in bench["previews"] for img, label in p["tiles"]]
        except Exception as error:  # noqa: BLE001
            raise _friendly(error) from None
        tables = [_table(bench["tasks"].get(task, [])) for task in LEARNED_STAGES]
        notes = f"**Report ready:** {len(bench['images'])} photo(s) at long side {bench['long_side']} px.\n" + \
            "\n".join(f"- {n}" for n in bench["notes"])
        return (*tables, previews, [str(html_path), str(csv_path)], notes)
    return run_bench


# ------------------------------------------------------------------------------------------------ layout

def build_app(models: ModelCache | None = None, zoo_dir=None) -> gr.Blocks:
    models = models or ModelCache(zoo_dir)
    variant_choices = ["heavy", "searched", "classical"] + sorted(
        {c["name"] for t in LEARNED_STAGES for c in zoo_cards(t, zoo_dir) if c.get("role") in ("peer", "candidate")})
    with gr.Blocks(title="PixelNAS", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Camera"):
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    upload = gr.File(label="Photo (PNG/JPEG/TIFF) or camera RAW (DNG, CR2, NEF, ARW, RAF…)",
                                     type="filepath", height=120)
                    gr.Examples([[str(p)] for p in EXAMPLES], inputs=[upload], label="Shipped examples",
                                example_labels=[p.stem.split("_")[0] + (" (RAW)" if is_raw_filename(p) else "")
                                                for p in EXAMPLES], api_visibility="private")
                    variants = gr.CheckboxGroup(variant_choices, value=DEFAULT_VARIANTS, label="Variants to compare",
                                                info="Applied to every learned stage that runs: denoise, SR ×2 "
                                                     "(zoom), enhance. Missing models fall back to classical.")
                    with gr.Row():
                        iso = gr.Dropdown(ISO_CHOICES, value=800, label="ISO (simulated noise)")
                        demosaic = gr.Dropdown(list(DEMOSAICERS), value="malvar", label="Demosaic")
                    with gr.Row():
                        zoom = gr.Checkbox(label="Zoom ×2 (super-resolution)")
                        enhance = gr.Checkbox(label="Enhancement")
                    size = gr.Radio(SIZE_CHOICES, value=DEFAULT_SIZE, label="Processing size (output long side, px)",
                                    info=f"full: inputs up to {compare_types.FULL_RES_MAX_PIXELS // 1_000_000} MP; "
                                         "a RAW is binned 2×2 to fit")
                    device = gr.Dropdown([(p.label, k) for k, p in PROFILES.items()], value=DEFAULT_PROFILE,
                                         label="Device profile for estimated energy")
                    run = gr.Button("Develop & compare", variant="primary", size="lg")
                with gr.Column(scale=2):
                    headline = gr.Markdown("Results appear here — the cheapest variant first.")
                    slider = gr.ImageSlider(label="A ↔ B", type="numpy", format="png", max_height=600,
                                            slider_position=50)
            metrics = gr.Dataframe(label="Per variant, whole pipeline: ms measured and GMACs counted at the processed "
                                         "size; energy and power estimated for a 12 MP photo and a 1080p video at "
                                         "30 fps (`pixelnas eval` gives them for the network alone); SSIM: 7×7 "
                                         "window (scikit-image's default)", wrap=True, interactive=False)
            notes = gr.Markdown()
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    picker = gr.Image(label="Click to choose the zoomed region", type="numpy", format="png",
                                      interactive=False, height=300)
                    cx = gr.Slider(0, 100, value=50, step=0.5, label="crop centre x (%)")
                    cy = gr.Slider(0, 100, value=50, step=0.5, label="crop centre y (%)")
                    crop = gr.Slider(32, 256, value=96, step=8,
                                     label="crop size (px of the result; of its 1024 px preview when it is too large "
                                           "to keep)")
                with gr.Column(scale=2):
                    crops = gr.Gallery(format="png", label="Zoomed crop: every variant and the ground truth",
                                       columns=4, height=330, object_fit="contain")
            strip = gr.Gallery(format="png", columns=5, height=480, object_fit="contain",
                               label="Stage by stage: mosaic (false colour) → denoise → demosaic → SR → final")
            stages = gr.Dataframe(label="Per stage: variant · measured ms · MACs", wrap=True, interactive=False)
            sources = gr.State([], time_to_live=STATE_TTL_S)      # ≤ FULL_CROP_SOURCE_BYTES of images
            inputs = [upload, iso, zoom, enhance, demosaic, size, variants, device]
            run.click(make_camera_handler(models), inputs + [cx, cy, crop],
                      [slider, picker, crops, strip, metrics, stages, headline, notes, sources],
                      api_visibility="private", concurrency_id="pipeline", concurrency_limit=PIPELINE_JOBS,
                      show_progress_on=[headline])
            for control in (cx, cy, crop):
                control.release(update_crops, [sources, cx, cy, crop], [picker, crops], api_visibility="private",
                                concurrency_id="crops", concurrency_limit=2)
            picker.select(pick_crop, [sources, crop], [cx, cy, picker, crops], api_visibility="private")
            # The API: same inputs (so the same defaults), final images + JSON metrics.
            api_images = gr.Gallery(visible=False, format="png", label="images")
            api_json = gr.JSON(visible=False, label="metrics")
            api_button = gr.Button(visible=False)
            api_button.click(make_api_handler(models), inputs, [api_images, api_json], api_name="process",
                             concurrency_id="pipeline",
                             api_description="Develop a photo or camera RAW with each variant; returns the final "
                                             "images and the metrics table as JSON.")
        with gr.Tab("Search"):
            with gr.Row():
                task = gr.Dropdown(list(LEARNED_STAGES), value="sr_x2", label="Task", scale=1)
                study = gr.Dropdown([], label="Study (newest first)", scale=1)
                refresh = gr.Button("Reload logs", scale=0)
            search_status = gr.Markdown()
            plot = gr.Plot(label="Pareto front (quality vs MACs, log scale)")
            with gr.Row():
                with gr.Column(scale=3):
                    trials_table = gr.Dataframe(label="Search trials (★ = Pareto front): click a row for its spec",
                                                interactive=False, max_height=320)
                with gr.Column(scale=2):
                    spec_view = gr.JSON(label="Selected trial's spec")
            zoo_table = gr.Dataframe(label="Registered models (zoo)", interactive=False)
            blocks_title = gr.Markdown()
            blocks_table = gr.Dataframe(label="Blocks", interactive=False)
            trials_state = gr.State([], time_to_live=STATE_TTL_S)
            outputs = [plot, search_status, trials_table, zoo_table, blocks_title, blocks_table, trials_state, study]
            newest = lambda t: search_view(t, None, zoo_dir)  # noqa: E731
            chosen = lambda t, s: search_view(t, s, zoo_dir)  # noqa: E731
            task.change(newest, [task], outputs, api_visibility="private")
            study.input(chosen, [task, study], outputs, api_visibility="private")
            refresh.click(chosen, [task, study], outputs, api_visibility="private")
            demo.load(newest, [task], outputs, api_visibility="private")
            trials_table.select(select_trial, [trials_state, trials_table], [spec_view], api_visibility="private")
        with gr.Tab("Benchmark"):
            gr.Markdown("Runs the whole pipeline on each photo once per task, changing only that task's stage "
                        "(classical, heavy, searched, peers and candidates — the role column says which), and "
                        "scores the result as the Camera tab does: "
                        "against the photo (with the reference enhancement applied when enhancing). The "
                        "README's results come from `pixelnas eval`, whose per-task protocols differ. RAW "
                        "files have no ground truth and are skipped.")
            with gr.Row():
                chosen = gr.CheckboxGroup([p.name for p in PHOTO_EXAMPLES], value=[p.name for p in PHOTO_EXAMPLES],
                                          label="Shipped example set", scale=2)
                bench_uploads = gr.File(label="…or upload several photos", file_count="multiple", type="filepath",
                                        scale=1, height=120)
            with gr.Row():
                bench_size = gr.Slider(128, 512, value=256, step=64, label="Processing size (long side, px)")
                bench_device = gr.Dropdown([(p.label, k) for k, p in PROFILES.items()], value=DEFAULT_PROFILE,
                                           label="Device profile")
                bench_run = gr.Button("Run benchmark", variant="primary")
            tables = [gr.Dataframe(label=report.TASK_TITLES[t], interactive=False) for t in LEARNED_STAGES]
            bench_gallery = gr.Gallery(label="Previews (one tile per variant)", columns=6, height=260)
            bench_files = gr.File(label="Report (HTML with images and tables, CSV)", file_count="multiple")
            bench_notes = gr.Markdown()
            bench_run.click(make_bench_handler(models), [chosen, bench_uploads, bench_size, bench_device],
                            [*tables, bench_gallery, bench_files, bench_notes], api_visibility="private",
                            concurrency_id="pipeline")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, **kwargs):
    """Launch with the safety settings: local bind, upload cap, only assets/ served, never a public share link."""
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, share=False,
                       allowed_paths=[str(ASSETS)], theme=THEME, footer_links=["api"], **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PixelNAS demo app")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument("--bench", metavar="FILE", help="print the server time of /process for FILE and exit "
                                                          "(pixelnas bench-app FILE with its default repeats and ISO)")
    parser.add_argument("--bench-variants", default="searched",
                        help="comma-separated variants for --bench (default searched, as bench-app)")
    parser.add_argument("--bench-mp", type=non_negative_float, default=1.0,
                        help="resize the --bench photo to this many MP (default 1; 0 = as is)")
    args = parser.parse_args(argv)
    if args.bench:
        from isp import request_timing

        try:
            variants = tuple(v.strip() for v in args.bench_variants.split(",") if v.strip())
            result = request_timing.bench_app(args.bench, variants=variants, megapixels=args.bench_mp or None)
        except InputError as error:
            parser.exit(2, f"app.py: {error}\n")
        except OSError as error:
            where = f" '{error.filename}'" if error.filename else ""
            parser.exit(2, f"app.py: cannot access{where}: {error.strerror or error}\n")
        print(request_timing.format_bench(result))
        return
    launch(build_app(), args.host, args.port)


if __name__ == "__main__":
    main()
