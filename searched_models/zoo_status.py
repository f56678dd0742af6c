"""`pixelnas zoo-status`: where every zoo training stands, from the committed cards, logs and checkpoints alone.

Per model: role, steps done of planned, last and best validation PSNR, the gain over the last 25% of steps
(the plateau rule of `searched_models.plateau`), the median seconds per step of its recent log lines, the time
the remaining steps would take at that pace, and the command that continues it (the card's own command
with `--resume`). With `--cycles`, each warm-restarted run's validation per cycle (`searched_models.training_cycles`).
Reads files only: it runs in a second and never touches a running training.
"""
from __future__ import annotations

import json
import shlex
import statistics
from pathlib import Path

from searched_models import zoo
from searched_models.evaluate import fmt_optional
from searched_models.plateau import PLATEAU_DB
from searched_models.tasks import TASKS
from searched_models.training_cycles import format_cycles, training_cycles, validation_curve

RECENT_LOG_LINES = 20


def recent_sec_per_step(log_file: Path, lines: int = RECENT_LOG_LINES) -> float | None:
    """Median `sec_per_step` over the last `lines` loss entries of a training log (None without any)."""
    paces = [float(entry["sec_per_step"]) for entry in zoo.read_log(log_file) if "sec_per_step" in entry]
    return statistics.median(paces[-lines:]) if paces else None


def command_words(command: str, flags: tuple[str, ...] = (), options: tuple[str, ...] = ()) -> list[str]:
    """A recorded command's words without `--role X` (a resumed run keeps its card's role, which `pixelnas
    set-role` may have changed since, and a different --role is refused), the `flags` and the `options` with
    their values (`--opt V` or `--opt=V`)."""
    options = ("--role", *options)
    words, skip = [], False
    for word in shlex.split(command):
        if skip:
            skip = False
        elif word in options:
            skip = True
        elif word not in flags and not word.startswith(tuple(o + "=" for o in options)):
            words.append(word)
    return words


def resume_command(card: dict) -> str | None:
    """The card's command with `--resume` and without `--restart` (the restart is in the checkpoint, and a resume
    keeps its cycle) or `--role`; None when the card does not record one."""
    command = card.get("provenance", {}).get("command")
    if not command:
        return None
    words = command_words(command, flags=("--restart",))
    return shlex.join(words if "--resume" in words else words + ["--resume"])


def restart_command(card: dict) -> str | None:
    """For a finished run still rising: the card's command as a warm restart (SGDR) of the same length and peak
    lr as its last cycle (the whole run when it had none), from where it stopped. None without a command."""
    command = card.get("provenance", {}).get("command")
    training = card.get("training", {})
    if not command or not training.get("steps"):
        return None
    done = int(training.get("steps_done") or training["steps"])
    restarts = training.get("restarts") or []
    start, peak = restarts[-1] if restarts else (0, training.get("lr"))
    if not peak:
        return None
    words = command_words(command, flags=("--resume", "--restart"), options=("--steps", "--lr"))
    return shlex.join(words + ["--steps", str(done + int(training["steps"]) - int(start)), "--resume", "--restart",
                               "--lr", f"{peak:g}"])


def model_status(card: dict, zoo_dir: Path, cycles: bool = False) -> dict:
    """One table row; with `cycles`, also the per-cycle validation of a run with warm restarts (else None)."""
    training, validation = card.get("training", {}), card.get("validation", {})
    done, planned = int(training.get("steps_done") or 0), int(training.get("steps") or 0)
    log_file = zoo.log_path(card["task"], card["name"], zoo_dir)
    pace = recent_sec_per_step(log_file)
    remaining = max(planned - done, 0)
    return {"task": card["task"], "name": card["name"], "role": card.get("role"), "steps_done": done,
            "steps": planned, "status": training.get("status"), "val_psnr": validation.get("psnr"),
            "val_step": validation.get("step"), "best_val_psnr": validation.get("best_psnr"),
            "gain_last_quarter_db": validation.get("gain_last_quarter_db"), "plateau": validation.get("plateau"),
            "sec_per_step": pace,
            "hours_left": 0.0 if not remaining else (remaining * pace / 3600.0 if pace else None),
            "resume": resume_command(card) if remaining else None,
            "restart": restart_command(card) if not remaining and card.get("role") == "heavy"
            and training.get("status") == "done" and validation.get("plateau") is False else None,
            "cycles": training_cycles(training["restarts"], validation_curve(
                zoo.weights_path(card["task"], card["name"], zoo_dir), log_file))
            if cycles and training.get("restarts") else None}


