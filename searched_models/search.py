"""`pixelnas search`: hardware-aware multi-objective architecture search with Optuna's NSGA-II.

Objectives: proxy validation PSNR ↑ and MACs per input megapixel ↓ (Deb et al., "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE TEVC 2002), under a MAC budget given to the sampler as a
constraint (`Trial.set_constraint("macs_over_budget", MACs − budget)`, feasible when ≤ 0 — Optuna 5's replacement
for the deprecated `constraints_func`; NSGA-II ranks by Deb's constrained domination). With `--min-speedup X` the
search is hardware-aware in measured time too: each network is timed against the heavy before training
(`Proxy.speedup`), constraint "slower_than_rule" = X / speedup − 1; a sampled network that breaks the rule is pruned
untrained (MnasNet and FBNet put measured latency into the search the same way — Tan et al. CVPR 2019, Wu et al.
CVPR 2019 — here as a hard rule). Sampled genomes of
`searched_models.space` are repaired deterministically to fit the budget, so every sampled trial builds and
is feasible; the hand-designed peers are enqueued as the first trials of a new study (unrepaired, so they may
be infeasible) and get exactly the same proxy treatment (`search_proxy`); an over-budget peer is enqueued a second
time as a seed that is repaired into the budget like any sampled genome (`queue_peers`). `--trials N` runs until the study has
N finished trials, so a rerun resumes and parallel workers sharing one storage (`search_storage`) share the count.
Every trial is appended to `zoo/<task>/search_trials.jsonl` (`search_log`); `--report` and `--register` are in
`search_report`, the budget in `search_budget`.

This module: the search settings, the study's creation, the trial loop and the command line.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from isp.cli_types import int_at_least, non_negative_int, positive_float, positive_int, unit_fraction
from isp.errors import InputError, SettingError
from searched_models.search_budget import heavy_card, parse_macs, resolve_budget
from searched_models.search_log import (ZOO_DIR, describe, log_trial, read_trials_jsonl, spec_key,
                                        trials_log_path)
from searched_models.search_proxy import (Proxy, has_fingerprint, reference_scores, references_path, same_data,
                                          write_references)
from searched_models.search_report import SPEC_DIR, latency_ratios, register, report
from searched_models.search_storage import (Heartbeat, backfill, claim_trial, counts, default_storage,
                                            default_study, make_sampler, open_storage, quiet_optuna, reap,
                                            requeue, worker_id)

# Kept light on purpose (torch, numpy and the space are imported where used): `pixelnas --help` imports this module.
# Also importable from here, as before the split: InputError, SettingError, parse_macs, resolve_budget,
# read_trials_jsonl, open_storage, register, report.
__all__ = ["SearchConfig", "add_command", "run", "main", "search", "InputError", "SettingError", "parse_macs",
           "resolve_budget", "read_trials_jsonl", "open_storage", "register", "report"]

TASKS = ("denoise_raw", "enhance", "sr_x2")
POLL_S = 1.0             # a worker waiting for other workers' last trials checks this often
LATENCY_SIZE = 256       # latency input side in network-input pixels (as searched_models.evaluate.TIMING_SIZE)
# Settings of studies made before the key existed: the space had no "rep" blocks until session 7.
LEGACY_SETTINGS = {"body_types": ["conv", "dwsep", "residual", "inverted", "dynamic"], "teacher_pin": None,
                   "min_speedup": None, "rep_twins": False, "pyramids": None}
OBJECTIVES = ("proxy PSNR (dB, maximise)", "MACs per input MP (minimise)")


@dataclass
class SearchConfig:
    """Settings of one search run (the options of `pixelnas search`)."""

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
    teacher_pin: str | None = None        # distil from the teacher pinned by this other study (its file, shared)
    distill_weight: float = 0.5
    val_limit: int = 4
    val_crop: int = 192                   # validation photos are centre-cropped to this (photo pixels)
    population: int = 16
    threads: int | None = None
    peers: bool = True
    cache_mb: float = 512.0               # training batches (and teacher outputs) kept for reuse across trials
    cache_dir: str | None = None          # on-disk copy of them (None: ~/.cache/pixelnas or $PIXELNAS_CACHE; "": off)
    latency_size: int = LATENCY_SIZE      # side of the fixed latency input (network-input pixels)
    min_speedup: float | None = None      # latency rule: heavy ms / trial ms at least this (measured per trial)
    rep_twins: bool = False               # queue the rep-block twin of each sampled trial that reaches the front
    zoo_dir: str = str(ZOO_DIR)
    command: str = field(default_factory=lambda: "pixelnas " + shlex.join(sys.argv[1:]))

    def settings(self) -> dict:
        """What must match for several runs or workers to share one study."""
        from searched_models import space

        return {"task": self.task, "max_macs": self.max_macs, "proxy_steps": self.proxy_steps, "batch": self.batch,
                "patch": self.patch, "lr": self.lr, "teacher": self.teacher, "distill_weight": self.distill_weight,
                "teacher_pin": self.teacher_pin, "val_limit": self.val_limit, "val_crop": self.val_crop,
                "seed_data": self.seed_data,
                "body_types": list(space.BODY_TYPES), "min_speedup": self.min_speedup, "rep_twins": self.rep_twins,
                "pyramids": space.PYRAMID_SPACE if self.task in space.PYRAMID_TASKS else None}

    @property
    def study_name(self) -> str:
        return self.study or default_study(self.task)

    @property
    def seed_data(self) -> int:
        return 0    # batches, initial weights and validation noise are the same for every trial and worker


def open_study(cfg: SearchConfig, storage: str, study_name: str, log=print, teacher: dict | None = None,
               data: dict | None = None):
    """Create the study (enqueueing the peers) or join the existing one after checking its settings, that this run
    distils from the study's own teacher (`teacher`: the proxy's teacher info with its weights' digest) and that it
    trains and validates on the study's photos (`data`: `search_proxy.data_fingerprint`). A study made before the
    fingerprint existed gets this run's, with a note."""
    import optuna

    quiet_optuna()
    backend = open_storage(storage)
    try:
        study = optuna.create_study(study_name=study_name, storage=backend, directions=["maximize", "minimize"],
                                    sampler=make_sampler(cfg.seed, 0, cfg.population))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study, created = optuna.load_study(study_name=study_name, storage=backend), False
    pinned = {k: teacher[k] for k in ("name", "steps_done", "digest")} if teacher else None
    if created:                       # "settings" last: a worker that sees them sees the rest (`wait_for_creator`)
        if data:
            study.set_user_attr("data", data)
        study.set_user_attr("teacher", pinned)
        study.set_user_attr("objectives", list(OBJECTIVES))
        study.set_user_attr("settings", cfg.settings())
        if cfg.peers:
            queue_peers(study, cfg, log)
    else:
        stored = wait_for_creator(study)
        if stored:
            stored = {**LEGACY_SETTINGS, **stored}
            diff = {k: (stored.get(k), v) for k, v in cfg.settings().items() if not _same(stored.get(k), v)}
            if diff:
                what = ", ".join(f"{k} {a!r} (now {b!r})" for k, (a, b) in diff.items())
                raise SettingError(f"Study {study_name!r} in {storage} was made with other settings: {what}. "
                                   f"Use the same options, or a new --study name.")
        stored_teacher = study.user_attrs.get("teacher")
        if stored_teacher and pinned and stored_teacher["digest"] != pinned["digest"]:
            raise SettingError(f"Study {study_name!r} distilled from {stored_teacher['name']} at step "
                               f"{stored_teacher['steps_done']} (digest {stored_teacher['digest']}), but its pinned "
                               f"teacher file now holds digest {pinned['digest']}: restore the study's "
                               f"<study>.teacher.safetensors from git, or start a new --study.")
        if pinned and "teacher" not in study.user_attrs:
            log(f"note: study {study_name!r} predates teacher pinning; its earlier trials may have distilled from "
                f"other checkpoints of {pinned['name']}")
        check_data(study, data, storage, log)
    done = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(cfg.seed, done, cfg.population)
    return study


