"""Reading a search: the Pareto table, the Pareto-front PNG `zoo/<task>/pareto[-<study>].png` (peers and the heavy marked),
registering a trial's spec as `specs/<task>/<name>.json` for `pixelnas train --spec … --role searched`, and the
app's Search tab data (trials log → completed trials, table rows, figure, a spec's blocks).

The Pareto front is `search_log.pareto`: the feasible (within the MAC budget, and fast enough under a study's latency
rule) completed trials not dominated in (fewer MACs, higher proxy PSNR) — the two objectives of the multi-objective
search (NSGA-II, Deb et al. 2002).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from isp.errors import SettingError
from searched_models import zoo
from searched_models.cost import spec_cost
from searched_models.search_budget import heavy_card
from searched_models.search_log import ZOO_DIR, describe, pareto, read_trials_jsonl, spec_key, study_records
from searched_models.search_storage import default_study, load_study

SPEC_DIR = Path(__file__).resolve().parent / "specs"   # = searched_models.zoo.SPEC_DIR


def pareto_table(records: list[dict], heavy: dict | None) -> str:
    """The Pareto front as a text table (R = heavy MACs / trial MACs), then the peers off the front."""
    front = pareto(records)
    heavy_mp = float(heavy["macs_per_input_mp"]) if heavy and heavy.get("macs_per_input_mp") else None
    lines = [f"Pareto front ({len(front)} of {len(records)} completed trials; "
             f"proxy PSNR after the same short training)",
             f"{'trial':>5}  {'PSNR':>6}  {'kMAC/px':>8}  {'GMAC/MP':>8}  {'R':>6}  {'params':>7}  {'ms/MP':>7}  "
             f"{'×heavy':>6}  {'kind':<14} architecture"]
    for r in front:
        ratio = f"{heavy_mp / r['macs_per_input_mp']:6.0f}" if heavy_mp else f"{'—':>6}"
        speed = f"{r['speedup']:6.1f}" if r.get("speedup") else f"{'—':>6}"
        kind = f"peer {r['peer']}" if r.get("peer") else \
            f"searched (seed: {r['seed_from']} repaired)" if r.get("seed_from") else "searched"
        lines.append(f"{r['number']:>5}  {r['proxy_psnr']:6.2f}  {r['macs_per_input_pixel'] / 1e3:8.2f}  "
                     f"{r['macs_per_input_mp'] / 1e9:8.3f}  {ratio}  {r['params']:>7}  {r['latency_ms_per_mp']:7.1f}  "
                     f"{speed}  {kind:<14} {describe(r['spec'])}")
    peers = [r for r in records if r.get("peer") and r not in front]
    for r in peers:
        lines.append(f"  (peer {r['peer']}: trial {r['number']}, {r['proxy_psnr']:.2f} dB, "
                     f"{r['macs_per_input_pixel'] / 1e3:.2f} kMAC/px{infeasibility(r)})")
    return "\n".join(lines)


def infeasibility(record: dict) -> str:
    """Why a trial is off the feasible set: over the MAC budget and/or slower than the latency rule."""
    if record.get("feasible"):
        return ""
    reasons = [] if within_budget(record) else ["over budget"]
    if record.get("fast_enough") is False:
        reasons.append(f"{record['speedup']:.1f}x faster than the heavy, under the {record['min_speedup']:g}x "
                       f"latency rule")
    return "".join(", " + r for r in reasons)


def within_budget(record: dict) -> bool:
    """Within the MAC budget (records from before the latency rule only say `feasible`, which then means this)."""
    return bool(record.get("within_budget", record.get("feasible")))


def heavy_mark(card: dict, refs: dict | None) -> dict:
    """The heavy's mark for `pareto_figure`: on the trials' PSNR scale when the search scored it on its own
    validation crops (`refs`, from `search_proxy.reference_scores`), else by its MACs alone."""
    scored = ((refs or {}).get("heavy") or {})
    scored = scored if scored.get("name") == card["name"] else {}
    return {"name": card["name"] + (f" (full training, step {scored.get('steps_done')})" if scored else ""),
            "role": card.get("role", "heavy"), "macs_per_input_mp": card.get("macs_per_input_mp") or 0,
            "psnr": scored.get("psnr")}


def zoo_mark(card: dict, refs: dict | None, trials: list[dict]) -> dict:
    """A zoo model's mark for `pareto_figure`: the heavy as `heavy_mark`; a model registered from one of `trials`
    at that trial's proxy PSNR (the same network on the same proxy); any other by its MACs alone."""
    if card.get("role") == "heavy":
        return heavy_mark(card, refs)
    origin = (card.get("spec") or {}).get("search") or {}
    scored = next((t for t in trials if t.get("study") == origin.get("study") and t.get("number") == origin.get("trial")
                   and t.get("proxy_psnr") is not None), None)
    return {"name": card["name"] + (f" (trial {scored['number']})" if scored else ""),
            "role": card.get("role", "peer"), "macs_per_input_mp": card["macs_per_input_mp"],
            "psnr": scored["proxy_psnr"] if scored else None}


