"""Stakeholder reports and the search tab's data: benchmark → HTML (images + tables) and CSV; search-trial logs →
Pareto front, figure and tables. Plain files and matplotlib figures; no web framework.

The Pareto front is the set of trials not dominated in (fewer MACs, higher proxy PSNR) — the two objectives of
the multi-objective search (NSGA-II, Deb et al. 2002).
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ENERGY_NOTE = ("Energy and power are estimated from published per-operation energies (isp/power.py), "
               "not measured.")
TASK_TITLES = {"denoise_raw": "RAW denoising (ISO 1600)", "sr_x2": "×2 super-resolution (zoom)",
               "enhance": "Enhancement (vs the local-Laplacian reference)"}


# ------------------------------------------------------------------------------------------ benchmark report

def _png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return html.escape(str(value))


def _html_table(rows: list[dict]) -> str:
    if not rows:
        return "<p class='empty'>No results.</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def csv_rows(bench: dict) -> list[dict]:
    """One flat row per (task, variant): what the CSV holds."""
    return [{"task": task, **row} for task, rows in bench["tasks"].items() for row in rows]


def write_csv(bench: dict, path: Path) -> Path:
    rows = csv_rows(bench)
    fields = list(dict.fromkeys(k for r in rows for k in r)) or ["task"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def render_html(bench: dict, title: str = "PixelNAS benchmark") -> str:
    """A self-contained HTML page: settings, one table per task, preview tiles (embedded PNG), notes."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>{stamp} · {len(bench['images'])} photo(s) at long side {bench['long_side']} px · "
             f"device profile <b>{html.escape(bench['device'])}</b></p>",
             "<p class='meta'>Each task runs the whole simulated ISP; only that task's stage changes between rows. "
             "R = MACs(heavy) / MACs(variant); G = (PSNR − PSNR<sub>classical</sub>) / "
             "(PSNR<sub>heavy</sub> − PSNR<sub>classical</sub>). " + html.escape(ENERGY_NOTE) + "</p>"]
    for task, rows in bench["tasks"].items():
        parts.append(f"<h2>{html.escape(TASK_TITLES.get(task, task))}</h2>{_html_table(rows)}")
        tiles = [p for p in bench.get("previews", []) if p["task"] == task]
        for preview in tiles:
            figures = "".join(f"<figure><img src='{_png_data_uri(img)}' alt='{html.escape(label)}'>"
                              f"<figcaption>{html.escape(label)}</figcaption></figure>"
                              for img, label in preview["tiles"])
            parts.append(f"<div class='tiles'><div class='src'>{html.escape(preview['image'])}</div>{figures}</div>")
    if bench.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in bench["notes"]) + "</ul>")
    parts.append("<p class='meta'>Images: " + html.escape(", ".join(bench["images"])) + "</p>")
    style = ("body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937}"
             "table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}"
             "th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:right}th{background:#eef2ff}"
             "td:first-child,th:first-child{text-align:left}.meta{color:#6b7280;font-size:.9rem}"
             ".tiles{display:flex;gap:.6rem;align-items:flex-start;margin:.4rem 0}.src{width:9rem;font-size:.8rem}"
             "figure{margin:0}figure img{max-width:200px;border-radius:4px}"
             "figcaption{font-size:.8rem;text-align:center}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_report(bench: dict, out_dir: str | Path, stem: str = "pixelnas_benchmark") -> tuple[Path, Path]:
    """Write `<stem>.html` and `<stem>.csv` into `out_dir`; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(render_html(bench), encoding="utf-8")
    return html_path, write_csv(bench, out_dir / f"{stem}.csv")


# ------------------------------------------------------------------------------------------ search trials

TRIAL_FIELDS = ("number", "spec", "macs_per_input_mp", "params", "latency_ms_per_mp", "proxy_psnr", "status")


def load_trials(path: str | Path) -> list[dict]:
    """Trials from a search log (one JSON object per line). Missing file → []; unreadable lines are skipped
    (the log may be growing while it is read)."""
    path = Path(path)
    if not path.is_file():
        return []
    trials = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            trial = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(trial, dict):
            trials.append(trial)
    return trials


def _usable(trial: dict) -> bool:
    macs, psnr = trial.get("macs_per_input_mp"), trial.get("proxy_psnr")
    ok_status = str(trial.get("status", "complete")).lower() in ("complete", "completed", "ok", "done")
    return ok_status and isinstance(macs, (int, float)) and isinstance(psnr, (int, float)) and macs > 0 \
        and math.isfinite(psnr)


def pareto_numbers(trials: list[dict]) -> set:
    """Trial numbers on the front: no other trial has ≤ MACs and ≥ PSNR with one of them strict."""
    points = [(t["macs_per_input_mp"], t["proxy_psnr"], t.get("number")) for t in trials if _usable(t)]
    front = set()
    for macs, psnr, number in points:
        dominated = any((m <= macs and p >= psnr) and (m < macs or p > psnr) for m, p, _ in points)
        if not dominated:
            front.add(number)
    return front


def trial_rows(trials: list[dict]) -> list[dict]:
    """The trials table: Pareto members first (by MACs), then the rest by number."""
    front = pareto_numbers(trials)
    def number(value, digits, scale=1.0):
        return round(value / scale, digits) if isinstance(value, (int, float)) else None

    rows = []
    for t in trials:
        rows.append({"trial": t.get("number"), "status": t.get("status", ""),
                     "Pareto": "★" if t.get("number") in front else "",
                     "GMACs / MP": number(t.get("macs_per_input_mp"), 4, 1e9), "params": t.get("params"),
                     "ms / MP": number(t.get("latency_ms_per_mp"), 1),
                     "proxy PSNR (dB)": number(t.get("proxy_psnr"), 3)})
    return sorted(rows, key=lambda r: (r["Pareto"] != "★", r["GMACs / MP"] if r["Pareto"] else 0,
                                       r["trial"] if isinstance(r["trial"], (int, float)) else 0))


def pareto_figure(trials: list[dict], marks: list[dict], title: str):
    """Quality vs MACs (log x): every usable trial, the front as a step line, and zoo models marked.

    marks: {"name", "role", "macs_per_input_mp", "psnr" (or None → drawn as a vertical line)}.
    Returns a matplotlib Figure (no pyplot state, safe in server threads).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    usable = [t for t in trials if _usable(t)]
    front = pareto_numbers(usable)
    if usable:
        ax.scatter([t["macs_per_input_mp"] / 1e9 for t in usable], [t["proxy_psnr"] for t in usable],
                   s=18, c="#94a3b8", alpha=0.7, label=f"trials ({len(usable)})")
        pts = sorted((t["macs_per_input_mp"] / 1e9, t["proxy_psnr"]) for t in usable if t.get("number") in front)
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color="#4f46e5", lw=1.8)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=36, c="#4f46e5", label="Pareto front", zorder=3)
    for t in usable:            # trials seeded with a hand-designed peer's spec carry its name
        if t.get("peer"):
            ax.annotate(str(t["peer"]), (t["macs_per_input_mp"] / 1e9, t["proxy_psnr"]), xytext=(4, 4),
                        textcoords="offset points", fontsize=8, color="#b45309")
    style = {"heavy": ("*", "#dc2626", 220), "peer": ("D", "#f59e0b", 60), "searched": ("*", "#16a34a", 260)}
    seen = set()
    for mark in marks:
        marker, colour, size = style.get(mark.get("role"), ("o", "#0ea5e9", 50))
        x = mark["macs_per_input_mp"] / 1e9
        label = f"{mark.get('role')}: {mark['name']}"
        if mark.get("psnr") is None:
            ax.axvline(x, color=colour, ls="--", lw=1.2, label=label + " (no score yet)")
        else:
            ax.scatter([x], [mark["psnr"]], marker=marker, s=size, c=colour, edgecolors="black", linewidths=0.6,
                       label=label if label not in seen else None, zorder=4)
        seen.add(label)
    ax.set_xscale("log")
    ax.set_xlabel("GMACs per input megapixel (log scale)")
    ax.set_ylabel("proxy PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if not usable:
        ax.text(0.5, 0.5, "No search trials logged for this task yet", transform=ax.transAxes, ha="center",
                va="center", fontsize=12, color="#6b7280")
        xs = [m["macs_per_input_mp"] / 1e9 for m in marks if m.get("macs_per_input_mp")]
        ax.set_xlim(min(xs) / 1000 if xs else 1e-2, max(xs) * 3 if xs else 1e4)   # room for 100–1000× cheaper
        ys = [m["psnr"] for m in marks if m.get("psnr") is not None]
        ax.set_ylim(min(ys) - 3 if ys else 25, max(ys) + 2 if ys else 40)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig


def blocks_table(spec: dict) -> list[dict]:
    """A spec as rows: stem, each block (type, channels, kernel, activation, repeat, other options), tail."""
    rows = []
    stem = spec.get("stem", {})
    rows.append({"#": "stem", "type": "conv", "channels": stem.get("channels"), "kernel": stem.get("kernel"),
                 "act": stem.get("act"), "repeat": 1, "options": ""})
    for index, block in enumerate(spec.get("blocks", []), 1):
        extra = {k: v for k, v in block.items() if k not in ("type", "channels", "kernel", "act", "repeat")}
        rows.append({"#": index, "type": block.get("type"), "channels": block.get("channels"),
                     "kernel": block.get("kernel"), "act": block.get("act"), "repeat": block.get("repeat", 1),
                     "options": json.dumps(extra) if extra else ""})
    tail = spec.get("tail", {})
    rows.append({"#": "tail", "type": "conv" + (" + pixel shuffle" if spec.get("scale", 1) > 1 else ""),
                 "channels": spec.get("out_channels"), "kernel": tail.get("kernel"), "act": "none", "repeat": 1,
                 "options": json.dumps({k: spec[k] for k in ("unshuffle", "global_residual", "body_skip")
                                        if k in spec})})
    return rows
