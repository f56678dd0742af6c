"""The heavy originals' quality floors, checked on a `pixelnas eval` report.

The floors keep the heavies honest (not strawmen); they are the model-zoo issue's numbers:
sr_x2 — Set5 ≥ 37.5 dB and Set14 ≥ 33.1 dB (Y, 2 px shaved; EDSR-baseline class, Lim et al. 2017 report
37.99 / 33.57); denoise_raw — ≥ 2 dB above the classical denoiser in final-sRGB PSNR at ISO 3200 on McMaster;
enhance — ≥ 33 dB against the local Laplacian reference operator on McMaster and on CBSD68.
A floor is only judged on a set the report contains (and, for denoise_raw, at the ISO it names), and only on the
whole set: with `--limit` its `met` is None.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Floor:
    task: str
    set: str                  # folder name in the report's groups
    db: float                 # the bound
    over_classical: bool      # True: the bound is on PSNR − classical PSNR of the same group
    iso: int | None = None

    def describe(self) -> str:
        what = f"≥ {self.db:g} dB over classical" if self.over_classical else f"≥ {self.db:g} dB"
        return f"{self.set}{f' ISO {self.iso}' if self.iso else ''} {what}"


FLOORS = (
    Floor("sr_x2", "Set5", 37.5, False),
    Floor("sr_x2", "Set14", 33.1, False),
    Floor("denoise_raw", "McMaster", 2.0, True, iso=3200),
    Floor("enhance", "McMaster", 33.0, False),
    Floor("enhance", "CBSD68", 33.0, False),
)
# The heavy class, in MACs per network-input pixel (the issue: sr_x2 ≥ 500 K per LR pixel, denoise_raw ≥ 100 K
# per sensor pixel = 400 K per packed pixel, enhance ≥ 300 K per pixel). A candidate of this class may take over
# the heavy role, so its floors are judged too; a small candidate (a search front member) is not.
HEAVY_MIN_MACS_PER_PIXEL = {"sr_x2": 500e3, "denoise_raw": 400e3, "enhance": 300e3}


def is_judged(task: str, row: dict) -> bool:
    """The heavy, and any candidate of the heavy class."""
    heavy_class = row.get("macs_per_input_mp", 0.0) >= HEAVY_MIN_MACS_PER_PIXEL[task] * 1e6
    return row["role"] == "heavy" or (row["role"] == "candidate" and heavy_class)


def check_floors(report: dict) -> list[dict]:
    """One entry per (floor, judged model) that the report can judge: value, bound and whether it holds."""
    results = []
    for floor in (f for f in FLOORS if f.task == report["task"]):
        group = next((g for g in report["groups"] if g["set"] == floor.set and g.get("iso") == floor.iso), None)
        if group is None:
            continue
        classical = next((r for r in group["rows"] if r["role"] == "classical"), None)
        if floor.over_classical and classical is None:
            continue
        for row in (r for r in group["rows"] if is_judged(report["task"], r)):
            value = row["psnr"] - classical["psnr"] if floor.over_classical else row["psnr"]
            results.append({"model": row["name"], "role": row["role"], "floor": floor.describe(),
                            "over_classical": floor.over_classical, "value_db": float(value), "bound_db": floor.db,
                            "met": None if report.get("limit") else value >= floor.db})
    return results


def format_floors(results: list[dict]) -> list[str]:
    """Printable lines, one per judged floor."""
    from searched_models.targets import shown, shown_short

    lines = []
    for r in results:            # from the unrounded value: widened where 2 decimals would hide the verdict
        value = shown(r["value_db"], r["bound_db"], 2, sign=bool(r.get("over_classical")))
        verdict = ("not judged (--limit: floors are judged on whole sets)" if r["met"] is None else "met" if r["met"]
                   else f"NOT met (short by {shown_short(r['bound_db'] - r['value_db'], 2)} dB)")
        lines.append(f"floor {r['floor']}: {r['model']} ({r['role']}) {value} dB → {verdict}")
    return lines
