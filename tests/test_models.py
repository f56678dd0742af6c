"""Model zoo: spec language, builder, cost cross-check, tiling, loading, training with resume, eval schema."""
import json

import numpy as np
import pytest
import torch

from isp.errors import SettingError
from isp.io import load_image, save_image
from searched_models import zoo
from searched_models.cost import counted_macs, spec_cost
from searched_models.infer import receptive_radius, run_chw, stride_multiple
from searched_models.spec import SpecError, build, normalise_spec, spec_to_json

SPEC_FILES = sorted(zoo.SPEC_DIR.glob("*/*.json"))
TINY = {"name": "tiny", "task": "sr_x2", "in_channels": 3, "out_channels": 3, "scale": 2,
        "stem": {"channels": 8}, "blocks": [{"type": "residual", "repeat": 1}], "global_residual": "bicubic"}
EVERY_BLOCK = {"name": "all_blocks", "task": "denoise_raw", "in_channels": 8, "out_channels": 4, "unshuffle": 2,
               "stem": {"channels": 12, "act": "prelu"},
               "blocks": [{"type": "conv", "channels": 12, "kernel": 5}, {"type": "dwsep", "channels": 16},
                          {"type": "residual", "act": "leaky_relu"}, {"type": "down", "channels": 24},
                          {"type": "inverted", "channels": 24, "expand": 2, "act": "silu"},
                          {"type": "dynamic", "channels": 24, "experts": 3}, {"type": "up", "act": "prelu"},
                          {"type": "conv", "channels": 16, "act": "tanh"}, {"type": "rep", "channels": 16},
                          {"type": "rep", "channels": 8, "kernel": 1, "act": "prelu"}],
               "global_residual": "input", "residual_channels": 4}


def zoo_cards():
    return [(task.name, p.stem) for task in sorted(zoo.ZOO_DIR.glob("*")) if task.is_dir()
            for p in sorted(task.glob("*.json")) if zoo.weights_path(task.name, p.stem).exists()]


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_specs_round_trip_and_match_flop_counter(path):
    spec = json.loads(path.read_text())
    again = json.loads(spec_to_json(spec))
    assert normalise_spec(again) == normalise_spec(spec)
    model = build(spec).eval()
    x = torch.rand(1, spec["in_channels"], 32, 48)
    y = model(x)
    assert y.shape == (1, spec["out_channels"], 32 * spec.get("scale", 1), 48 * spec.get("scale", 1))
    cost = spec_cost(spec)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert abs(counted_macs(model, x) - cost.macs(32, 48)) <= 0.01 * cost.macs(32, 48)


def test_every_block_type_builds_and_its_macs_match_exactly():
    model = build(EVERY_BLOCK).eval()
    x = torch.rand(2, 8, 40, 24)
    assert model(x).shape == (2, 4, 40, 24)
    cost = spec_cost(EVERY_BLOCK)
    assert counted_macs(model, x) == pytest.approx(2 * cost.macs(40, 24), rel=1e-9)
    assert cost.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("cin,cout,kernel", [(8, 8, 3), (6, 10, 5), (8, 4, 1)])
def test_a_rep_block_runs_as_one_conv_equal_to_its_branches(cin, cout, kernel):
    from searched_models.spec import RepConv

    torch.manual_seed(0)
    block = RepConv(cin, cout, kernel, "prelu")
    for p in block.parameters():                  # every branch non-zero, biases too (they matter at the borders)
        p.data.normal_(0.0, 0.2)
    x = torch.rand(2, cin, 9, 13)
    merged, branches = block(x), block.forward_branches(x)
    assert (merged - branches).abs().max() < 1e-5 and merged.abs().max() > 0.1
    merged.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())   # every branch learns
    weight, _ = block.fused()
    assert weight.shape == (cout, cin, kernel, kernel)
    assert counted_macs(block, x) == pytest.approx(2 * 9 * 13 * cin * cout * kernel * kernel, rel=1e-9)


def test_a_rep_network_counts_the_conv_it_runs_and_stores_its_branches():
    spec = {**TINY, "blocks": [{"type": "rep", "channels": 16, "repeat": 2}, {"type": "conv", "channels": 8}]}
    plain = {**TINY, "blocks": [{"type": "conv", "channels": 16, "repeat": 2}, {"type": "conv", "channels": 8}]}
    rep_cost, plain_cost = spec_cost(spec), spec_cost(plain)
    assert rep_cost.macs_per_pixel == plain_cost.macs_per_pixel and rep_cost.deployed_params == plain_cost.params
    assert rep_cost.params == sum(p.numel() for p in build(spec).parameters()) > plain_cost.params
    assert rep_cost.bytes_moved(10, 10) == plain_cost.bytes_moved(10, 10)


def test_eval_charges_a_rep_network_the_weights_it_runs():
    from searched_models.evaluate import model_rows

    spec = {**TINY, "blocks": [{"type": "rep", "channels": 16, "repeat": 2}]}

    class OneModel:
        def get(self, task, name):
            return None, {"name": name, "role": "peer", "spec": spec}

    (row,) = model_rows("sr_x2", ["r"], OneModel())
    assert row["values_per_image"] == spec_cost(spec).deployed_params < spec_cost(spec).params
    assert row["params"] == spec_cost(spec).deployed_params and row["params_trained"] == spec_cost(spec).params


def test_the_search_tables_show_a_rep_network_with_its_merged_parameters():
    from searched_models import search_report

    spec = {**TINY, "blocks": [{"type": "rep", "channels": 16, "repeat": 2}]}
    cost = spec_cost(spec)
    trial = {"study": "s", "number": 0, "status": "complete", "spec": spec, "params": cost.params,
             "macs_per_input_mp": cost.macs_per_mp(), "macs_per_input_pixel": cost.macs_per_pixel,
             "proxy_psnr": 30.0, "feasible": True, "latency_ms_per_mp": 1.0}
    (row,) = search_report.trial_rows([trial], "sr_x2")
    assert row["params"] == cost.deployed_params < cost.params
    assert zoo.deployed_params({"spec": {"blocks": []}}) is None          # not a valid spec: the caller's fallback


