"""The README results table must be what `pixelnas results-table` generates from the committed eval JSON."""
import json
import shlex
from pathlib import Path

import pytest

from searched_models import results_table


def test_readme_table_matches_committed_eval_json():
    readme = results_table.README.read_text()
    assert results_table.regenerate(readme) == readme, \
        "README results table is out of date: run `pixelnas results-table`"


def test_table_reflects_the_json(tmp_path):
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": [
        {"name": "edsr", "role": "heavy", "macs_per_input_mp": 1.2e12, "ms_per_mp": 900.0, "psnr": 37.6, "R": 1.0,
         "G": 1.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 650.0}}}]}
    (tmp_path / "sr_x2").mkdir()
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| edsr | heavy | – | 1200.000 | 900 | – | 37.60 | 1.0 | 1.00 | 650 |" in block
    assert "provisional" not in block
    assert results_table.render(tmp_path / "none").count("No evaluation") == 1


def test_a_model_evaluated_mid_training_is_flagged_as_provisional(tmp_path):
    row = {"role": "heavy", "macs_per_input_mp": 1.2e12, "ms_per_mp": 900.0, "ms_ratio_heavy": 1.0, "psnr": 37.3,
           "R": 1.0, "G": 1.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 650.0}}}
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": [
        {**row, "name": "edsr", "training_status": "training", "steps_done": 8225, "steps": 20000},
        {**row, "name": "fsrcnn", "role": "peer", "ms_ratio_heavy": 12.5, "training_status": "done",
         "steps_done": 10000, "steps": 10000}]}
    (tmp_path / "sr_x2").mkdir()
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| edsr | heavy | 8225/20000 ⚠ |" in block
    assert "| fsrcnn | peer | 10000 | 1200.000 | 900 | 12.5 |" in block
    assert "provisional" in block


def test_a_finished_heavy_still_rising_is_flagged_and_a_light_peer_is_not(tmp_path):
    row = {"macs_per_input_mp": 3.1e11, "ms_per_mp": 900.0, "ms_ratio_heavy": 1.0, "psnr": 35.4, "R": 1.0, "G": 1.0,
           "energy": {"npu_int8": {"mj_per_12mp_photo": 650.0}}, "training_status": "done", "plateau": False}
    report = {"task": "enhance", "seed": 0, "isos": None, "groups": [{"set": "McMaster"}], "summary": [
        {**row, "name": "resnet_heavy", "role": "heavy", "steps_done": 16000, "steps": 16000},
        {**row, "name": "small", "role": "peer", "macs_per_input_mp": 9e9, "steps_done": 10000, "steps": 10000},
        {**row, "name": "flat", "role": "heavy", "plateau": True, "steps_done": 20000, "steps": 20000}]}
    (tmp_path / "enhance").mkdir()
    (tmp_path / "enhance" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| resnet_heavy | heavy | 16000, rising ‡ |" in block and "‡ its schedule ended" in block
    assert "| small | peer | 10000 |" in block and "| flat | heavy | 20000 |" in block
    assert "so this task's G is provisional too" in block
    # a heavy-class candidate still rising is flagged too, but the task's G (against the heavy) is not provisional
    report["summary"][0]["plateau"] = True
    report["summary"].append({**row, "name": "unet_heavy", "role": "candidate", "macs_per_input_mp": 4.2e11,
                              "steps_done": 40000, "steps": 40000})
    report["task"] = "denoise_raw"
    (tmp_path / "enhance" / "eval.json").unlink()
    (tmp_path / "denoise_raw").mkdir()
    (tmp_path / "denoise_raw" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| unet_heavy | candidate | 40000, rising ‡ |" in block and "‡ its schedule ended" in block
    assert "G is provisional" not in block


def test_the_targets_table_judges_the_searched_model_against_the_search_issue(tmp_path):
    from searched_models import targets

    row = {"ms_per_mp": 100.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 1.0}}, "training_status": "done",
           "steps_done": 10, "steps": 10, "plateau": True}
    summary = [
        {**row, "name": "classical", "role": "classical", "macs_per_input_mp": 1e8, "psnr": 30.0, "R": 1e4, "G": 0.0,
         "ms_ratio_heavy": 500.0},
        {**row, "name": "big", "role": "heavy", "macs_per_input_mp": 1e12, "psnr": 34.0, "R": 1.0, "G": 1.0,
         "ms_ratio_heavy": 1.0},
        {**row, "name": "mine", "role": "searched", "macs_per_input_mp": 9e9, "psnr": 33.7, "R": 111.1, "G": 0.925,
         "ms_ratio_heavy": 40.0},
        {**row, "name": "rival", "role": "peer", "macs_per_input_mp": 2e10, "psnr": 33.6, "R": 50.0, "G": 0.9,
         "ms_ratio_heavy": 20.0},
        {**row, "name": "cheaper", "role": "peer", "macs_per_input_mp": 5e9, "psnr": 33.9, "R": 200.0, "G": 0.97,
         "ms_ratio_heavy": 60.0}]
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": summary}
    c = targets.check(report)
    # the cheaper peer beats it but does not count; the rival at more MACs is only 0.1 dB behind: the rule fails
    assert c["peer"] == "rival" and c["peer_margin_db"] == pytest.approx(0.1)
    assert c["met"] == {"R": True, "G": True, "time": True, "peers": False}
    lines = targets.format_check(c)                           # what `pixelnas eval` prints under the floors
    assert lines[0] == "target R ≥ 100: mine 111.1 → met" and lines[1] == "target G ≥ 0.90: mine 0.93 → met"
    assert lines[3].endswith("+0.10 dB vs rival → NOT met (short by 0.10 dB)")
    (tmp_path / "sr_x2").mkdir()
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| sr_x2 | mine | 111.1 ✓ | 0.93 ✓ | 40.0 ✓ | +0.10 dB vs rival ✗ | no |" in block
    summary[2].update(G=0.5, ms_ratio_heavy=12.0)
    del summary[3]
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    block = results_table.render(tmp_path)
    assert "| 0.50 ✗ (0.40 short) | 12.0 ✗ | no peer at ≥ its MACs ✓ | no |" in block
    summary[2].update(G=0.8951, R=99.96, ms_ratio_heavy=29.99)   # misses that 2 (or 1) decimals would round up
    lines = targets.format_check(targets.check(report))
    assert lines[0] == "target R ≥ 100: mine 99.96 → NOT met (short by 0.04)"
    assert lines[1] == "target G ≥ 0.90: mine 0.895 → NOT met (short by 0.005)"
    assert lines[2].endswith("mine 29.99× → NOT met (short by 0.01×)")
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    assert "| sr_x2 | mine | 99.96 ✗ | 0.895 ✗ (0.005 short) | 29.99 ✗ |" in results_table.render(tmp_path)
    summary[2]["role"] = "candidate"
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    assert "Against the targets" not in results_table.render(tmp_path)


