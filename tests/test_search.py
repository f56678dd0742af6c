"""PixelNAS search: the space (buildable, within budget, contains the peers), the NSGA-II search loop
(JSONL log, report, register), resume after SIGKILL and two workers sharing one storage."""
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from isp.io import load_image, save_image
from searched_models import search, search_log, search_report, space, zoo
from searched_models.cost import counted_macs, spec_cost
from searched_models.spec import SpecError, build, load_spec

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {"sr_x2": 3000.0, "denoise_raw": 2000.0, "enhance": 1500.0}     # MACs per input pixel (floors ≈ 300–600)
PEERS = [("sr_x2", "fsrcnn"), ("sr_x2", "espcn"), ("sr_x2", "fsrcnn_y"), ("sr_x2", "espcn_y"), ("sr_x2", "ecbsr_m4c16"), ("denoise_raw", "dncnn_small"), ("denoise_raw", "pmrid_small"),
         ("enhance", "resnet_small")]
TINY = ["--proxy-steps", "3", "--batch", "2", "--patch", "16", "--val-limit", "2", "--val-crop", "64",
        "--threads", "1", "--population", "4", "--latency-size", "64"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, assets_dir):
    """Tiny training (96²) and validation (64²) crops of the shipped photos."""
    root = tmp_path_factory.mktemp("search_data")
    for i, name in enumerate(("astronaut_nasa.png", "text_chart.png", "dog_ja-san-miguel_unsplash.jpg")):
        image = load_image(assets_dir / name)
        save_image(root / "train" / f"{i}.png", image[:96, :96])
        save_image(root / "val" / f"{i}.png", image[96:160, 96:160])
    return root / "train", root / "val"


@pytest.fixture
def espcn_fsrcnn(tmp_path, monkeypatch):
    """The sr_x2 peer list cut to espcn and fsrcnn, so a test's first trials stay the same when a peer is added."""
    specs = tmp_path / "peer_specs"
    (specs / "sr_x2").mkdir(parents=True)
    for name in ("espcn", "fsrcnn"):
        (specs / "sr_x2" / f"{name}.json").write_text((search.SPEC_DIR / "sr_x2" / f"{name}.json").read_text())
    monkeypatch.setattr(search, "SPEC_DIR", specs)


def search_args(task, folders, zoo_dir, *extra):
    return ["--task", task, "--images", str(folders[0]), "--val-images", str(folders[1]), "--zoo", str(zoo_dir),
            *TINY, *extra]