def test_the_app_reports_the_parameters_a_rep_network_runs_with():
    from isp.energy_estimate import model_params
    from isp.models import ModelCache

    spec = {**TINY, "blocks": [{"type": "rep", "channels": 16, "repeat": 2}]}

    class OneModel:
        def get(self, task, name):
            return None, {"name": name, "role": "peer", "spec": spec}

        params = ModelCache.params

    assert model_params(OneModel(), "sr_x2", "r") == spec_cost(spec).deployed_params < spec_cost(spec).params
    assert model_params(OneModel(), "sr_x2", "classical") == 0


def test_load_folder_skips_small_images_before_it_counts_the_limit(tmp_path, assets_dir):
    from searched_models.data import load_folder

    photo = load_image(assets_dir / "astronaut_nasa.png")
    (tmp_path / "sub").mkdir()
    save_image(tmp_path / "a_tiny.png", photo[:8, :8])
    save_image(tmp_path / "b.png", photo[:64, :80])
    save_image(tmp_path / "sub" / "c.png", photo[:96, :64])
    save_image(tmp_path / "d.png", photo[:70, :70])
    images = load_folder(tmp_path, limit=2, min_side=64)
    assert [i.shape[:2] for i in images] == [(64, 80), (70, 70)]          # sorted by path: b, d, sub/c
    assert len(load_folder(tmp_path)) == 3


def test_heavy_originals_meet_the_mac_floors():
    from searched_models.floors import HEAVY_MIN_MACS_PER_PIXEL

    assert HEAVY_MIN_MACS_PER_PIXEL == {"sr_x2": 500e3, "denoise_raw": 4 * 100e3, "enhance": 300e3}  # the issue's
    heavies = [p for p in SPEC_FILES if p.stem.endswith("_heavy") or p.stem == "edsr_baseline"]
    assert len(heavies) == 4
    for path in heavies:
        macs = spec_cost(json.loads(path.read_text())).macs_per_pixel     # per network-input (LR, packed) pixel
        assert macs >= HEAVY_MIN_MACS_PER_PIXEL[path.parent.name], path


@pytest.mark.parametrize("bad, message", [
    ({"task": "x", "in_channels": 3}, "out_channels"),
    ({**TINY, "blocks": [{"type": "teleport"}]}, "unknown block type"),
    ({**TINY, "blocks": [{"type": "down"}]}, "matching 'up'"),
    ({**TINY, "blocks": [{"type": "conv", "kernel": 4}]}, "odd"),
    ({**TINY, "unshuffle": 3}, "unshuffle"),
    ({**TINY, "pyramid": 4}, "scale 1"),
    ({**TINY, "scale": 1, "global_residual": "input", "pyramid": 9}, "2…8 levels"),
    ({**TINY, "scale": 1, "global_residual": "input", "pyramid": 4, "blocks": [{"type": "down"}, {"type": "up"}]},
     "no down/up"),
])
def test_invalid_specs_are_rejected_with_a_reason(bad, message):
    with pytest.raises(SpecError, match=message):
        build(bad)


def test_tiled_inference_equals_untiled():
    spec = {"name": "t", "task": "enhance", "in_channels": 3, "out_channels": 3, "unshuffle": 2,
            "stem": {"channels": 8}, "blocks": [{"type": "residual"}, {"type": "down", "channels": 12},
                                                {"type": "conv", "channels": 12}, {"type": "up"}],
            "global_residual": "input"}
    torch.manual_seed(0)
    model = build(spec).eval()
    torch.nn.init.normal_(model.tail[0].weight, std=0.1)   # a fresh tail is zero: make the network part count
    x = np.random.default_rng(0).random((3, 150, 203), dtype=np.float32)
    whole = run_chw(model, x, tile=None)
    tiled = run_chw(model, x, tile=48)
    assert whole.shape == tiled.shape == (3, 150, 203)
    assert np.abs(whole - tiled).max() < 1e-4
    assert np.abs(whole - x).max() > 0.01                  # …and it does change the image
    assert stride_multiple(spec) == 4 and receptive_radius(spec) > 10


@pytest.mark.parametrize("task_name", [c for c in zoo_cards()], ids=lambda c: "/".join(c))
def test_every_zoo_entry_loads_and_its_card_is_consistent(task_name):
    task, name = task_name
    model, card = zoo.load(task, name)
    assert card["task"] == task and card["name"] == name and card["role"] in zoo.ROLES
    cost = spec_cost(card["spec"])
    assert card["params"] == cost.params == sum(p.numel() for p in model.parameters())
    x = torch.rand(1, card["spec"]["in_channels"], 16, 16)
    assert abs(counted_macs(model, x) - cost.macs(16, 16)) <= 0.01 * cost.macs(16, 16)
    for key in ("command", "commit"):
        assert card["provenance"][key]
    assert zoo.log_path(task, name).exists()


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, assets_dir):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut_nasa.png", "text_chart.png"):
        save_image(folder / name, load_image(assets_dir / name)[:192, :192])
    return folder


