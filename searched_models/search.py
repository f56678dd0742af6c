"""`pixelnas search`: hardware-aware multi-objective architecture search with Optuna's NSGA-II.

Objectives: proxy validation PSNR ↑ and MACs per input megapixel ↓ (Deb et al., "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002), under a MAC budget given to the sampler as a
constraint (`Trial.set_constraint("macs_over_budget", MACs − budget)`, feasible when ≤ 0 — Optuna 5's replacement
for the deprecated `constraints_func`; NSGA-II ranks by Deb's constrained domination). Sampled genomes of
`searched_models.space` are repaired deterministically to fit the budget, so every sampled trial builds and
is feasible; the hand-designed peers are enqueued as the first trials of a new study (unrepaired, so they may
be infeasible) and get exactly the same proxy treatment. Each trial builds its spec, trains it K steps in
memory (`train.fit`, optional distillation from the heavy), scores it on a fixed validation subset and
measures its latency (`cost.measure_latency_ms`, a reported column, not an objective).

Storage: a local Optuna journal file (default `zoo/<task>/search.journal`) or any Optuna RDB URL
(sqlite:///…, postgresql://…), shared by any number of worker processes or machines. `--trials N` runs until
the study has N finished trials, so a rerun resumes and parallel workers share the count. A worker killed
with SIGKILL loses nothing: every running trial carries its worker (host, boot id, pid) and a heartbeat
(refreshed every HEARTBEAT_S seconds); other workers (and the rerun) fail a trial whose process is gone or whose
heartbeat is older than STALE_AFTER_S and enqueue its parameters again as a new trial ("retry_of").

Every trial is appended to `zoo/<task>/search_trials.jsonl` (append-only; read it with `read_trials_jsonl`,
which keeps the last line per (study, trial)); completed trials missing from it (another machine ran them,
or a kill came between the storage write and the log write) are back-filled from the storage at start and end.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from isp.errors import InputError, SettingError

# Kept light on purpose (torch, numpy and the space are imported where used): `pixelnas --help` imports this module.
ZOO_DIR = Path(__file__).resolve().parent / "zoo"      # = searched_models.ZOO_DIR
SPEC_DIR = Path(__file__).resolve().parent / "specs"   # = searched_models.SPEC_DIR
TASKS = ("denoise_raw", "enhance", "sr_x2")

HEARTBEAT_S = 10.0       # a running trial refreshes its "heartbeat" user attribute this often
STALE_AFTER_S = 60.0     # … and is taken over when the heartbeat is older than this (other hosts)
RECOVER_AFTER_S = 30.0   # a failed trial left without its retry (crash while re-queueing) is re-queued after this
POLL_S = 1.0             # a worker waiting for other workers' last trials checks this often
LATENCY_SIZE = 256       # latency input side in network-input pixels (as searched_models.evaluate.TIMING_SIZE)
OBJECTIVES = ("proxy PSNR (dB, maximise)", "MACs per input MP (minimise)")


@dataclass
class SearchConfig:
    task: str
    max_macs: float                       # budget: MACs per input pixel (space.budget_macs)
    trials: int
    images: str
    val_images: str
    seed: int = 0
    storage: str | None = None            # journal file path or Optuna RDB URL; default zoo/<task>/search.journal
    study: str | None = None              # default pixelnas-<task>
    proxy_steps: int = 200
    batch: int = 8
    patch: int | None = None              # network-input pixels; task default
    lr: float = 1e-3
    teacher: str | None = None
    distill_weight: float = 0.5
    val_limit: int = 4
    val_crop: int = 192                   # validation photos are centre-cropped to this (photo pixels)
    population: int = 16
    threads: int | None = None
    peers: bool = True
    cache_mb: float = 512.0               # training batches (and teacher outputs) kept for reuse across trials
    latency_size: int = LATENCY_SIZE      # side of the fixed latency input (network-input pixels)
    zoo_dir: str = str(ZOO_DIR)
    command: str = field(default_factory=lambda: "pixelnas " + shlex.join(sys.argv[1:]))

    def settings(self) -> dict:
        """What must match for several runs or workers to share one study."""
        return {"task": self.task, "max_macs": self.max_macs, "proxy_steps": self.proxy_steps, "batch": self.batch,
                "patch": self.patch, "lr": self.lr, "teacher": self.teacher, "distill_weight": self.distill_weight,
                "val_limit": self.val_limit, "val_crop": self.val_crop, "seed_data": self.seed_data}

    @property
    def seed_data(self) -> int:
        return 0    # batches, initial weights and validation noise are the same for every trial and worker


# ---------------------------------------------------------------------------------------------- storage, study

def default_storage(task: str, zoo_dir: str | Path = ZOO_DIR) -> str:
    return str(Path(zoo_dir) / task / "search.journal")


def default_study(task: str) -> str:
    return f"pixelnas-{task}"


def trials_log_path(task: str, zoo_dir: str | Path = ZOO_DIR) -> Path:
    return Path(zoo_dir) / task / "search_trials.jsonl"


def open_storage(storage: str):
    """An Optuna storage: RDB for URLs (sqlite:///…), a journal file (with a stale-lock timeout) otherwise."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

    if "://" in storage:
        from sqlalchemy.exc import IntegrityError, OperationalError

        kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(storage, engine_kwargs=kwargs)
            except (IntegrityError, OperationalError) as error:
                if attempt == 4:           # workers starting together race to create the schema: try again
                    raise SettingError(f"Cannot open the Optuna storage {storage!r}: {error}") from error
                time.sleep(0.5 + attempt)
            except Exception as error:  # noqa: BLE001 - SQLAlchemy raises many types for a bad URL
                raise SettingError(f"Cannot open the Optuna storage {storage!r}: {error}") from error
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileSymlinkLock(str(path), grace_period=10)))


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(seed: int, done: int, population: int):
    """NSGA-II seeded from (seed, trials already in the study): a resumed run does not replay its first samples."""
    import numpy as np
    import optuna

    state = int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
    return optuna.samplers.NSGAIISampler(population_size=population, seed=state)


