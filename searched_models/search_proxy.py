"""The proxy task every search trial gets: the same K training batches from the same initial weights, PSNR on a
fixed validation subset, and latency on a fixed input (`cost.measure_latency_ms`: a reported column, not an
objective)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from isp.errors import SettingError

if TYPE_CHECKING:
    from searched_models.search import SearchConfig


class Proxy:
    """The fixed proxy task every trial gets: the same K training batches, init seed, validation pairs, timing input."""

    def __init__(self, cfg: SearchConfig, log=print):
        import numpy as np
        import torch

        from searched_models.data import load_folder
        from searched_models.tasks import center_crop, get_task

        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.patch = cfg.patch or self.task.patch
        self.teacher = load_teacher(cfg.task, cfg.teacher, cfg.zoo_dir, log) if cfg.teacher else None
        log(f"loading training images from {cfg.images} …")
        self.prepared = self.task.prepare(load_folder(cfg.images))
        photos = load_folder(cfg.val_images, limit=cfg.val_limit, min_side=16)
        self.val_pairs = self.task.val_pairs([center_crop(p, cfg.val_crop, multiple=32) for p in photos],
                                             seed=cfg.seed_data)
        self.cache: dict[int, tuple] = {}
        self.cache_bytes = 0.0
        rng = np.random.default_rng(0)
        side = cfg.latency_size
        self.timing_input = torch.from_numpy(rng.random((1, self.task.in_channels, side, side), dtype=np.float32))

    def train_config(self, spec: dict):
        from searched_models.train import TrainConfig

        k = self.cfg.proxy_steps
        return TrainConfig(task=self.cfg.task, name="proxy", spec=spec, images=self.cfg.images, steps=k,
                           batch=self.cfg.batch, patch=self.patch, lr=self.cfg.lr, warmup=max(1, k // 20),
                           teacher=self.cfg.teacher, distill_weight=self.cfg.distill_weight,
                           seed=self.cfg.seed_data, threads=self.cfg.threads, zoo_dir=self.cfg.zoo_dir)

    def batch(self, tcfg, step: int) -> tuple:
        """Batch `step` (+ teacher output), computed once per worker and kept while the cache has room."""
        from searched_models.train import make_batch, teacher_output

        if step in self.cache:
            return self.cache[step]
        x, y = make_batch(tcfg, self.task, self.prepared, self.patch, step)
        t = teacher_output(tcfg, self.teacher, x) if self.teacher is not None else None
        item = (x, y, t)
        size = sum(a.numel() * a.element_size() for a in item if a is not None)
        if self.cache_bytes + size <= self.cfg.cache_mb * 1e6:
            self.cache[step] = item
            self.cache_bytes += size
        return item

    def evaluate(self, spec: dict) -> dict:
        """Proxy-train `spec` from the fixed init; returns proxy PSNR, latency (ms per input MP), final loss."""
        import numpy as np
        import torch

        from searched_models.cost import measure_latency_ms
        from searched_models.infer import stride_multiple
        from searched_models.spec import build
        from searched_models.train import fit, validate

        tcfg = self.train_config(spec)
        torch.manual_seed(tcfg.seed)
        model = build(spec).to(memory_format=torch.channels_last)
        m = stride_multiple(spec)
        scale = spec.get("scale", 1)

        def batches(step):
            x, y, t = self.batch(tcfg, step)
            h, w = x.shape[-2] // m * m, x.shape[-1] // m * m
            if (h, w) != tuple(x.shape[-2:]):
                x, y = x[..., :h, :w], y[..., :h * scale, :w * scale]
                t = None if t is None else t[..., :h * scale, :w * scale]
            return x, y, t

        start = time.perf_counter()
        losses = fit(tcfg, model, self.task, self.prepared, self.patch, batches=batches)
        train_s = time.perf_counter() - start
        psnr = validate(model, self.task, self.val_pairs)
        ms = measure_latency_ms(model, self.timing_input)
        return {"proxy_psnr": psnr, "latency_ms_per_mp": ms / (self.cfg.latency_size ** 2 / 1e6),
                "train_s": train_s, "final_loss": float(np.mean(losses[-10:])) if losses else None}


def reference_scores(proxy: Proxy, study: str) -> dict:
    """What the proxy PSNRs are to be read against, on the proxy's own validation pairs: the classical stage and
    the heavy original's current checkpoint (full training). Written next to the trials log by every search run,
    so the Pareto plots put the heavy and the classical baseline on the same scale as the trials."""
    import numpy as np

    from searched_models import zoo
    from searched_models.search_budget import heavy_card
    from searched_models.train import validate

    task, pairs = proxy.task, proxy.val_pairs
    out = {"study": study, "task": proxy.cfg.task, "val_images": proxy.cfg.val_images, "val_limit": proxy.cfg.val_limit,
           "val_crop": proxy.cfg.val_crop,
           "classical": float(np.mean([task.score(task.classical(x), y) for x, y in pairs])), "heavy": None}
    card = heavy_card(proxy.cfg.task, proxy.cfg.zoo_dir)
    try:
        model, card = zoo.load(proxy.cfg.task, card["name"], Path(proxy.cfg.zoo_dir)) if card else (None, None)
    except (SettingError, OSError):                   # a card without weights: nothing to score yet
        model = None
    if model is not None:
        training = card.get("training", {})
        out["heavy"] = {"name": card["name"], "psnr": validate(model, task, pairs),
                        "macs_per_input_mp": card.get("macs_per_input_mp"),
                        "steps_done": training.get("steps_done"), "steps": training.get("steps")}
    return out


def references_path(task: str, zoo_dir: str | Path) -> Path:
    return Path(zoo_dir) / task / "search_references.json"


def write_references(refs: dict, path: Path) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(refs, indent=2) + "\n")
    tmp.replace(path)


def read_references(path: Path) -> dict | None:
    """The references of a search (None when missing or unreadable: the plots then simply omit them)."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_teacher(task: str, name: str, zoo_dir: str | Path, log=print):
    """The distillation teacher from the zoo, with a clear message when it is not trained yet."""
    import torch

    from searched_models import zoo

    try:
        teacher, card = zoo.load(task, name, Path(zoo_dir))
    except SettingError as error:
        raise SettingError(f"--teacher {name}: {error} The {task} heavy original has to be trained first "
                           f"(pixelnas train --task {task} --name <heavy spec> --role heavy …), or search without "
                           f"--teacher.") from None
    training = card.get("training", {})
    if training.get("status") != "done":
        log(f"note: teacher {card['name']} is still training ({training.get('steps_done')}/{training.get('steps')} "
            f"steps); distilling from its latest checkpoint")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(memory_format=torch.channels_last)