def test_training_smoke_with_resume_and_eval_schema(tmp_path, photo_folder):
    from searched_models.evaluate import evaluate
    from searched_models.train import TrainConfig, train

    cfg = dict(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), val_images=str(photo_folder),
               batch=2, patch=24, val_every=10, ckpt_every=5, log_every=5, zoo_dir=str(tmp_path), threads=1,
               role="heavy", warmup=2)
    card = train(TrainConfig(steps=10, **cfg))
    assert card["training"]["steps_done"] == 10 and card["validation"]["psnr"] > 20
    marked = {**zoo.read_card("sr_x2", "tiny", tmp_path), "role_history": [{"from": "candidate", "to": "heavy"}]}
    zoo.write_card(marked, tmp_path)                          # as `pixelnas set-role` leaves it
    card = train(TrainConfig(steps=20, **cfg), resume=True)
    assert card["training"]["steps_done"] == 20
    assert zoo.read_card("sr_x2", "tiny", tmp_path)["role_history"] == marked["role_history"]   # kept on resume
    log = [json.loads(line) for line in (tmp_path / "sr_x2" / "tiny.log.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in log if "loss" in e]
    assert steps == [5, 10, 15, 20]                           # resumed at 10, no step repeated or lost
    assert [e["step"] for e in log if "val_psnr" in e] == [10, 20]
    with pytest.raises(Exception, match="resume"):
        train(TrainConfig(steps=30, **cfg))                   # refuses to overwrite without --resume
    model, loaded = zoo.load("sr_x2", "heavy", zoo_dir=tmp_path)
    assert loaded["name"] == "tiny"

    report = evaluate("sr_x2", [str(photo_folder)], ["classical", "tiny"], zoo_dir=tmp_path, progress=lambda m: None)
    json.dumps(report)
    assert set(report) >= {"task", "folders", "seed", "groups", "summary", "floors", "cpu_cores",
                           "timing_other_load_cores"}
    rows = {r["name"]: r for r in report["summary"]}
    assert set(rows) == {"classical", "tiny"}
    for row in rows.values():
        assert set(row) >= {"role", "params", "macs_per_input_mp", "ms_per_mp", "psnr", "ssim", "R", "G", "energy"}
        assert row["energy"]["npu_int8"]["mj_per_12mp_photo"] > 0
    assert rows["tiny"]["R"] == 1.0 and rows["tiny"]["G"] == pytest.approx(1.0)
    assert rows["classical"]["G"] == pytest.approx(0.0)
    again = evaluate("sr_x2", [str(photo_folder)], ["classical", "tiny"], zoo_dir=tmp_path, progress=lambda m: None)
    assert [r["psnr"] for r in again["summary"]] == [r["psnr"] for r in report["summary"]]


def train_until_sigterm(cfg, steps: int, resume: bool = False, restart: bool = False) -> dict:
    """`train(cfg)` stopped after `steps` more steps the way SIGTERM stops it (a checkpoint at the end of that
    step); returns the card."""
    import signal

    from searched_models import train as train_module

    calls, real_step = {"n": 0}, train_module.train_step

    def stepping(*args, **kwargs):
        calls["n"] += 1
        out = real_step(*args, **kwargs)
        if calls["n"] == steps:
            signal.raise_signal(signal.SIGTERM)
        return out

    train_module.train_step = stepping
    try:
        return train_module.train(cfg, resume=resume, restart=restart)
    finally:
        train_module.train_step = real_step


def test_resume_after_an_interruption_gives_the_same_weights(tmp_path, photo_folder):
    """10 steps + kill + resume 10 steps ≡ 20 straight steps (weights, Adam state and batches all restored)."""
    from searched_models.train import TrainConfig, train

    def cfg(zoo_dir, steps, **changed):
        return TrainConfig(**{**dict(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), steps=steps,
                                     batch=2, patch=24, ckpt_every=5, log_every=5, zoo_dir=str(zoo_dir), threads=1,
                                     warmup=2), **changed})

    train(cfg(tmp_path / "straight", 20))
    card = train_until_sigterm(cfg(tmp_path / "resumed", 20), 10)
    assert card["training"]["steps_done"] == 10
    with pytest.raises(Exception, match="past --steps 5"):
        train(cfg(tmp_path / "resumed", 5), resume=True)       # would have marked a 10-step checkpoint "done"
    train(cfg(tmp_path / "resumed", 20, seed=7, lr=1e-3), resume=True)   # the run's own seed and lr are kept
    a, _ = zoo.load("sr_x2", "tiny", zoo_dir=tmp_path / "straight")
    b, _ = zoo.load("sr_x2", "tiny", zoo_dir=tmp_path / "resumed")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    log = [json.loads(line) for line in (tmp_path / "resumed" / "sr_x2" / "tiny.log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [5, 10, 15, 20]


def test_training_photos_too_small_for_the_crop_are_refused_before_training(tmp_path, photo_folder):
    from isp.errors import SettingError
    from searched_models.train import TrainConfig, train

    cfg = TrainConfig(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), steps=10, batch=2, patch=120,
                      zoo_dir=str(tmp_path), threads=1)
    with pytest.raises(SettingError, match="at least 240×240 pixels"):     # 120 LR pixels = 240 photo pixels
        train(cfg)


def test_a_fresh_run_replaces_the_log_of_a_run_killed_before_its_first_checkpoint(tmp_path, photo_folder):
    from searched_models.train import TrainConfig, train

    cfg = TrainConfig(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), steps=10, batch=2, patch=24,
                      ckpt_every=5, log_every=5, zoo_dir=str(tmp_path), threads=1, warmup=2)
    log_file = tmp_path / "sr_x2" / "tiny.log.jsonl"
    log_file.parent.mkdir(parents=True)
    log_file.write_text(json.dumps({"step": 5, "loss": 0.5, "lr": 1e-4, "sec_per_step": 1.0, "time": 0.0}) + "\n")
    train(cfg)
    log = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [5, 10] and log[0]["loss"] != 0.5


def test_precision_ab_is_the_resumed_run_in_each_precision_and_writes_nothing(tmp_path, photo_folder):
    """The A/B's fp32 arm scores exactly what resuming the run for K steps scores; the zoo is left untouched."""
    import shutil

    from searched_models.bench_train import AB_TOLERANCE_DB, precision_ab
    from searched_models.data import load_folder
    from searched_models.tasks import get_task
    from searched_models.train import TrainConfig, validate

    def cfg(zoo_dir, bf16=False, batch=2, patch=24):
        return TrainConfig(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), steps=20, batch=batch,
                           patch=patch, ckpt_every=5, log_every=5, zoo_dir=str(zoo_dir), threads=1, warmup=2,
                           val_every=100, bf16=bf16)

    train_until_sigterm(cfg(tmp_path / "ab"), 10)                    # a 20-step run stopped at step 10
    shutil.copytree(tmp_path / "ab", tmp_path / "ref")
    before = {p: p.read_bytes() for p in (tmp_path / "ab").rglob("*") if p.is_file()}
    ab = precision_ab("sr_x2", "tiny", str(photo_folder), str(photo_folder), 5, zoo_dir=tmp_path / "ab",
                      log=lambda m: None)
    assert {p: p.read_bytes() for p in (tmp_path / "ab").rglob("*") if p.is_file()} == before
    assert ab["start_step"] == 10 and set(ab["fp32"]) == set(ab["bf16"]) == {"psnr", "sec_per_step"}
    assert ab["within_tolerance"] == (abs(ab["delta_db"]) <= AB_TOLERANCE_DB)
    assert ab["delta_db"] == pytest.approx(ab["bf16"]["psnr"] - ab["fp32"]["psnr"])
    assert ab["bf16"]["psnr"] != ab["fp32"]["psnr"]                  # the second arm really ran in bf16

    train_until_sigterm(cfg(tmp_path / "ref"), 5, resume=True)       # the run itself, resumed to step 15
    model, _ = zoo.load("sr_x2", "tiny", zoo_dir=tmp_path / "ref")
    task = get_task("sr_x2")
    pairs = task.val_pairs(load_folder(photo_folder, limit=8), seed=0)
    assert validate(model, task, pairs) == pytest.approx(ab["fp32"]["psnr"], abs=1e-4)

    card = train_until_sigterm(cfg(tmp_path / "ref", bf16=True, patch=32), 1, resume=True)   # switched on a resume
    assert card["training"]["precision"] == [[0, "fp32"], [15, "bf16 autocast"]]
    assert card["training"]["patches"] == [[0, 24], [15, 32]] and card["training"]["patch"] == 32
    assert card["training"]["batches"] == [[0, 2]]
    assert card["training"]["inputs"] == [[0, get_task("sr_x2").INPUTS]]


