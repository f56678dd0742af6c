"""Stakeholder reports: a benchmark (`isp.benchmark.benchmark`) → HTML (images + tables) and CSV. Plain files; no
web framework. (The search tab's trial tables and Pareto figure live in `searched_models.search_report`: they
read the search's own log format.)
"""
from __future__ import annotations

import base64
import csv
import html
import io
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