def zoo_status(zoo_dir: Path = zoo.ZOO_DIR, tasks: list[str] | None = None, cycles: bool = False) -> list[dict]:
    """Status of every model with weights in the zoo (optionally only some tasks; `cycles`: see model_status)."""
    folders = sorted(p.name for p in Path(zoo_dir).iterdir() if p.is_dir()) if Path(zoo_dir).exists() else []
    return [model_status(card, Path(zoo_dir), cycles) for task in folders if not tasks or task in tasks
            for card in zoo.list_models(task, zoo_dir)]


def format_status(rows: list[dict], bf16_cpu: bool | None = None) -> str:
    """The table and the resume commands; `bf16_cpu` False adds a warning to commands that ask for `--bf16`."""
    if not rows:
        return "The zoo has no trained models yet."
    lines = [f"{'task/model':<28}{'role':<9}{'steps':>13}{'val dB':>8}{'best':>8}{'Δ last¼':>9}{'s/step':>8}"
             f"{'h left':>8}  state"]
    for r in rows:
        if r["status"] != "done":
            state = "unfinished"
        elif r["role"] != "heavy":        # the plateau rule is for heavy originals; the others get a fixed recipe
            state = "done"
        elif r["gain_last_quarter_db"] is None:
            state = "done, plateau unknown (fewer than two validations in the last quarter)"
        else:
            state = "done, plateau" if r["plateau"] else f"done, still rising (≥ {PLATEAU_DB} dB in the last quarter)"
        lines.append(f"{r['task'] + '/' + r['name']:<28}{r['role'] or '?':<9}{r['steps_done']:>6}/{r['steps']:<6}"
                     f"{fmt_optional(r['val_psnr'], '{:>8.2f}', 8)}{fmt_optional(r['best_val_psnr'], '{:>8.2f}', 8)}"
                     f"{fmt_optional(r['gain_last_quarter_db'], '{:>+9.3f}', 9)}{fmt_optional(r['sec_per_step'], '{:>8.2f}', 8)}"
                     f"{fmt_optional(r['hours_left'], '{:>8.1f}', 8)}  {state}")
    pending = [r for r in rows if r["resume"]]
    if pending:
        lines += ["", "continue the unfinished ones with (s/step is the pace of their last log lines, which "
                      "depends on what else ran then):"]
        lines += [f"  {r['resume']}" for r in pending]
        if bf16_cpu is False and any("--bf16" in r["resume"].split() for r in pending):
            lines.append("note: this CPU has no AVX512-BF16/AMX-BF16, where bf16 autocast is slower than fp32: "
                         "drop --bf16 from those commands (a checkpoint resumes in either precision)")
    rising = [r for r in rows if r.get("restart")]
    if rising:
        lines += ["", "heavies whose schedule ended before the plateau: another warm restart as long as their last "
                      "cycle, at its peak lr, continues them:"]
        lines += [f"  {r['restart']}" for r in rising]
    for r in rows:
        if r.get("cycles"):
            lines += ["", format_cycles(f"{r['task']}/{r['name']}", r["cycles"])]
    return "\n".join(lines)


def add_command(sub) -> None:
    p = sub.add_parser("zoo-status", help="where every zoo training stands and how to continue it",
                       description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", choices=list(TASKS),
                   help="only this task (repeatable)")
    p.add_argument("--cycles", action="store_true",
                   help="also list each warm-restarted run's validation per cycle (start, dip, best, end, gains)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--zoo", help="zoo folder (default: the package's zoo)")
    p.set_defaults(func=run)


def run(args) -> int:
    folder = Path(args.zoo) if args.zoo else zoo.ZOO_DIR
    if not folder.is_dir():
        from isp.errors import SettingError

        raise SettingError(f"Zoo folder '{folder}' does not exist or is not a folder.")
    rows = zoo_status(folder, args.task, args.cycles)
    from searched_models.bench_train import cpu_has_bf16

    print(json.dumps(rows, indent=2) if args.json else format_status(rows, cpu_has_bf16()))
    return 0