def cli(*args):
    return subprocess.Popen([sys.executable, "-m", "searched_models.search", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("task", sorted(BUDGETS))
def test_sampled_specs_always_build_within_budget(task):
    budget = BUDGETS[task]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    specs, repaired = set(), 0
    for i in range(100):
        trial = study.ask()
        params = space.sample_params(trial, task)
        fixed, moves = space.repair(params, task, budget)
        if i % 5 == 0:
            assert space.repair(params, task, budget) == (fixed, moves)              # deterministic
        spec = space.spec_from_params(fixed, task)
        cost = spec_cost(spec)
        assert cost.macs_per_pixel + cost.macs_per_image / 1e6 <= budget
        if not moves:
            assert fixed == params and space.budget_macs(space.spec_from_params(params, task)) <= budget
        repaired += bool(moves)
        model = build(spec)
        if i % 15 == 0:                                   # the analytic count is what the module really does
            x = torch.rand(1, spec["in_channels"], 32, 32)
            assert model.eval()(x).shape[-1] == 32 * spec["scale"]
            assert counted_macs(model, x) == pytest.approx(cost.macs(32, 32), rel=1e-9)
            assert cost.params == sum(p.numel() for p in model.parameters())
        specs.add(json.dumps(space.canonical(spec), sort_keys=True))
        study.tell(trial, 0.0)
    assert repaired > 0 and len(specs) > 80              # repair happens, and does not collapse the space


def test_repair_bottoms_out_at_the_floor_and_refuses_lower_budgets():
    task = "sr_x2"
    biggest = space.params_for_spec({"task": task, "in_channels": 3, "out_channels": 3, "scale": 2,
                                     "stem": {"channels": 64, "kernel": 5, "act": "relu"},
                                     "blocks": [{"type": "dynamic", "channels": 64, "kernel": 7, "repeat": 8}],
                                     "tail": {"kernel": 5}, "global_residual": "bicubic"}, task)
    floor = space.floor_spec(task)
    fixed, moves = space.repair(biggest, task, space.budget_macs(floor))
    assert space.canonical(space.spec_from_params(fixed, task)) == space.canonical(floor)
    assert [m.split("=")[0].split("×")[0].split("≤")[0] for m in moves] == \
        ["width", "kernels", "blocks", "types", "luma", "unshuffle"]
    with pytest.raises(SpecError, match="cheapest"):
        space.repair(biggest, task, space.budget_macs(floor) - 1)
    # a residual block turned conv keeps the width it ran at, so a residual genome reaches the floor too
    residual = space.params_for_spec(zoo.named_spec("enhance", "resnet_small"), "enhance")
    fixed, _ = space.repair(residual, "enhance", space.budget_macs(space.floor_spec("enhance")))
    assert space.canonical(space.spec_from_params(fixed, "enhance")) == space.canonical(space.floor_spec("enhance"))
    with pytest.raises(search.SettingError, match="below the cheapest"):
        search.resolve_budget(task, 100.0, None)
    assert search.parse_macs("12k") == 12000 and search.parse_macs("1.5M") == 1.5e6


@pytest.mark.parametrize("task, name", PEERS, ids=lambda v: v)
def test_peers_are_points_of_the_space(task, name):
    peer = zoo.named_spec(task, name)
    params = space.params_for_spec(peer, task)
    assert space.sample_params(optuna.trial.FixedTrial(params), task) == params
    rebuilt = space.spec_from_params(space.sample_params(optuna.trial.FixedTrial(params), task), task, name=name)
    assert space.canonical(rebuilt) == space.canonical(peer)
    assert spec_cost(rebuilt) == spec_cost(peer)
    # the same genome enqueued in a real NSGA-II study comes back unchanged
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.NSGAIISampler(seed=0))
    study.enqueue_trial(params, user_attrs={"peer": name})
    trial = study.ask()
    assert space.sample_params(trial, task) == params and trial.user_attrs["peer"] == name


def test_the_heavy_originals_of_sr_and_enhance_are_outside_the_space():
    for task, name in (("sr_x2", "edsr_baseline"), ("enhance", "resnet_heavy")):
        with pytest.raises(SpecError, match="17 body blocks"):
            space.params_for_spec(zoo.named_spec(task, name), task)


def write_heavy_card(zoo_dir, psnr=31.0):
    spec = zoo.named_spec("sr_x2", "edsr_baseline")
    cost = spec_cost(spec)
    card = {"name": "edsr_baseline", "task": "sr_x2", "role": "heavy", "spec": spec, "params": cost.params,
            "macs_per_input_pixel": cost.macs_per_pixel, "macs_per_input_mp": cost.macs_per_mp(),
            "training": {"status": "training", "steps": 10, "steps_done": 1}, "validation": {"psnr": psnr}}
    zoo.write_card(card, zoo_dir)
    return cost.macs_per_pixel


def test_search_smoke_writes_log_report_and_registers(tmp_path, folders, capsys, monkeypatch, espcn_fsrcnn):
    cache_root = tmp_path / "cache"
    monkeypatch.setenv("PIXELNAS_CACHE", str(cache_root))
    zoo_dir, spec_dir = tmp_path / "zoo", tmp_path / "specs"
    heavy_macs = write_heavy_card(zoo_dir)
    ratio = 3000.0 / heavy_macs
    args = search_args("sr_x2", folders, zoo_dir, "--budget-ratio", str(ratio), "--trials", "3", "--report")
    assert search.main(args) == 0
    out = capsys.readouterr().out
    assert "queued peer espcn" in out and "queued peer fsrcnn" in out and "Pareto front" in out
    assert "queued espcn repaired into the budget as a seed trial" in out
    assert out.count("] trial ") == 3                                         # one line per finished trial
    records = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl")
    assert [r["number"] for r in records] == [0, 1, 2] and {r["status"] for r in records} == {"complete"}
    assert [r["peer"] for r in records] == ["espcn", None, None]              # peers first, same proxy treatment
    assert records[1]["seed_from"] == "espcn" and records[1]["repair"]          # then its repaired seed
    assert records[2]["seed_from"] == "espcn+rep" and records[2]["repair"]      # and its re-parameterised twin
    assert [b["type"] for b in records[2]["spec"]["blocks"]] == ["rep"]
    assert records[2]["macs_per_input_pixel"] == records[1]["macs_per_input_pixel"]   # rep runs as the same conv
    generations = [t.system_attrs.get("NSGAIISampler:generation")
                   for t in trials_of(str(zoo_dir / "sr_x2" / "search.journal")) if t.state.name == "COMPLETE"]
    assert generations == [0, 0, 0]             # the enqueued peer and seeds are in the first generation (parents)
    for r in records:
        assert set(r) >= {"spec", "macs_per_input_pixel", "macs_per_input_mp", "params", "latency_ms_per_mp",
                          "proxy_psnr", "status", "seed", "study", "duration_s"}
        assert r["macs_per_input_pixel"] == spec_cost(r["spec"]).macs_per_pixel and r["latency_ms_per_mp"] > 0
    assert not records[0]["feasible"] and records[1]["feasible"]              # peers over budget, searched within
    assert records[1]["macs_per_input_pixel"] <= 3000.0 + 1e-6
    refs = json.loads((zoo_dir / "sr_x2" / "search_references.json").read_text())
    assert refs["heavy"] is None and 15 < refs["classical"] < 60                 # bicubic on the same crops
    assert "references on the proxy validation crops: classical" in out
    png = zoo_dir / "sr_x2" / "pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
    drawn, real_draw = [], search_report.draw_pareto
    monkeypatch.setattr(search_report, "draw_pareto", lambda *args: drawn.append(args) or png)
    search_report.report("sr_x2", str(zoo_dir / "sr_x2" / "search.journal"), "pixelnas-sr_x2", zoo_dir)
    assert drawn[-1][5] == refs                                  # this study's own references are drawn
    (zoo_dir / "sr_x2" / "search_references.json").write_text(json.dumps({**refs, "study": "another"}))
    search_report.report("sr_x2", str(zoo_dir / "sr_x2" / "search.journal"), "pixelnas-sr_x2", zoo_dir)
    assert drawn[-1][5] is None and "measured for another" in drawn[-1][4]   # not another study's crops
    monkeypatch.setattr(search_report, "draw_pareto", real_draw)
    (zoo_dir / "sr_x2" / "search_references.json").write_text(json.dumps(refs))

    # rerunning with the same N does nothing; other settings are refused with a reason
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--budget-ratio", str(ratio), "--trials", "3")) == 0
    assert len(search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl")) == 3
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "5000", "--trials", "4")) == 2
    assert "other settings" in capsys.readouterr().err
    other_val = tmp_path / "other_val"                           # same settings, other photos: refused too
    for path in sorted(folders[1].iterdir()):
        save_image(other_val / path.name, load_image(path)[::-1])
    assert search.main(search_args("sr_x2", (folders[0], other_val), zoo_dir, "--budget-ratio", str(ratio),
                                   "--trials", "4")) == 2
    err = capsys.readouterr().err
    assert "other validation photos" in err and str(other_val) in err and "training images" not in err
    assert len(search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl")) == 3
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "1", "--study",
                                   "distil", "--teacher", "heavy")) == 2
    assert "trained first" in capsys.readouterr().err                        # the heavy has a card, no weights

    assert search.main(["--task", "sr_x2", "--zoo", str(zoo_dir), "--latency", "1,2", "--latency-size", "24"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("edsr_baseline") and [line.split()[:2] for line in table[3:]] == \
        [["trial", "1"], ["trial", "2"]]
    assert all(float(line.split()[-1]) > 1.0 for line in table[3:])         # both far cheaper than EDSR
    assert search.main(["--task", "sr_x2", "--zoo", str(zoo_dir), "--latency", "7"]) == 2

    assert search.main(["--task", "sr_x2", "--zoo", str(zoo_dir), "--register", "1", "--as", "found",
                        "--spec-dir", str(spec_dir)]) == 0
    spec = load_spec(spec_dir / "sr_x2" / "found.json")
    assert spec["name"] == "found" and spec["search"]["trial"] == 1 and spec["search"]["seed_from"] == "espcn"
    assert spec["search"]["proxy_psnr"] == pytest.approx(records[1]["proxy_psnr"])
    assert space.canonical(spec) == space.canonical(records[1]["spec"])
    capsys.readouterr()
    assert search.main(["--task", "sr_x2", "--zoo", str(zoo_dir), "--register", "1", "--as", "found",
                        "--spec-dir", str(spec_dir)]) == 0                  # the same trial again: kept as it is
    out = capsys.readouterr().out
    assert "already registered (unchanged)" in out and "--role searched --recipe light" in out   # no searched yet
    assert search.main(["--task", "sr_x2", "--zoo", str(zoo_dir), "--register", "2", "--as", "found",
                        "--spec-dir", str(spec_dir)]) == 2                  # another trial under that name: refused
    assert load_spec(spec_dir / "sr_x2" / "found.json")["search"]["trial"] == 1
    from searched_models.train import TrainConfig, train

    common = dict(task="sr_x2", images=str(folders[0]), steps=2, batch=2, patch=16, threads=1, warmup=1)
    card = train(TrainConfig(name="found", spec=spec, role="searched", zoo_dir=str(tmp_path / "trained"), **common))
    assert card["search"]["study"] == "pixelnas-sr_x2" and card["role"] == "searched"

    # with a trained heavy in the zoo, distillation works (teacher outputs cached with the batches)
    train(TrainConfig(name="teacher", spec=records[0]["spec"], role="heavy", zoo_dir=str(zoo_dir), **common))
    url = f"sqlite:///{tmp_path / 'search.db'}"                              # and any Optuna RDB URL works
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "1", "--study",
                                   "distil", "--teacher", "heavy", "--no-peers", "--storage", url)) == 0
    assert [t.state.name for t in trials_of(url, "distil")] == ["COMPLETE"]
    distilled = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl", study="distil")
    assert [r["status"] for r in distilled] == ["complete"] and distilled[0]["proxy_psnr"] > 10
    assert distilled[0]["teacher_steps"] == 2
    # the study's teacher is pinned: with the zoo's heavy gone (or retrained), a resumed run distils from the
    # snapshot, and the proxy's batches come back from the disk cache
    assert (zoo_dir / "sr_x2" / "distil.teacher.safetensors").exists()
    cached = sorted(p.name for p in cache_root.glob("proxy-sr_x2-*/*.safetensors"))
    assert "0.safetensors" in cached and "2.safetensors" in cached
    zoo.weights_path("sr_x2", "teacher", zoo_dir).unlink()
    capsys.readouterr()
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "2", "--study",
                                   "distil", "--teacher", "heavy", "--no-peers", "--storage", url)) == 0
    assert "pinned for this study in distil.teacher.safetensors" in capsys.readouterr().out
    again = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl", study="distil")
    assert [r["teacher_steps"] for r in again] == [2, 2]
    assert sorted(p.name for p in cache_root.glob("proxy-sr_x2-*/*.safetensors")) == cached
    # another study can distil from the same pinned file instead of pinning its own copy
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "1", "--study",
                                   "shared", "--teacher", "heavy", "--teacher-pin", "distil", "--no-peers",
                                   "--storage", url)) == 0
    assert "pinned by another study in distil.teacher.safetensors" in capsys.readouterr().out
    shared = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl", study="shared")
    assert [r["teacher_steps"] for r in shared] == [2]
    assert not (zoo_dir / "sr_x2" / "shared.teacher.safetensors").exists()
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "1", "--study",
                                   "other", "--teacher", "heavy", "--teacher-pin", "nosuch", "--no-peers")) == 2
    assert "nosuch.teacher.safetensors does not exist" in capsys.readouterr().err
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "1", "--study",
                                   "other", "--teacher-pin", "distil", "--no-peers")) == 2
    assert "give --teacher heavy too" in capsys.readouterr().err
    # a lost pin is not silently replaced by another checkpoint of the heavy
    (zoo_dir / "sr_x2" / "distil.teacher.safetensors").unlink()
    train(TrainConfig(name="teacher", spec=records[0]["spec"], role="heavy", zoo_dir=str(zoo_dir), seed=1, **common))
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "3", "--study",
                                   "distil", "--teacher", "heavy", "--no-peers", "--storage", url)) == 2
    assert "restore the study's" in capsys.readouterr().err


