"""`pixelnas train`: one recipe for every network (heavy originals, peers, searched models).

Random patches with flips/rotations, L1 loss (plus L1 to a frozen teacher's output when distilling), Adam with
cosine learning-rate decay, fp32 channels-last (bf16 autocast with fp32 master weights as an option), periodic validation, a checkpoint that
resumes exactly where it stopped (weights + optimizer state in one safetensors file), and a JSONL log.
"""
from __future__ import annotations

import json
import math
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from searched_models import zoo
from searched_models.cost import spec_cost
from searched_models.data import load_folder, load_training_photos
from searched_models.infer import run_chw, stride_multiple
from searched_models.plateau import plateau_status
from searched_models.spec import build, normalise_spec
from searched_models.tasks import check_spec_fits, get_task


@dataclass
class TrainConfig:
    task: str
    name: str
    spec: dict
    images: str
    steps: int
    role: str = "peer"
    val_images: str | None = None
    val_limit: int = 8
    batch: int = 16
    patch: int | None = None
    lr: float = 2e-4
    final_lr_ratio: float = 0.01
    warmup: int = 100
    cycle_start: int = 0   # step the current cosine cycle began: 0, or the step of the last warm restart
    teacher: str | None = None
    distill_weight: float = 0.5
    bf16: bool = False   # faster only on CPUs with AVX512-BF16/AMX; `pixelnas bench-train --ab-steps` is the A/B
    val_every: int = 500
    ckpt_every: int = 250
    log_every: int = 25
    seed: int = 0
    threads: int | None = None
    zoo_dir: str = str(zoo.ZOO_DIR)
    command: str = field(default_factory=lambda: "pixelnas " + shlex.join(sys.argv[1:]))


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay from lr to lr·final_lr_ratio at cfg.steps (Loshchilov & Hutter 2017,
    SGDR); a warm restart begins a new cycle of both at cfg.cycle_start."""
    local = step - cfg.cycle_start
    if local < cfg.warmup:
        return cfg.lr * (local + 1) / cfg.warmup
    progress = min(1.0, (local - cfg.warmup) / max(1, cfg.steps - cfg.cycle_start - cfg.warmup))
    return cfg.lr * (cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


MAX_CHECKPOINT_BYTES = 19_000_000


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, meta: dict) -> None:
    """Weights in fp32 under model.*, Adam moments under optim.* (fp32, so resuming is exact; bf16 only when fp32
    would push the file past the 19 MB we allow a committed checkpoint), meta as JSON."""
    tensors = {f"model.{k}": v.detach().float().contiguous() for k, v in model.state_dict().items()}
    params = sum(p.numel() for p in model.parameters())
    moment_dtype = torch.float32 if params * 12 < MAX_CHECKPOINT_BYTES else torch.bfloat16
    meta["moments_dtype"] = str(moment_dtype)
    if optimizer is not None:
        names = {id(p): n for n, p in model.named_parameters()}
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        tensors[f"optim.{names[id(p)]}.{key}"] = state[key].to(moment_dtype).contiguous()
                if "step" in state:
                    meta.setdefault("adam_step", float(state["step"]))
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    tmp.replace(path)


def checkpoint_meta(path: Path) -> dict:
    """The JSON a checkpoint carries beside its tensors: step, history, the run's config."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata().get("meta", "{}"))


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    """Weights into `model` and, unless `optimizer` is None, the Adam state into `optimizer`; returns the meta."""
    tensors = load_file(str(path))
    model.load_state_dict(zoo.model_state(tensors))
    meta = checkpoint_meta(path)
    if optimizer is None:
        return meta
    params = dict(model.named_parameters())
    for name, p in params.items():
        if f"optim.{name}.exp_avg" in tensors:
            optimizer.state[p] = {
                "step": torch.tensor(meta.get("adam_step", meta.get("step", 0))),
                "exp_avg": tensors[f"optim.{name}.exp_avg"].float(),
                "exp_avg_sq": tensors[f"optim.{name}.exp_avg_sq"].float(),
            }
    return meta


RUN_SETTINGS = ("seed", "teacher", "distill_weight")    # fixed for a run's life: they shape every step's loss