def test_a_setting_record_has_one_entry_per_change_at_the_step_it_took_effect():
    from searched_models.train import record_setting

    history = {}
    record_setting(history, "precision", 0, "fp32", "fp32")         # a fresh fp32 run
    assert history["precision"] == [[0, "fp32"]]
    record_setting(history, "precision", 0, "fp32", "bf16")         # killed before a step; resumed in bf16
    assert history["precision"] == [[0, "bf16"]]
    record_setting(history, "precision", 500, "bf16", "bf16")       # resumed, no change
    assert history["precision"] == [[0, "bf16"]]
    record_setting(history, "precision", 800, "bf16", "fp32")       # changed back at 800 …
    record_setting(history, "precision", 800, "fp32", "bf16")       # … and undone before a step ran
    assert history["precision"] == [[0, "bf16"]]
    record_setting(history, "patch", 800, 64, 128)                  # a checkpoint from before this record
    assert history["patch"] == [[0, 64], [800, 128]]


def test_sr_training_and_validation_inputs_are_8_bit_like_the_benchmark_lr_files(photo_folder):
    from searched_models.data import load_folder
    from searched_models.tasks import get_task

    task = get_task("sr_x2")
    photos = load_folder(str(photo_folder), limit=1)
    lr_train, _ = task.sample(np.random.default_rng(0), task.prepare(photos), 2, 24)
    lr_val, _ = task.val_pairs(photos)[0]
    for lr in (lr_train, lr_val):
        assert np.abs(lr * 255 - np.round(lr * 255)).max() < 1e-4


def test_a_resumed_log_drops_what_came_after_the_checkpoint_and_a_line_cut_short(tmp_path):
    from searched_models.train import trim_log

    log = tmp_path / "x.log.jsonl"
    log.write_text('{"step": 5, "loss": 1}\n{"step": 10, "loss": 0.5}\n{"step": 15, "loss": 0.4}\n{"step": 2')
    trim_log(log, 10)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [5, 10]


def test_plateau_rule():
    from searched_models.plateau import last_quarter_gain, plateau_status

    rising = [[s, 30 + s / 1000] for s in range(500, 8001, 500)]
    flat = [[s, 37.0 + min(s, 6000) / 1e5] for s in range(500, 8001, 500)]
    assert last_quarter_gain(rising) == pytest.approx(2.0)
    assert plateau_status(rising, True)["plateau"] is False
    assert plateau_status(flat, True)["plateau"] is True
    assert plateau_status(flat, False)["plateau"] is False          # a run still training is not a plateau
    assert last_quarter_gain([[500, 30.0]]) is None