def test_a_latency_rule_prunes_slow_networks_untrained_and_keeps_peers_as_references(tmp_path, folders, capsys,
                                                                                    espcn_fsrcnn):
    """--min-speedup X: each network is timed against the heavy before training; a sampled one under the rule is
    pruned untrained, a peer is still trained but is infeasible; the rule is part of the study's settings, and
    studies that differ only in it share proxy results."""
    zoo_dir = tmp_path / "zoo"
    write_heavy_card(zoo_dir)
    args = search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "3", "--report")
    assert search.main([*args, "--min-speedup", "1e9"]) == 0         # no network is a billion times faster
    out = capsys.readouterr().out
    records = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl")
    assert [r["status"] for r in records] == ["complete", "pruned", "pruned"]
    peer, pruned = records[0], records[1:]
    assert peer["peer"] == "espcn" and peer["proxy_psnr"] > 10 and not peer["feasible"] and not peer["fast_enough"]
    assert all(r["proxy_psnr"] is None and "under the 1e+09x rule" in r["rejected"] for r in pruned)
    assert all(r["within_budget"] and not r["feasible"] and 1 < r["speedup"] < 1e9 for r in records[1:])
    assert all(r["heavy_latency_ms_per_mp"] > r["untrained_latency_ms_per_mp"] > 0 for r in records)
    assert out.count("not trained") == 2 and "TOO SLOW" in out
    assert "latency rule" in out                                    # the report says why the peer is off the front
    assert search.main([*args, "--min-speedup", "2"]) == 2           # the rule is a setting of the study
    assert "min_speedup 1000000000.0 (now 2.0)" in capsys.readouterr().err

    args = search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "2", "--study", "fast",
                       "--no-peers", "--min-speedup", "1.01")
    assert search.main(args) == 0                                    # tiny nets beat EDSR easily
    fast = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl", study="fast")
    assert [r["status"] for r in fast] == ["complete", "complete"]
    assert all(r["feasible"] and r["fast_enough"] and r["speedup"] > 1.01 for r in fast)
    # a study with the same proxy (only the rule differs) takes over the peer's result instead of training it again
    args = search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "3", "--study", "again",
                       "--min-speedup", "1.01")
    assert search.main(args) == 0
    assert "completed trials of other studies with this proxy" in capsys.readouterr().out
    again = search.read_trials_jsonl(zoo_dir / "sr_x2" / "search_trials.jsonl", study="again")
    assert again[0]["duplicate_of_study"] == "pixelnas-sr_x2" and again[0]["duplicate_of"] == 0
    assert again[0]["proxy_psnr"] == peer["proxy_psnr"] and again[0]["fast_enough"]
    assert [r["status"] for r in again] == ["complete"] * 3 and again[1]["duplicate_of"] is None
    assert search.main(["--task", "sr_x2", "--zoo", str(tmp_path / "empty"), "--images", str(folders[0]),
                        "--val-images", str(folders[1]), "--max-macs", "3000", "--trials", "1",
                        "--min-speedup", "30"]) == 2
    assert "compares with the heavy original" in capsys.readouterr().err