def load_study(storage: str, study_name: str, sampler=None):
    import optuna

    _quiet_optuna()
    if "://" not in storage and not Path(storage).exists():
        raise SettingError(f"No search storage at {storage}; run `pixelnas search … --trials N` first "
                           f"(or pass --storage).")
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(storage), sampler=sampler)
    except KeyError:
        raise SettingError(f"No search study {study_name!r} in {storage}; run `pixelnas search … --trials N` "
                           f"first (or pass --study/--storage).") from None


def open_study(cfg: SearchConfig, storage: str, study_name: str, log=print):
    """Create the study (enqueueing the peers) or join the existing one after checking its settings."""
    import optuna

    _quiet_optuna()
    backend = open_storage(storage)
    try:
        study = optuna.create_study(study_name=study_name, storage=backend, directions=["maximize", "minimize"],
                                    sampler=make_sampler(cfg.seed, 0, cfg.population))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(study_name=study_name, storage=backend), False
    if created:
        study.set_user_attr("settings", cfg.settings())
        study.set_user_attr("objectives", list(OBJECTIVES))
        if cfg.peers:
            for name, params in peer_params(cfg.task, cfg.zoo_dir):
                study.enqueue_trial(params, user_attrs={"peer": name})
                log(f"queued peer {name} as a trial")
    else:
        stored = study.user_attrs.get("settings")
        if stored:
            diff = {k: (stored.get(k), v) for k, v in cfg.settings().items() if not _same(stored.get(k), v)}
            if diff:
                what = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items())
                raise SettingError(f"Study {study_name!r} in {storage} was made with other settings: {what}. "
                                   f"Use the same options, or a new --study name.")
    done = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(cfg.seed, done, cfg.population)
    return study


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def peer_params(task: str, zoo_dir: str | Path = ZOO_DIR) -> list[tuple[str, dict]]:
    """(name, genome) of each shipped spec of the task that is a hand-designed peer inside the space."""
    from searched_models import space

    heavy = heavy_card(task, zoo_dir)
    out = []
    for path in sorted((SPEC_DIR / task).glob("*.json")):
        spec = json.loads(path.read_text())
        if spec.get("search") or path.stem.endswith("_heavy") or (heavy and heavy["spec"].get("name") == path.stem):
            continue           # registered search results and the heavy original are not peers
        try:
            out.append((path.stem, space.params_for_spec(spec, task)))
        except ValueError as error:
            print(f"note: {path.stem} is not queued as a peer ({error})", flush=True)
    return out


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