def wait_for_creator(study, timeout_s: float = 10.0) -> dict | None:
    """The study's settings; when a worker joins a study another one has just created (no settings, no trials yet),
    it waits up to `timeout_s` for the creator to record them, so it is not taken for a study made before settings
    and fingerprints were recorded. None for such an old study."""
    deadline = time.monotonic() + timeout_s
    while True:
        stored = study.user_attrs.get("settings")
        if stored or study.get_trials(deepcopy=False) or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


def check_data(study, data: dict | None, storage: str, log=print) -> None:
    """Refuse to add trials trained or validated on other photos than the study's (their proxy PSNRs would not
    compare); record the fingerprint on a study made before it existed (two workers first joining such an old
    study at once with different photos are not told apart: the last one's fingerprint stays)."""
    if not data:
        return
    stored = study.user_attrs.get("data")
    if not has_fingerprint(stored):
        study.set_user_attr("data", data)
        log(f"note: study {study.study_name!r} predates data fingerprints; recorded this run's photos "
            f"({data['images']}, {data['val_images']}) as its own")
    elif not same_data(stored, data):
        which = []
        if stored["train"] != data["train"]:
            which.append(f"training images ({stored.get('images')} then, {data['images']} now)")
        if stored["val"] != data["val"]:
            which.append(f"validation photos ({stored.get('val_images')} then, {data['val_images']} now)")
        raise SettingError(f"Study {study.study_name!r} in {storage} was searched on other "
                           f"{' and '.join(which)}: its trials' proxy PSNRs would not compare with this run's. "
                           f"Use the study's folders (same files), or a new --study name.")