def test_a_study_made_before_data_fingerprints_records_the_first_run_s_and_then_holds_to_it():
    class Study:
        study_name, user_attrs = "old", {}

        def set_user_attr(self, key, value):
            self.user_attrs[key] = value

    study, notes = Study(), []
    mine = {"train": "a1", "val": "b1", "images": "/data/train", "val_images": "/data/val"}
    search.check_data(study, mine, "journal", notes.append)
    assert study.user_attrs["data"] == mine and "predates data fingerprints" in notes[0]
    search.check_data(study, {**mine, "images": "/elsewhere/train"}, "journal", notes.append)  # a copy elsewhere
    assert len(notes) == 1
    with pytest.raises(search.SettingError, match=r"other training images \(/data/train then, /new now\)"):
        search.check_data(study, {**mine, "train": "a2", "images": "/new"}, "journal")
    study.user_attrs["data"] = {"images": "/data/train"}                    # an incomplete record counts as none
    search.check_data(study, {**mine, "train": "a2"}, "journal", notes.append)
    assert study.user_attrs["data"]["train"] == "a2" and len(notes) == 2


def test_proxy_twins_come_only_from_studies_on_the_same_photos(tmp_path):
    cfg = search.SearchConfig(task="sr_x2", max_macs=3000.0, trials=1, images="a", val_images="b")
    storage = str(tmp_path / "search.journal")
    backend = search.open_storage(storage)
    data = {"train": "t1", "val": "v1", "images": "a", "val_images": "b"}
    mine = optuna.create_study(study_name="mine", storage=backend, directions=["maximize", "minimize"])
    mine.set_user_attr("data", data)
    espcn = zoo.named_spec("sr_x2", "espcn")
    for i, (name, theirs) in enumerate((("same", data), ("other_val", {**data, "val": "v2"}), ("legacy", None))):
        other = optuna.create_study(study_name=name, storage=backend, directions=["maximize", "minimize"])
        other.set_user_attr("settings", cfg.settings())
        if theirs:
            other.set_user_attr("data", theirs)
        spec = {**espcn, "blocks": [{**espcn["blocks"][0], "channels": 8 + 4 * i}, *espcn["blocks"][1:]]}
        other.add_trial(optuna.trial.create_trial(values=[30.0, 1000.0],
                                                  user_attrs={"spec": spec, "metrics": {"proxy_psnr": 30.0}}))
    assert sorted(name for name, _ in search.proxy_twins(storage, mine, cfg).values()) == ["legacy", "same"]


