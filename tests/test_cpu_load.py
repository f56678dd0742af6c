"""Other processes' CPU load during a measurement, and where it is reported (eval, app notes, README table)."""
from __future__ import annotations

import pytest

from isp import cpu_load
from isp.cpu_load import LOAD_NOTE_PREFIX, LoadMeter, busy_warning, cpus_busy_seconds, ratios_unreliable


def readings(*values):
    it = iter(values)
    return lambda: next(it)


def test_other_load_is_busy_time_minus_our_own_over_the_wall_time_of_all_stretches():
    meter = LoadMeter(busy=readings(100.0, 104.0, 200.0, 201.0), own=readings(5.0, 6.0, 7.0, 7.0),
                      clock=readings(10.0, 12.0, 20.0, 21.0))
    with meter:
        pass
    assert meter.cores == pytest.approx(1.5)                 # (4 s busy − 1 s ours) / 2 s
    with meter:
        pass
    assert meter.cores == pytest.approx(4.0 / 3.0)           # (3 + 1) s of others over 3 s
    short = LoadMeter(busy=readings(0.0, 0.05), own=readings(0.0, 0.0), clock=readings(0.0, 0.03))
    with short:
        pass
    assert short.cores is None                                 # 30 ms: ±1 tick would read ±0.3 cores
    quiet = LoadMeter(busy=readings(100.0, 100.5), own=readings(5.0, 6.0), clock=readings(0.0, 1.0))
    with quiet:
        pass
    assert quiet.cores == 0.0                                  # tick rounding never gives a negative load
    blind = LoadMeter(busy=readings(None, None), own=readings(0.0, 0.0), clock=readings(0.0, 5.0))
    with blind:
        pass
    assert blind.cores is None                                 # no /proc/stat: unknown, not zero
    total = LoadMeter()
    total.add(meter)
    total.add(blind)
    assert total.wall_seconds == pytest.approx(3.0) and total.cores is None


@pytest.mark.skipif(cpus_busy_seconds() is None, reason="needs Linux's /proc/stat")
def test_other_load_reads_the_real_machine():
    import time

    meter = LoadMeter(min_wall_s=0.2)
    with meter:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            sum(range(10_000))
    assert meter.cores is not None and 0.0 <= meter.cores <= cpu_load.usable_cores() + 0.5


def test_only_oversubscription_warns_and_only_several_threads_make_ratios_unreliable(monkeypatch):
    monkeypatch.setattr(cpu_load, "usable_cores", lambda: 2)
    assert busy_warning(None, "x", 2) is None and busy_warning(0.2, "x", 2) is None
    assert busy_warning(1.0, "x", 1) is None                   # one busy core + our one thread: no contention
    text = busy_warning(1.8, "the models were timed", 2)
    assert text.startswith(LOAD_NOTE_PREFIX) and "1.80 of the 2 usable" in text and "unreliable" in text
    assert ratios_unreliable(1.8, 2) and not ratios_unreliable(1.8, 1)
    one = busy_warning(1.8, "the models were timed", 1)
    assert "inflated" in one and "unreliable" not in one


def test_the_app_keeps_one_load_note(monkeypatch):
    from isp.compare import note_other_load
    from isp.compare_types import Comparison, Settings

    monkeypatch.setattr(cpu_load, "usable_cores", lambda: 2)
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)
    comparison = Comparison(capture=None, settings=Settings(), plans=[], notes=["kept"])
    comparison.load_meter.other_seconds, comparison.load_meter.wall_seconds = 0.2, 2.0
    note_other_load(comparison)
    assert comparison.notes == ["kept"] and comparison.other_load == pytest.approx(0.1)
    comparison.load_meter.other_seconds = 3.0
    note_other_load(comparison)
    comparison.load_meter.other_seconds = 3.4
    note_other_load(comparison)
    assert comparison.notes == ["kept", busy_warning(1.7, "the variants ran", 2)]
    comparison.load_meter.other_seconds = 0.1
    note_other_load(comparison)
    assert comparison.notes == ["kept"]


def test_eval_times_the_models_in_turn(monkeypatch):
    from searched_models import evaluate

    calls = []
    monkeypatch.setattr(evaluate, "timing_call", lambda task, row: (lambda: calls.append(row["name"])))
    ms = evaluate.measure_ms_per_mp("sr_x2", [{"name": "a"}, {"name": "b"}], runs=3, warmup=1)
    assert len(ms) == 2 and all(m >= 0 for m in ms)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]      # warm-up of each, then one run of each per round


def test_results_table_says_how_the_times_were_taken():
    from searched_models.results_table import timing_note

    report = {"timing_input": 256, "threads": 1, "cpu_cores": 2}
    assert "not recorded" in timing_note(report)
    new = {**report, "timing_runs": 7, "timing_warmup": 3, "timing_other_load_cores": 0.05,
           "timing_ratios_unreliable": False}
    assert "median of 7 runs after 3 warm-up runs" in timing_note(new) and "0.05 of 2 cores" in timing_note(new)
    assert "not judged" not in timing_note(new)
    busy = {**new, "threads": 2, "timing_other_load_cores": 1.9, "timing_ratios_unreliable": True}
    assert "the time ratios are unreliable and the time target is not judged" in timing_note(busy)