def queue_peers(study, cfg: SearchConfig, log=print) -> None:
    """Enqueue each hand-designed peer as it is (a reference point, possibly over budget) and, when it is over
    budget, once more as a seed that the sampler's repair shrinks into the budget: the first population then holds
    feasible relatives of known-good designs for NSGA-II's crossover to start from (seeding a genetic search with
    known solutions — Deb et al. 2002 start from random parents; seeding is the usual refinement). A peer with
    plain conv blocks is also seeded with them as `rep` blocks (the same network as it runs, trained
    re-parameterised, `spec.RepConv`), repaired into the budget when it is over."""
    from searched_models import space

    for name, params in peer_params(cfg.task, cfg.zoo_dir):
        study.enqueue_trial(params, user_attrs={"peer": name})
        log(f"queued peer {name} as a trial")
        if space.budget_macs(space.spec_from_params(params, cfg.task)) > cfg.max_macs * (1 + 1e-9):
            study.enqueue_trial(params, user_attrs={"seed_from": name})
            log(f"queued {name} repaired into the budget as a seed trial")
        rep = space.with_rep_blocks(params)
        if rep != params:
            study.enqueue_trial(rep, user_attrs={"seed_from": f"{name}+rep"})
            log(f"queued {name} with rep blocks (repaired into the budget if needed) as a seed trial")


def queue_rep_twin(study, record: dict, cfg: SearchConfig, log=print) -> int | None:
    """With `--rep-twins`: when a searched (not peer) trial with plain conv blocks completes on the study's feasible
    Pareto front, queue the same network with those blocks as `rep` blocks — identical MACs and latency, trained
    re-parameterised (`spec.RepConv`; +0.07 to +0.33 dB on the SR proxy for each peer seed) — as a seed of the next
    generation, unless that network is already in the study. A deterministic local move next to NSGA-II's crossover
    and mutation, which rarely turns all of a good child's conv blocks into rep blocks at once. Returns the number of
    the trial it came from, or None."""
    from optuna.trial import TrialState

    from searched_models import space
    from searched_models.search_log import pareto, study_records

    if not cfg.rep_twins or record.get("status") != "complete" or record.get("peer") or not record.get("feasible"):
        return None
    number = record["number"]
    if number not in {r["number"] for r in pareto(study_records(study))}:
        return None
    params = space.params_for_spec(record["spec"], cfg.task)
    twin = space.with_rep_blocks(params)
    if twin == params:
        return None
    key = spec_key(space.spec_from_params(twin, cfg.task))
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("rep_twin_of") == number:
            return None
        if t.state == TrialState.WAITING and "fixed_params" in t.system_attrs:
            fixed = t.system_attrs["fixed_params"]
            pending = space.spec_from_params(fixed if t.user_attrs.get("peer") else
                                             space.repair(fixed, cfg.task, cfg.max_macs)[0], cfg.task)
            if spec_key(pending) == key:
                return None
        elif t.user_attrs.get("spec") and spec_key(t.user_attrs["spec"]) == key:
            return None
    study.enqueue_trial(twin, user_attrs={"seed_from": f"trial{number}+rep", "rep_twin_of": number})
    log(f"trial {number} is on the front: queued its rep-block twin as a seed trial")
    return number


