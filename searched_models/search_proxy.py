"""The proxy task every search trial gets: the same K training batches from the same initial weights, PSNR on a
fixed validation subset, and latency on a fixed input (`cost.measure_latency_ms`: a reported column, not an
objective). With a latency rule (`--min-speedup`), `speedup` times the heavy and the trial's network back to back
on that input before any training, in CPU time, so the ratio is measured in one run and other jobs barely move it.

The distillation teacher is pinned per study: the first run of a study snapshots the heavy's weights into
`zoo/<task>/<study>.teacher.safetensors` (weights only, committed with the study's logs) and every later run, worker
or machine distils from that file, so all trials of a study see the same targets even while the heavy keeps
training. The batches and teacher outputs are also kept on disk (`--cache-dir`, default ~/.cache/pixelnas), keyed
by everything that determines them, so a resumed search does not recompute them (1000 SR batches with an
EDSR-class teacher take ~40 minutes on one core).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from isp.errors import SettingError

if TYPE_CHECKING:
    from searched_models.search import SearchConfig


def latency_input(channels: int, side: int):
    """The fixed (seeded) 1×channels×side×side input every latency in a search is timed on."""
    import numpy as np
    import torch

    return torch.from_numpy(np.random.default_rng(0).random((1, channels, side, side), dtype=np.float32))


class Proxy:
    """The fixed proxy task every trial gets: the same K training batches, init seed, validation pairs, timing input."""

    def __init__(self, cfg: SearchConfig, log=print):
        import torch

        from searched_models.data import load_folder, load_training_photos
        from searched_models.tasks import center_crop, get_task

        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.patch = cfg.patch or self.task.patch
        self.teacher, self.teacher_info = (None, None)
        if cfg.teacher:
            self.teacher, self.teacher_info = load_teacher(cfg.task, cfg.teacher, cfg.zoo_dir, log,
                                                           pin=pinned_teacher_path(cfg.task, cfg.teacher_pin or cfg.study_name,
                                                                                   cfg.zoo_dir),
                                                           shared=bool(cfg.teacher_pin))
        log(f"loading training images from {cfg.images} …")
        self.prepared = self.task.prepare(load_training_photos(cfg.images, self.task.photo_side(self.patch)))
        self.disk = batch_cache_dir(cfg, self.patch, self.teacher_info)
        photos = load_folder(cfg.val_images, limit=cfg.val_limit, min_side=16)
        self.data = data_fingerprint(cfg, photos)
        self.val_pairs = self.task.val_pairs([center_crop(p, cfg.val_crop, multiple=32) for p in photos],
                                             seed=cfg.seed_data)
        self.cache: dict[int, tuple] = {}
        self.cache_bytes = 0.0
        self.timing_input = latency_input(self.task.in_channels, cfg.latency_size)
        self.heavy = None                 # built once: only its time matters (`speedup`)
        if cfg.min_speedup:
            from searched_models.infer import stride_multiple
            from searched_models.search_budget import heavy_card

            card = heavy_card(cfg.task, cfg.zoo_dir)
            if card is None:
                raise SettingError(f"--min-speedup compares with the heavy original, and task {cfg.task!r} has none "
                                   f"in {cfg.zoo_dir}.")
            multiple = stride_multiple(card["spec"])
            if cfg.latency_size % multiple:
                raise SettingError(f"--latency-size {cfg.latency_size} must be a multiple of {multiple} "
                                   f"for the heavy {card['name']}.")
            from searched_models.spec import build

            self.heavy = build(card["spec"]).to(memory_format=torch.channels_last)

    def speedup(self, spec: dict) -> dict:
        """Heavy latency / this network's latency, both untrained (weights do not change a conv net's time) and
        timed back to back on the timing input: the heavy with 1 warm-up + 3 runs, the network with 2 + 5. Timed in
        CPU time (`time.process_time`): searches run next to other jobs, and wall time then swings by 2x between
        two measurements of one network; the rule is checked again in wall time on a quiet machine
        (`pixelnas search --latency`) before a model is registered."""
        import time

        import torch

        from searched_models.cost import measure_latency_ms
        from searched_models.spec import build

        heavy_mp = self.cfg.latency_size ** 2 / 1e6
        heavy_ms = measure_latency_ms(self.heavy, self.timing_input, runs=3, warmup=1, clock=time.process_time)
        x, mp = self.timing_input_for(spec)
        ms = measure_latency_ms(build(spec).to(memory_format=torch.channels_last), x, clock=time.process_time)
        return {"speedup": (heavy_ms / heavy_mp) / (ms / mp), "heavy_latency_ms_per_mp": heavy_ms / heavy_mp,
                "untrained_latency_ms_per_mp": ms / mp}

    def timing_input_for(self, spec: dict):
        """(latency input, its megapixels) for a network: the fixed timing input, or — when the network's stride
        (pixel-unshuffle × U-Net/pyramid levels) does not divide --latency-size — one rounded up to its stride."""
        from searched_models.infer import stride_multiple

        side, m = self.cfg.latency_size, stride_multiple(spec)
        if side % m == 0:
            return self.timing_input, side ** 2 / 1e6
        side = -(-side // m) * m
        return latency_input(self.task.in_channels, side), side ** 2 / 1e6

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
        item = self._from_disk(step)
        if item is None:
            x, y = make_batch(tcfg, self.task, self.prepared, self.patch, step)
            t = teacher_output(tcfg, self.teacher, x) if self.teacher is not None else None
            item = (x, y, t)
            self._to_disk(step, item)
        item = same_layout(*item)
        size = sum(a.numel() * a.element_size() for a in item if a is not None)
        if self.cache_bytes + size <= self.cfg.cache_mb * 1e6:
            self.cache[step] = item
            self.cache_bytes += size
        return item

    def _from_disk(self, step: int) -> tuple | None:
        from safetensors.torch import load_file

        path = self.disk / f"{step}.safetensors" if self.disk else None
        if path is None or not path.exists():
            return None
        try:
            d = load_file(str(path))
            return d["x"], d["y"], d.get("t")
        except Exception:  # noqa: BLE001 - a torn or foreign file: recompute it
            return None

    def _to_disk(self, step: int, item: tuple) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        if self.disk is None:
            return
        tmp = self.disk / f"{step}.{os.getpid()}.tmp"
        try:
            self.disk.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in zip("xyt", item) if v is not None}, str(tmp))
            tmp.replace(self.disk / f"{step}.safetensors")
        except (OSError, SafetensorError) as error:    # a full or read-only disk only costs recomputation
            print(f"note: batch cache on disk disabled ({error})", flush=True)
            self.disk = None
        finally:
            tmp.unlink(missing_ok=True)

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
        x, mp = self.timing_input_for(spec)
        ms = measure_latency_ms(model, x)
        return {"proxy_psnr": psnr, "latency_ms_per_mp": ms / mp,
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")       # one per worker: several may start at once
    tmp.write_text(json.dumps(refs, indent=2) + "\n")
    tmp.replace(path)


def read_references(path: Path) -> dict | None:
    """The references of a search (None when missing or unreadable: the plots then simply omit them)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def same_layout(x, y, t):
    """One memory layout whether a batch was computed or read back from disk: x channels-last (as make_batch
    gives it), y and the teacher's output plain contiguous — so a resumed trial computes bit for bit the same."""
    import torch

    return (x.contiguous(memory_format=torch.channels_last), y.contiguous(),
            None if t is None else t.contiguous())