def draw_pareto(records: list[dict], heavy: dict | None, max_macs: float | None, path: Path, title: str,
                refs: dict | None = None, task: str = "") -> Path:
    """PNG of `pareto_figure`: every completed trial, the Pareto front, the budget, peers, and the classical stage
    and the heavy on the trials' validation crops (`refs`)."""
    marks = [heavy_mark(heavy, refs)] if heavy and heavy.get("macs_per_input_mp") else []
    fig = pareto_figure(records, marks, title, task, classical=(refs or {}).get("classical"), max_macs=max_macs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def pareto_png_path(task: str, study_name: str, zoo_dir: str | Path = ZOO_DIR) -> Path:
    """zoo/<task>/pareto.png for the task's default study, zoo/<task>/pareto-<study>.png for any other."""
    name = "pareto.png" if study_name == default_study(task) else f"pareto-{study_name}.png"
    return Path(zoo_dir) / task / name


def report(task: str, storage: str, study_name: str, zoo_dir: str | Path = ZOO_DIR) -> tuple[str, Path]:
    """Draw the study's Pareto PNG (`pareto_png_path`) and return (Pareto table, png path)."""
    study = load_study(storage, study_name)
    records = study_records(study)
    if not records:
        raise SettingError(f"Study {study_name!r} has no completed trials yet.")
    heavy = heavy_card(task, zoo_dir)
    from searched_models.search_proxy import read_references, references_path

    refs = read_references(references_path(task, zoo_dir))
    settings = study.user_attrs.get("settings", {})
    title = (f"{task}: {study_name}, {len(records)} trials, proxy {settings.get('proxy_steps')} steps"
             + (f", teacher {settings['teacher']}" if settings.get("teacher") else ""))
    if refs is not None and refs.get("study", study_name) != study_name:   # one file per task: the last search's
        title += f"\n(no classical/heavy lines: the references on file were measured for {refs['study']})"
        refs = None
    png = draw_pareto(records, heavy, settings.get("max_macs"), pareto_png_path(task, study_name, zoo_dir), title, refs,
                      task)
    return pareto_table(records, heavy), png


def latency_ratios(task: str, storage: str, study_name: str, numbers: list[int], size: int,
                   zoo_dir: str | Path = ZOO_DIR) -> str:
    """Measured CPU latency of the heavy and of completed trials in one run (one shared, noisy machine: only
    ratios measured together mean anything), as a table with heavy/trial per trial. Weights do not change the
    time of a convolutional net, so the heavy and the trials are built fresh from their specs."""
    import torch

    from searched_models.cost import measure_latency_ms
    from searched_models.infer import stride_multiple
    from searched_models.spec import build

    study = load_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    specs = {}
    for number in numbers:
        if not 0 <= number < len(trials) or "spec" not in trials[number].user_attrs:
            raise SettingError(f"Study {study_name!r} has no trial {number} with a spec.")
        specs[number] = trials[number].user_attrs["spec"]
    card = heavy_card(task, zoo_dir)
    if card is None:
        raise SettingError(f"Task {task!r} has no heavy original in {zoo_dir} to compare with.")
    heavy = build(card["spec"])
    multiple = max([stride_multiple(card["spec"])] + [stride_multiple(s) for s in specs.values()])  # powers of 2
    size = -(-size // multiple) * multiple                                 # every net takes the same input
    example = torch.rand(1, card["spec"]["in_channels"], size, size)
    heavy_ms = measure_latency_ms(heavy, example)
    heavy_macs = spec_cost(card["spec"]).macs_per_pixel
    lines = [f"latency on a {size}×{size} input, {torch.get_num_threads()} thread(s), median of 5 after warm-up",
             f"{'model':<16}{'kMAC/px':>9}{'R':>8}{'ms':>10}{'heavy/this':>12}",
             f"{card['name']:<16}{heavy_macs / 1e3:>9.1f}{1.0:>8.1f}{heavy_ms:>10.1f}{1.0:>12.1f}"]
    for number, spec in specs.items():
        ms = measure_latency_ms(build(spec), example)
        macs = spec_cost(spec).macs_per_pixel
        lines.append(f"{'trial ' + str(number):<16}{macs / 1e3:>9.1f}{heavy_macs / macs:>8.1f}{ms:>10.1f}"
                     f"{heavy_ms / ms:>12.1f}")
    return "\n".join(lines)


def _portable(storage: str) -> str:
    """A journal inside this repository as a repo-relative path (the card then holds on any checkout)."""
    if "://" in storage:
        return storage                 # an Optuna RDB URL
    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path(storage).resolve().relative_to(root))
    except (ValueError, OSError):
        return str(storage)            # a file elsewhere: kept as given


def register(task: str, storage: str, study_name: str, number: int, name: str,
             spec_dir: str | Path = SPEC_DIR, command: str = "") -> tuple[Path, bool]:
    """Write specs/<task>/<name>.json: the trial's spec plus a "search" provenance block. Returns the path and
    whether it was written: registering the same trial under the same name again (as the README's
    reproduction commands do on a fresh clone) keeps the committed file; another trial under that name is refused."""
    from optuna.trial import TrialState

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise SettingError(f"--as {name!r}: use letters, digits, '_', '-' or '.'.")
    study = load_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SettingError(f"Study {study_name!r} has no trial {number} (it has {len(trials)}).")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise SettingError(f"Trial {number} of {study_name!r} is {trial.state.name.lower()}, not complete.")
    path = Path(spec_dir) / task / f"{name}.json"
    if path.exists():
        try:
            held = json.loads(path.read_text()).get("search", {})
        except (OSError, ValueError, AttributeError):
            held = {}
        if (held.get("study"), held.get("trial")) == (study_name, number):
            return path, False
        raise SettingError(f"{path} exists already and holds another network; choose another --as name.")
    metrics = trial.user_attrs["metrics"]
    settings = study.user_attrs.get("settings", {})
    spec = {**trial.user_attrs["spec"], "name": name,
            "note": f"Searched by PixelNAS (NSGA-II), study {study_name} trial {number}: "
                    f"{describe(trial.user_attrs['spec'])}.",
            "search": {"study": study_name, "trial": number, "storage": _portable(storage),
                       "proxy_psnr": metrics["proxy_psnr"], "proxy_steps": settings.get("proxy_steps"),
                       "teacher": settings.get("teacher"), "budget_macs_per_input_pixel": settings.get("max_macs"),
                       "macs_per_input_pixel": metrics["macs_per_input_pixel"], "peer": trial.user_attrs.get("peer"),
                       "seed_from": trial.user_attrs.get("seed_from"), "command": command}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path, True


# ------------------------------------------------------------------------------------------ the app's Search tab

def mp_unit(task: str) -> str:
    """What "MP" means in MACs per input megapixel: the network's input, which for denoise_raw is the packed
    4-channel half-resolution mosaic (one packed pixel = 4 sensor pixels)."""
    return "packed MP (4 sensor px)" if task == "denoise_raw" else "input MP"


def trial_key(record: dict) -> tuple[str, int | None]:
    """(study, number): a trial's identity in a log that may hold several studies."""
    return str(record.get("study")), record.get("number")


def _usable(record: dict) -> bool:
    macs, psnr = record.get("macs_per_input_mp"), record.get("proxy_psnr")
    return (record.get("status") == "complete" and isinstance(record.get("spec"), dict)
            and isinstance(macs, (int, float)) and isinstance(psnr, (int, float)) and macs > 0 and math.isfinite(psnr))


def load_trials(path: str | Path) -> tuple[list[dict], int]:
    """(completed trials, number of other trials) of a trials log: the last line per (study, trial) wins
    (`read_trials_jsonl`), so a trial's surplus/abandoned/retried events are not counted; failed, diverged and
    running trials are counted apart. Missing file → ([], 0); a cut last line is skipped."""
    records = read_trials_jsonl(path)
    done = [r for r in records if _usable(r)]
    return done, len(records) - len(done)


def studies_newest_first(trials: list[dict]) -> list[str]:
    """The studies of a trials log, the one with the most recent record first."""
    last: dict[str, float] = {}
    for t in trials:
        key = str(t.get("study"))
        last[key] = max(last.get(key, 0.0), float(t.get("time") or 0.0))
    return sorted(last, key=lambda s: -last[s])


def _readable(spec: dict) -> bool:
    try:
        spec_key(spec)
    except Exception:  # noqa: BLE001 - a spec this version cannot read
        return False
    return True


def front(trials: list[dict]) -> list[dict]:
    """`search_log.pareto` of the completed trials (feasible, non-dominated, one per network, by MACs); trials
    whose spec this version cannot read are left off rather than breaking the page."""
    usable = [t for t in trials if _usable(t)]
    try:
        return pareto(usable)
    except Exception:  # noqa: BLE001
        return pareto([t for t in usable if _readable(t["spec"])])


def front_keys(trials: list[dict]) -> set[tuple[str, int | None]]:
    """trial_key of every trial on the Pareto front."""
    return {trial_key(r) for r in front(trials)}


def trial_rows(trials: list[dict], task: str = "") -> list[dict]:
    """The trials table: Pareto members first (by MACs), then the rest by study and number."""
    front = front_keys(trials)
    unit = mp_unit(task)

    def number(value, digits, scale=1.0):
        return round(value / scale, digits) if isinstance(value, (int, float)) else None

    rows = []
    for t in trials:
        rows.append({"study": str(t.get("study")), "trial": t.get("number"),
                     "Pareto": "★" if trial_key(t) in front else "",
                     "within budget": "yes" if within_budget(t) else "no",
                     "× faster than heavy": number(t.get("speedup"), 1),
                     "peer": t.get("peer") or (f"seed: {t['seed_from']} in budget" if t.get("seed_from") else ""),
                     f"GMACs / {unit}": number(t.get("macs_per_input_mp"), 4, 1e9),
                     "params": zoo.deployed_params(t) or t.get("params"),     # as it runs: rep blocks merged
                     f"ms / {unit}": number(t.get("latency_ms_per_mp"), 1),
                     "proxy PSNR (dB)": number(t.get("proxy_psnr"), 3), "_macs": t.get("macs_per_input_mp")})
    rows.sort(key=lambda r: (r["Pareto"] != "★", r["_macs"] if r["Pareto"] else 0, r["study"],
                             r["trial"] if isinstance(r["trial"], int) else -1))
    for r in rows:
        del r["_macs"]
    return rows


def find_trial(trials: list[dict], study, number) -> dict | None:
    """The trial with this (study, number); the number may come back from a table as a float or a string."""
    try:
        number = int(number)
    except (TypeError, ValueError):
        return None
    return next((t for t in trials if trial_key(t) == (str(study), number)), None)


def references(task: str, zoo_dir=None) -> dict | None:
    """The classical and heavy scores on a task's search validation crops (None before the first search run)."""
    from searched_models.search_proxy import read_references, references_path

    return read_references(references_path(task, zoo_dir or ZOO_DIR))


def pareto_figure(trials: list[dict], marks: list[dict], title: str, task: str = "", classical: float | None = None,
                  max_macs: float | None = None):
    """Quality vs MACs (log x): every completed trial, the front as a step line, and zoo models marked.

    marks: {"name", "role", "macs_per_input_mp", "psnr" (or None → drawn as a vertical line)}; a mark's psnr must be
    measured on the trials' validation crops (`search_proxy.reference_scores`). classical: the classical stage's
    PSNR on those crops (a horizontal line). max_macs: the search budget in MACs per input pixel (a vertical line).
    Returns a matplotlib Figure (no pyplot state, safe in server threads).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    usable = [t for t in trials if _usable(t)]
    if usable:
        ax.scatter([t["macs_per_input_mp"] / 1e9 for t in usable], [t["proxy_psnr"] for t in usable],
                   s=18, c="#94a3b8", alpha=0.7, label=f"completed trials ({len(usable)})")
        over = [t for t in usable if not within_budget(t)]
        if over:
            ax.scatter([t["macs_per_input_mp"] / 1e9 for t in over], [t["proxy_psnr"] for t in over], s=30,
                       facecolors="none", edgecolors="#ef4444", label=f"over the MAC budget ({len(over)})")
        slow = [t for t in usable if t.get("fast_enough") is False]
        if slow:
            rule = slow[0]["min_speedup"]
            ax.scatter([t["macs_per_input_mp"] / 1e9 for t in slow], [t["proxy_psnr"] for t in slow], s=46,
                       marker="x", c="#ef4444", label=f"under the {rule:g}x latency rule ({len(slow)})")
        pts = [(r["macs_per_input_mp"] / 1e9, r["proxy_psnr"]) for r in front(usable)]
        if pts:
            ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#4f46e5", lw=1.8)
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=36, c="#4f46e5", label="Pareto front", zorder=3)
    peer_labels = [(str(t["peer"]), t["macs_per_input_mp"] / 1e9, t["proxy_psnr"])    # seeded trials carry
                   for t in usable if t.get("peer")]                                 # their peer's name
    if max_macs:
        ax.axvline(max_macs / 1e3, ls="--", color="k", lw=1, label=f"budget {max_macs / 1e3:.1f} kMAC/px")
    if classical is not None:
        ax.axhline(classical, ls=":", color="#6b7280", lw=1.2,
                   label=f"classical on the same crops ({classical:.2f} dB)")
    style = {"heavy": ("*", "#dc2626", 220), "peer": ("D", "#f59e0b", 60), "candidate": ("P", "#8b5cf6", 90),
             "searched": ("*", "#16a34a", 260)}
    seen = set()
    for mark in marks:
        marker, colour, size = style.get(mark.get("role"), ("o", "#0ea5e9", 50))
        x = mark["macs_per_input_mp"] / 1e9
        label = f"{mark.get('role')}: {mark['name']}"
        if mark.get("psnr") is None:
            ax.axvline(x, color=colour, ls="--", lw=1.2, label=label + " (MACs only: not scored on this proxy)")
        else:
            ax.scatter([x], [mark["psnr"]], marker=marker, s=size, c=colour, edgecolors="black", linewidths=0.6,
                       label=label if label not in seen else None, zorder=4)
        seen.add(label)
    ax.set_xscale("log")
    ax.set_xlabel(f"GMACs per {mp_unit(task)} (log scale)")
    ax.set_ylabel("proxy PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if not usable:
        ax.text(0.5, 0.5, "No completed search trials logged for this task yet", transform=ax.transAxes,
                ha="center", va="center", fontsize=12, color="#6b7280")
        xs = [m["macs_per_input_mp"] / 1e9 for m in marks if m.get("macs_per_input_mp")]
        ax.set_xlim(min(xs) / 1000 if xs else 1e-2, max(xs) * 3 if xs else 1e4)   # room for 100–1000× cheaper
        ys = [m["psnr"] for m in marks if m.get("psnr") is not None] + ([classical] if classical is not None else [])
        ax.set_ylim(min(ys) - 3 if ys else 25, max(ys) + 2 if ys else 40)
    if peer_labels:
        ax.autoscale_view()
        to_points = 72.0 / fig.dpi
        anchors = [tuple(v * to_points for v in ax.transData.transform((x, y))) for _, x, y in peer_labels]
        offsets = stacked_label_offsets(anchors, [len(text) * LABEL_CHAR_WIDTH for text, _, _ in peer_labels])
        for (text, x, y), offset in zip(peer_labels, offsets):
            ax.annotate(text, (x, y), xytext=offset, textcoords="offset points", fontsize=LABEL_FONT_SIZE,
                        color="#b45309")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig


LABEL_FONT_SIZE = 8.0
LABEL_CHAR_WIDTH = 0.6 * LABEL_FONT_SIZE       # points per character, a safe width for DejaVu Sans
LABEL_HEIGHT = 1.25 * LABEL_FONT_SIZE


def stacked_label_offsets(anchors: list[tuple[float, float]], widths: list[float]) -> list[tuple[float, float]]:
    """Offsets (points) for labels drawn right of their points so that no two overlap.

    anchors: each point in display points; widths: each label's width in points. Labels are placed top point
    first; each takes the first of (just above, just below, one line higher, one line lower, …) whose box
    clears the boxes already placed. Deterministic: the same points always give the same layout.
    """
    step = LABEL_HEIGHT + 1.0
    shifts = [4.0] + [v for k in range(1, 12) for v in (4.0 - k * step, 4.0 + k * step)]
    placed: list[tuple[float, float, float, float]] = []
    offsets: list[tuple[float, float]] = [(4.0, 4.0)] * len(anchors)
    for i in sorted(range(len(anchors)), key=lambda i: (-anchors[i][1], anchors[i][0])):
        x, y = anchors[i]
        for dy in shifts:
            box = (x + 4.0, y + dy, x + 4.0 + widths[i], y + dy + LABEL_HEIGHT)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        offsets[i] = (4.0, dy)
    return offsets


def blocks_table(spec: dict) -> list[dict]:
    """A spec as rows: stem, each block (type, channels, kernel, activation, repeat, other options), tail."""
    rows = []
    stem = spec.get("stem", {})
    rows.append({"#": "stem", "type": "conv", "channels": stem.get("channels"), "kernel": stem.get("kernel"),
                 "act": stem.get("act"), "repeat": 1, "options": ""})
    for index, block in enumerate(spec.get("blocks", []), 1):
        extra = {k: v for k, v in block.items() if k not in ("type", "channels", "kernel", "act", "repeat")}
        kind = block.get("type")
        rows.append({"#": index, "type": "rep (trained as ECB, runs as one conv)" if kind == "rep" else kind,
                     "channels": block.get("channels"),
                     "kernel": block.get("kernel"), "act": block.get("act"), "repeat": block.get("repeat", 1),
                     "options": json.dumps(extra) if extra else ""})
    tail = spec.get("tail", {})
    rows.append({"#": "tail", "type": "conv" + (" + pixel shuffle" if spec.get("scale", 1) > 1 else ""),
                 "channels": spec.get("out_channels"), "kernel": tail.get("kernel"), "act": "none", "repeat": 1,
                 "options": json.dumps({k: spec[k] for k in ("unshuffle", "pyramid", "global_residual", "body_skip")
                                        if k in spec and (k != "pyramid" or spec[k])})})
    return rows