def _same(a, b) -> bool:
    """Equal settings (floats to 1e-9 relative)."""
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


# Settings that do not change a trial's proxy result (what the sampler may propose, which results count as
# feasible, and where the teacher file lives — its digest is compared instead): studies that differ only in these
# share proxy results (`proxy_twins`).
SPACE_ONLY_SETTINGS = ("body_types", "min_speedup", "max_macs", "teacher_pin", "rep_twins", "pyramids")


def proxy_twins(storage: str, study, cfg: SearchConfig) -> dict[str, tuple]:
    """spec_key → (study name, trial) of the completed trials of the other studies in `storage` whose proxy is this
    study's — same settings apart from SPACE_ONLY_SETTINGS, same pinned teacher weights, same photos (data
    fingerprints; a study that has none yet, made before they existed, is taken as it was) — so a network one of them
    already trained is not trained again (the proxy is deterministic: same batches, same initial weights). The
    first trial of a network wins."""
    import optuna
    from optuna.trial import TrialState

    mine = {k: v for k, v in cfg.settings().items() if k not in SPACE_ONLY_SETTINGS}
    teacher = study.user_attrs.get("teacher")
    backend = open_storage(storage)
    out: dict[str, tuple] = {}
    for summary in optuna.get_all_study_summaries(backend, include_best_trial=False):
        if summary.study_name == study.study_name:
            continue
        other = optuna.load_study(study_name=summary.study_name, storage=backend)
        settings = {**LEGACY_SETTINGS, **(other.user_attrs.get("settings") or {})}
        same = all(_same(settings.get(k), v) for k, v in mine.items())
        other_teacher = other.user_attrs.get("teacher")
        theirs, ours = other.user_attrs.get("data"), study.user_attrs.get("data")
        same = same and (not has_fingerprint(theirs) or not has_fingerprint(ours) or same_data(theirs, ours))
        if same and (teacher or {}).get("digest") == (other_teacher or {}).get("digest"):
            for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                if t.user_attrs.get("spec") and "metrics" in t.user_attrs:
                    out.setdefault(spec_key(t.user_attrs["spec"]), (summary.study_name, t))
    return out