# ------------------------------------------------------------------------------------------ workers, staleness

def worker_id() -> dict:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return {"host": socket.gethostname(), "boot": boot, "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:                                               # a killed child its parent has not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _started(trial) -> float:
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def stale_reason(trial, me: dict, now: float) -> str | None:
    """Why a RUNNING trial is abandoned (its process is gone / its heartbeat stopped), or None if it is alive."""
    w = trial.user_attrs.get("worker")
    if w and w.get("host") == me["host"] and w.get("boot") == me["boot"]:
        if w.get("pid") == me["pid"]:
            return f"this process (pid {me['pid']}) is not running it"
        if not pid_alive(int(w.get("pid", -1))):
            return f"its worker process {w.get('pid')} on {w.get('host')} is gone"
    last = trial.user_attrs.get("heartbeat", _started(trial))
    if now - last > STALE_AFTER_S:
        return f"no heartbeat for {now - last:.0f} s"
    return None


def _needs_retry(trial) -> bool:
    """A failed trial whose slot must be run again (killed, interrupted or crashed — not diverged, not surplus)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and not trial.user_attrs.get("diverged") and \
        not trial.user_attrs.get("surplus")


def requeue(study, trial, reason: str) -> None:
    keep = {k: v for k, v in trial.user_attrs.items() if k in ("peer",)}
    study.enqueue_trial(dict(trial.params), user_attrs={**keep, "retry_of": trial.number, "retry_reason": reason})


def reap(study, me: dict, log_path: Path, log=print) -> None:
    """Fail abandoned RUNNING trials and re-queue their parameters; re-queue failed trials left without a retry."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    now = time.time()
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.state == TrialState.RUNNING:
            reason = stale_reason(t, me, now)
            if reason is None:
                continue
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, UpdateFinishedTrialError, RuntimeError):
                continue                                    # another worker took it over first
            requeue(study, t, reason)
            log_trial(study, t.number, log_path, status="abandoned", reason=reason)
            log(f"trial {t.number} abandoned ({reason}); its parameters are queued again")
        elif _needs_retry(t) and t.number not in retried and t.datetime_complete is not None and \
                (datetime.now() - t.datetime_complete).total_seconds() > RECOVER_AFTER_S:
            requeue(study, t, "failed trial without a retry")
            log(f"trial {t.number} had failed without being queued again; its parameters are queued again")


def counts(study, me: dict, mine: int | None = None) -> tuple[list[int], list[int]]:
    """(numbers of finished trials, numbers of live running trials — `mine` included). Finished = complete,
    pruned or diverged."""
    from optuna.trial import TrialState

    now = time.time()
    finished, running = [], []
    for t in study.get_trials(deepcopy=False):
        diverged = t.state == TrialState.FAIL and t.user_attrs.get("diverged")
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or diverged:
            finished.append(t.number)
        elif t.state == TrialState.RUNNING and (t.number == mine or stale_reason(t, me, now) is None):
            running.append(t.number)
    return finished, running


class Heartbeat:
    """Refreshes the trial's "heartbeat" user attribute every HEARTBEAT_S seconds in a daemon thread."""

    def __init__(self, trial, interval: float = HEARTBEAT_S):
        self.trial, self.interval = trial, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_event.wait(self.interval):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception:  # noqa: BLE001 - the trial was finished or taken over: nothing left to beat for
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------- proxy training

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


# ---------------------------------------------------------------------------------------------- the search loop

def _spec_key(spec: dict) -> str:
    from searched_models import space

    return json.dumps(space.canonical(spec), sort_keys=True)


def record_from_trial(trial, study_name: str) -> dict:
    """The JSONL record of a trial, rebuilt from what the storage holds."""
    attrs = trial.user_attrs
    metrics = attrs.get("metrics", {})
    status = trial.state.name.lower()
    if status == "fail":
        status = "diverged" if attrs.get("diverged") else "surplus" if attrs.get("surplus") else "failed"
    return {"study": study_name, "number": trial.number, "status": status, "spec": attrs.get("spec"),
            **metrics, "peer": attrs.get("peer"), "retry_of": attrs.get("retry_of"),
            "duplicate_of": attrs.get("duplicate_of"), "repair": attrs.get("repair"), "worker": attrs.get("worker"),
            "error": attrs.get("error"), "time": time.time()}


