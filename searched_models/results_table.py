"""The README's results table, generated from the committed `pixelnas eval` JSON files — never typed by hand.

`pixelnas results-table` rewrites the block between the README's results markers from
`searched_models/zoo/<task>/eval.json`, and the one-line status of the goal between the status markers;
`--check` exits 1 when the README and the JSON disagree (a test runs it).
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from searched_models import targets
from searched_models.floors import is_judged
from searched_models.zoo import ZOO_DIR

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
STATUS_START, STATUS_END = "<!-- status:start -->", "<!-- status:end -->"   # optional: the goal's one-line status
TASKS = ("denoise_raw", "sr_x2", "enhance")


def eval_path(task: str, zoo_dir: Path = ZOO_DIR) -> Path:
    return Path(zoo_dir) / task / "eval.json"


def _num(value, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def trained(task: str, row: dict) -> str:
    """'10000' for a finished run, '8225/20000 ⚠' for a model evaluated before its training ended, '16000, rising ‡'
    for a finished heavy (or heavy-class candidate) whose validation had not reached the plateau the model-zoo
    issue asks of the heavies; '–' when the eval JSON does not say (the classical stage)."""
    done, steps = row.get("steps_done"), row.get("steps")
    if done is None:
        return "–"
    if steps is not None and not (row.get("training_status") == "done" or done == steps):
        return f"{done}/{steps} ⚠"
    return f"{done}, rising ‡" if row.get("plateau") is False and is_judged(task, row) else f"{done}"


def shown_folder(folder: str) -> str:
    """A folder as the README shows it: the shared data relative to the checkout (`../shared/data/…`, the layout
    the brief describes), any other folder as it was given."""
    marker = "/shared/data/"
    return "../shared/data/" + folder.split(marker, 1)[1] if marker in folder else folder


def reproduce_command(report: dict) -> str:
    """The `pixelnas eval` command that writes this report again: its task, folders, ISOs, seed, threads and the
    models it scored by zoo name (the enhance task's reference operator is always added, so it is not listed).
    The folder list is shell-quoted, so a folder with a space in its name pastes as one argument."""
    models = [row["name"] for row in report["summary"] if row["name"] != "reference"]
    parts = ["pixelnas eval", f"--task {report['task']}",
             "--images " + shlex.quote(",".join(shown_folder(f) for f in report["folders"])),
             "--models " + ",".join(models)]
    if report.get("isos"):
        parts.append("--iso " + ",".join(str(i) for i in report["isos"]))
    if report.get("limit"):
        parts.append(f"--limit {report['limit']}")
    if report.get("y_8bit"):
        parts.append("--y-8bit")
    if report.get("threads"):
        parts.append(f"--threads {report['threads']}")
    parts += [f"--seed {report['seed']}",
              f"--json {eval_path(report['task'], Path('searched_models/zoo')).as_posix()}"]
    return " ".join(parts)


def timing_note(report: dict) -> str:
    """How the ms column was measured: runs, input size, threads, and how busy other processes kept the CPU meanwhile
    (recorded since the models are timed in turn; older reports do not say)."""
    cores = report.get("timing_other_load_cores")
    recorded = "timing_ratios_unreliable" in report
    if not recorded:
        load = "other processes' load during the timing not recorded"
    elif cores is None:
        load = "models timed in turn; other processes' load could not be measured"
    else:
        load = (f"models timed in turn while other processes kept {cores:.2f} of {report.get('cpu_cores', '?')} "
                "cores busy" + (": the time ratios are unreliable and the time target is not judged"
                                if report["timing_ratios_unreliable"] else ""))
    runs, warmup = report.get("timing_runs", 5), report.get("timing_warmup", 2)
    return (f"Times: median of {runs} runs after {warmup} warm-up runs on a {report.get('timing_input', '?')}² "
            f"network input, {report.get('threads', '?')} thread(s), {load}.")


def task_table(report: dict) -> list[str]:
    sets = ", ".join(sorted({g["set"] for g in report["groups"]}))
    isos = f", ISO {', '.join(str(i) for i in report['isos'])}" if report.get("isos") else ""
    protocol = (" — final sRGB against the noise-free capture developed by the same ISP (DND protocol)"
                if report["task"] == "denoise_raw" else "")
    protocol += " — Y rounded to 8-bit codes" if report.get("y_8bit") else ""
    lines = [f"**{report['task']}** — PSNR: the mean of the per-set means over {sets}{isos}{protocol} "
             f"(seed {report['seed']})", "",
             "| model | role | trained (steps) | GMAC / input MP | ms / MP (CPU) | heavy ms / this | PSNR (dB) | R | G "
             "| est. mJ / 12 MP photo (NPU int8) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    marks = [trained(report["task"], row) for row in report["summary"]]
    for row, steps in zip(report["summary"], marks):
        lines.append(
            f"| {row['name']} | {row['role']} | {steps} | {row['macs_per_input_mp'] / 1e9:.3f} | "
            f"{row['ms_per_mp']:.0f} | {_num(row.get('ms_ratio_heavy'), '{:.1f}')} | "
            f"{_num(row['psnr'], '{:.2f}')} | {_num(row['R'], '{:.1f}')} | {_num(row['G'], '{:.2f}')} | "
            f"{row['energy']['npu_int8']['mj_per_12mp_photo']:.3g} |")
    if any(mark.endswith("⚠") for mark in marks):
        lines += ["", "⚠ evaluated before its training finished: a provisional figure, not a result."]
    rising = [row for row, mark in zip(report["summary"], marks) if mark.endswith("‡")]
    if rising:
        consequence = (", so this task's G is provisional too" if any(r["role"] == "heavy" for r in rising) else "")
        lines += ["", "‡ its schedule ended while validation still gained ≥ 0.05 dB over the last quarter of the "
                      f"steps: not yet the plateau the heavies are trained to{consequence}."]
    lines += ["", timing_note(report)]
    if "folders" in report:
        lines += ["", f"Reproduce: `{reproduce_command(report)}`"]
    return lines + [""]


def _verdict(ok: bool | None) -> str:
    return "?" if ok is None else "✓" if ok else "✗"


def all_met(met: dict) -> str:
    """'yes', 'no' (a target missed), or 'not all measured' (none missed, some not in the report)."""
    values = list(met.values())
    return "no" if False in values else "not all measured" if None in values else "yes"


def targets_table(reports: list[dict]) -> list[str]:
    """One row per task with a searched model: its R, G, CPU latency ratio and peer margin against the search issue's
    targets (`searched_models.targets`), each marked met ✓ or missed ✗ with the shortfall."""
    rows = []
    for report in reports:
        c = targets.check(report)
        if c is None:
            continue
        met = c["met"]
        heavy = next((r for r in report["summary"] if r["role"] == "heavy"), {})
        provisional = " ‡" if trained(report["task"], heavy).endswith(("‡", "⚠")) else ""
        f = targets.shown_figures(c)
        g = f"{f['G']} {_verdict(met['G'])}" + ("" if met["G"] is not False else f" ({f['short']['G']} short)")
        peer = (f"no peer at ≥ its MACs {_verdict(met['peers'])}" if c["peer"] is None else
                f"{f['peers']} dB vs {c['peer']} {_verdict(met['peers'])}")
        if c["unscored_peers"]:
            peer += f" (not evaluated: {', '.join(c['unscored_peers'])})"
        rows.append(f"| {report['task']} | {c['name']} | {f['R']} {_verdict(met['R'])} | "
                    f"{g}{provisional} | {f['time']} {_verdict(met['time'])} | {peer} | "
                    f"{all_met(met)} |")
    if not rows:
        return []
    return [f"**Against the targets** of the search (R ≥ {targets.MIN_R:.0f}, G ≥ {targets.MIN_G:.2f}, heavy / "
            f"searched CPU latency ≥ {targets.MIN_TIME_RATIO:.0f}×, ≥ {targets.PEER_MARGIN_DB} dB above every "
            "peer "
            "whose MACs are ≥ its own); ‡: the heavy is not at its plateau yet, so G is provisional; ?: the report "
            "cannot judge it (a model missing, `--limit`, or timed on a busy machine)", "",
            "| task | searched | R | G | heavy ms / searched | vs the best peer at ≥ its MACs | all met |",
            "|---|---|---:|---:|---:|---|---|", *rows, ""]


def render(zoo_dir: Path = ZOO_DIR) -> str:
    """The markdown between the markers, from whatever eval JSON files exist."""
    lines = ["Generated by `pixelnas results-table` from `searched_models/zoo/<task>/eval.json` "
             "(written by `pixelnas eval … --json`); do not edit by hand.", ""]
    reports = committed_reports(zoo_dir)
    lines += targets_table(reports)
    for report in reports:
        lines += task_table(report)
    if not reports:
        lines += ["No evaluation has been committed yet: the heavy originals are still training.", ""]
    return "\n".join(lines).rstrip() + "\n"


def committed_reports(zoo_dir: Path = ZOO_DIR) -> list[dict]:
    """The eval JSON of every task that has one, in TASKS order."""
    paths = [eval_path(task, zoo_dir) for task in TASKS]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def render_status(zoo_dir: Path = ZOO_DIR) -> str:
    """One line for the top of the README: whether the committed evals show the goal (R ≥ 100 and G ≥ 0.90 for
    the searched model of every task), and the figures behind the answer (‡: the task's heavy is not at its
    plateau, so its G is provisional)."""
    checks = []
    for report in committed_reports(zoo_dir):
        c = targets.check(report)
        if c is not None:
            heavy = next((r for r in report["summary"] if r["role"] == "heavy"), {})
            provisional = trained(report["task"], heavy).endswith(("‡", "⚠"))
            checks.append((report["task"], c, " ‡" if provisional else ""))
    if not checks:
        return "**Status:** no searched model has been evaluated yet.\n"
    count = {key: (sum(c["met"][key] is True for _, c, _ in checks), sum(c["met"][key] is None for _, c, _ in checks))
             for key in ("R", "G")}
    shown = "; ".join(f"{task} R {targets.shown_figures(c)['R']} / G {targets.shown_figures(c)['G']}{mark}"
                      for task, c, mark in checks)
    everywhere = len(checks) == len(TASKS) and all(met == len(TASKS) for met, _ in count.values())
    parts = [f"{label} in {met} of {len(checks)} tasks" + (f" ({unknown} not judged)" if unknown else "")
             for label, (met, unknown) in ((f"R ≥ {targets.MIN_R:.0f}", count["R"]),
                                           (f"G ≥ {targets.MIN_G:.2f}", count["G"]))]
    return (f"**Status** (generated from the committed evals, see [Results](#results)): the goal is "
            f"{'shown for every task' if everywhere else 'not shown yet'} — {', '.join(parts)} ({shown}"
            f"{'; ‡ the heavy is not at its plateau yet, so G is provisional' if any(m for *_, m in checks) else ''})"
            ".\n")


def splice(readme: str, block: str, start: str = START, end: str = END) -> str:
    if start not in readme or end not in readme:
        from isp.errors import SettingError

        raise SettingError(f"The README has no {start} … {end} block to fill; add the two markers where the "
                           "table belongs.")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def regenerate(readme: str, zoo_dir: Path = ZOO_DIR) -> str:
    """The README with its results block (required) and its status line (when it has the markers) rewritten."""
    readme = splice(readme, render(zoo_dir))
    if STATUS_START in readme and STATUS_END in readme:
        readme = splice(readme, render_status(zoo_dir), STATUS_START, STATUS_END)
    return readme


def add_command(sub) -> None:
    p = sub.add_parser("results-table", help="regenerate the README results table from the committed eval JSON",
                       description="Rewrite the README block between the results markers from "
                                   "searched_models/zoo/<task>/eval.json; with --check only compare.")
    p.add_argument("--check", action="store_true", help="exit 1 if the README is out of date")
    p.add_argument("--readme", default=str(README), help="the README to update (default: the project's README.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from isp.errors import InputError

    path = Path(args.readme)
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"Cannot read the README '{path}' ({error.strerror or error}).") from None
    except UnicodeDecodeError:
        raise InputError(f"Cannot read the README '{path}': it is not UTF-8 text.") from None
    wanted = regenerate(current)
    if args.check:
        if wanted != current:
            print("README results table or status line is out of date: run `pixelnas results-table`", file=sys.stderr)
            return 1
        print("README results table and status line match the eval JSON")
        return 0
    if wanted == current:
        print(f"{path} already matches the eval JSON; nothing changed")
        return 0
    path.write_text(wanted, encoding="utf-8")
    print(f"updated {path}")
    return 0
