"""Reading a search: the Pareto table, the Pareto-front PNG `zoo/<task>/pareto.png` (peers and the heavy marked),
and registering a trial's spec as `specs/<task>/<name>.json` for `pixelnas train --spec … --role searched`."""
from __future__ import annotations

import json
import re
from pathlib import Path

from isp.errors import SettingError
from searched_models.search_budget import heavy_card
from searched_models.search_log import ZOO_DIR, describe, pareto, study_records
from searched_models.search_storage import load_study

SPEC_DIR = Path(__file__).resolve().parent / "specs"   # = searched_models.zoo.SPEC_DIR


def pareto_table(records: list[dict], heavy: dict | None) -> str:
    """The Pareto front as a text table (R = heavy MACs / trial MACs), then the peers off the front."""
    front = pareto(records)
    heavy_mp = float(heavy["macs_per_input_mp"]) if heavy and heavy.get("macs_per_input_mp") else None
    lines = [f"Pareto front ({len(front)} of {len(records)} completed trials; "
             f"proxy PSNR after the same short training)",
             f"{'trial':>5}  {'PSNR':>6}  {'kMAC/px':>8}  {'GMAC/MP':>8}  {'R':>6}  {'params':>7}  {'ms/MP':>7}  "
             f"{'kind':<14} architecture"]
    for r in front:
        ratio = f"{heavy_mp / r['macs_per_input_mp']:6.0f}" if heavy_mp else f"{'—':>6}"
        kind = f"peer {r['peer']}" if r.get("peer") else "searched"
        lines.append(f"{r['number']:>5}  {r['proxy_psnr']:6.2f}  {r['macs_per_input_pixel'] / 1e3:8.2f}  "
                     f"{r['macs_per_input_mp'] / 1e9:8.3f}  {ratio}  {r['params']:>7}  {r['latency_ms_per_mp']:7.1f}  "
                     f"{kind:<14} {describe(r['spec'])}")
    peers = [r for r in records if r.get("peer") and r not in front]
    for r in peers:
        lines.append(f"  (peer {r['peer']}: trial {r['number']}, {r['proxy_psnr']:.2f} dB, "
                     f"{r['macs_per_input_pixel'] / 1e3:.2f} kMAC/px{'' if r['feasible'] else ', over budget'})")
    return "\n".join(lines)


def draw_pareto(records: list[dict], heavy: dict | None, max_macs: float | None, path: Path, title: str) -> Path:
    """PNG: every completed trial, the Pareto front, peers and the heavy (full training) — x log MACs/MP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    searched = [r for r in records if not r.get("peer")]
    ax.scatter([r["macs_per_input_mp"] for r in searched], [r["proxy_psnr"] for r in searched], s=16,
               color="0.6", label="searched trials (proxy training)", zorder=2)
    front = pareto(records)
    if front:
        ax.plot([r["macs_per_input_mp"] for r in front], [r["proxy_psnr"] for r in front], "-o", color="tab:red",
                ms=6, lw=1.5, label="Pareto front (within budget)", zorder=3)
    peers = [r for r in records if r.get("peer")]
    for i, r in enumerate(peers):
        ax.scatter([r["macs_per_input_mp"]], [r["proxy_psnr"]], marker="s", s=50, color="tab:blue",
                   label="hand-designed peers (same proxy)" if i == 0 else None, zorder=4)
        ax.annotate(f"{r['peer']} (#{r['number']})", (r["macs_per_input_mp"], r["proxy_psnr"]),
                    textcoords="offset points", xytext=(5, 5), fontsize=8, color="tab:blue")
    if max_macs:
        ax.axvline(max_macs * 1e6, ls="--", color="k", lw=1, label=f"budget {max_macs / 1e3:.1f} kMAC/px")
    if heavy and heavy.get("macs_per_input_mp"):
        x = float(heavy["macs_per_input_mp"])
        psnr = (heavy.get("validation") or {}).get("psnr")
        if psnr is not None:
            ax.scatter([x], [psnr], marker="*", s=160, color="tab:green", zorder=5,
                       label=f"heavy {heavy['name']} (full training)")
            ax.annotate("heavy (full training)", (x, psnr), textcoords="offset points", xytext=(-10, 8),
                        ha="right", fontsize=8, color="tab:green")
        else:
            ax.axvline(x, color="tab:green", lw=1.5, label=f"heavy {heavy['name']} (full training, no PSNR yet)")
            ax.annotate("heavy (full training):\nno validation PSNR yet", (x, 0.97), xycoords=("data", "axes fraction"),
                        ha="right", va="top", fontsize=8, color="tab:green", xytext=(-4, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per input megapixel (log scale)")
    ax.set_ylabel("validation PSNR (dB) — proxy training")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def report(task: str, storage: str, study_name: str, zoo_dir: str | Path = ZOO_DIR) -> tuple[str, Path]:
    """Draw zoo/<task>/pareto.png and return (Pareto table, png path)."""
    study = load_study(storage, study_name)
    records = study_records(study)
    if not records:
        raise SettingError(f"Study {study_name!r} has no completed trials yet.")
    heavy = heavy_card(task, zoo_dir)
    settings = study.user_attrs.get("settings", {})
    title = (f"{task}: {study_name}, {len(records)} trials, proxy {settings.get('proxy_steps')} steps"
             + (f", teacher {settings['teacher']}" if settings.get("teacher") else ""))
    png = draw_pareto(records, heavy, settings.get("max_macs"), Path(zoo_dir) / task / "pareto.png", title)
    return pareto_table(records, heavy), png


def register(task: str, storage: str, study_name: str, number: int, name: str,
             spec_dir: str | Path = SPEC_DIR, command: str = "") -> Path:
    """Write specs/<task>/<name>.json: the trial's spec plus a "search" provenance block."""
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
        raise SettingError(f"{path} exists already; choose another --as name.")
    metrics = trial.user_attrs["metrics"]
    settings = study.user_attrs.get("settings", {})
    spec = {**trial.user_attrs["spec"], "name": name,
            "note": f"Searched by PixelNAS (NSGA-II), study {study_name} trial {number}: "
                    f"{describe(trial.user_attrs['spec'])}.",
            "search": {"study": study_name, "trial": number, "storage": str(storage),
                       "proxy_psnr": metrics["proxy_psnr"], "proxy_steps": settings.get("proxy_steps"),
                       "teacher": settings.get("teacher"), "budget_macs_per_input_pixel": settings.get("max_macs"),
                       "macs_per_input_pixel": metrics["macs_per_input_pixel"], "peer": trial.user_attrs.get("peer"),
                       "command": command}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path