def log_trial(study, number: int, path: Path, **extra) -> dict:
    """Append the storage's current view of trial `number` (plus `extra`) to the trials log."""
    record = {**record_from_trial(study.get_trials(deepcopy=False)[number], study.study_name), **extra}
    append_jsonl(path, record)
    return record


def append_jsonl(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")                 # one write per line: appends from workers do not interleave


def read_trials_jsonl(path: str | Path, study: str | None = None) -> list[dict]:
    """Records of the trials log, the last line per (study, number) winning; sorted by study and number."""
    latest: dict[tuple, dict] = {}
    path = Path(path)
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue                                        # a line cut by a kill
        if study is None or record.get("study") == study:
            latest[(record.get("study"), record.get("number"))] = record
    return [latest[k] for k in sorted(latest, key=lambda k: (str(k[0]), k[1]))]


def backfill(study, path: Path, me: dict) -> int:
    """Append the study's completed trials that the log lacks — those whose worker is gone (a live worker
    writes its own line right after telling the storage); returns how many."""
    from optuna.trial import TrialState

    logged = {(r["study"], r["number"]) for r in read_trials_jsonl(path, study.study_name) if r["status"] == "complete"}
    added, now = 0, time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if (study.study_name, t.number) not in logged and stale_reason(t, me, now) is not None:
            append_jsonl(path, record_from_trial(t, study.study_name))
            added += 1
    return added


def describe(spec: dict) -> str:
    """A short architecture summary, e.g. '½res stem16 dwsep16k5 ↓32 dwsep32k5 ↑16 conv16k3'."""
    from searched_models import space

    parts = []
    for b in space.canonical(spec)["blocks"]:
        text = {"down": "↓", "up": "↑"}.get(b["type"], b["type"]) + str(b["channels"])
        if b["type"] not in ("down", "up"):
            text += f"k{b['kernel']}"
        parts.append(text + (f"×{b['repeat']}" if b.get("repeat", 1) > 1 else ""))
    res = {1: "", 2: "½res ", 4: "¼res "}[spec.get("unshuffle", 1)]
    return f"{res}stem{spec['stem']['channels']} " + " ".join(parts)


def run_trial(study, trial, cfg: SearchConfig, proxy: Proxy, me: dict, log_path: Path) -> dict:
    """Sample (or replay) the genome, repair, proxy-train, tell. Returns the JSONL record."""
    from optuna.trial import TrialState

    from searched_models import space
    from searched_models.cost import spec_cost

    start = time.perf_counter()
    params = space.sample_params(trial, cfg.task)
    peer = trial.user_attrs.get("peer")
    repaired, moves = (params, []) if peer else space.repair(params, cfg.task, cfg.max_macs)
    spec = space.spec_from_params(repaired, cfg.task, name=peer or f"trial{trial.number}")
    cost = spec_cost(spec)
    macs = space.budget_macs(spec)
    trial.set_user_attr("spec", spec)
    trial.set_user_attr("repair", moves)
    trial.set_constraint("macs_over_budget", macs - cfg.max_macs)   # NSGA-II: feasible when ≤ 0
    key = _spec_key(spec)
    twin = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get("spec") and _spec_key(t.user_attrs["spec"]) == key), None)
    if twin is not None:                 # the same network was already trained with the same data and seed
        result = {k: twin.user_attrs["metrics"][k]
                  for k in ("proxy_psnr", "latency_ms_per_mp", "train_s", "final_loss")}
        trial.set_user_attr("duplicate_of", twin.number)
    else:
        result = proxy.evaluate(spec)
    metrics = {"macs_per_input_pixel": cost.macs_per_pixel, "macs_per_input_mp": cost.macs_per_mp(),
               "params": cost.params, **result, "feasible": macs <= cfg.max_macs * (1 + 1e-9),
               "seed": cfg.seed_data, "sampler_seed": cfg.seed, "duration_s": time.perf_counter() - start,
               "proxy_steps": cfg.proxy_steps}
    trial.set_user_attr("metrics", metrics)
    if not math.isfinite(result["proxy_psnr"]):
        trial.set_user_attr("diverged", True)
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, [result["proxy_psnr"], cost.macs_per_mp()])
    return log_trial(study, trial.number, log_path)