def test_floors_are_judged_on_the_sets_and_iso_they_name_for_heavy_class_models():
    from searched_models.floors import check_floors, format_floors

    def group(name, iso, rows):
        macs = {"big": 5e11, "next": 4.2e11, "edsr": 1.4e12}      # the rest are small (a search front member)
        return {"set": name, "iso": iso, "rows": [{"name": n, "role": role, "psnr": p, "macs_per_input_mp":
                                                   macs.get(n, 4e9)} for n, role, p in rows]}

    denoise = {"task": "denoise_raw", "groups": [
        group("McMaster", 800, [("classical", "classical", 33.0), ("big", "heavy", 30.0)]),     # wrong ISO: ignored
        group("McMaster", 3200, [("classical", "classical", 30.0), ("big", "heavy", 32.1),
                                 ("next", "candidate", 31.9), ("front", "candidate", 31.0), ("small", "peer", 20.0)]),
        group("CBSD68", 3200, [("classical", "classical", 29.0), ("big", "heavy", 29.5)])]}
    results = check_floors(denoise)
    assert [(r["model"], r["met"]) for r in results] == [("big", True), ("next", False)]
    assert results[1]["value_db"] == pytest.approx(1.9)
    lines = format_floors(results)
    assert "+2.10 dB → met" in lines[0] and "NOT met (short by 0.10 dB)" in lines[1]
    sr = {"task": "sr_x2", "groups": [group("Set5", None, [("edsr", "heavy", 37.49)]),
                                      group("Set14", None, [("edsr", "heavy", 33.2)])]}
    assert [(r["floor"], r["met"]) for r in check_floors(sr)] == [("Set5 ≥ 37.5 dB", False), ("Set14 ≥ 33.1 dB", True)]
    assert "edsr (heavy) 37.49 dB → NOT met (short by 0.01 dB)" in format_floors(check_floors(sr))[0]  # unsigned
    close = {"task": "sr_x2", "groups": [group("Set14", None, [("edsr", "heavy", 33.0969)])]}
    assert "edsr (heavy) 33.097 dB → NOT met (short by 0.003 dB)" in format_floors(check_floors(close))[0]
    rounded_twice = {"task": "sr_x2", "groups": [group("Set5", None, [("edsr", "heavy", 37.5 - 0.87485)])]}
    assert "short by 0.87 dB" in format_floors(check_floors(rounded_twice))[0]      # not 0.88 via a rounded value
    assert check_floors({"task": "enhance", "groups": [group("Urban100", None, [("x", "heavy", 40.0)])]}) == []
    limited = check_floors({**sr, "limit": 1})                  # the first image of a set says nothing of the set
    assert [r["met"] for r in limited] == [None, None]
    assert format_floors(limited)[0].endswith("→ not judged (--limit: floors are judged on whole sets)")


def test_a_fresh_network_outputs_its_global_residual_and_convs_are_he_initialised():
    torch.manual_seed(0)
    spec = {"name": "t", "task": "denoise_raw", "in_channels": 8, "out_channels": 4, "stem": {"channels": 16},
            "blocks": [{"type": "conv", "channels": 16}], "global_residual": "input", "residual_channels": 4}
    x = torch.rand(1, 8, 16, 16)
    assert torch.equal(build(spec).eval()(x), x[:, :4])
    plain = build({**spec, "global_residual": "none"})
    weight = plain.blocks[0][0].weight.detach()              # 16×16×3×3: He std = sqrt(2 / 144)
    assert float(weight.std()) == pytest.approx((2 / 144) ** 0.5, rel=0.15)
    assert float(plain.tail[0].weight.detach().abs().sum()) > 0  # no residual: the tail is not zeroed


def test_fresh_residual_blocks_start_as_identity():
    torch.manual_seed(0)
    spec = {"name": "t", "task": "enhance", "in_channels": 3, "out_channels": 3, "stem": {"channels": 8},
            "blocks": [{"type": "residual", "repeat": 3}, {"type": "inverted", "channels": 8}], "global_residual": "input"}
    model = build(spec).eval()
    h = torch.rand(1, 8, 12, 12)
    for block in model.blocks:
        assert torch.equal(block(h), h)


def test_denoise_eval_scores_against_the_clean_development(tmp_path, photo_folder):
    """DND protocol: the reference is the same ISP's development of the noise-free capture, so the photo's own
    demosaicking error is not charged to the denoiser (`psnr_photo` still reports the score against the photo)."""
    from searched_models.evaluate import evaluate

    report = evaluate("denoise_raw", [str(photo_folder)], ["classical"], isos=[800, 3200], zoo_dir=tmp_path,
                      progress=lambda m: None)
    low, high = (g["rows"][0] for g in report["groups"])
    assert low["psnr"] > high["psnr"]                          # more noise, further from the clean development
    for row in (low, high):
        assert row["psnr"] > row["psnr_photo"] + 0.5           # the photo also charges demosaicking
    assert report["summary"][0]["psnr_photo"] == pytest.approx((low["psnr_photo"] + high["psnr_photo"]) / 2)