def test_a_front_member_with_conv_blocks_gets_its_rep_twin_queued_once():
    """--rep-twins: a searched trial on the feasible front with plain conv blocks queues the same network with rep
    blocks (same MACs), once; peers, dominated trials and runs without the flag queue nothing."""
    from searched_models.search_log import record_from_trial

    cfg = search.SearchConfig(task="sr_x2", max_macs=3000.0, trials=10, images="", val_images="", rep_twins=True)
    genome, _ = space.repair(space.params_for_spec(zoo.named_spec("sr_x2", "espcn"), "sr_x2"), "sr_x2", 3000.0)
    conv = space.spec_from_params(genome, "sr_x2")

    def study_with(*trials):
        study = optuna.create_study(directions=["maximize", "minimize"])
        for psnr, attrs in trials:
            macs = spec_cost(conv).macs_per_mp()
            study.add_trial(optuna.trial.create_trial(values=[psnr, macs], user_attrs={
                "spec": conv, **attrs, "metrics": {"proxy_psnr": psnr, "macs_per_input_mp": macs, "feasible": True}}))
        return study, [record_from_trial(t, "s") for t in study.trials]

    study, (dominated, peer) = study_with((28.0, {}), (28.5, {"peer": "espcn"}))
    assert search.queue_rep_twin(study, peer, cfg) is None               # peers are references, not searched
    assert search.queue_rep_twin(study, dominated, cfg) is None          # dominated by the peer: not on the front
    study, (record,) = study_with((28.0, {}))
    assert search.queue_rep_twin(study, record, cfg) == 0
    waiting = [t for t in study.get_trials(deepcopy=False) if t.state.name == "WAITING"]
    assert len(waiting) == 1 and waiting[0].user_attrs == {"seed_from": "trial0+rep", "rep_twin_of": 0}
    twin = space.spec_from_params(waiting[0].system_attrs["fixed_params"], "sr_x2")
    assert [b["type"] for b in twin["blocks"]] == ["rep"]
    assert spec_cost(twin).macs_per_mp() == spec_cost(conv).macs_per_mp()
    assert search.queue_rep_twin(study, record, cfg) is None             # once
    off = search.SearchConfig(task="sr_x2", max_macs=3000.0, trials=10, images="", val_images="")
    assert search.queue_rep_twin(study, record, off) is None             # only with --rep-twins