def progress_line(record: dict, finished: int, total: int, heavy_macs: float | None) -> str:
    tag = f"peer {record['peer']}" if record.get("peer") else "searched"
    if record.get("duplicate_of") is not None:
        tag += f", same net as #{record['duplicate_of']}"
    if record.get("retry_of") is not None:
        tag += f", retry of #{record['retry_of']}"
    ratio = f" (1/{heavy_macs / record['macs_per_input_pixel']:.0f} of heavy)" if heavy_macs else ""
    psnr = record.get("proxy_psnr")
    return (f"[{finished}/{total}] trial {record['number']:>3} {record['status']:<8} "
            f"PSNR {psnr if psnr is None else f'{psnr:6.2f}'} dB  {record['macs_per_input_pixel'] / 1e3:8.2f} kMAC/px"
            f"{ratio}  {record['params']:>7} params  {record['latency_ms_per_mp']:7.1f} ms/MP  "
            f"{record['duration_s']:5.1f} s  {'' if record['feasible'] else 'OVER BUDGET  '}[{tag}] "
            f"{describe(record['spec'])}")


def search(cfg: SearchConfig, log=print):
    """Run trials until the study has cfg.trials finished ones (resuming / sharing with other workers)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from searched_models import space

    space.task_io(cfg.task)
    storage = cfg.storage or default_storage(cfg.task, cfg.zoo_dir)
    study_name = cfg.study or default_study(cfg.task)
    log_path = trials_log_path(cfg.task, cfg.zoo_dir)
    proxy = Proxy(cfg, log)                                  # first: a missing teacher or folder fails fast
    study = open_study(cfg, storage, study_name, log)
    me = worker_id()
    heavy = heavy_card(cfg.task, cfg.zoo_dir)
    heavy_macs = float(heavy["macs_per_input_pixel"]) if heavy and heavy.get("macs_per_input_pixel") else None
    log(f"study {study_name} in {storage}: budget {cfg.max_macs:.0f} MACs per input pixel"
        + (f" (1/{heavy_macs / cfg.max_macs:.0f} of the heavy {heavy['name']})" if heavy_macs else "")
        + f", {cfg.trials} finished trials wanted, proxy {cfg.proxy_steps} steps × batch {cfg.batch}")
    if backfill(study, log_path, me):
        log(f"back-filled {log_path.name} from the storage")
    while True:
        reap(study, me, log_path, log)
        finished, running = counts(study, me)
        if len(finished) >= cfg.trials:
            break
        if len(finished) + len(running) >= cfg.trials:
            time.sleep(POLL_S)                              # other workers are running the last trials
            continue
        trial = study.ask()
        trial.set_user_attr("worker", me)
        trial.set_user_attr("heartbeat", time.time())
        finished, running = counts(study, me, mine=trial.number)
        if trial.number not in sorted(finished + running)[:cfg.trials]:
            trial.set_user_attr("surplus", True)            # another worker took the last slot at the same moment
            study.tell(trial, state=TrialState.FAIL)
            frozen = study.get_trials(deepcopy=False)[trial.number]
            if "fixed_params" in frozen.system_attrs:       # hand an enqueued (peer / retry) trial back
                requeue(study, frozen, "surplus")
            log_trial(study, trial.number, log_path)
            continue
        try:
            with Heartbeat(trial):
                record = run_trial(study, trial, cfg, proxy, me, log_path)
        except (UpdateFinishedTrialError, ValueError) as error:
            if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
                log(f"trial {trial.number} was taken over by another worker ({error}); its result is dropped")
                continue
            raise _fail_and_requeue(study, trial, error, log_path)
        except BaseException as error:                      # Ctrl-C, SIGTERM, or a bug: nothing may be lost
            raise _fail_and_requeue(study, trial, error, log_path)
        done, _ = counts(study, me)
        log(progress_line(record, len(done), cfg.trials, heavy_macs))
    backfill(study, log_path, me)
    return study


def _fail_and_requeue(study, trial, error: BaseException, log_path: Path) -> BaseException:
    from optuna.trial import TrialState

    try:
        trial.set_user_attr("error", f"{type(error).__name__}: {error}")
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, study.get_trials(deepcopy=False)[trial.number], type(error).__name__)
        log_trial(study, trial.number, log_path)
        print(f"trial {trial.number} stopped ({type(error).__name__}); its parameters are queued again — "
              f"rerun the same command to resume", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - the storage itself may be what failed; the next run's reaper recovers
        pass
    return error


# ---------------------------------------------------------------------------------------------- report, register

def study_records(study) -> list[dict]:
    from optuna.trial import TrialState

    return [record_from_trial(t, study.study_name)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def pareto(records: list[dict]) -> list[dict]:
    """Non-dominated feasible records (PSNR ↑, MACs ↓), sorted by MACs."""
    feasible = [r for r in records if r.get("feasible")]
    front = [r for r in feasible if not any(
        o["proxy_psnr"] >= r["proxy_psnr"] and o["macs_per_input_mp"] <= r["macs_per_input_mp"]
        and (o["proxy_psnr"] > r["proxy_psnr"] or o["macs_per_input_mp"] < r["macs_per_input_mp"]) for o in feasible)]
    unique = {}
    for r in sorted(front, key=lambda r: (r["macs_per_input_mp"], r["number"])):
        unique.setdefault(_spec_key(r["spec"]), r)          # one row per network (duplicates share results)
    return list(unique.values())


def pareto_table(records: list[dict], heavy: dict | None) -> str:
    front = pareto(records)
    heavy_mp = float(heavy["macs_per_input_mp"]) if heavy and heavy.get("macs_per_input_mp") else None
    lines = [f"Pareto front ({len(front)} of {len(records)} completed trials; "
             f"proxy PSNR after the same short training)",
             f"{'trial':>5}  {'PSNR':>6}  {'kMAC/px':>8}  {'GMAC/MP':>8}  {'R':>6}  {'params':>7}  {'ms/MP':>7}  "
             f"{'kind':<14} architecture"]
    for r in front:
        ratio = f"{heavy_mp / r['macs_per_input_mp']:6.0f}" if heavy_mp else f"{'—':>6}"
        kind = f"peer {r['peer']}" if r.get("peer") else "searched"
        lines.append(f"{r['number']:>5}  {r['proxy_psnr']:6.2f}  {r['macs_per_input_pixel'] / 1e3:8.2f}  "
                     f"{r['macs_per_input_mp'] / 1e9:8.3f}  {ratio}  {r['params']:>7}  {r['latency_ms_per_mp']:7.1f}  "
                     f"{kind:<14} {describe(r['spec'])}")
    peers = [r for r in records if r.get("peer") and r not in front]
    for r in peers:
        lines.append(f"  (peer {r['peer']}: trial {r['number']}, {r['proxy_psnr']:.2f} dB, "
                     f"{r['macs_per_input_pixel'] / 1e3:.2f} kMAC/px{'' if r['feasible'] else ', over budget'})")
    return "\n".join(lines)


def draw_pareto(records: list[dict], heavy: dict | None, max_macs: float | None, path: Path, title: str) -> Path:
    """PNG: every completed trial, the Pareto front, peers and the heavy (full training) — x log MACs/MP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    searched = [r for r in records if not r.get("peer")]
    ax.scatter([r["macs_per_input_mp"] for r in searched], [r["proxy_psnr"] for r in searched], s=16,
               color="0.6", label="searched trials (proxy training)", zorder=2)
    front = pareto(records)
    if front:
        ax.plot([r["macs_per_input_mp"] for r in front], [r["proxy_psnr"] for r in front], "-o", color="tab:red",
                ms=6, lw=1.5, label="Pareto front (within budget)", zorder=3)
    peers = [r for r in records if r.get("peer")]
    for i, r in enumerate(peers):
        ax.scatter([r["macs_per_input_mp"]], [r["proxy_psnr"]], marker="s", s=50, color="tab:blue",
                   label="hand-designed peers (same proxy)" if i == 0 else None, zorder=4)
        ax.annotate(f"{r['peer']} (#{r['number']})", (r["macs_per_input_mp"], r["proxy_psnr"]),
                    textcoords="offset points", xytext=(5, 5), fontsize=8, color="tab:blue")
    if max_macs:
        ax.axvline(max_macs * 1e6, ls="--", color="k", lw=1, label=f"budget {max_macs / 1e3:.1f} kMAC/px")
    if heavy and heavy.get("macs_per_input_mp"):
        x = float(heavy["macs_per_input_mp"])
        psnr = (heavy.get("validation") or {}).get("psnr")
        if psnr is not None:
            ax.scatter([x], [psnr], marker="*", s=160, color="tab:green", zorder=5,
                       label=f"heavy {heavy['name']} (full training)")
            ax.annotate("heavy (full training)", (x, psnr), textcoords="offset points", xytext=(-10, 8),
                        ha="right", fontsize=8, color="tab:green")
        else:
            ax.axvline(x, color="tab:green", lw=1.5, label=f"heavy {heavy['name']} (full training, no PSNR yet)")
            ax.annotate("heavy (full training):\nno validation PSNR yet", (x, 0.97), xycoords=("data", "axes fraction"),
                        ha="right", va="top", fontsize=8, color="tab:green", xytext=(-4, 0), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per input megapixel (log scale)")
    ax.set_ylabel("validation PSNR (dB) — proxy training")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def report(task: str, storage: str, study_name: str, zoo_dir: str | Path = ZOO_DIR) -> tuple[str, Path]:
    """Draw zoo/<task>/pareto.png and return (Pareto table, png path)."""
    study = load_study(storage, study_name)
    records = study_records(study)
    if not records:
        raise SettingError(f"Study {study_name!r} has no completed trials yet.")
    heavy = heavy_card(task, zoo_dir)
    settings = study.user_attrs.get("settings", {})
    title = (f"{task}: {study_name}, {len(records)} trials, proxy {settings.get('proxy_steps')} steps"
             + (f", teacher {settings['teacher']}" if settings.get("teacher") else ""))
    png = draw_pareto(records, heavy, settings.get("max_macs"), Path(zoo_dir) / task / "pareto.png", title)
    return pareto_table(records, heavy), png


def register(task: str, storage: str, study_name: str, number: int, name: str,
             spec_dir: str | Path = SPEC_DIR, command: str = "") -> Path:
    """Write specs/<task>/<name>.json: the trial's spec plus a "search" provenance block."""
    from optuna.trial import TrialState

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise SettingError(f"--as {name!r}: use letters, digits, '_', '-' or '.'.")
    study = load_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SettingError(f"Study {study_name!r} has no trial {number} (it has {len(trials)}).")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        raise SettingError(f"Trial {number} of {study_name!r} is {trial.state.name.lower()}, not complete.")
    path = Path(spec_dir) / task / f"{name}.json"
    if path.exists():
        raise SettingError(f"{path} exists already; choose another --as name.")
    metrics = trial.user_attrs["metrics"]
    settings = study.user_attrs.get("settings", {})
    spec = {**trial.user_attrs["spec"], "name": name,
            "note": f"Searched by PixelNAS (NSGA-II), study {study_name} trial {number}: "
                    f"{describe(trial.user_attrs['spec'])}.",
            "search": {"study": study_name, "trial": number, "storage": str(storage),
                       "proxy_psnr": metrics["proxy_psnr"], "proxy_steps": settings.get("proxy_steps"),
                       "teacher": settings.get("teacher"), "budget_macs_per_input_pixel": settings.get("max_macs"),
                       "macs_per_input_pixel": metrics["macs_per_input_pixel"], "peer": trial.user_attrs.get("peer"),
                       "command": command}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- command line

def add_command(sub) -> None:
    """Register `pixelnas search` on an argparse subparsers object."""
    p = sub.add_parser("search", help="hardware-aware architecture search (Optuna NSGA-II) for a task",
                       description="Search the PixelNAS space for networks on the PSNR/MACs Pareto front under a MAC "
                                   "budget. --trials N runs until the study has N finished trials (reruns resume, "
                                   "several workers can share one --storage). --report draws zoo/<task>/pareto.png; "
                                   "--register TRIAL --as NAME writes specs/<task>/NAME.json for `pixelnas train`.")
    p.add_argument("--task", required=True, choices=TASKS)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--max-macs", type=parse_macs, help="budget in MACs per input pixel (e.g. 12000 or 12k)")
    budget.add_argument("--budget-ratio", type=float, help="budget as a fraction of the heavy model's MACs (e.g. 0.01)")
    p.add_argument("--trials", type=int, help="run until the study has this many finished trials")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (give parallel workers different seeds)")
    p.add_argument("--storage", help="Optuna journal file or RDB URL (default zoo/<task>/search.journal)")
    p.add_argument("--study", help="study name (default pixelnas-<task>)")
    p.add_argument("--images", help="folder of training photos")
    p.add_argument("--val-images", help="folder of validation photos")
    p.add_argument("--val-limit", type=int, default=4, help="validation photos used (default 4)")
    p.add_argument("--val-crop", type=int, default=192, help="centre crop of each validation photo (default 192)")
    p.add_argument("--proxy-steps", type=int, default=200, help="training steps per trial (default 200)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, help="training crop in network-input pixels (task default)")
    p.add_argument("--lr", type=float, default=1e-3, help="proxy learning rate (cosine decay; default 1e-3)")
    p.add_argument("--teacher", help="distil from this zoo model, e.g. heavy")
    p.add_argument("--distill-weight", type=float, default=0.5)
    p.add_argument("--population", type=int, default=16, help="NSGA-II population size (default 16)")
    p.add_argument("--no-peers", action="store_true", help="do not enqueue the hand-designed peers in a new study")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--latency-size", type=int, default=LATENCY_SIZE,
                   help=f"side of the fixed latency input in network-input pixels (default {LATENCY_SIZE})")
    p.add_argument("--report", action="store_true", help="draw the Pareto front PNG and print the Pareto table")
    p.add_argument("--register", type=int, metavar="TRIAL", help="write a completed trial's spec (with --as NAME)")
    p.add_argument("--as", dest="register_as", metavar="NAME", help="spec name for --register")
    p.add_argument("--zoo", help="zoo folder (default: the package's zoo)")
    p.add_argument("--spec-dir", help="where --register writes (default: searched_models/specs)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    zoo_dir = args.zoo or str(ZOO_DIR)
    storage = args.storage or default_storage(args.task, zoo_dir)
    study_name = args.study or default_study(args.task)
    if args.trials is None and not args.report and args.register is None:
        raise SettingError("Nothing to do: give --trials N, --report, or --register TRIAL --as NAME.")
    if (args.register is None) != (args.register_as is None):
        raise SettingError("--register TRIAL and --as NAME go together.")
    if args.trials is not None:
        if args.trials < 1:
            raise SettingError("--trials must be at least 1.")
        if not args.images or not args.val_images:
            raise SettingError("A search needs --images DIR (training photos) and --val-images DIR.")
        if args.threads:
            torch.set_num_threads(args.threads)
        max_macs = resolve_budget(args.task, args.max_macs, args.budget_ratio, zoo_dir)
        cfg = SearchConfig(task=args.task, max_macs=max_macs, trials=args.trials, images=args.images,
                           val_images=args.val_images, seed=args.seed,
                           storage=storage, study=study_name, proxy_steps=args.proxy_steps, batch=args.batch,
                           patch=args.patch, lr=args.lr, teacher=args.teacher, distill_weight=args.distill_weight,
                           val_limit=args.val_limit, val_crop=args.val_crop, population=args.population,
                           threads=args.threads, peers=not args.no_peers, latency_size=args.latency_size,
                           zoo_dir=zoo_dir)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            search(cfg, log=lambda m: print(m, flush=True))
        except KeyboardInterrupt:
            print("search interrupted; rerun the same command to resume", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)
    if args.report:
        table, png = report(args.task, storage, study_name, zoo_dir)
        print(table)
        print(f"wrote {png}")
    if args.register is not None:
        path = register(args.task, storage, study_name, args.register, args.register_as,
                        args.spec_dir or SPEC_DIR, command="pixelnas " + shlex.join(sys.argv[1:]))
        print(f"wrote {path}\ntrain it with: pixelnas train --task {args.task} --spec {path} --role searched "
              f"--images DIR --val-images DIR --steps N")
    return 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """`python -m searched_models.search …` (same as `pixelnas search …`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="pixelnas")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["search", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except InputError as error:
        print(f"pixelnas: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
