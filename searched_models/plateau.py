"""Has a training run reached a plateau? Validation PSNR gained < 0.05 dB over the last 25% of its steps."""
from __future__ import annotations

PLATEAU_DB = 0.05
LAST_FRACTION = 0.25


def last_quarter_gain(curve: list[list[float]]) -> float | None:
    """PSNR at the last validation minus PSNR at the first validation in the last 25% of the steps run so far.

    `curve` is [[step, psnr], …] in step order (the card's validation history). None until the last quarter
    holds two validations.
    """
    if len(curve) < 2:
        return None
    last_step = curve[-1][0]
    window = [p for s, p in curve if s >= (1.0 - LAST_FRACTION) * last_step]
    if len(window) < 2:
        return None
    return float(window[-1] - window[0])


def plateau_status(curve: list[list[float]], finished: bool) -> dict:
    """Card fields: the last-quarter gain and whether the run is finished and flat."""
    gain = last_quarter_gain(curve)
    return {"gain_last_quarter_db": None if gain is None else round(gain, 4),
            "plateau": bool(finished and gain is not None and gain < PLATEAU_DB)}
