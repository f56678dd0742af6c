"""Loading zoo networks for the pipeline's learned stages — the only place `isp` touches `searched_models`."""
from __future__ import annotations

import threading


class ModelCache:
    """Loads each (task, name) zoo model once and keeps it; thread-safe for the app's worker threads."""

    def __init__(self, zoo_dir=None):
        self.zoo_dir = zoo_dir
        self._models: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()  # guards the two dicts only, never held while a model loads
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def _zoo_kwargs(self) -> dict:
        return {"zoo_dir": self.zoo_dir} if self.zoo_dir is not None else {}

    def cards(self, task: str) -> list[dict]:
        """The cards (JSON) of every model of a task that has weights; no weights are loaded."""
        from searched_models import zoo

        return zoo.list_models(task, **self._zoo_kwargs())

    def names(self, task: str) -> list[str]:
        """Model names available for a task (plus the roles "heavy"/"searched" when registered)."""
        cards = self.cards(task)
        roles = [r for r in ("heavy", "searched") if any(c.get("role") == r for c in cards)]
        return roles + [c["name"] for c in cards]

    def describe(self, task: str, variant: str) -> str:
        """What a variant of a learned stage is: 'heavy = edsr_baseline', a zoo name as is, '… (training, step N)'
        for weights whose run has not finished; a classical variant (no card) is returned unchanged."""
        cards = {c["name"]: c for c in self.cards(task)}
        if variant in ("heavy", "searched"):
            name = next((n for n, c in cards.items() if c.get("role") == variant), variant)
        else:
            name = variant
        card = cards.get(name)
        if card is None:
            return variant
        text = f"{variant} = {name}" if name != variant else name
        training = card.get("training", {})
        if training.get("status") not in (None, "done"):
            text += f" (training, step {training.get('steps_done')})"
        return text

    def resolve(self, task: str, name: str) -> str:
        """The model name behind a role ("heavy", "searched"; read from the cards each time, so a role moved by
        `pixelnas set-role` is followed); a model name is checked and returned as is. SettingError when unknown."""
        from searched_models import zoo

        return zoo.resolve_name(task, name, **self._zoo_kwargs())

    def get(self, task: str, name: str):
        """(module, card) for a model name or role; raises isp.errors.SettingError when unknown. A model already
        loaded under its name is returned without reading the zoo folder (the pipeline times this call)."""
        from searched_models import zoo

        with self._lock:
            if name not in zoo.UNIQUE_ROLES and (task, name) in self._models:
                return self._models[(task, name)]
        key = (task, self.resolve(task, name))
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per model; requests for other models, loaded or not, do not wait for it
            with self._lock:
                if key in self._models:
                    return self._models[key]
            module, card = zoo.load(task, key[1], **self._zoo_kwargs())
            warm_up(module, card)
            with self._lock:
                self._models[key] = (module, card)
                return self._models[key]

    def run(self, task: str, name: str, x_chw, tile: int | None = 512):
        """Apply a zoo model to one C×H×W array (tiled, bounded memory)."""
        from searched_models.infer import run_chw

        module, _ = self.get(task, name)
        return run_chw(module, x_chw, tile=tile)

    def macs(self, task: str, name: str, height: int, width: int) -> int:
        """MACs of one pass over a height×width network input (packed pixels for denoise_raw, LR for sr_x2)."""
        from searched_models.cost import spec_cost

        _, card = self.get(task, name)
        return int(round(spec_cost(card["spec"]).macs(height, width)))

    def params(self, task: str, name: str) -> int:
        """Parameters of the network as it runs: a rep block's training branches merged into its one conv
        (`searched_models.cost.Cost.deployed_params`); the weights file holds more."""
        from searched_models import zoo

        _, card = self.get(task, name)
        return zoo.deployed_params(card)

    def values_moved(self, task: str, name: str, height: int, width: int) -> float:
        """Values moved by one pass over a height×width network input: every layer's activations read and
        written once plus the weights read once (`searched_models.cost.Cost.bytes_moved` at 1 byte per value),
        the traffic `pixelnas eval` feeds to `isp.power.energy_mj`."""
        from searched_models.cost import spec_cost

        _, card = self.get(task, name)
        return float(spec_cost(card["spec"]).bytes_moved(height, width, bytes_per_value=1.0))


def warm_up(module, card: dict, side: int = 32) -> None:
    """One small forward pass right after loading, so a pipeline's measured time does not include the first
    call's one-off set-up (oneDNN kernel selection, thread-pool start), as `pixelnas eval` warms up before timing."""
    import numpy as np

    from searched_models.infer import run_chw

    run_chw(module, np.zeros((card["spec"]["in_channels"], side, side), np.float32), tile=None)
