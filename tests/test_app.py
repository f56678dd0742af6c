"""The Gradio app launched in-process and driven through its one API endpoint with gradio_client, plus the
comparison/report helpers it is built on. Small inputs and classical variants keep it fast; a heavy model is
used only when the zoo has one (otherwise the fallback is what gets tested)."""
from __future__ import annotations

import io
import json
import os
import statistics
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import app  # noqa: E402
from isp import benchmark, compare, compare_scores, compare_types, report, views  # noqa: E402
from isp.errors import SettingError  # noqa: E402
from isp.models import ModelCache  # noqa: E402
from isp.power import PHOTO_12MP, VIDEO_1080P  # noqa: E402
from searched_models import search_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 image: smooth colour ramps plus a few edges and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)], -1)
    img[h // 3: 2 * h // 3, w // 4: w // 2] = (0.9, 0.2, 0.1)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def server(app_url):
    return app_url


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False, httpx_kwargs={"timeout": 120})


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "tiny.png"
    Image.fromarray(textured(96, 128)).save(path)
    return path


def test_api_has_one_named_endpoint_with_only_the_file_required(client):
    info = client.view_api(return_format="dict", print_info=False)
    assert list(info["named_endpoints"]) == ["/process"]
    params = info["named_endpoints"]["/process"]["parameters"]
    assert [p["parameter_name"] for p in params if not p["parameter_has_default"]] == ["upload"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in params if p["parameter_has_default"]}
    assert defaults["size"] == app.DEFAULT_SIZE and defaults["variants"] == app.DEFAULT_VARIANTS


def test_photo_is_scored_against_its_ground_truth(client, photo):
    images, data = client.predict(handle_file(str(photo)), size="256", variants=["classical", "heavy"],
                                  api_name="/process")
    assert data["is_raw_file"] is False and data["ground_truth"] == "the original photo"
    assert len(images) == len(data["rows"]) >= 1
    assert {r["variant"] for r in data["rows"]} <= {"classical", "heavy"}
    classical = next(r for r in data["rows"] if r["variant"] == "classical")
    assert 20.0 < classical["PSNR (dB)"] < 60.0 and 0.5 < classical["SSIM"] <= 1.0
    assert classical["ms total"] > 0 and classical["GMACs"] > 0 and classical[compare_scores.ENERGY_PHOTO_COLUMN] > 0
    first = Image.open(images[0]["image"])
    assert first.size == (128, 96)
    assert [s["stage"] for s in data["stages"]][:2] == ["BLC", "denoise"]
    if len(data["rows"]) == 1:      # no heavy model in this zoo: the fallback must say so
        assert any("heavy" in n for n in data["notes"])


def test_defaults_fall_back_when_searched_is_missing(client, photo):
    _, data = client.predict(handle_file(str(photo)), size="256", api_name="/process")
    labels = [r["variant"] for r in data["rows"]]
    assert labels and len(labels) == len(set(labels))
    if "searched" not in labels:
        assert any("searched" in n for n in data["notes"])


def test_raw_file_has_no_ground_truth_and_shows_agreement(client):
    _, data = client.predict(handle_file(str(ROOT / "assets" / "openisp_rggb_10bit.dng")), size="256",
                             variants=["classical", "heavy"], zoom=True, api_name="/process")
    assert data["is_raw_file"] is True and data["ground_truth"] is None
    assert any("no ground truth" in n for n in data["notes"])
    assert 128 <= max(data["size"]) <= 256    # binned to ≤ 128, then ×2 by the SR stage: the processing size holds
    if len(data["rows"]) == 2:
        classical = next(r for r in data["rows"] if r["variant"] == "classical")
        assert classical["PSNR vs heavy (dB)"] > 15


