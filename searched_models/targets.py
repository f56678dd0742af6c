"""The search issue's (#4) targets for the registered searched model, judged on one task's `pixelnas eval` report.

R = MACs(heavy)/MACs(searched) ≥ 100, G = (PSNR_searched − PSNR_classical)/(PSNR_heavy − PSNR_classical) ≥ 0.90,
measured CPU latency (wall time) heavy/searched ≥ 30, and ≥ 0.2 dB above every peer whose MACs are ≥ the searched
model's.
The numbers are the issue's; nothing here relaxes them.
"""
from __future__ import annotations

MIN_R = 100.0
MIN_G = 0.90
MIN_TIME_RATIO = 30.0
PEER_MARGIN_DB = 0.2


def check(report: dict) -> dict | None:
    """{'name', 'R', 'G', 'time_ratio', 'peer', 'peer_margin_db', 'unscored_peers', 'partial', 'busy', 'met': {...},
    'short': {...}} for the report's searched model, or None when it has none. `met[key]` is True, False, or None when
    the report cannot tell: R and the time ratio need the heavy in the report, G the heavy and the classical stage,
    and the peer rule every zoo peer at ≥ the searched model's MACs (`report['zoo_peers']`, written by `pixelnas
    eval`; `unscored_peers` names those the report left out). `short`: how far each figure falls below its target,
    None where met or unknown. G and the peer rule are not judged (None) on a `--limit` report (`partial`), the time
    ratio not when other processes' load made it unreliable (`busy`: `isp.cpu_load.ratios_unreliable`). `peer` is the
    strongest scored peer at ≥ the searched model's MACs (None if there is none, which meets the peer rule when no zoo
    peer was left out), `peer_margin_db` the searched model's PSNR minus that peer's."""
    rows = report["summary"]
    searched = next((r for r in rows if r["role"] == "searched"), None)
    if searched is None or searched.get("psnr") is None:
        return None
    rivals = [r for r in rows if r["role"] == "peer" and r.get("psnr") is not None
              and r["macs_per_input_mp"] >= searched["macs_per_input_mp"]]
    scored = {r["name"] for r in rows if r.get("psnr") is not None}
    unscored = sorted(p["name"] for p in report.get("zoo_peers", [])
                      if p["macs_per_input_mp"] >= searched["macs_per_input_mp"] and p["name"] not in scored)
    peer = max(rivals, key=lambda r: r["psnr"], default=None)
    margin = None if peer is None else searched["psnr"] - peer["psnr"]
    ratio = searched.get("ms_ratio_heavy")
    short = {"R": _short(searched["R"], MIN_R), "G": _short(searched["G"], MIN_G),
             "time": _short(ratio, MIN_TIME_RATIO), "peers": _short(margin, PEER_MARGIN_DB)}
    peers_met = margin is None or margin >= PEER_MARGIN_DB
    partial = bool(report.get("limit"))                     # quality on the first images of each set only
    busy = bool(report.get("timing_ratios_unreliable"))     # written by `pixelnas eval` (isp.cpu_load)
    return {"name": searched["name"], "R": searched["R"], "G": searched["G"], "time_ratio": ratio,
            "peer": None if peer is None else peer["name"], "peer_margin_db": margin, "short": short,
            "unscored_peers": unscored, "partial": partial, "busy": busy,
            "met": {"R": _met(searched["R"], MIN_R), "G": None if partial else _met(searched["G"], MIN_G),
                    "time": None if busy else _met(ratio, MIN_TIME_RATIO),
                    "peers": None if partial or (unscored and peers_met) else peers_met}}


def _met(value: float | None, bound: float) -> bool | None:
    """Whether `value` reaches `bound`; None when the report does not have the value."""
    return None if value is None else value >= bound


UNMEASURED = {"R": "the heavy is not in the report", "G": "needs the heavy and classical in the report",
              "time": "the heavy is not in the report"}


def _short(value: float | None, bound: float) -> float | None:
    """How far `value` falls below `bound` (None when it does not, or is unknown)."""
    return None if value is None or value >= bound else bound - value


def _widened(value: float, digits: int, keeps, spec: str = "") -> str:
    """`value` with `digits` decimals, or the fewest more (up to 6) for which `keeps(float(text))` holds."""
    for d in range(digits, 7):
        text = f"{value:{spec}.{d}f}"
        if keeps(float(text)):
            return text
    return text


def shown(value: float, bound: float, digits: int, sign: bool = False) -> str:
    """`value` with `digits` decimals, or more where rounding would put it on the other side of `bound`
    (a G of 0.895 reads 0.895, not a passing-looking 0.90; an R of 99.96 reads 99.96, not 100.0)."""
    return _widened(value, digits, lambda v: (v >= bound) == (value >= bound), "+" if sign else "")


def shown_short(short: float, digits: int) -> str:
    """A shortfall with `digits` decimals, or more where it would otherwise read as zero."""
    return _widened(short, digits, lambda v: v > 0)


def shown_figures(c: dict) -> dict:
    """The check's figures as text for `pixelnas eval` and the README table alike: 'R', 'G', 'time', 'peers'
    (the peer margin in dB; None without a peer) via `shown`, '–' where unknown, and 'short' via `shown_short`."""
    def text(value, bound, digits, sign=False):
        return "–" if value is None else shown(value, bound, digits, sign)

    return {"R": text(c["R"], MIN_R, 1), "G": text(c["G"], MIN_G, 2), "time": text(c["time_ratio"], MIN_TIME_RATIO, 1),
            "peers": None if c["peer"] is None else text(c["peer_margin_db"], PEER_MARGIN_DB, 2, sign=True),
            "short": {k: None if v is None else shown_short(v, 2) for k, v in c["short"].items()}}


def format_check(c: dict | None) -> list[str]:
    """Printable lines for `pixelnas eval`, one per target, like the heavies' floor lines."""
    if c is None:
        return []
    name, met, f = c["name"], c["met"], shown_figures(c)

    def verdict(key: str, unit: str = "") -> str:
        if met[key] is None:
            if c.get("partial") and key in ("G", "peers"):
                return "not judged (--limit: quality targets are judged on whole sets)"
            if c.get("busy") and key == "time":
                return "not judged (other processes kept the CPU busy while the models were timed)"
            why = UNMEASURED.get(key) or f"peers not evaluated: {', '.join(c['unscored_peers'])}"
            return f"not measured ({why})"
        short = "" if f["short"][key] is None else f" (short by {f['short'][key]}{unit})"
        return "met" if met[key] else "NOT met" + short

    lines = [f"target R ≥ {MIN_R:.0f}: {name} {f['R']} → {verdict('R')}",
             f"target G ≥ {MIN_G:.2f}: {name} {f['G']} → {verdict('G')}",
             f"target heavy/searched CPU latency ≥ {MIN_TIME_RATIO:.0f}×: {name} "
             + (f["time"] if c["time_ratio"] is None else f"{f['time']}×") + f" → {verdict('time', '×')}"]
    if c["peer"] is None:
        lines.append(f"target ≥ {PEER_MARGIN_DB} dB above every peer at ≥ its MACs: {name} → "
                     + ("met (no such peer)" if met["peers"] else verdict("peers")))
    else:
        lines.append(f"target ≥ {PEER_MARGIN_DB} dB above every peer at ≥ its MACs: {name} "
                     f"{f['peers']} dB vs {c['peer']} → {verdict('peers', ' dB')}")
    return lines