def test_a_target_the_report_cannot_judge_reads_not_measured_never_met_or_missed(tmp_path):
    """An eval without the heavy cannot judge R, G or the time ratio; one that left out a zoo peer at ≥ the
    searched model's MACs cannot judge the peer rule (and must not call it met for want of a peer)."""
    from searched_models import targets

    row = {"ms_per_mp": 100.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 1.0}}}
    summary = [{**row, "name": "mine", "role": "searched", "macs_per_input_mp": 9e9, "psnr": 33.7, "R": None,
                "G": None, "ms_ratio_heavy": None}]
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": summary,
              "zoo_peers": [{"name": "rival", "macs_per_input_mp": 2e10}, {"name": "cheap", "macs_per_input_mp": 1e9}]}
    c = targets.check(report)
    assert c["met"] == {"R": None, "G": None, "time": None, "peers": None} and c["unscored_peers"] == ["rival"]
    lines = targets.format_check(c)
    assert lines[0] == "target R ≥ 100: mine – → not measured (the heavy is not in the report)"
    assert lines[1].endswith("→ not measured (needs the heavy and classical in the report)")
    assert lines[3].endswith("mine → not measured (peers not evaluated: rival)")

    (tmp_path / "sr_x2").mkdir()
    (tmp_path / "sr_x2" / "eval.json").write_text(json.dumps(report))
    assert "| sr_x2 | mine | – ? | – ? | – ? | no peer at ≥ its MACs ? (not evaluated: rival) | not all measured |" \
        in results_table.render(tmp_path)
    # a peer that was scored and beats it is a miss, whatever else was left out
    summary.append({**row, "name": "rival", "role": "peer", "macs_per_input_mp": 2e10, "psnr": 33.9, "R": None,
                    "G": None, "ms_ratio_heavy": None})
    report["zoo_peers"].append({"name": "other", "macs_per_input_mp": 3e10})
    c = targets.check(report)
    assert c["met"]["peers"] is False and c["unscored_peers"] == ["other"]