def test_shipped_example_with_zoom_and_enhance(client):
    images, data = client.predict(handle_file(str(ROOT / "assets" / "astronaut_nasa.png")), size="256",
                                  zoom=True, enhance=True, variants=["classical"], demosaic="menon",
                                  device="cpu_fp32", iso=3200, api_name="/process")
    assert max(Image.open(images[0]["image"]).size) == 256
    row = data["rows"][0]
    assert "local Laplacian" in data["ground_truth"]
    assert {"ms denoise", "ms SR ×2", "ms enhance"} <= set(row)
    assert data["settings"]["device"] == "cpu_fp32" and data["settings"]["demosaic"] == "menon"


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {}
    files["empty.png"] = folder / "empty.png"
    files["empty.png"].write_bytes(b"")
    buffer = io.BytesIO()
    Image.fromarray(textured(64, 64)).save(buffer, format="PNG")
    files["truncated.png"] = folder / "truncated.png"
    files["truncated.png"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    buffer = io.BytesIO()
    Image.fromarray(textured(64, 64)).save(buffer, format="JPEG")
    files["truncated.jpg"] = folder / "truncated.jpg"
    files["truncated.jpg"].write_bytes(buffer.getvalue()[:300])
    files["text.jpg"] = folder / "text.jpg"
    files["text.jpg"].write_text("this is not a picture\n" * 20)
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    files["bomb.png"] = folder / "bomb.png"
    files["bomb.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                                  + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    files["one_pixel.png"] = folder / "one_pixel.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(files["one_pixel.png"])
    files["corrupt.dng"] = folder / "corrupt.dng"
    files["corrupt.dng"].write_bytes(b"II*\x00" + bytes(np.random.default_rng(0).integers(0, 255, 5000, np.uint8)))
    files["unsupported.cr2"] = folder / "unsupported.cr2"
    files["unsupported.cr2"].write_bytes(b"not a canon raw" * 100)
    files["archive.zip"] = folder / "archive.zip"
    files["archive.zip"].write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    return files


def test_bad_inputs_give_clear_messages_and_the_server_keeps_serving(client, photo, tmp_path):
    messages = {}
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), size="256", variants=["classical"], api_name="/process")
        message = str(caught.value)
        assert "Traceback" not in message and len(message) > 15, (name, message)
        messages[name] = message
    assert "empty" in messages["empty.png"].lower()
    assert "megapixel" in messages["bomb.png"].lower() or "30000" in messages["bomb.png"]
    assert "1×1" in messages["one_pixel.png"] or "small" in messages["one_pixel.png"].lower()
    assert "raw" in messages["corrupt.dng"].lower()
    # a bad setting is also a message, not a crash
    with pytest.raises(AppError, match="no_such_model"):
        client.predict(handle_file(str(photo)), variants=["no_such_model"], size="256", api_name="/process")
    # …and the server still answers a good request
    _, data = client.predict(handle_file(str(photo)), size="256", variants=["classical"], api_name="/process")
    assert data["rows"][0]["variant"] == "classical"