def run_trial(study, trial, cfg: SearchConfig, proxy: Proxy, me: dict, log_path: Path,
              twins: dict | None = None) -> dict:
    """Sample (or replay) the genome, repair, proxy-train, tell. Returns the JSONL record. twins: completed trials
    of studies with the same proxy (`proxy_twins`) whose results an identical network takes over."""
    twins = twins or {}
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
    within_budget = macs <= cfg.max_macs * (1 + 1e-9)
    common = {"macs_per_input_pixel": cost.macs_per_pixel, "macs_per_input_mp": cost.macs_per_mp(),
              "params": cost.params, "within_budget": within_budget, "seed": cfg.seed_data, "sampler_seed": cfg.seed,
              "proxy_steps": cfg.proxy_steps}
    fast_enough, rule = True, {}
    if cfg.min_speedup:
        speed = proxy.speedup(spec)
        fast_enough = speed["speedup"] >= cfg.min_speedup
        rule = {**speed, "min_speedup": cfg.min_speedup, "fast_enough": fast_enough}
        trial.set_constraint("slower_than_rule", cfg.min_speedup / speed["speedup"] - 1.0)
        if not fast_enough and not peer:   # hardware-aware rejection: not worth its proxy training
            rejected = f"{speed['speedup']:.1f}x faster than the heavy, under the {cfg.min_speedup:g}x rule"
            trial.set_user_attr("metrics", {
                **common, "proxy_psnr": None, "latency_ms_per_mp": speed["untrained_latency_ms_per_mp"], **rule,
                "feasible": False, "rejected": rejected, "duration_s": time.perf_counter() - start})
            study.tell(trial, state=TrialState.PRUNED)
            return log_trial(study, trial.number, log_path)
    key = spec_key(spec)
    own = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    twin_study, twin = next(((study.study_name, t) for t in own
                             if t.user_attrs.get("spec") and spec_key(t.user_attrs["spec"]) == key),
                            twins.get(key, (None, None)))
    if twin is not None:                 # the same network was already trained with the same data and seed
        result = {k: twin.user_attrs["metrics"][k]
                  for k in ("proxy_psnr", "latency_ms_per_mp", "train_s", "final_loss")}
        trial.set_user_attr("duplicate_of", twin.number)
        if twin_study != study.study_name:
            trial.set_user_attr("duplicate_of_study", twin_study)
    else:
        result = proxy.evaluate(spec)
    metrics = {**common, **result, **rule, "feasible": within_budget and fast_enough,
               "duration_s": time.perf_counter() - start,
               "teacher_steps": proxy.teacher_info["steps_done"] if proxy.teacher_info else None}
    trial.set_user_attr("metrics", metrics)
    if not math.isfinite(result["proxy_psnr"]):
        trial.set_user_attr("diverged", True)
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, [result["proxy_psnr"], cost.macs_per_mp()])
    return log_trial(study, trial.number, log_path)


def progress_line(record: dict, finished: int, total: int, heavy_macs: float | None) -> str:
    """One line per finished trial: PSNR, MACs, params, latency, duration, kind and architecture."""
    tag = f"peer {record['peer']}" if record.get("peer") else \
        f"searched, seeded from {record['seed_from']}" if record.get("seed_from") else "searched"
    if record.get("duplicate_of") is not None:
        tag += f", same net as {record.get('duplicate_of_study') or ''}#{record['duplicate_of']}"
    if record.get("retry_of") is not None:
        tag += f", retry of #{record['retry_of']}"
    ratio = f" (1/{heavy_macs / record['macs_per_input_pixel']:.0f} of heavy)" if heavy_macs else ""
    psnr = record.get("proxy_psnr")
    speed = f"  {record['speedup']:.0f}x faster than heavy" if record.get("speedup") else ""
    if record.get("rejected"):
        speed += " — not trained"
    return (f"[{finished}/{total}] trial {record['number']:>3} {record['status']:<8} "
            f"PSNR {'     —' if psnr is None else f'{psnr:6.2f}'} dB  {record['macs_per_input_pixel'] / 1e3:8.2f} kMAC/px"
            f"{ratio}  {record['params']:>7} params  {record['latency_ms_per_mp']:7.1f} ms/MP{speed}  "
            f"{record['duration_s']:5.1f} s  {_flag(record)}[{tag}] "
            f"{describe(record['spec'])}")


def _flag(record: dict) -> str:
    """'' for a feasible trial, else why not (the latency rule first, as a pruned trial's reason)."""
    if record["feasible"]:
        return ""
    return "TOO SLOW  " if record.get("fast_enough") is False else "OVER BUDGET  "


MAX_CONSECUTIVE_FAILURES = 3