@pytest.mark.parametrize("task", results_table.TASKS)
def test_the_reproduce_command_parses_into_the_committed_evaluation(task):
    """The command shown under each table, read by pixelnas's own parser, asks for exactly the report's task,
    folders, ISOs, seed, threads and models."""
    from searched_models.cli import build_parser
    from searched_models.evaluate import expand_folders

    path = results_table.eval_path(task)
    if not path.exists():
        pytest.skip(f"no committed evaluation for {task}")
    report = json.loads(path.read_text())
    args = build_parser().parse_args(shlex.split(results_table.reproduce_command(report))[1:])
    assert (args.command, args.task) == ("eval", task)
    assert [Path(f).parts[-3:] for f in expand_folders(args.images)] == \
        [Path(f).parts[-3:] for f in report["folders"]]
    assert args.seed == report["seed"] and args.threads == report["threads"] and args.limit is None
    if task == "denoise_raw":
        assert args.iso == report["isos"]
    names = args.models.split(",")
    assert set(names) | ({"reference"} if task == "enhance" else set()) == {r["name"] for r in report["summary"]}
    assert args.json == f"searched_models/zoo/{task}/eval.json"


def test_a_folder_with_a_space_stays_one_argument_in_the_reproduce_command():
    report = {"task": "sr_x2", "folders": ["/data/my photos/Set5"], "seed": 0, "threads": 1,
              "summary": [{"name": "classical"}, {"name": "edsr_baseline"}]}
    argv = shlex.split(results_table.reproduce_command(report))
    assert argv[argv.index("--images") + 1] == "/data/my photos/Set5"
    assert "--y-8bit" not in argv
    assert "--y-8bit" in shlex.split(results_table.reproduce_command({**report, "y_8bit": True}))   # its protocol


def test_limit_and_a_busy_machine_leave_their_targets_unjudged():
    """Quality on the first images of each set (`--limit`) judges neither G nor the peer rule; a time ratio taken
    while other processes kept the CPU busy does not judge the time target. R (from MACs) stands either way."""
    from searched_models import targets

    row = {"ms_per_mp": 100.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 1.0}}}
    summary = [{**row, "name": "mine", "role": "searched", "macs_per_input_mp": 9e9, "psnr": 33.7, "R": 120.0,
                "G": 0.95, "ms_ratio_heavy": 45.0}]
    report = {"task": "sr_x2", "seed": 0, "isos": None, "groups": [{"set": "Set5"}], "summary": summary}
    assert targets.check(report)["met"] == {"R": True, "G": True, "time": True, "peers": True}
    c = targets.check({**report, "limit": 2, "timing_other_load_cores": 1.6, "timing_ratios_unreliable": True})
    assert c["met"] == {"R": True, "G": None, "time": None, "peers": None}
    lines = targets.format_check(c)
    assert lines[1].endswith("→ not judged (--limit: quality targets are judged on whole sets)")
    assert lines[2].endswith("→ not judged (other processes kept the CPU busy while the models were timed)")
    assert targets.check({**report, "timing_other_load_cores": 0.1, "timing_ratios_unreliable": False})["met"]["time"]


def test_status_line_says_whether_the_goal_is_shown(tmp_path):
    row = {"ms_per_mp": 100.0, "energy": {"npu_int8": {"mj_per_12mp_photo": 1.0}}}

    def write(task, r, g):
        (tmp_path / task).mkdir(exist_ok=True)
        summary = [{**row, "name": "mine", "role": "searched", "macs_per_input_mp": 9e9, "psnr": 33.7, "R": r,
                    "G": g, "ms_ratio_heavy": 45.0}]
        (tmp_path / task / "eval.json").write_text(json.dumps({"task": task, "seed": 0, "isos": None,
                                                              "groups": [], "summary": summary}))

    assert "no searched model has been evaluated yet" in results_table.render_status(tmp_path)
    for task in results_table.TASKS:
        write(task, 120.0, 0.95)
    assert "the goal is shown for every task" in results_table.render_status(tmp_path)
    write("enhance", 120.0, 0.19)
    status = results_table.render_status(tmp_path)
    assert "not shown yet" in status and "G ≥ 0.90 in 2 of 3" in status and "enhance R 120.0 / G 0.19" in status
    readme = f"top\n{results_table.STATUS_START}\nold\n{results_table.STATUS_END}\nmid\n{results_table.START}\n" \
             f"{results_table.END}\nend\n"
    updated = results_table.regenerate(readme, tmp_path)
    assert status in updated and "old" not in updated and updated.endswith("end\n")