def test_zoo_status_reports_progress_pace_and_the_resume_command(tmp_path):
    from searched_models.zoo_status import format_status, zoo_status

    def card(name, role, done, steps, status, command):
        zoo.write_card({"name": name, "task": "sr_x2", "role": role, "spec": TINY,
                        "training": {"steps": steps, "steps_done": done, "status": status},
                        "validation": {"psnr": 30.0, "best_psnr": 30.5, "gain_last_quarter_db": 0.2, "plateau": False},
                        "provenance": {"command": command}}, tmp_path)
        zoo.weights_path("sr_x2", name, tmp_path).write_bytes(b"")
    card("big", "heavy", 100, 400, "training", "pixelnas train --task sr_x2 --name big --role=heavy --steps 400")
    card("small", "peer", 50, 50, "done", "pixelnas train --task sr_x2 --name small")
    card("nolog", "peer", 5, 50, "training", "pixelnas train --task sr_x2 --name nolog --resume")
    card("ended", "heavy", 400, 400, "done",           # trained as a candidate, made the heavy by set-role since
         "pixelnas train --task sr_x2 --name ended --role candidate --steps 400 --lr 1e-4")
    ended = zoo.read_card("sr_x2", "ended", tmp_path)
    ended["training"].update(lr=1e-4, restarts=[[300, 5e-5]])       # its last cycle: 300 → 400 at peak 5e-5
    zoo.write_card(ended, tmp_path)
    lines = [{"step": 25, "loss": 0.1, "sec_per_step": 9.0}, {"step": 50, "val_psnr": 29.0},
             {"step": 75, "loss": 0.1, "sec_per_step": 2.0}, {"step": 100, "loss": 0.1, "sec_per_step": 3.0}]
    zoo.log_path("sr_x2", "big", tmp_path).write_text("\n".join(json.dumps(e) for e in lines) + "\n{\"step\": 1")
    rows = {r["name"]: r for r in zoo_status(tmp_path)}
    assert rows["big"]["sec_per_step"] == 3.0 and rows["big"]["hours_left"] == pytest.approx(300 * 3.0 / 3600)
    assert rows["big"]["resume"] == "pixelnas train --task sr_x2 --name big --steps 400 --resume"
    assert rows["small"]["resume"] is None and rows["small"]["hours_left"] == 0.0
    assert rows["nolog"]["hours_left"] is None                # no pace logged yet: unknown, not zero
    assert rows["nolog"]["resume"].count("--resume") == 1
    assert rows["ended"]["resume"] is None and rows["small"]["restart"] is None          # a peer needs no plateau
    assert rows["ended"]["restart"] == ("pixelnas train --task sr_x2 --name ended --steps 500 --resume --restart "
                                        "--lr 5e-05")
    assert "another warm restart" in format_status(list(rows.values()))
    text = format_status(list(rows.values()))
    assert "--resume" in text and "100/400" in text and "+0.200" in text   # 3 decimals: +0.048 is not "+0.05"
    rows["big"]["resume"] += " --bf16"
    assert "drop --bf16" in format_status(list(rows.values()), bf16_cpu=False)
    assert "drop --bf16" not in format_status(list(rows.values()), bf16_cpu=True)


def test_zoo_status_cycles_lists_each_warm_restart_from_the_checkpoint_and_the_log(tmp_path):
    from safetensors.torch import save_file

    from searched_models.training_cycles import format_cycles
    from searched_models.zoo_status import format_status, zoo_status

    zoo.write_card({"name": "big", "task": "sr_x2", "role": "heavy", "spec": TINY,
                    "training": {"steps": 600, "steps_done": 500, "status": "training", "restarts": [[200, 5e-5]]},
                    "validation": {}, "provenance": {}}, tmp_path)
    zoo.write_card({"name": "plain", "task": "sr_x2", "role": "peer", "spec": TINY,
                    "training": {"steps": 50, "steps_done": 50, "status": "done"}, "validation": {}}, tmp_path)
    curve = [[100, 30.0], [200, 31.0], [300, 30.5], [400, 31.5]]           # the checkpoint's, complete
    save_file({"model.w": torch.zeros(1)}, str(zoo.weights_path("sr_x2", "big", tmp_path)),
              metadata={"meta": json.dumps({"step": 400, "history": {"curve": curve}})})
    zoo.weights_path("sr_x2", "plain", tmp_path).write_bytes(b"")
    log = [{"step": 300, "val_psnr": 99.0},                                # before the checkpoint: not used
           {"step": 500, "val_psnr": 30.0}, {"step": 500, "val_psnr": 31.0}]  # replayed after a kill: later wins
    zoo.log_path("sr_x2", "big", tmp_path).write_text("\n".join(json.dumps(e) for e in log) + '\n{"step": 5')
    rows = {r["name"]: r for r in zoo_status(tmp_path, cycles=True)}
    assert rows["plain"]["cycles"] is None and zoo_status(tmp_path)[0]["cycles"] is None
    initial, first = rows["big"]["cycles"]
    assert (initial["cycle"], initial["start"], initial["end"], initial["val_start"]) == ("initial", 0, 200, None)
    assert (initial["dip"], initial["best"], initial["gain_last_quarter_db"]) == (30.0, 31.0, None)
    assert (first["cycle"], first["start"], first["end"], first["peak_lr"]) == (1, 200, 500, 5e-5)
    assert (first["val_start"], first["dip"], first["dip_step"], first["best"], first["best_step"]) == \
        (31.0, 30.5, 300, 31.5, 400)
    assert first["val_end"] == 31.0 and first["gain_cycle_db"] == pytest.approx(0.0)
    assert first["gain_last_quarter_db"] == pytest.approx(-0.5)           # 400 → 500: the plateau rule's window
    text = format_status(list(rows.values()))
    assert format_cycles("sr_x2/big", rows["big"]["cycles"]) in text and "+0.00" in text and "5e-05" in text


def test_cpu_bf16_support_is_read_from_the_cpu_flags(tmp_path):
    from searched_models.bench_train import cpu_has_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_has_bf16(info) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_has_bf16(info) is False
    assert cpu_has_bf16(tmp_path / "missing") is None


def test_train_warns_about_bf16_only_on_a_cpu_without_bf16_units():
    from searched_models.bench_train import bf16_warning
    assert "slower than fp32" in bf16_warning(False)
    assert bf16_warning(True) is None
    assert bf16_warning(None) is None