def pinned_teacher_path(task: str, study: str, zoo_dir: str | Path) -> Path:
    """zoo/<task>/<study>.teacher.safetensors: the teacher weights every trial of the study distils from."""
    return Path(zoo_dir) / task / f"{study}.teacher.safetensors"


def tensors_digest(tensors: dict) -> str:
    h = hashlib.sha1()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_teacher(task: str, name: str, zoo_dir: str | Path, log=print, pin: Path | None = None,
                 shared: bool = False):
    """(teacher module, info) — the study's pinned teacher when `pin` exists; otherwise the zoo model `name`
    (snapshotted to `pin` when given). `shared`: `pin` belongs to another study (`--teacher-pin`) and must exist.
    A clear message when the heavy is not trained yet."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from searched_models import zoo
    from searched_models.spec import build

    if shared and not pin.exists():
        pinned = sorted(p.name.removesuffix(".teacher.safetensors") for p in pin.parent.glob("*.teacher.safetensors"))
        raise SettingError(f"--teacher-pin: {pin} does not exist; name a study of this task that pinned a teacher "
                           f"({', '.join(pinned) or 'none yet'}).")
    if pin is None or not pin.exists():
        try:
            teacher, card = zoo.load(task, name, Path(zoo_dir))
        except SettingError as error:
            raise SettingError(f"--teacher {name}: {error} The {task} heavy original has to be trained first "
                               f"(pixelnas train --task {task} --name <heavy spec> --role heavy …), or search without "
                               f"--teacher.") from None
        training = card.get("training", {})
        state = {f"model.{k}": v.detach().float().contiguous() for k, v in teacher.state_dict().items()}
        info = {"name": card["name"], "steps_done": training.get("steps_done"), "steps": training.get("steps"),
                "spec": card["spec"], "digest": tensors_digest(state)}
        if training.get("status") != "done":
            log(f"note: teacher {card['name']} is still training ({training.get('steps_done')}/"
                f"{training.get('steps')} steps); distilling from its latest checkpoint"
                + (", pinned for this study" if pin is not None else ""))
        if pin is None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            return teacher.to(memory_format=torch.channels_last), info
        pin.parent.mkdir(parents=True, exist_ok=True)
        tmp = pin.with_name(f"{pin.name}.{os.getpid()}.tmp")
        save_file(state, str(tmp), metadata={"teacher": json.dumps(info)})
        try:
            os.link(tmp, pin)                  # publish only if no other worker pinned first; theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:                                       # every worker distils from the pin file itself
        with safe_open(str(pin), "pt") as f:
            info = json.loads(f.metadata()["teacher"])
        teacher = build(info["spec"])
        teacher.load_state_dict(zoo.model_state(load_file(str(pin))))
    except Exception as error:  # noqa: BLE001 - any unreadable pin gets the same advice
        raise SettingError(f"The study's pinned teacher {pin} cannot be used ({type(error).__name__}: {error}). "
                           f"Restore it from git, or start a new --study.") from None
    teacher.eval()
    log(f"teacher: {info['name']} at step {info['steps_done']} (digest {info['digest']}), pinned "
        f"{'by another study' if shared else 'for this study'} in {pin.name}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(memory_format=torch.channels_last), info


def training_files(folder: str | Path) -> list[tuple[str, int]]:
    """(name relative to the folder, size) of every file under a training folder, sorted: what identifies the photos
    the proxy's batches are cut from — not their times, which a fresh copy of the data changes."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in Path(folder).rglob("*") if p.is_file())


