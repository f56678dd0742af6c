"""Other processes' CPU load during a measurement, and where it is reported (eval, app notes, README table)."""
from __future__ import annotations

import os

import pytest

from isp.cpu_load import BUSY_CORES_WARNING, OtherLoad, all_cores_busy_seconds, busy_warning


def readings(*values):
    it = iter(values)
    return lambda: next(it)


def test_other_load_is_all_cores_busy_time_minus_our_own_over_the_wall_time():
    with OtherLoad(busy=readings(100.0, 104.0), own=readings(5.0, 6.0), clock=readings(10.0, 12.0)) as load:
        pass
    assert load.cores == pytest.approx(1.5)                  # (4 s busy − 1 s ours) / 2 s
    with OtherLoad(busy=readings(100.0, 100.5), own=readings(5.0, 6.0), clock=readings(0.0, 1.0)) as load:
        pass
    assert load.cores == 0.0                                  # tick rounding never gives a negative load
    with OtherLoad(busy=readings(None, None), own=readings(0.0, 0.0), clock=readings(0.0, 1.0)) as load:
        pass
    assert load.cores is None                                 # no /proc/stat: unknown, not zero


@pytest.mark.skipif(all_cores_busy_seconds() is None, reason="needs Linux's /proc/stat")
def test_other_load_reads_the_real_machine():
    with OtherLoad() as load:
        sum(range(2_000_000))
    assert load.cores is not None and 0.0 <= load.cores <= os.cpu_count()


def test_busy_warning_only_above_the_threshold():
    assert busy_warning(None, "x") is None and busy_warning(BUSY_CORES_WARNING / 2, "x") is None
    text = busy_warning(1.8, "the models were timed")
    assert "1.8 of" in text and "the models were timed" in text and "unreliable" in text


def test_the_app_keeps_one_load_note_with_the_highest_load(tmp_path):
    from isp.compare import note_other_load
    from isp.compare_types import Comparison, Settings

    comparison = Comparison(capture=None, settings=Settings(), plans=[], notes=["kept"])
    note_other_load(comparison, 0.1)
    assert comparison.notes == ["kept"] and comparison.other_load == 0.1
    note_other_load(comparison, 0.6)
    note_other_load(comparison, 1.7)
    note_other_load(comparison, 0.2)
    assert comparison.other_load == 1.7
    assert comparison.notes == ["kept", busy_warning(1.7, "the variants ran")]


def test_eval_times_the_models_in_turn(monkeypatch):
    from searched_models import evaluate

    calls = []
    monkeypatch.setattr(evaluate, "timing_call", lambda task, row: (lambda: calls.append(row["name"])))
    ms = evaluate.measure_ms_per_mp("sr_x2", [{"name": "a"}, {"name": "b"}], runs=3, warmup=1)
    assert len(ms) == 2 and all(m >= 0 for m in ms)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]      # warm-up of each, then one run of each per round


def test_results_table_says_how_busy_the_machine_was():
    from searched_models.results_table import timing_note

    report = {"timing_input": 256, "threads": 1, "cpu_cores": 2}
    assert "not recorded" in timing_note(report)
    assert "0.05 of 2 cores" in timing_note({**report, "timing_other_load_cores": 0.05})
    assert "⚠" not in timing_note({**report, "timing_other_load_cores": 0.05})
    assert "⚠ time ratios unreliable" in timing_note({**report, "timing_other_load_cores": 1.9})