def search(cfg: SearchConfig, log=print):
    """Run trials until the study has cfg.trials finished ones (resuming / sharing with other workers)."""
    from searched_models import space

    space.task_io(cfg.task)
    storage = cfg.storage or default_storage(cfg.task, cfg.zoo_dir)
    study_name = cfg.study or default_study(cfg.task)
    log_path = trials_log_path(cfg.task, cfg.zoo_dir)
    proxy = Proxy(cfg, log)                                  # first: a missing teacher or folder fails fast
    study = open_study(cfg, storage, study_name, log, teacher=proxy.teacher_info, data=proxy.data)
    me = worker_id()
    heavy = heavy_card(cfg.task, cfg.zoo_dir)
    heavy_macs = float(heavy["macs_per_input_pixel"]) if heavy and heavy.get("macs_per_input_pixel") else None
    log(f"study {study_name} in {storage}: budget {cfg.max_macs:.0f} MACs per input pixel"
        + (f" (1/{heavy_macs / cfg.max_macs:.0f} of the heavy {heavy['name']})" if heavy_macs else "")
        + f", {cfg.trials} finished trials wanted, proxy {cfg.proxy_steps} steps × batch {cfg.batch}")
    refs = reference_scores(proxy, study_name)
    write_references(refs, references_path(cfg.task, cfg.zoo_dir))
    log(f"references on the proxy validation crops: classical {refs['classical']:.2f} dB"
        + (f", heavy {refs['heavy']['name']} {refs['heavy']['psnr']:.2f} dB (step {refs['heavy']['steps_done']})"
           if refs["heavy"] else ""))
    twins = proxy_twins(storage, study, cfg)
    if twins:
        log(f"{len(twins)} completed trials of other studies with this proxy: identical networks reuse their results")
    if backfill(study, log_path, me):
        log(f"back-filled {log_path.name} from the storage")
    failures = 0
    while True:
        reap(study, me, log_path, log)
        finished, running = counts(study, me)
        if len(finished) >= cfg.trials:
            break
        if len(finished) + len(running) >= cfg.trials:
            time.sleep(POLL_S)                              # other workers are running the last trials
            continue
        trial = claim_trial(study, me, cfg.trials, log_path)
        if trial is None:
            continue
        try:
            with Heartbeat(trial):
                record = run_trial(study, trial, cfg, proxy, me, log_path, twins)
        except Exception as error:                          # noqa: BLE001 - recorded on the trial, see below
            if study.get_trials(deepcopy=False)[trial.number].state.is_finished():
                log(f"trial {trial.number} was taken over by another worker ({error}); its result is dropped")
                continue
            # A failure of this network (it would fail again): record it and go on, not re-queue it.
            _fail(study, trial, error, log_path)
            failures += 1
            log(f"trial {trial.number} failed: {type(error).__name__}: {error}")
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(f"{failures} trials in a row failed; the last error was "
                                   f"{type(error).__name__}: {error}") from error
            continue
        except BaseException as error:                      # Ctrl-C, SIGTERM: nothing may be lost
            raise _fail_and_requeue(study, trial, error, log_path)
        failures = 0
        done, _ = counts(study, me)
        log(progress_line(record, len(done), cfg.trials, heavy_macs))
        queue_rep_twin(study, record, cfg, log)
    backfill(study, log_path, me)
    return study


def _fail(study, trial, error: BaseException, log_path: Path) -> None:
    """Mark this worker's trial failed with its error (kept in the trial log)."""
    from optuna.trial import TrialState

    trial.set_user_attr("error", f"{type(error).__name__}: {error}")
    study.tell(trial, state=TrialState.FAIL)
    log_trial(study, trial.number, log_path)


