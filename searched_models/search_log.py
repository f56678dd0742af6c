"""The search's trial log `zoo/<task>/search_trials.jsonl`: one JSON record per trial event, and the Pareto front.

Append-only (workers on several machines may write to it); `read_trials_jsonl` keeps the last line per
(study, trial). A record is rebuilt from what the Optuna storage holds (`record_from_trial`), so any worker can
write any trial's line.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent / "zoo"      # = searched_models.zoo.ZOO_DIR (that module imports torch)


def trials_log_path(task: str, zoo_dir: str | Path = ZOO_DIR) -> Path:
    """zoo/<task>/search_trials.jsonl"""
    return Path(zoo_dir) / task / "search_trials.jsonl"


def spec_key(spec: dict) -> str:
    """The same string for the same network, however its spec is written."""
    from searched_models import space

    return json.dumps(space.canonical(spec), sort_keys=True)


def describe(spec: dict) -> str:
    """A short architecture summary, e.g. '½res stem16 dwsep16k5 ↓32 dwsep32k5 ↑16 conv16k3'."""
    from searched_models import space

    parts = []
    for b in space.canonical(spec)["blocks"]:
        text = {"down": "↓", "up": "↑"}.get(b["type"], b["type"]) + str(b["channels"])
        if b["type"] not in ("down", "up"):
            text += f"k{b['kernel']}"
        parts.append(text + (f"×{b['repeat']}" if b.get("repeat", 1) > 1 else ""))
    res = {1: "", 2: "½res ", 4: "¼res "}[spec.get("unshuffle", 1)] + ("Y " if spec.get("luma") else "")
    res += f"pyr{spec['pyramid']} " if spec.get("pyramid") else ""
    return f"{res}stem{spec['stem']['channels']} " + " ".join(parts)


def record_from_trial(trial, study_name: str) -> dict:
    """The JSONL record of a trial, rebuilt from what the storage holds."""
    attrs = trial.user_attrs
    metrics = attrs.get("metrics", {})
    status = trial.state.name.lower()
    if status == "fail":
        status = "diverged" if attrs.get("diverged") else "surplus" if attrs.get("surplus") else "failed"
    return {"study": study_name, "number": trial.number, "status": status, "spec": attrs.get("spec"),
            **metrics, "peer": attrs.get("peer"), "seed_from": attrs.get("seed_from"),
            "retry_of": attrs.get("retry_of"),
            "duplicate_of": attrs.get("duplicate_of"), "duplicate_of_study": attrs.get("duplicate_of_study"),
            "repair": attrs.get("repair"), "worker": attrs.get("worker"), "error": attrs.get("error"),
            "time": time.time()}


def log_trial(study, number: int, path: Path, **extra) -> dict:
    """Append the storage's current view of trial `number` (plus `extra`) to the trials log."""
    record = {**record_from_trial(study.get_trials(deepcopy=False)[number], study.study_name), **extra}
    append_jsonl(path, record)
    return record


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")                 # one write per line: appends from workers do not interleave


def read_trials_jsonl(path: str | Path, study: str | None = None) -> list[dict]:
    """Records of the trials log, the last line per (study, number) winning; sorted by study and number."""
    latest: dict[tuple, dict] = {}
    path = Path(path)
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue                                        # a line cut by a kill
        if study is None or record.get("study") == study:
            latest[(record.get("study"), record.get("number"))] = record
    return [latest[k] for k in sorted(latest, key=lambda k: (str(k[0]), k[1]))]


def study_records(study) -> list[dict]:
    """Records of the study's completed trials, from the storage."""
    from optuna.trial import TrialState

    return [record_from_trial(t, study.study_name)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def pareto(records: list[dict]) -> list[dict]:
    """Non-dominated feasible records (PSNR ↑, MACs ↓), sorted by MACs."""
    feasible = [r for r in records if r.get("feasible")]
    front = [r for r in feasible if not any(
        o["proxy_psnr"] >= r["proxy_psnr"] and o["macs_per_input_mp"] <= r["macs_per_input_mp"]
        and (o["proxy_psnr"] > r["proxy_psnr"] or o["macs_per_input_mp"] < r["macs_per_input_mp"]) for o in feasible)]
    unique = {}
    for r in sorted(front, key=lambda r: (r["macs_per_input_mp"], r["number"])):
        unique.setdefault(spec_key(r["spec"]), r)          # one row per network (duplicates share results)
    return list(unique.values())