def test_a_candidate_never_stands_in_for_the_registered_searched_model(tmp_path):
    from safetensors.torch import save_file

    from searched_models import cli

    def register(name, role):
        spec = normalise_spec({**TINY, "name": name})
        save_file({f"model.{k}": v.contiguous() for k, v in build(spec).state_dict().items()},
                  str(zoo.weights_path("sr_x2", name, tmp_path)))
        zoo.write_card({"name": name, "task": "sr_x2", "role": role, "spec": spec}, tmp_path)

    (tmp_path / "sr_x2").mkdir()
    register("trial23", "candidate")
    with pytest.raises(SettingError, match="No 'searched' model"):
        zoo.resolve_name("sr_x2", "searched", tmp_path)
    assert zoo.resolve_name("sr_x2", "trial23", tmp_path) == "trial23"      # still evaluable by name
    register("searched_sr", "searched")
    assert zoo.resolve_name("sr_x2", "searched", tmp_path) == "searched_sr"
    assert [c["name"] for c in zoo.list_models("sr_x2", tmp_path)] == ["trial23", "searched_sr"]
    train_parser = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    role_choices = next(a.choices for a in train_parser._actions if a.dest == "role")
    assert list(role_choices) == list(zoo.ROLES)

    # set-role: a finished candidate becomes the searched model, the previous one a candidate, both recorded
    with pytest.raises(SettingError, match="still training"):
        zoo.set_role("sr_x2", "trial23", "searched", "test", tmp_path)
    for name in ("trial23", "searched_sr"):
        card = zoo.read_card("sr_x2", name, tmp_path)
        zoo.write_card({**card, "training": {"status": "done"}}, tmp_path)
    assert cli.main(["set-role", "--task", "sr_x2", "--name", "trial23", "--role", "searched", "--zoo",
                     str(tmp_path)]) == 0
    assert zoo.resolve_name("sr_x2", "searched", tmp_path) == "trial23"
    old = zoo.read_card("sr_x2", "searched_sr", tmp_path)
    assert old["role"] == "candidate" and old["role_history"][-1]["from"] == "searched"
    assert zoo.read_card("sr_x2", "trial23", tmp_path)["role_history"][-1]["to"] == "searched"
    assert cli.main(["set-role", "--task", "sr_x2", "--name", "nosuch", "--role", "peer", "--zoo",
                     str(tmp_path)]) == 2


LUMA_SR = {"name": "luma_sr", "task": "sr_x2", "in_channels": 3, "out_channels": 3, "scale": 2, "unshuffle": 2,
           "luma": True, "stem": {"channels": 12, "act": "prelu"},
           "blocks": [{"type": "conv", "channels": 16}, {"type": "dynamic", "channels": 16, "experts": 2}],
           "global_residual": "bicubic", "residual_channels": 3}


def test_a_luma_network_changes_only_luma_and_its_macs_match():
    from isp.stages.enhance import LUMA_BT601

    torch.manual_seed(0)
    model = build(LUMA_SR).eval()
    torch.nn.init.normal_(model.tail[0].weight, std=0.1)   # a fresh tail is zero: make the network part count
    x = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, 40, 56) and model.stem[0].in_channels == 4 and model.tail[0].out_channels == 16
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    delta = (y - bicubic).numpy()
    assert np.abs(delta).max() > 0.01                                     # it does change the image …
    assert np.allclose(delta[:, 0], delta[:, 1], atol=1e-6) and np.allclose(delta[:, 0], delta[:, 2], atol=1e-6)
    luma_change = np.tensordot(LUMA_BT601, delta, axes=([0], [1]))         # … by the same amount in R', G', B',
    assert np.allclose(luma_change, delta[:, 0], atol=1e-5)               # i.e. in Y' alone (Cb, Cr untouched)
    cost = spec_cost(LUMA_SR)
    assert counted_macs(model, x) == pytest.approx(2 * cost.macs(20, 28), rel=1e-9)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert "luma_weight" not in model.state_dict()                        # a constant, not a weight to ship
    rgb = spec_cost({**LUMA_SR, "luma": False})
    assert cost.macs_per_pixel < rgb.macs_per_pixel


def test_luma_needs_rgb_in_and_out_with_a_residual():
    with pytest.raises(SpecError, match="luma network"):
        build({**EVERY_BLOCK, "luma": True})


PYRAMID_EN = {"name": "pyr", "task": "enhance", "in_channels": 3, "out_channels": 3, "pyramid": 4, "luma": True,
              "stem": {"channels": 8}, "blocks": [{"type": "rep", "channels": 8}, {"type": "residual", "kernel": 5}],
              "global_residual": "input", "residual_channels": 3}


@pytest.mark.parametrize("spec", [PYRAMID_EN, {**PYRAMID_EN, "luma": False, "pyramid": 6},
                                  {**PYRAMID_EN, "unshuffle": 2, "pyramid": 5},
                                  {**EVERY_BLOCK, "unshuffle": 1, "pyramid": 3,
                                   "blocks": [b for b in EVERY_BLOCK["blocks"] if b["type"] not in ("down", "up")]}],
                         ids=["luma", "rgb", "half-resolution-body", "raw-with-noise-map"])
def test_a_pyramid_network_starts_as_the_identity_and_its_macs_match(spec):
    torch.manual_seed(0)
    model = build(spec).eval()
    x = torch.rand(2, spec["in_channels"], 64, 96)
    r = spec["residual_channels"]
    with torch.no_grad():
        assert (model(x) - x[:, :r]).abs().max() < 1e-5            # zero tail: the pyramid collapses exactly
        torch.nn.init.normal_(model.tail[0].weight, std=0.1)
        y = model(x)
    assert y.shape == (2, r, 64, 96) and (y - x[:, :r]).abs().max() > 0.01
    bands = 1 if spec.get("luma") else r
    assert model.stem[0].in_channels == (2 * bands + (0 if spec.get("luma") else spec["in_channels"] - r)) * \
        spec.get("unshuffle", 1) ** 2
    cost = spec_cost(spec)
    assert counted_macs(model, x) == pytest.approx(2 * cost.macs(64, 96), rel=1e-9)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert "binomial" not in model.state_dict()                     # a constant, not a weight to ship
    flat = spec_cost({**spec, "pyramid": 0}) if spec["in_channels"] == 3 else None
    if flat is not None:                                            # one body over 1 + 1/4 + 1/16 … of the pixels
        assert cost.macs_per_pixel > flat.macs_per_pixel