def _fail_and_requeue(study, trial, error: BaseException, log_path: Path) -> BaseException:
    """Fail this worker's trial after `error`, queue its parameters again, log it; returns `error` to raise."""
    try:
        _fail(study, trial, error, log_path)
        requeue(study, study.get_trials(deepcopy=False)[trial.number], type(error).__name__)
        print(f"trial {trial.number} stopped ({type(error).__name__}); its parameters are queued again — "
              f"rerun the same command to resume", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - the storage itself may be what failed; the next run's reaper recovers
        pass
    return error


def macs_argument(text: str) -> float:
    """`parse_macs` as an argparse type, so a bad value reads as argparse's one-line usage error."""
    try:
        return parse_macs(text)
    except SettingError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_command(sub) -> None:
    """Register `pixelnas search` on an argparse subparsers object."""
    p = sub.add_parser("search", help="hardware-aware architecture search (Optuna NSGA-II) for a task",
                       description="Search the PixelNAS space for networks on the PSNR/MACs Pareto front under a MAC "
                                   "budget. --trials N runs until the study has N finished trials (reruns resume, "
                                   "several workers can share one --storage). --report draws zoo/<task>/pareto[-<study>].png; "
                                   "--register TRIAL --as NAME writes specs/<task>/NAME.json for `pixelnas train`.")
    p.add_argument("--task", required=True, choices=TASKS)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--max-macs", type=macs_argument,
                        help="budget in MACs per input pixel (per packed 2×2 pixel for denoise_raw; e.g. 12000 or 12k)")
    budget.add_argument("--budget-ratio", type=positive_float,
                        help="budget as a fraction of the heavy model's MACs (e.g. 0.01)")
    p.add_argument("--trials", type=positive_int, help="run until the study has this many finished trials")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="sampler seed (default 0; give parallel workers different seeds)")
    p.add_argument("--storage", help="Optuna journal file or RDB URL (default zoo/<task>/search.journal)")
    p.add_argument("--study", help="study name (default pixelnas-<task>, the task's first study; --report, "
                                   "--latency and --register read the same default)")
    p.add_argument("--images", help="folder of training photos")
    p.add_argument("--val-images", help="folder of validation photos")
    p.add_argument("--val-limit", type=positive_int, default=4, help="validation photos used (default 4)")
    p.add_argument("--val-crop", type=int_at_least(32), default=192,
                   help="centre crop of each validation photo, at least 32 px, a multiple of 32 is kept (default 192)")
    p.add_argument("--proxy-steps", type=positive_int, default=200, help="training steps per trial (default 200)")
    p.add_argument("--batch", type=positive_int, default=8, help="patches per proxy training step (default 8)")
    p.add_argument("--patch", type=positive_int, help="training crop in network-input pixels (default: "
                   "denoise_raw 64, sr_x2 48, enhance 96)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="proxy learning rate (cosine decay; default 1e-3)")
    p.add_argument("--teacher", help="distil from this zoo model, e.g. heavy")
    p.add_argument("--teacher-pin", metavar="STUDY",
                   help="with --teacher: distil from the weights another study of the task pinned "
                        "(zoo/<task>/STUDY.teacher.safetensors, shared, not copied) instead of pinning the heavy's "
                        "current checkpoint for this study")
    p.add_argument("--distill-weight", type=unit_fraction, default=0.5,
                   help="with --teacher: weight (0–1) of the L1 to the teacher's output; the ground truth gets "
                        "1 − it (default 0.5)")
    p.add_argument("--population", type=int_at_least(2), default=16,
                   help="NSGA-II population size, at least 2 (default 16)")
    p.add_argument("--no-peers", action="store_true", help="do not enqueue the hand-designed peers in a new study")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: all cores)")
    p.add_argument("--cache-mb", type=float, default=SearchConfig.cache_mb,
                   help="memory for the proxy's training batches and teacher outputs, reused by every trial of a "
                        f"worker (default {SearchConfig.cache_mb:g}; a batch that does not fit is recomputed each trial)")
    p.add_argument("--cache-dir", help="where the proxy's batches and teacher outputs are kept between runs (default "
                                       "~/.cache/pixelnas or $PIXELNAS_CACHE; ~4 MB per SR batch of 16; '' disables)")
    p.add_argument("--latency-size", type=positive_int, default=LATENCY_SIZE,
                   help=f"side of the fixed latency input in network-input pixels (default {LATENCY_SIZE})")
    p.add_argument("--min-speedup", type=positive_float, metavar="X",
                   help="latency rule (hardware-aware search): before training, time each network and the heavy back to "
                        "back on the latency input; a sampled network less than X times faster is rejected untrained "
                        "(pruned), a slower peer is still trained but marked infeasible (e.g. 30)")
    p.add_argument("--rep-twins", action="store_true",
                   help="when a searched trial with plain conv blocks reaches the Pareto front, queue the same network "
                        "with rep blocks (same MACs and latency, trained re-parameterised) as a seed trial")
    p.add_argument("--report", action="store_true", help="draw the Pareto front PNG and print the Pareto table")
    p.add_argument("--register", type=int, metavar="TRIAL", help="write a completed trial's spec (with --as NAME)")
    p.add_argument("--latency", metavar="TRIALS",
                   help="measure the heavy's and these trials' wall-clock latency on the CPU in one run, e.g. 9,20,42")
    p.add_argument("--as", dest="register_as", metavar="NAME", help="spec name for --register")
    p.add_argument("--zoo", help="zoo folder (default: the package's zoo)")
    p.add_argument("--spec-dir", help="where --register writes (default: searched_models/specs)")
    p.set_defaults(func=run)