def keep_run_settings(cfg: TrainConfig, earlier: dict, keep_lr: bool) -> list[str]:
    """On resume, the checkpoint's seed (its batches), teacher and distillation weight — and its peak lr unless a
    warm restart sets a new one — win over the command's defaults or values, so a resume continues the same run.
    Changes `cfg` in place; returns a note for each setting the command asked to change."""
    notes = []
    for key in RUN_SETTINGS + (("lr",) if keep_lr else ()):
        if key in earlier and getattr(cfg, key) != earlier[key]:
            hint = " (a new lr needs --restart)" if key == "lr" else ""
            notes.append(f"{key} {earlier[key]!r}, not {getattr(cfg, key)!r}{hint}")
            setattr(cfg, key, earlier[key])
    return notes


def make_batch(cfg: TrainConfig, task, prepared: list, patch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of `step`: drawn from rng [cfg.seed, step], so every run sees the same batches."""
    rng = np.random.default_rng([cfg.seed, step])
    x_np, y_np = task.sample(rng, prepared, cfg.batch, patch)
    return torch.from_numpy(x_np).to(memory_format=torch.channels_last), torch.from_numpy(y_np)


def teacher_output(cfg: TrainConfig, teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A frozen teacher's prediction for a batch (the distillation target)."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        return teacher(x).float()


def train_step(cfg: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, step: int, target_t: torch.Tensor | None = None,
               loss_space=None) -> tuple[float, float]:
    """One Adam step at the scheduled learning rate: L1 to y (mixed with L1 to the teacher's target_t when
    distilling, weight cfg.distill_weight), measured after `loss_space` (the task's, e.g. a tone curve for raw
    data; identity when None). Returns (loss, lr)."""
    lr = learning_rate(cfg, step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        prediction = model(x)
    space = loss_space or (lambda t: t)
    prediction = space(prediction.float())
    loss = F.l1_loss(prediction, space(y))
    if target_t is not None:
        loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * F.l1_loss(prediction, space(target_t))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), lr


def fit(cfg: TrainConfig, model: torch.nn.Module, task, prepared: list, patch: int,
        teacher: torch.nn.Module | None = None, batches=None, should_stop=None,
        optimizer: torch.optim.Optimizer | None = None, start: int = 0, until: int | None = None) -> list[float]:
    """Train `model` in memory with the recipe of `train` — no files, no validation — over steps start … until
    (default 0 … cfg.steps) of the cfg.steps-long schedule, with a fresh Adam unless `optimizer` is given
    (a restored checkpoint's, to continue it).

    batches: optional callable step → (x, y, teacher target or None) replacing make_batch/teacher_output
    (the search uses it to share cached batches and teacher outputs between trials). should_stop: optional
    callable checked after every step. Returns the loss of every step done.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model.train()
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    losses = []
    for step in range(start, cfg.steps if until is None else until):
        if batches is not None:
            x, y, target_t = batches(step)
        else:
            x, y = make_batch(cfg, task, prepared, patch, step)
            target_t = teacher_output(cfg, teacher, x) if teacher is not None else None
        losses.append(train_step(cfg, model, optimizer, x, y, step, target_t, task.loss_space)[0])
        if should_stop is not None and should_stop():
            break
    return losses


def precision_name(bf16: bool) -> str:
    """How cards and logs name a run's precision."""
    return "bf16 autocast" if bf16 else "fp32"


def record_setting(history: dict, key: str, start: int, earlier, now) -> None:
    """history[key]: [[first step, value], …], one entry per change of a setting a resume may change (precision,
    batch, patch), so a card says from which step each value held (runs from before this record get their
    first entry from the checkpoint's config, `earlier`). A change made at the very step of the last entry,
    before any step ran, replaces it."""
    runs = history.setdefault(key, [[0, earlier]])
    while runs and runs[-1][0] >= start:          # set at this very step, and no step has run since
        runs.pop()
    if not runs or runs[-1][1] != now:
        runs.append([start, now])


def trim_log(path: Path, step: int) -> None:
    """Drop log entries after `step` (written after the last checkpoint by a run that was killed), so a resumed
    run neither repeats nor skips a step in the log; a line cut short by the kill is dropped too."""
    if not path.exists():
        return

    def entry_step(line: str) -> float:
        try:
            return json.loads(line).get("step", 0)
        except json.JSONDecodeError:
            return float("inf")

    kept = [line for line in path.read_text().splitlines() if line.strip() and entry_step(line) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def validate(model: torch.nn.Module, task, pairs) -> float:
    model.eval()
    scores = [task.score(run_chw(model, x, tile=None), y) for x, y in pairs]
    model.train()
    return float(np.mean(scores))


class Progress:
    """A tqdm bar on a terminal, plain lines (every `every` steps) otherwise."""

    def __init__(self, total: int, start: int, every: int):
        self.every = every
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, step: int, text: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text)
        elif step % self.every == 0:
            print(f"step {step}: {text}", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def earlier_role_history(task: str, name: str, zoo_dir: Path) -> list:
    """The role changes (`pixelnas set-role`) recorded in a resumed model's card, which its new card keeps."""
    try:
        return list(zoo.read_card(task, name, zoo_dir).get("role_history", []))
    except (OSError, ValueError):
        return []


def train(cfg: TrainConfig, resume: bool = False, restart: bool = False) -> dict:
    """Train (or resume) one model; writes weights, card and log into the zoo. Returns the card.

    restart (with resume): a warm restart (SGDR, Loshchilov & Hutter 2017) — a new warm-up and cosine cycle from
    the checkpoint's step to cfg.steps, peaking at cfg.lr; without it a resume keeps the checkpoint's cycle."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = get_task(cfg.task)
    check_spec_fits(cfg.spec, task)
    spec = normalise_spec({**cfg.spec, "task": cfg.task, "name": cfg.name})
    zoo_dir = Path(cfg.zoo_dir)
    weights = zoo.weights_path(cfg.task, cfg.name, zoo_dir)
    log_file = zoo.log_path(cfg.task, cfg.name, zoo_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = build(spec).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    start, history, earlier_config, role_history = 0, {}, {}, []
    if resume and weights.exists():
        meta = load_checkpoint(weights, model, optimizer)
        start, history = int(meta.get("step", 0)), meta.get("history", {})
        earlier_config = {"bf16": False, **meta.get("config", {})}
        role_history = earlier_role_history(cfg.task, cfg.name, zoo_dir)
        planned = earlier_config.get("steps", cfg.steps)
        print(f"resuming {cfg.task}/{cfg.name} at step {start} of {cfg.steps}"
              + (f" (schedule changed from {planned} steps: the cosine decay is recomputed)" if planned != cfg.steps
                 else ""), flush=True)
        history["curve"] = [c for c in history.get("curve", []) if c[0] <= start]
        trim_log(log_file, start)
        history["restarts"] = [r for r in history.get("restarts", []) if r[0] < start]
        notes = keep_run_settings(cfg, earlier_config, keep_lr=not restart and not history["restarts"])
        if notes:
            print("resuming keeps the run's own " + "; ".join(notes), flush=True)
        if not restart and start > cfg.steps:
            from isp.errors import SettingError

            raise SettingError(f"The checkpoint is at step {start}, past --steps {cfg.steps}: resume with --steps "
                               f"{start} or more (or, for a new cosine cycle, --restart --lr PEAK).")
        if restart:
            if start >= cfg.steps:
                from isp.errors import SettingError

                raise SettingError(f"--restart at step {start} needs --steps beyond it (the new cycle's end).")
            cfg.cycle_start = start
            history["restarts"].append([start, cfg.lr])
            print(f"warm restart at step {start}: new cosine cycle peaking at lr {cfg.lr:g}, ending at step "
                  f"{cfg.steps}", flush=True)
        elif history["restarts"]:             # keep the cycle (and its peak) of the last restart
            asked = cfg.lr
            cfg.cycle_start, cfg.lr = history["restarts"][-1]
            print(f"continuing the warm restart's cycle from step {cfg.cycle_start} (peak lr {cfg.lr:g}, ending at "
                  f"step {cfg.steps})" + (f"; lr {asked:g} would need --restart" if asked != cfg.lr else ""),
                  flush=True)
    elif restart:
        from isp.errors import SettingError

        raise SettingError("--restart continues a checkpoint: pass it with --resume.")
    elif weights.exists() and not resume:
        from isp.errors import SettingError

        raise SettingError(f"{weights} exists; pass --resume to continue it or choose another --name.")
    patch = cfg.patch or task.patch
    if patch % stride_multiple(spec):
        from isp.errors import SettingError

        raise SettingError(f"--patch {patch} must be a multiple of {stride_multiple(spec)}, the stride of "
                           f"{cfg.name}'s network (pixel-unshuffle × its U-Net or pyramid levels).")
    record_setting(history, "precision", start, precision_name(earlier_config.get("bf16", cfg.bf16)),
                   precision_name(cfg.bf16))
    record_setting(history, "batch", start, earlier_config.get("batch", cfg.batch), cfg.batch)
    record_setting(history, "patch", start, earlier_config.get("patch") or task.patch, patch)
    record_setting(history, "inputs", start, task.INPUTS_BEFORE_RECORD if earlier_config else task.INPUTS,
                   task.INPUTS)
    teacher = None
    if cfg.teacher:
        teacher, _ = zoo.load(cfg.task, cfg.teacher, zoo_dir)
        for p in teacher.parameters():
            p.requires_grad_(False)

    print(f"loading training images from {cfg.images} …", flush=True)
    prepared = task.prepare(load_training_photos(cfg.images, task.photo_side(patch)))
    val_pairs = task.val_pairs(load_folder(cfg.val_images, limit=cfg.val_limit), seed=0) if cfg.val_images else []
    cost = spec_cost(spec)
    stop = {"now": False}

    def request_stop(signum, frame):
        stop["now"] = True
        print(f"signal {signum}: saving a checkpoint at the end of this step", flush=True)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}

    def card(step: int, status: str) -> dict:
        return {
            "name": cfg.name, "task": cfg.task, "role": cfg.role, "spec": spec,
            "params": cost.params, "macs_per_input_pixel": cost.macs_per_pixel,
            "macs_per_input_mp": cost.macs_per_mp(),
            "training": {"images": cfg.images, "steps": cfg.steps, "steps_done": step, "batch": cfg.batch,
                         "patch": patch, "lr": cfg.lr, "restarts": history.get("restarts", []), "teacher": cfg.teacher,
                         "bf16": cfg.bf16,
                         "precision": history["precision"], "batches": history["batch"],
                         "patches": history["patch"], "inputs": history["inputs"], "seed": cfg.seed,
                         "status": status, "log": log_file.name},
            "validation": {"images": cfg.val_images, "limit": cfg.val_limit, "psnr": history.get("last_val"),
                           "step": history.get("last_val_step"), "best_psnr": history.get("best_val"),
                           **plateau_status(history.get("curve", []), status == "done")},
            "provenance": {"command": cfg.command, "commit": git_commit()},
            **({"search": cfg.spec.get("search")} if cfg.spec.get("search") else {}),
            **({"role_history": role_history} if role_history else {}),
        }

    def checkpoint(step: int, status: str):
        meta = {"step": step, "history": history, "config": {k: v for k, v in asdict(cfg).items() if k != "spec"}}
        save_checkpoint(weights, model, optimizer, meta)
        zoo.write_card(card(step, status), zoo_dir)

    log = open(log_file, "a" if start else "w")    # a fresh run replaces the log of one killed before a checkpoint
    progress = Progress(cfg.steps, start, cfg.log_every)
    model.train()
    step = start
    window, t_last = [], time.perf_counter()
    try:
        while step < cfg.steps and not stop["now"]:
            x, y = make_batch(cfg, task, prepared, patch, step)
            target_t = teacher_output(cfg, teacher, x) if teacher is not None else None
            last_loss, lr = train_step(cfg, model, optimizer, x, y, step, target_t, task.loss_space)
            step += 1
            window.append(last_loss)
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                entry = {"step": step, "loss": float(np.mean(window)), "lr": lr,
                         "sec_per_step": (now - t_last) / len(window), "time": time.time()}
                log.write(json.dumps(entry) + "\n")
                log.flush()
                window, t_last = [], now
            if val_pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                score = validate(model, task, val_pairs)
                history.update(last_val=score, last_val_step=step, best_val=max(score, history.get("best_val", -1e9)))
                history.setdefault("curve", []).append([step, round(score, 4)])
                log.write(json.dumps({"step": step, "val_psnr": score, "time": time.time()}) + "\n")
                log.flush()
                t_last = time.perf_counter()
            progress.update(step, f"loss {last_loss:.4f} lr {lr:.2e}"
                            + (f" val {history['last_val']:.2f} dB" if "last_val" in history else ""))
            if step % cfg.ckpt_every == 0 and step < cfg.steps:
                checkpoint(step, "training")
    finally:
        progress.close()
        checkpoint(step, "done" if step >= cfg.steps else "training")
        log.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return card(step, "done" if step >= cfg.steps else "training")
