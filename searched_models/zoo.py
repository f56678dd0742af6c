"""The model zoo: `zoo/<task>/<name>.safetensors` (weights) + `<name>.json` (card). No pickle anywhere.

A card holds the spec, the role (heavy | peer | candidate | searched), params, MACs, training data and steps, validation
scores, and the exact command and commit that produced the weights. The safetensors file stores the weights
under "model.*" and, while training is resumable, the optimizer state under "optim.*".
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from isp.errors import SettingError
from searched_models.spec import build

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
SPEC_DIR = Path(__file__).resolve().parent / "specs"
# candidate: a member of a search's Pareto front trained with the full recipe for comparison; only the one model
# registered as "searched" stands for the search in the pipeline, the eval's G and the app's default pair
ROLES = ("heavy", "peer", "candidate", "searched")
UNIQUE_ROLES = ("heavy", "searched")      # held by one model per task


def card_path(task: str, name: str, zoo_dir: Path = ZOO_DIR) -> Path:
    return Path(zoo_dir) / task / f"{name}.json"


def weights_path(task: str, name: str, zoo_dir: Path = ZOO_DIR) -> Path:
    return Path(zoo_dir) / task / f"{name}.safetensors"


def log_path(task: str, name: str, zoo_dir: Path = ZOO_DIR) -> Path:
    return Path(zoo_dir) / task / f"{name}.log.jsonl"


def read_log(log_file: Path) -> list[dict]:
    """A training log's entries in file order (none when it does not exist); a line cut short by a kill is skipped."""
    entries = []
    if Path(log_file).exists():
        for line in Path(log_file).read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def read_card(task: str, name: str, zoo_dir: Path = ZOO_DIR) -> dict:
    with open(card_path(task, name, zoo_dir)) as f:
        return json.load(f)


def write_card(card: dict, zoo_dir: Path = ZOO_DIR) -> Path:
    path = card_path(card["task"], card["name"], zoo_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def list_models(task: str, zoo_dir: Path = ZOO_DIR) -> list[dict]:
    """Cards of every model of a task that has weights, sorted by role (heavy, peer, candidate, searched: ROLES),
    then by name."""
    folder = Path(zoo_dir) / task
    cards = []
    for path in sorted(folder.glob("*.json")):
        if weights_path(task, path.stem, zoo_dir).exists():
            with open(path) as f:
                cards.append(json.load(f))
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(cards, key=lambda c: (order.get(c.get("role"), 9), c["name"]))


def set_role(task: str, name: str, role: str, command: str, zoo_dir: Path = ZOO_DIR) -> list[tuple[str, str, str]]:
    """Give a trained model a new role; the one model holding a unique role (heavy, searched) before it becomes a
    candidate. Each changed card keeps the change in "role_history" (old role, new role, command, time).
    Returns the changes as (name, old role, new role)."""
    import time

    if role not in ROLES:
        raise SettingError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    cards = {c["name"]: c for c in list_models(task, zoo_dir)}
    if name not in cards:
        known = ", ".join(cards) or "none"
        raise SettingError(f"No trained model {name!r} for task {task!r}; known: {known}.")
    status = cards[name].get("training", {}).get("status")
    if status != "done":
        raise SettingError(f"{task}/{name} is still training ({status}); a resumed run would rewrite its role, so "
                           f"change it once the run has finished.")
    moves = [(other, "candidate") for other in holders(cards.values(), role, name)]
    moves.append((name, role))
    changes = []
    for model, new in moves:
        card = cards[model]
        old = card.get("role")
        if old == new:
            continue
        card["role"] = new
        card.setdefault("role_history", []).append({"from": old, "to": new, "command": command, "time": time.time()})
        write_card(card, Path(zoo_dir))
        changes.append((model, old, new))
    return changes


def holders(cards, role: str, besides: str) -> list[str]:
    """Names of the cards other than `besides` that hold `role`, when it is one of UNIQUE_ROLES (else none)."""
    if role not in UNIQUE_ROLES:
        return []
    return [c["name"] for c in cards if c.get("role") == role and c["name"] != besides]


def resolve_name(task: str, name_or_role: str, zoo_dir: Path = ZOO_DIR) -> str:
    """A role ("heavy", "searched") maps to the one model registered with it; names map to themselves."""
    cards = list_models(task, zoo_dir)
    if name_or_role in UNIQUE_ROLES:
        matches = [c["name"] for c in cards if c.get("role") == name_or_role]
        if not matches:
            raise SettingError(f"No {name_or_role!r} model is registered for task {task!r} yet.")
        return matches[0]
    if not any(c["name"] == name_or_role for c in cards):
        known = ", ".join(c["name"] for c in cards) or "none"
        raise SettingError(f"No model {name_or_role!r} for task {task!r}; known: {known}.")
    return name_or_role


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def load(task: str, name_or_role: str, zoo_dir: Path = ZOO_DIR) -> tuple[torch.nn.Module, dict]:
    """Build a zoo model from its card's spec and load its safetensors weights; returns (module in eval mode, card)."""
    name = resolve_name(task, name_or_role, zoo_dir)
    card = read_card(task, name, zoo_dir)
    module = build(card["spec"])
    module.load_state_dict(model_state(load_file(str(weights_path(task, name, zoo_dir)))))
    module.eval()
    return module, card


def deployed_params(record: dict) -> int | None:
    """Parameters a card's (or a search trial's) network runs with: rep blocks merged into their one conv
    (`cost.Cost.deployed_params`); the card's own `params` counts what the file stores. None without a valid spec
    (callers then show the recorded count)."""
    from searched_models.cost import spec_cost
    from searched_models.spec import SpecError

    try:
        return spec_cost(record["spec"]).deployed_params if record.get("spec") else None
    except SpecError:
        return None


def named_spec(task: str, name: str) -> dict:
    """A spec shipped in `searched_models/specs/<task>/<name>.json` (heavy originals and peers)."""
    path = SPEC_DIR / task / f"{name}.json"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted((SPEC_DIR / task).glob("*.json"))) or "none"
        raise SettingError(f"No spec named {name!r} for task {task!r}; known: {known}.")
    with open(path) as f:
        return json.load(f)