def run(args) -> int:
    """`pixelnas search`: run trials, then --report and/or --register."""
    import torch

    zoo_dir = args.zoo or str(ZOO_DIR)
    storage = args.storage or default_storage(args.task, zoo_dir)
    study_name = args.study or default_study(args.task)
    if (args.register is None) != (args.register_as is None):
        raise SettingError("--register TRIAL and --as NAME go together.")
    if args.trials is None and not args.report and args.register is None and not args.latency:
        raise SettingError("Nothing to do: give --trials N, --report, --latency TRIALS or --register TRIAL --as NAME.")
    if args.trials is not None:
        if not args.images or not args.val_images:
            raise SettingError("A search needs --images DIR (training photos) and --val-images DIR.")
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.teacher_pin and not args.teacher:
            raise SettingError("--teacher-pin names whose pinned teacher to distil from; give --teacher heavy too.")
        max_macs = resolve_budget(args.task, args.max_macs, args.budget_ratio, zoo_dir)
        cfg = SearchConfig(task=args.task, max_macs=max_macs, trials=args.trials, images=args.images,
                           val_images=args.val_images, seed=args.seed,
                           storage=storage, study=study_name, proxy_steps=args.proxy_steps, batch=args.batch,
                           patch=args.patch, lr=args.lr, teacher=args.teacher, distill_weight=args.distill_weight,
                           teacher_pin=args.teacher_pin, val_limit=args.val_limit, val_crop=args.val_crop,
                           population=args.population,
                           threads=args.threads, peers=not args.no_peers, latency_size=args.latency_size,
                           min_speedup=args.min_speedup, rep_twins=args.rep_twins,
                           cache_mb=args.cache_mb, cache_dir=args.cache_dir, zoo_dir=zoo_dir)
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
    if args.latency:
        try:
            numbers = [int(n) for n in args.latency.split(",") if n.strip()]
        except ValueError:
            raise SettingError(f"--latency takes trial numbers separated by commas, got {args.latency!r}.") from None
        if args.threads:
            torch.set_num_threads(args.threads)
        print(latency_ratios(args.task, storage, study_name, numbers, args.latency_size, zoo_dir))
    if args.register is not None:
        path, written = register(args.task, storage, study_name, args.register, args.register_as,
                                 args.spec_dir or SPEC_DIR, command="pixelnas " + shlex.join(sys.argv[1:]))
        print(f"{'wrote' if written else 'already registered (unchanged):'} {path}\n"
              + train_suggestion(args.task, path, args.register_as or Path(path).stem, zoo_dir))
    return 0


def train_suggestion(task: str, spec_path, name: str, zoo_dir) -> str:
    """The commands that train a registered trial with the peers' recipe and make it the searched model: straight
    as `searched` while the task has none, else as a candidate that `set-role` promotes once it is trained."""
    from searched_models import zoo

    holder = zoo.holders(zoo.list_models(task, Path(zoo_dir)), "searched", name)
    train = (f"pixelnas train --task {task} --spec {spec_path} --role {'candidate' if holder else 'searched'} "
             f"--recipe light --images DIR --val-images DIR")
    if not holder:
        return f"train it with: {train}   (the peers' recipe: same data and steps)"
    return (f"train it with: {train}   (the peers' recipe: same data and steps; {task}/{holder[0]} is the searched "
            f"model now)\nthen, if it is to stand for the search: pixelnas set-role --task {task} --name {name} "
            f"--role searched")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """`python -m searched_models.search …` (same as `pixelnas search …`)."""
    from searched_models.cli import main as pixelnas

    return pixelnas(["search", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