def data_fingerprint(cfg: SearchConfig, val_photos: list) -> dict:
    """What a study's proxy scores depend on besides its settings, hashed: the training photos (names relative to
    the folder and file contents, image files only: a stray README or .DS_Store does not count) and the pixels of
    the validation photos the proxy uses (the first --val-limit of the folder). Folder paths differ between
    machines, so they are kept for messages only; the hashes decide whether two runs search alike."""
    import numpy as np

    from isp.io import list_images

    val = hashlib.sha1()
    for photo in val_photos:
        val.update(repr(photo.shape).encode())
        val.update(np.ascontiguousarray(photo, dtype=np.float32).tobytes())
    train = hashlib.sha1()
    for path in list_images(cfg.images):
        train.update(str(path.relative_to(cfg.images)).encode() + b"\0")
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                train.update(chunk)
    return {"train": train.hexdigest()[:16], "val": val.hexdigest()[:16],
            "images": str(cfg.images), "val_images": str(cfg.val_images)}


def same_data(a: dict | None, b: dict | None) -> bool:
    """Whether two data fingerprints name the same training and validation photos (False when either is missing
    or incomplete)."""
    return has_fingerprint(a) and has_fingerprint(b) and a["train"] == b["train"] and a["val"] == b["val"]


def has_fingerprint(data) -> bool:
    """Whether a study's stored data attribute is a complete fingerprint (studies made before them have none)."""
    return isinstance(data, dict) and bool(data.get("train")) and bool(data.get("val"))


def default_cache_root() -> Path:
    return Path(os.environ.get("PIXELNAS_CACHE") or Path.home() / ".cache" / "pixelnas")


def batch_cache_dir(cfg: SearchConfig, patch: int, teacher_info: dict | None) -> Path | None:
    """<cache root>/proxy-<key>: the key hashes everything the batches and teacher outputs depend on (task, the
    training files' names and sizes — not their times, which a fresh copy of the data changes —, patch, batch, data
    seed, teacher weights and spec, and the source of the modules that make the batches); None when disabled."""
    root = cfg.cache_dir
    if root == "":
        return None
    files = training_files(cfg.images)
    here = Path(__file__).resolve().parent
    code = hashlib.sha1(b"".join(path.read_bytes() for path in (here / "tasks.py", here / "data.py",
                                                                 here.parent / "isp" / "simulate.py")))
    key = {"task": cfg.task, "files": files, "patch": patch, "batch": cfg.batch, "seed": cfg.seed_data,
           "teacher": teacher_info and [teacher_info["digest"], teacher_info["spec"]], "code": code.hexdigest(),
           "format": 1}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root or default_cache_root()) / f"proxy-{cfg.task}-{digest}"