def test_cmyk_jpeg_is_converted_not_rejected(client, tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(textured(64, 80)).convert("CMYK").save(path, format="JPEG", quality=95)
    images, data = client.predict(handle_file(str(path)), size="256", variants=["classical"], api_name="/process")
    assert Image.open(images[0]["image"]).size == (80, 64)
    assert data["rows"][0]["PSNR (dB)"] > 15


def test_load_8_clients_x_10_requests(server, tmp_path, capsys):
    path = tmp_path / "load.png"
    Image.fromarray(textured(64, 64, seed=3)).save(path)
    latencies, errors = [], []
    lock = threading.Lock()

    def worker():
        local = Client(server, verbose=False, httpx_kwargs={"timeout": 120})
        for _ in range(10):
            start = time.perf_counter()
            try:
                _, data = local.predict(handle_file(str(path)), size="256", variants=["classical"],
                                        api_name="/process")
                assert data["rows"][0]["variant"] == "classical"
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as error:  # noqa: BLE001 - counted, asserted below
                with lock:
                    errors.append(repr(error))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    wall = time.perf_counter() - start
    assert not errors, errors[:3]
    assert len(latencies) == 80
    q = statistics.quantiles(latencies, n=20)
    with capsys.disabled():
        print(f"\nload test: 80 requests, 8 clients, 0 errors, wall {wall:.1f} s, "
              f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms")


# ------------------------------------------------------------------------------------------------ helpers

def test_plan_falls_back_to_classical_with_an_empty_zoo(tmp_path):
    models = ModelCache(tmp_path)
    plans, notes = compare.plan_variants(compare_types.Settings(variants=("heavy", "searched")), models)
    assert [p.label for p in plans] == ["classical"]
    assert any("heavy" in n for n in notes) and any("searched" in n for n in notes)
    with pytest.raises(SettingError):
        compare.plan_variants(compare_types.Settings(variants=("bogus",)), models)
    with pytest.raises(SettingError):
        compare_types.Settings(demosaic="nearest").check()


def test_compare_yields_cheapest_first_and_crops_line_up(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(textured(64, 96)).save(path)
    settings = compare_types.Settings(long_side=256, variants=("classical",), zoom=True)
    steps = list(compare.compare_file(path, settings, ModelCache(tmp_path)))
    final = steps[-1]
    assert final.done and final.runs[0].result.image.shape == (64, 96, 3)
    assert final.runs[0].result.intermediates == {}          # full-resolution copies dropped after the run
    small = views.crop_sources(final, long_side=32, full_bytes=64 * 96 * 3 * 2 - 1)   # over the budget: previews
    assert all(max(s.shape[:2]) <= 32 for s, _ in small) and views.crops_are_previews(final, small)
    sources = views.crop_sources(final)                                         # within it: 1:1 pixels
    assert all(s.shape == (64, 96, 3) for s, _ in sources) and not views.crops_are_previews(final, sources)
    assert [label for _, label in sources] == ["classical", "ground truth"]
    crops = views.zoom_crops(sources, 1.0, 1.0, 32, display=64)
    assert all(c.shape == (64, 64, 3) for c, _ in crops)
    strip = views.stage_strip(final.runs[0])
    assert len(strip) == 5 and strip[0][1].endswith("sensor mosaic (false colour)")
    assert views.crop_box((64, 96, 3), 1.0, 0.0, 32) == (0, 64, 32, 32)


def test_strips_false_builds_no_thumbnails_but_the_same_image_and_scores(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(textured(64, 96)).save(path)
    settings = compare_types.Settings(long_side=256, variants=("classical",))
    with_strips = compare.compare_all(path, settings, ModelCache(tmp_path), strips=True)
    without = compare.compare_all(path, settings, ModelCache(tmp_path), strips=False)
    assert len(with_strips.runs[0].strip) == 4 and without.runs[0].strip is None
    np.testing.assert_array_equal(with_strips.runs[0].result.image, without.runs[0].result.image)
    assert with_strips.runs[0].scores == without.runs[0].scores


def _record(study, number, macs, psnr, status="complete", feasible=True, **extra):
    spec = {"stem": {"channels": 8 + number, "kernel": 3, "act": "relu"}, "blocks": [], "out_channels": 3}
    return {"study": study, "number": number, "status": status, "spec": spec, "macs_per_input_mp": macs,
            "proxy_psnr": psnr, "feasible": feasible, **extra}


def test_trial_log_dedups_counts_completed_and_front_respects_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr("searched_models.search_log.spec_key", lambda spec: json.dumps(spec, sort_keys=True))
    log = tmp_path / "search_trials.jsonl"
    lines = [_record("a", 0, 1e9, None, status="running"),
             _record("a", 0, 1e9, 30.0),                                  # same trial, later line wins
             _record("a", 1, 2e9, 29.0),                                  # dominated
             _record("a", 2, 4e9, 31.0),
             _record("a", 3, 5e8, 35.0, feasible=False),                  # best of all but over the budget
             _record("a", 4, 3e8, None, status="surplus"),
             _record("a", 5, 3e8, None, status="failed"),
             _record("b", 2, 6e9, 30.5)]                                  # same number, another study: dominated
    log.write_text("\n".join(json.dumps(t) for t in lines) + "\n{broken line\n")
    trials, others = search_report.load_trials(log)
    assert len(trials) == 5 and others == 2
    assert search_report.front_keys(trials) == {("a", 0), ("a", 2)}
    rows = search_report.trial_rows(trials, "denoise_raw")
    assert [(r["study"], r["trial"]) for r in rows[:2]] == [("a", 0), ("a", 2)] and rows[0]["Pareto"] == "★"
    assert all(r["Pareto"] == "" for r in rows[2:]) and "GMACs / packed MP (4 sensor px)" in rows[0]
    assert search_report.find_trial(trials, "b", 2.0)["macs_per_input_mp"] == 6e9
    assert search_report.find_trial(trials, "a", 2)["macs_per_input_mp"] == 4e9
    assert search_report.load_trials(tmp_path / "missing.jsonl") == ([], 0)
    fig = search_report.pareto_figure(trials, [{"name": "h", "role": "heavy", "macs_per_input_mp": 8e9,
                                                "psnr": 32.0}], "t", "sr_x2")
    assert fig.axes[0].get_xscale() == "log" and "input MP" in fig.axes[0].get_xlabel()


def test_task_variants_skips_every_broken_role():
    class Broken:                     # both roles registered, both checkpoints unreadable
        def names(self, task):
            return ["heavy", "searched", "fsrcnn"]

        def get(self, task, name):
            raise OSError("half-written")

    assert benchmark.task_variants(Broken(), "sr_x2") == ["classical", "fsrcnn"]


def test_relative_uses_unrounded_means():
    means = {"classical": {"psnr": 30.004, "macs": 1.0e3}, "heavy": {"psnr": 30.014, "macs": 1.2e6},
             "searched": {"psnr": 30.012, "macs": 4.0e4}}
    relative = compare_scores.relative_to_heavy(means)
    assert relative["searched"][0] == pytest.approx(30.0)         # 0.0012 / 0.0000 GMACs once rounded
    assert relative["searched"][1] == pytest.approx(0.8)          # (30.01 − 30.00) / (30.01 − 30.00) = 1 rounded
    assert relative["heavy"] == pytest.approx((1.0, 1.0))


def test_full_size_is_refused_above_16_mp_before_decoding(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 5000, 4000, 8, 2, 0, 0, 0)      # 20 MP header, no real pixel data
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b""))
    with pytest.raises(SettingError, match="1024") as caught:
        next(compare.compare_file(path, compare_types.Settings(long_side=None, variants=("classical",)),
                                  ModelCache(tmp_path)))
    assert "20.0 megapixels" in str(caught.value)
    compare_types.Settings(long_side=None).check_size(4000, 4000)                # 16 MP is fine
    with pytest.raises(SettingError):
        compare_types.Settings(long_side=None).check_size(4000, 4001)
    compare_types.Settings(long_side=1024).check_size(10000, 10000)             # shrunk first: any size
    compare_types.Settings(long_side=None, zoom=True).check_size(4000, 4000)     # a photo: the sensor sees half
    with pytest.raises(SettingError, match="64.0 megapixels after the ×2 zoom"):
        compare_types.Settings(long_side=None, zoom=True).check_size(4000, 4000, raw_file=True)
    compare_types.Settings(long_side=None, zoom=True).check_size(2000, 2000, raw_file=True)     # 16 MP out


def test_a_thin_photo_is_refused_with_a_message_before_any_variant_runs(tmp_path):
    from isp.errors import ImageTooSmallError

    path = tmp_path / "thin.png"
    Image.fromarray(textured(20, 1200)).save(path)
    for long_side, zoom in ((256, False), (1024, True)):       # 256×4 after shrinking; 600×10 at the sensor
        settings = compare_types.Settings(long_side=long_side, zoom=zoom, variants=("classical",))
        with pytest.raises(ImageTooSmallError, match="both sides must be at least 16"):
            next(compare.compare_file(path, settings, ModelCache(tmp_path)))
    assert next(compare.compare_file(path, compare_types.Settings(long_side=None, variants=("classical",)),
                                     ModelCache(tmp_path))).runs


def test_energy_is_for_a_12mp_photo_whatever_the_processing_size(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(textured(128, 192)).save(path)
    runs = [compare.compare_all(path, compare_types.Settings(long_side=side, variants=("classical",)),
                                ModelCache(tmp_path)).runs[0] for side in (96, 192)]
    assert runs[0].energy_mj == pytest.approx(runs[1].energy_mj, rel=0.05)
    assert runs[0].result.total_macs < 0.5 * runs[1].result.total_macs   # the measured frame is smaller
    ratio = VIDEO_1080P[0] * VIDEO_1080P[1] / (PHOTO_12MP[0] * PHOTO_12MP[1])
    assert runs[1].power_mw == pytest.approx(runs[1].energy_mj * ratio * 30.0, rel=1e-6)   # classical: linear


def test_prune_removes_old_report_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(app, "OUT_DIR", tmp_path)
    monkeypatch.setattr(app, "REPORT_DIR", tmp_path / "reports")
    old, new = tmp_path / "reports" / "pixelnas_report_old", tmp_path / "reports" / "pixelnas_report_new"
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "pixelnas_benchmark.html").write_text("x")
    os.utime(old, (time.time() - 2 * app.OUT_MAX_AGE_S,) * 2)
    app._prune_outputs()
    assert not old.exists() and new.exists()


def test_session_state_expires_and_crop_updates_are_queued():
    demo = app.build_app()
    states = [b for b in demo.blocks.values() if type(b).__name__ == "State"]
    assert states and all(s.time_to_live == app.STATE_TTL_S for s in states)
    releases = [dep for dep in demo.config["dependencies"] if any(t[1] == "release" for t in dep["targets"])]
    assert len(releases) == 3 and all(dep["queue"] is not False for dep in releases)     # the three crop sliders


def test_benchmark_report_html_and_csv(tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(textured(64, 64, seed=i)).save(paths[-1])
    bench = benchmark.benchmark(paths + [ROOT / "assets" / "openisp_rggb_10bit.dng"], ModelCache(tmp_path / "zoo"),
                              long_side=64, tasks=("sr_x2",))
    rows = bench["tasks"]["sr_x2"]
    assert [r["variant"] for r in rows] == ["classical"] and rows[0]["images"] == 2 and rows[0]["role"] == "classical"
    assert any("no ground truth" in n for n in bench["notes"])
    html_path, csv_path = report.write_report(bench, tmp_path / "out")
    text = html_path.read_text()
    assert "<table>" in text and "data:image/png;base64," in text and "estimated" in text
    csv_lines = csv_path.read_text().splitlines()
    assert csv_lines[0].startswith("task,variant") and csv_lines[1].startswith("sr_x2,classical")
    Image.fromarray(textured(64, 64, seed=2)).save(tmp_path / "img2.png")
    both = benchmark.benchmark(paths + [tmp_path / "img2.png"], ModelCache(tmp_path / "zoo"), long_side=64,
                               tasks=("denoise_raw", "sr_x2"))
    assert [p["task"] for p in both["previews"]] == ["denoise_raw"] * 2 + ["sr_x2"] * 2   # each task shown


def test_camera_handler_yields_the_cheap_result_first_and_crops_follow_clicks(photo):
    handler = app.make_camera_handler(ModelCache())
    steps = list(handler(str(photo), 800, False, False, "malvar", "256", ["heavy", "classical"], "npu_int8",
                         50, 50, 64, progress=None))
    slider, picker, crops, strip, metrics, stages, headline, notes, sources = steps[-1]
    assert len(steps) == len(metrics) and list(steps[0][4]["variant"]) == ["classical"]   # cheapest first
    assert len(crops) == len(metrics) + 1 and crops[-1][1] == "ground truth"            # + ground truth
    assert len(strip.value) == 4 * len(metrics) and strip.columns == 4 and Path(picker).is_file()   # a row each
    assert "MACs" in headline or "Only one variant" in headline
    moved_picker, moved = app.update_crops(sources, 10, 90, 32)
    assert len(moved) == len(crops) and Image.open(moved[0][0]).size == Image.open(crops[0][0]).size
    assert not np.array_equal(np.asarray(Image.open(moved[0][0])), np.asarray(Image.open(crops[0][0])))


def test_odd_api_payloads_get_a_message_not_a_traceback():
    import gradio as gr

    assert app._file_path(["x.png"]) == "x.png" and app._file_path({"path": "y.png"}) == "y.png"
    for payload, message in (([], "Upload a photo"), (["a.png", "b.png"], "one file per request"),
                             (None, "Upload a photo")):
        with pytest.raises(gr.Error, match=message):
            app._file_path(payload)
    with pytest.raises(gr.Error, match="ISO must be a number"):
        app._settings(None, False, False, "malvar", "256", ["classical"], "npu_int8")


def test_energy_estimates_keep_four_significant_figures():
    assert compare_scores.significant(321.29015) == 321.3
    assert compare_scores.significant(0.0012345678) == 0.001235
    assert compare_scores.significant(12345.6) == 12350.0
    assert compare_scores.significant(0.0) == 0.0


def test_search_view_shows_one_study_at_a_time_newest_first(tmp_path):
    """Studies with different proxies are never merged into one front."""
    spec = {"name": "t", "task": "sr_x2", "in_channels": 3, "out_channels": 3, "scale": 2,
            "stem": {"channels": 8}, "blocks": [{"type": "conv", "channels": 8}], "global_residual": "bicubic"}
    (tmp_path / "sr_x2").mkdir()

    def record(study, number, psnr, macs, time_):
        return {"study": study, "number": number, "status": "complete", "spec": spec, "proxy_psnr": psnr,
                "macs_per_input_mp": macs, "macs_per_input_pixel": macs / 1e6, "params": 100, "feasible": True,
                "latency_ms_per_mp": 10.0, "proxy_steps": 400 if study == "old" else 1000, "time": time_}

    lines = [record("old", 0, 27.0, 2e9, 1.0), record("old", 1, 27.5, 4e9, 2.0), record("new", 0, 28.4, 3e9, 3.0)]
    (tmp_path / "sr_x2" / "search_trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    figure, status, table, *_, trials, study = app.search_view("sr_x2", zoo_dir=tmp_path)
    assert study["value"] == "new" and study["choices"] == ["new", "old"]
    assert [t["study"] for t in trials] == ["new"] and len(table) == 1
    assert "study **new** (proxy: 1000 training steps" in status and "Other studies" in status and "old" in status
    *_, trials, study = app.search_view("sr_x2", "old", zoo_dir=tmp_path)
    assert study["value"] == "old" and sorted(t["number"] for t in trials) == [0, 1]
    from types import SimpleNamespace

    _, _, table, *_ = app.search_view("sr_x2", "old", zoo_dir=tmp_path)
    number = int(table.iloc[1]["trial"])                                 # the table's second row
    trials = [{**t, "spec": {**spec, "name": "second"}} if t["number"] == number else t for t in trials]
    clicked = SimpleNamespace(index=[0, 0], row_value=table.iloc[1].tolist())   # the UI sorted it to the top
    assert app.select_trial(trials, table, clicked)["name"] == "second"
    assert app.select_trial(trials, table, SimpleNamespace(index=[1, 0], row_value=None))["name"] == "second"


def test_a_model_registered_from_a_trial_is_marked_at_that_trials_proxy_psnr():
    trials = [{"study": "s", "number": 7, "proxy_psnr": 28.8, "macs_per_input_mp": 9e9},
              {"study": "other", "number": 3, "proxy_psnr": 30.0, "macs_per_input_mp": 9e9}]
    searched = {"name": "t7", "role": "searched", "macs_per_input_mp": 9e9,
                "spec": {"search": {"study": "s", "trial": 7}}}
    mark = search_report.zoo_mark(searched, None, trials)
    assert mark["psnr"] == 28.8 and mark["name"] == "t7 (trial 7)"
    assert search_report.zoo_mark({**searched, "spec": {"search": {"study": "s", "trial": 3}}}, None,
                                  trials)["psnr"] is None                 # another study's trial 3 is not this one
    peer = search_report.zoo_mark({"name": "p", "role": "peer", "macs_per_input_mp": 2e10}, None, trials)
    assert peer["psnr"] is None and peer["role"] == "peer"


def test_model_cache_loads_each_model_once_and_a_load_blocks_no_other_model(monkeypatch):
    loads, slow_started, release = [], threading.Event(), threading.Event()

    def fake_load(task, name, **_):
        loads.append(name)
        if name == "slow":
            slow_started.set()
            assert release.wait(10), "the slow load was never released"
        return object(), {"name": name}

    monkeypatch.setattr("searched_models.zoo.resolve_name", lambda task, name, **_: name)
    monkeypatch.setattr("searched_models.zoo.load", fake_load)
    monkeypatch.setattr("isp.models.warm_up", lambda module, card: None)
    models = ModelCache()
    fast = models.get("sr_x2", "fast")
    results = []
    slow_getters = [threading.Thread(target=lambda: results.append(models.get("sr_x2", "slow"))) for _ in range(3)]
    for t in slow_getters:
        t.start()
    assert slow_started.wait(10)
    assert models.get("sr_x2", "fast") is fast          # cached: answered while "slow" is still loading
    assert models.get("sr_x2", "other")[1]["name"] == "other"   # a different model loads meanwhile
    release.set()
    for t in slow_getters:
        t.join(10)
    assert len(results) == 3 and all(r is results[0] for r in results)
    assert sorted(loads) == ["fast", "other", "slow"]    # three threads asked for "slow": loaded once