def trials_of(storage, study="pixelnas-sr_x2"):
    return optuna.load_study(study_name=study, storage=search.open_storage(storage)).get_trials()


def running_trials(storage):
    if "://" not in storage and not Path(storage).exists():
        return []
    try:
        return [t for t in trials_of(storage) if t.state.name == "RUNNING"]
    except (KeyError, search.SettingError):              # the study (or database) is not created yet
        return []


def check_log_matches_study(log_path, trials):
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    complete_lines = collections.Counter(r["number"] for r in lines if r["status"] == "complete")
    assert max(complete_lines.values()) == 1                                   # no completed trial logged twice
    done = {t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert set(complete_lines) == done


def test_search_resumes_after_sigkill_without_losing_trials(tmp_path, folders, capsys):
    zoo_dir = tmp_path / "zoo"
    storage = str(zoo_dir / "sr_x2" / "search.journal")
    args = search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "3", "--no-peers",
                       "--proxy-steps", "40")
    proc = cli(*args)
    victim, deadline = None, time.time() + 300               # generous: a loaded machine starts slowly
    while victim is None and time.time() < deadline and proc.poll() is None:
        running = [t for t in running_trials(storage) if t.number >= 1 and "spec" in t.user_attrs]
        if running:                                       # trial ≥ 1 is sampled and training: kill it now,
            proc.send_signal(signal.SIGSTOP)              # frozen first so it cannot finish the trial meanwhile
            if trials_of(storage)[running[0].number].state.name == "RUNNING":
                victim = running[0].number
                proc.send_signal(signal.SIGKILL)
            else:
                proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    proc.wait()
    assert victim is not None, proc.stdout.read()
    assert trials_of(storage)[victim].state.name == "RUNNING"                 # killed mid-trial

    assert search.main(args) == 0                         # the rerun (in this process) takes over
    out = capsys.readouterr().out
    assert f"trial {victim} abandoned" in out
    trials = trials_of(storage)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3 and not [t for t in trials if t.state.name == "RUNNING"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == victim]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == trials[victim].params
    check_log_matches_study(zoo_dir / "sr_x2" / "search_trials.jsonl", trials)


