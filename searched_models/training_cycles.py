"""Per-cycle history of a training run with warm restarts (SGDR: Loshchilov & Hutter, ICLR 2017), read from its
card, checkpoint metadata and JSONL log alone.

A cycle runs from a restart's step (the card's `training.restarts`, [[step, peak lr], …]) to the next restart or
the last validation; the run before the first restart is listed first, as "initial". Per cycle: validation PSNR
at its start, its dip (the lowest after the restart), its best, its end, the gain over the cycle and the plateau
rule's last-quarter gain at its end (`searched_models.plateau`). `pixelnas zoo-status --cycles` prints it.
"""
from __future__ import annotations

from pathlib import Path

from searched_models import zoo
from searched_models.evaluate import fmt_optional
from searched_models.plateau import last_quarter_gain


def logged_validations(log_file: Path) -> list[list[float]]:
    """[[step, psnr], …] in step order from a training log's `val_psnr` lines. Should a step be logged twice (a
    resume trims the log to its checkpoint, `train.trim_log`, but a log may predate that), its later line wins."""
    by_step = {int(e["step"]): float(e["val_psnr"]) for e in zoo.read_log(log_file)
               if e.get("val_psnr") is not None and "step" in e}
    return [[step, by_step[step]] for step in sorted(by_step)]


def validation_curve(weights: Path, log_file: Path) -> list[list[float]]:
    """The checkpoint's validation history (the one the card's plateau figures come from, complete even where a
    log was lost), extended by the log's validations after it (a training still running). Either may be missing."""
    from searched_models.train import checkpoint_meta

    try:
        curve = [list(c) for c in checkpoint_meta(weights).get("history", {}).get("curve", [])]
    except Exception:  # noqa: BLE001 - no or unreadable checkpoint: the log alone
        curve = []
    last = curve[-1][0] if curve else -1
    return curve + [c for c in logged_validations(log_file) if c[0] > last]


def training_cycles(restarts: list[list[float]], curve: list[list[float]]) -> list[dict]:
    """One row per cycle (see the module doc); empty without validations. Steps are the curve's steps, so a
    cycle's values are those of its validations (start: the last one at or before the restart's step)."""
    if not curve:
        return []
    starts = [(0, None)] + [(int(step), float(lr)) for step, lr in restarts]
    rows = []
    for i, (start, peak) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else curve[-1][0]
        inside = [(s, p) for s, p in curve if start < s <= end]
        before = [(s, p) for s, p in curve if s <= start]
        if not inside:
            continue
        at_start = before[-1] if before else None
        dip, best = min(inside, key=lambda c: c[1]), max(inside, key=lambda c: c[1])
        so_far = [c for c in curve if c[0] <= inside[-1][0]]
        rows.append({"cycle": "initial" if i == 0 else i, "start": start, "end": inside[-1][0], "peak_lr": peak,
                     "val_start": at_start[1] if at_start else None, "dip_step": dip[0], "dip": dip[1],
                     "best_step": best[0], "best": best[1], "val_end": inside[-1][1],
                     "gain_cycle_db": inside[-1][1] - at_start[1] if at_start else None,
                     "gain_last_quarter_db": last_quarter_gain(so_far)})
    return rows


def format_cycles(label: str, rows: list[dict]) -> str:
    """A table of `training_cycles` rows under a heading naming the model."""
    lines = [f"{label}: validation PSNR (dB) per warm-restart cycle",
             f"{'cycle':>8}{'steps':>18}{'peak lr':>9}{'start':>8}{'dip':>8}{'at step':>9}{'best':>8}{'at step':>9}"
             f"{'end':>8}{'Δ cycle':>9}{'Δ last¼':>9}"]
    for r in rows:
        lines.append(f"{r['cycle']!s:>8}{r['start']:>9}→{r['end']:<8}{fmt_optional(r['peak_lr'], '{:>9.0e}', 9)}"
                     f"{fmt_optional(r['val_start'], '{:>8.2f}', 8)}{r['dip']:>8.2f}{r['dip_step']:>9}"
                     f"{r['best']:>8.2f}{r['best_step']:>9}{r['val_end']:>8.2f}"
                     f"{fmt_optional(r['gain_cycle_db'], '{:>+9.2f}', 9)}"
                     f"{fmt_optional(r['gain_last_quarter_db'], '{:>+9.2f}', 9)}")
    return "\n".join(lines)