def test_pyrup_as_polyphase_filters_equals_zero_insertion_and_blur():
    from searched_models.spec import BINOMIAL_5, polyphase_up_filters

    taps = torch.tensor(BINOMIAL_5) / 16
    kernel = 4 * torch.outer(taps, taps)
    coarse = torch.rand(1, 1, 9, 14)
    fine = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(coarse, polyphase_up_filters(kernel),
                                                                        padding=1), 2)
    reference = torch.nn.functional.conv_transpose2d(coarse, kernel[None, None], stride=2, padding=2,
                                                     output_padding=1)
    assert fine.shape == (1, 1, 18, 28) and torch.allclose(fine, reference, atol=1e-6)


def test_a_tiled_pyramid_network_equals_the_untiled_one():
    spec = {**PYRAMID_EN, "pyramid": 4, "unshuffle": 2}
    torch.manual_seed(0)
    model = build(spec).eval()
    torch.nn.init.normal_(model.tail[0].weight, std=0.1)
    x = np.random.default_rng(0).random((3, 150, 203), dtype=np.float32)
    whole, tiled = run_chw(model, x, tile=None), run_chw(model, x, tile=48)
    assert whole.shape == tiled.shape == (3, 150, 203)
    assert np.abs(whole - tiled).max() < 1e-4 and np.abs(whole - x).max() > 0.01
    assert stride_multiple(spec) == 16 and receptive_radius(spec) > 50


def test_training_refuses_a_patch_the_network_cannot_take(tmp_path, photo_folder):
    from searched_models.train import TrainConfig, train

    spec = {**PYRAMID_EN, "pyramid": 6}                              # stride 32
    with pytest.raises(SettingError, match="--patch 40 must be a multiple of 32"):
        train(TrainConfig(task="enhance", name="pyr", spec=spec, images=str(photo_folder), steps=2, batch=1, patch=40,
                          zoo_dir=str(tmp_path), threads=1))
    assert not list(tmp_path.rglob("*.safetensors"))


def test_a_warm_restart_starts_a_new_cosine_cycle_that_later_resumes_keep(tmp_path, photo_folder, capsys):
    """--restart: a new warm-up + cosine cycle from the checkpoint's step, peaking at the new lr; recorded in the
    card; a later plain resume keeps that cycle instead of falling back to the first one."""
    from searched_models.train import TrainConfig, learning_rate, train
    from searched_models.zoo_status import resume_command

    def cfg(steps, lr=2e-4):
        return TrainConfig(task="sr_x2", name="tiny", spec=TINY, images=str(photo_folder), steps=steps, batch=2,
                           patch=24, ckpt_every=5, log_every=1, zoo_dir=str(tmp_path), threads=1, warmup=2, lr=lr)

    train(cfg(10))
    with pytest.raises(Exception, match="--steps beyond"):
        train(cfg(10, lr=5e-5), resume=True, restart=True)
    card = train_until_sigterm(cfg(30, lr=5e-5), 5, resume=True, restart=True)
    assert card["training"]["steps_done"] == 15 and card["training"]["restarts"] == [[10, 5e-5]]
    log = [json.loads(line) for line in (tmp_path / "sr_x2" / "tiny.log.jsonl").read_text().splitlines()]
    lrs = {e["step"]: e["lr"] for e in log if "lr" in e}
    assert lrs[9] > lrs[10] and lrs[10] < 1e-5                 # the first cycle decayed to its end …
    assert lrs[11] == pytest.approx(5e-5 / 2) and lrs[12] == pytest.approx(5e-5)   # … the new one warms up again

    later = cfg(30)                                            # a plain resume, default lr: keeps the new cycle
    card = train(later, resume=True)
    out = capsys.readouterr().out
    assert "continuing the warm restart's cycle from step 10 (peak lr 5e-05" in out and "lr 0.0002 would need" in out
    assert (later.cycle_start, later.lr) == (10, 5e-5) and card["training"]["restarts"] == [[10, 5e-5]]
    assert learning_rate(later, 30) == pytest.approx(5e-5 * 0.01)          # the new cycle ends at --steps
    with pytest.raises(Exception, match="--resume"):
        train(cfg(40, lr=1e-4), restart=True)
    card["provenance"]["command"] = "pixelnas train --task sr_x2 --name tiny --steps 30 --lr 5e-05 --resume --restart"
    assert resume_command(card) == "pixelnas train --task sr_x2 --name tiny --steps 30 --lr 5e-05 --resume"
    from searched_models.zoo_status import restart_command     # finished, still rising: one more cycle of 20
    assert restart_command(card) == ("pixelnas train --task sr_x2 --name tiny --steps 50 --resume --restart "
                                     "--lr 5e-05")


def test_a_resumed_run_keeps_its_cards_role_and_needs_a_checkpoint(tmp_path):
    from isp.errors import InputError
    from searched_models.cli import resumed_role

    with pytest.raises(InputError, match="Nothing to resume"):
        resumed_role("sr_x2", "tiny", None, tmp_path)                 # a mistyped name does not start a new run
    zoo.weights_path("sr_x2", "tiny", tmp_path).parent.mkdir(parents=True)
    zoo.weights_path("sr_x2", "tiny", tmp_path).write_bytes(b"")
    zoo.write_card({"name": "tiny", "task": "sr_x2", "role": "searched"}, tmp_path)
    assert resumed_role("sr_x2", "tiny", None, tmp_path) == "searched"     # not the name-based default, peer
    assert resumed_role("sr_x2", "tiny", "searched", tmp_path) == "searched"
    with pytest.raises(InputError, match="set-role"):
        resumed_role("sr_x2", "tiny", "candidate", tmp_path)