def test_two_workers_share_one_journal(tmp_path, folders, capsys, monkeypatch):
    zoo_dir = tmp_path / "zoo"
    url = str(tmp_path / "shared" / "search.journal")
    args = search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "4", "--storage", url)
    started, run_trial = [], search.run_trial            # one worker in this process, one in a subprocess

    def first_trial_waits_for_the_other_worker(study, trial, *rest):
        """This worker holds its first trial (its heartbeat keeps the claim) while the other worker, started
        only now, finishes one: both do work however slowly either starts on a loaded machine."""
        if not started:
            started.append(cli(*args, "--seed", "1"))
            other, deadline = started[0], time.time() + 300
            while time.time() < deadline and other.poll() is None and not any(
                    t.state.name == "COMPLETE" and (t.user_attrs.get("worker") or {}).get("pid") == other.pid
                    for t in trials_of(url)):
                time.sleep(0.2)
        return run_trial(study, trial, *rest)

    monkeypatch.setattr(search, "run_trial", first_trial_waits_for_the_other_worker)
    try:
        assert search.main([*args, "--seed", "2"]) == 0
        other = started[0]
        outputs = [other.communicate(timeout=300)[0], capsys.readouterr().out]
    finally:
        if started and started[0].poll() is None:
            started[0].kill()
    assert other.returncode == 0, outputs
    trials = trials_of(url)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4                                                    # exactly N in total
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "FAIL")
    assert all(sum(f"trial {t.number:>3} " in o for o in outputs) == 1 for t in complete)   # each ran once
    assert all(o.count("] trial ") >= 1 for o in outputs)                      # both workers did work
    assert sum(t.user_attrs.get("peer") is not None for t in complete) == 2      # peers queued once
    check_log_matches_study(zoo_dir / "sr_x2" / "search_trials.jsonl", trials)


def test_a_failing_network_is_recorded_and_the_search_goes_on(folders, tmp_path, monkeypatch):
    """A trial whose network fails (deterministically) is logged as FAIL with its error, not re-queued forever."""
    from searched_models.search_proxy import Proxy

    real = Proxy.evaluate
    calls = {"n": 0}

    def flaky(self, spec):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("this network cannot be trained")
        return real(self, spec)

    monkeypatch.setattr(Proxy, "evaluate", flaky)
    zoo_dir = tmp_path / "zoo"
    assert search.main(search_args("sr_x2", folders, zoo_dir, "--max-macs", "3000", "--trials", "3",
                                   "--no-peers")) == 0
    study = optuna.load_study(study_name="pixelnas-sr_x2",
                              storage=search.open_storage(str(zoo_dir / "sr_x2" / "search.journal")))
    states = collections.Counter(t.state.name for t in study.trials)
    assert states["COMPLETE"] == 3 and states["FAIL"] == 1
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert "cannot be trained" in failed.user_attrs["error"]
    assert not any(t.state.name == "WAITING" for t in study.trials)     # not queued again


@pytest.mark.parametrize("task_name", ["sr_x2", "denoise_raw", "enhance"])
def test_every_task_has_a_classical_prediction_on_its_validation_pairs(task_name):
    from searched_models.tasks import get_task

    task = get_task(task_name)
    photo = np.clip(np.random.default_rng(1).random((64, 64, 3), dtype=np.float32) * 0.6 + 0.2, 0, 1)
    x, y = task.val_pairs([photo], seed=0)[0]
    out = task.classical(x)
    assert out.shape == y.shape and np.isfinite(task.score(out, y))
    if task_name == "denoise_raw":                        # the classical denoiser beats the noisy input
        assert task.score(out, y) > task.score(x[:4], y)


