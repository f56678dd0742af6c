"""The search's MAC budget per input pixel: given (--max-macs), or a fraction of the heavy original's MACs
read from its zoo card (--budget-ratio)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from isp.errors import SettingError
from searched_models.search_log import ZOO_DIR


def heavy_card(task: str, zoo_dir: str | Path = ZOO_DIR) -> dict | None:
    """The card of the task's heavy original (weights not needed: it may still be training)."""
    for path in sorted((Path(zoo_dir) / task).glob("*.json")):
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict) and card.get("role") == "heavy" and "spec" in card:
            return card
    return None


def resolve_budget(task: str, max_macs: float | None, ratio: float | None, zoo_dir: str | Path = ZOO_DIR) -> float:
    """The budget in MACs per input pixel, from --max-macs or from --budget-ratio × the heavy's card."""
    from searched_models import space

    if max_macs is None and ratio is None:
        raise SettingError("Give a budget: --max-macs X (MACs per input pixel) or --budget-ratio R (× the heavy's).")
    if max_macs is None:
        card = heavy_card(task, zoo_dir)
        if card is None:
            raise SettingError(f"--budget-ratio needs the heavy model's card in {Path(zoo_dir) / task}, and there is "
                               f"none yet; start its training (pixelnas train --task {task} --name … --role heavy) "
                               f"or give --max-macs.")
        max_macs = ratio * float(card.get("macs_per_input_pixel") or space.budget_macs(card["spec"]))
    floor = space.budget_macs(space.floor_spec(task))
    if max_macs < floor:
        raise SettingError(f"A budget of {max_macs:.0f} MACs per input pixel is below the cheapest network of the "
                           f"{task} search space ({floor:.0f}).")
    return float(max_macs)


def parse_macs(text: str) -> float:
    """'12000', '12k', '1.5M', '2G' → MACs."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?\d+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise SettingError(f"Cannot read the MAC count {text!r}; write e.g. 12000, 12k or 1.5M.")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
