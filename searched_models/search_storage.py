"""Where a search lives and who works on it: Optuna storages and studies, worker identity and heartbeats,
abandoned trials failed and re-queued, surplus trials handed back, and the trial log back-filled from the storage.

Storage: a local Optuna journal file (default `zoo/<task>/search.journal`) or any Optuna RDB URL (sqlite:///…,
postgresql://…), shared by any number of worker processes or machines. A worker killed with SIGKILL loses
nothing: every running trial carries its worker (host, boot id, pid) and a heartbeat (refreshed every HEARTBEAT_S
seconds); other workers (and the rerun) fail a trial whose process is gone or whose heartbeat is older than
STALE_AFTER_S and enqueue its parameters again as a new trial ("retry_of"). Completed trials missing from the log
(another machine ran them, or a kill came between the storage write and the log write) are back-filled.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from datetime import datetime
from pathlib import Path

from isp.errors import SettingError
from searched_models.search_log import ZOO_DIR, append_jsonl, log_trial, read_trials_jsonl, record_from_trial

HEARTBEAT_S = 10.0       # a running trial refreshes its "heartbeat" user attribute this often
STALE_AFTER_S = 60.0     # … and is taken over when the heartbeat is older than this (other hosts)
RECOVER_AFTER_S = 30.0   # a failed trial left without its retry (crash while re-queueing) is re-queued after this


def default_storage(task: str, zoo_dir: str | Path = ZOO_DIR) -> str:
    """zoo/<task>/search.journal"""
    return str(Path(zoo_dir) / task / "search.journal")


def default_study(task: str) -> str:
    """pixelnas-<task>"""
    return f"pixelnas-{task}"


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


def quiet_optuna():
    """Optuna logs warnings only, and no experimental-feature warnings."""
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
    """An existing study, with a readable error when the storage or the study is missing."""
    import optuna

    quiet_optuna()
    if "://" not in storage and not Path(storage).exists():
        raise SettingError(f"No search storage at {storage}; run `pixelnas search … --trials N` first "
                           f"(or pass --storage).")
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(storage), sampler=sampler)
    except KeyError:
        raise SettingError(f"No search study {study_name!r} in {storage}; run `pixelnas search … --trials N` "
                           f"first (or pass --study/--storage).") from None


def worker_id() -> dict:
    """This process: host name, boot id (pids are unique per boot), pid."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return {"host": socket.gethostname(), "boot": boot, "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine is running (zombies count as gone)."""
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
    """Enqueue the trial's parameters again as a new trial (keeping its peer or seed name), noting why."""
    keep = {k: v for k, v in trial.user_attrs.items() if k in ("peer", "seed_from")}
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


def claim_trial(study, me: dict, wanted: int, log_path: Path):
    """A new trial run by this worker, or None when another worker took the last of the `wanted` slots at the
    same moment (the trial is then failed as "surplus" and an enqueued peer or retry is handed back)."""
    from optuna.trial import TrialState

    trial = study.ask()
    trial.set_user_attr("worker", me)
    trial.set_user_attr("heartbeat", time.time())
    finished, running = counts(study, me, mine=trial.number)
    if trial.number in sorted(finished + running)[:wanted]:
        join_generation(study, trial)
        return trial
    trial.set_user_attr("surplus", True)
    study.tell(trial, state=TrialState.FAIL)
    frozen = study.get_trials(deepcopy=False)[trial.number]
    if "fixed_params" in frozen.system_attrs:           # hand an enqueued (peer / retry) trial back
        requeue(study, frozen, "surplus")
    log_trial(study, trial.number, log_path)
    return None


def join_generation(study, trial) -> None:
    """Give an enqueued trial (a peer, a seed, a retry) its NSGA-II generation. Optuna skips relative sampling for
    trials with fixed parameters, and relative sampling is where a trial's generation is recorded, so without this
    an enqueued trial belongs to no generation and is never selected as a parent: seeding the first population with
    known designs would not seed anything. Sampled trials already have theirs (the call is then a no-op)."""
    get_generation = getattr(study.sampler, "get_trial_generation", None)
    if get_generation is not None:            # Optuna's GA samplers (NSGA-II); other samplers have no generations
        get_generation(study, study._storage.get_trial(trial._trial_id))


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