def test_registered_cards_name_a_journal_inside_the_repo_by_a_relative_path():
    from searched_models.search_report import _portable

    root = zoo.ZOO_DIR.parents[1]
    assert _portable(str(root / "searched_models" / "zoo" / "sr_x2" / "search.journal")) == \
        "searched_models/zoo/sr_x2/search.journal"
    assert _portable("sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"


def test_the_luma_gene_is_searched_for_rgb_tasks_only():
    for task in ("sr_x2", "enhance", "denoise_raw"):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        params = space.sample_params(trial, task)
        assert ("luma" in params) == (task in space.LUMA_TASKS)
    spec = {**zoo.named_spec("sr_x2", "espcn"), "luma": True}
    params = space.params_for_spec(spec, "sr_x2")
    assert params["luma"] is True and space.spec_from_params(params, "sr_x2")["luma"] is True
    floor = space.floor_spec("sr_x2")
    assert space.budget_macs(floor) < space.budget_macs({**floor, "luma": False})


def test_the_pyramid_gene_is_searched_for_enhance_only_and_repair_can_turn_it_off():
    for task in ("sr_x2", "enhance", "denoise_raw"):
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        assert ("pyramid" in space.sample_params(trial, task)) == (task in space.PYRAMID_TASKS)
    spec = {**zoo.named_spec("enhance", "resnet_small"), "unshuffle": 1, "pyramid": 6, "luma": True}
    params = space.params_for_spec(spec, "enhance")
    decoded = space.spec_from_params({**params, "unshuffle": 4, "unet_levels": 2}, "enhance")
    assert decoded["pyramid"] == 6 and decoded["unshuffle"] == 1              # stride 4·32 halved down to 32
    assert space.spec_from_params({**params, "unshuffle": 4, "pyramid": 4}, "enhance")["unshuffle"] == 4
    assert not [b for b in decoded["blocks"] if b["type"] in ("down", "up")]
    with pytest.raises(SpecError, match="pyramid 6 not in"):
        space.params_for_spec({**zoo.named_spec("denoise_raw", "dncnn_small"), "pyramid": 6}, "denoise_raw")
    floor = space.floor_spec("enhance")
    assert floor["pyramid"] == 0
    fixed, moves = space.repair(params, "enhance", space.budget_macs(floor))
    assert "pyramid=0" in moves and space.canonical(space.spec_from_params(fixed, "enhance")) == space.canonical(floor)
    assert search_log.describe(space.spec_from_params(params, "enhance")).startswith("Y pyr6 stem")


def test_peer_labels_on_the_pareto_figure_are_stacked_so_close_points_do_not_overlap():
    anchors = [(300.0, 200.0), (302.0, 198.0), (301.0, 199.0), (40.0, 50.0)]     # three near-coincident peers
    widths = [30.0, 30.0, 40.0, 30.0]
    offsets = search_report.stacked_label_offsets(anchors, widths)
    boxes = [(x + dx, y + dy, x + dx + w, y + dy + search_report.LABEL_HEIGHT)
             for (x, y), (dx, dy), w in zip(anchors, offsets, widths)]
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (i, j, offsets)
    assert offsets[0] == (4.0, 4.0) and offsets[3] == (4.0, 4.0)      # the top label and a lone one stay put
    assert offsets == search_report.stacked_label_offsets(anchors, widths)


def test_the_train_command_printed_for_a_registered_trial_is_one_train_accepts(tmp_path):
    """While a task has a searched model, `train --role searched` is refused, so the hint trains a candidate."""
    assert "--role searched --recipe light" in search.train_suggestion("sr_x2", "found.json", "found", tmp_path)
    zoo.weights_path("sr_x2", "old", tmp_path).parent.mkdir(parents=True)
    zoo.weights_path("sr_x2", "old", tmp_path).write_bytes(b"")
    zoo.write_card({"name": "old", "task": "sr_x2", "role": "searched"}, tmp_path)
    hint = search.train_suggestion("sr_x2", "found.json", "found", tmp_path)
    assert "--role candidate --recipe light" in hint and "set-role --task sr_x2 --name found --role searched" in hint


def test_a_network_whose_stride_does_not_divide_the_latency_size_is_timed_on_an_input_rounded_up():
    """--latency-size 200 with a pyramid of stride 32: timed at 224×224 (and per MP of that), not a failed trial."""
    from types import SimpleNamespace

    from searched_models.search_proxy import Proxy
    from searched_models.tasks import get_task

    proxy = Proxy.__new__(Proxy)                     # no folders or teacher needed for the timing input
    proxy.cfg, proxy.task = SimpleNamespace(latency_size=200), get_task("enhance")
    proxy.timing_input = torch.zeros(1, 3, 200, 200)
    flat = zoo.named_spec("enhance", "resnet_small")
    x, mp = proxy.timing_input_for(flat)
    assert x is proxy.timing_input and mp == pytest.approx(0.04)
    pyramid = {**flat, "unshuffle": 1, "pyramid": 6}
    x, mp = proxy.timing_input_for(pyramid)
    assert tuple(x.shape) == (1, 3, 224, 224) and mp == pytest.approx(224 ** 2 / 1e6)
    assert build(pyramid)(x).shape[-2:] == (224, 224)
