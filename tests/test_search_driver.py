"""What the search driver tells Optuna and what the scheduler tells Tune, without running Tune.

Design (DESIGN.md 5.2): a trial stopped at a low rung must reach Optuna as PRUNED, never as a
COMPLETE trial with its low-fidelity numbers, or TPE and the Pareto set learn from them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler
from unimixer_plan.search.optuna_search import OBJECTIVES, PlanSearch
from unimixer_plan.search.pareto_asha import ParetoASHA

FULL = 1_000


def space(trial) -> dict:
    trial.suggest_int("depth", 1, 4)
    return {}


def make_search(latency_budget: float | None = None) -> PlanSearch:
    return PlanSearch(
        space=space,
        metric=OBJECTIVES,
        mode=["min", "min"],
        sampler=optuna.samplers.TPESampler(seed=0),
        latency_budget=latency_budget,
    )


def told(search: PlanSearch, result: dict | None, error: bool = False) -> optuna.trial.FrozenTrial:
    trial_id = f"t{len(search._ot_trials)}"
    search.suggest(trial_id)
    search.on_trial_complete(trial_id, result, error=error)
    return search._ot_study.trials[-1]


def result(samples: int, loss: float = 0.5, flops: float = 1e5, status: str = "ok", **extra) -> dict:
    return {"status": status, "samples": samples, "val_logloss": loss, "flops": flops, **extra}


def test_a_trial_stopped_at_a_low_rung_is_pruned_not_complete():
    search = make_search()
    stopped = told(search, result(FULL // 3, loss=0.3, status="running"))
    assert stopped.state == TrialState.PRUNED and stopped.values is None
    assert search._ot_study.best_trials == []  # nothing low-fidelity on Optuna's Pareto front


def test_a_full_fidelity_trial_is_complete_with_both_objectives():
    search = make_search()
    complete = told(search, result(FULL, loss=0.45, flops=2e5))
    assert complete.state == TrialState.COMPLETE and complete.values == [0.45, 2e5]
    assert complete.system_attrs["constraints:latency"] == -1.0  # no latency budget: feasible
    assert [t.number for t in search._ot_study.best_trials] == [complete.number]


def test_failed_and_errored_trials_are_fail():
    search = make_search()
    assert told(search, result(10, status="failed")).state == TrialState.FAIL
    assert told(search, result(FULL), error=True).state == TrialState.FAIL
    assert told(search, None).state == TrialState.FAIL  # no result at all
    assert told(search, {"samples": FULL}).state == TrialState.FAIL  # no status: it never reported


def test_infeasible_trials_teach_the_constraint():
    search = make_search(latency_budget=2.0)
    no_width = told(search, result(0, loss=math.nan, flops=math.nan, status="infeasible"))
    assert no_width.state == TrialState.FAIL
    too_slow = told(search, result(0, loss=0.69, flops=3e5, status="infeasible", latency_ms=5.0))
    assert too_slow.state == TrialState.COMPLETE and too_slow.values == [0.69, 3e5]
    assert too_slow.system_attrs["constraints:latency"] == pytest.approx(3.0)  # 5 ms over a 2 ms budget: violated
    fast = told(search, result(FULL, latency_ms=1.5))
    assert fast.system_attrs["constraints:latency"] == pytest.approx(-0.5)
    assert [t.number for t in search._ot_study.best_trials] == [fast.number]


def test_a_trial_is_told_once():
    search = make_search()
    search.suggest("a")
    search.on_trial_complete("a", result(FULL))
    search.on_trial_complete("a", result(FULL // 9))  # Tune may call again; Optuna keeps the first
    search.on_trial_complete("unknown", result(FULL))
    assert [t.state for t in search._ot_study.trials] == [TrialState.COMPLETE]


def decisions(scheduler: ParetoASHA, reports: list[tuple[str, dict]]) -> list[str]:
    return [scheduler.on_trial_result(None, SimpleNamespace(trial_id=tid), res) for tid, res in reports]


def test_the_scheduler_stops_dominated_trials_at_a_rung_and_keeps_the_front():
    scheduler = ParetoASHA(time_attr="samples", objectives=("val_logloss", "flops"), milestones=(100, 300))
    assert scheduler.rungs.eta == 3  # successive halving's usual reduction factor by default

    def at(samples, loss, flops):
        return {"samples": samples, "val_logloss": loss, "flops": flops}

    got = decisions(
        scheduler,
        [
            ("a", at(100, 0.50, 1e6)),
            ("b", at(100, 0.55, 1e4)),  # worse logloss, far cheaper: on the front
            ("c", at(100, 0.52, 1e5)),
            ("d", at(100, 0.60, 2e6)),  # dominated by a, b and c
            ("a", at(200, 0.40, 1e6)),  # between rungs: nothing to judge
            ("e", at(50, 0.99, 9e9)),  # below the first rung: nothing to judge
            ("f", {"samples": 300}),  # objectives missing: not judged
        ],
    )
    stop, go = TrialScheduler.STOP, TrialScheduler.CONTINUE
    assert got == [go, go, go, stop, go, go, go]
    assert scheduler.stopped == 1
    assert "1 stopped" in scheduler.debug_string()


def test_results_without_samples_or_flops_never_reach_the_front():
    search = make_search()
    assert told(search, {"status": "running", "val_logloss": 0.3, "flops": 1e5}).state == TrialState.PRUNED
    assert told(search, {"status": "infeasible", "samples": 0}).state == TrialState.FAIL
    # a trial's last report decides, not its sample count: "running" was an epoch's report
    assert told(search, {"status": "running", "samples": FULL, "val_logloss": 0.3, "flops": 1e5}).state == (
        TrialState.PRUNED
    )


def test_a_trial_optuna_already_finished_is_logged_not_raised(caplog):
    search = make_search()
    search.suggest("a")
    search._ot_study.tell(search._ot_trials["a"], state=TrialState.FAIL)  # e.g. marked failed on resume
    with caplog.at_level("DEBUG", logger="unimixer_plan.search.optuna_search"):
        search.on_trial_complete("a", result(FULL))
    [record] = [r for r in caplog.records if r.name == "unimixer_plan.search.optuna_search"]
    assert record.getMessage().startswith("optuna tell failed: ") and "already finished" in record.getMessage()
    assert search._ot_study.trials[0].state == TrialState.FAIL


def test_the_scheduler_counts_every_stop_and_passes_eta_on():
    scheduler = ParetoASHA(time_attr="samples", objectives=("val_logloss", "flops"), milestones=(10,), eta=2)
    assert scheduler.rungs.eta == 2 and scheduler.rungs.milestones == (10,)
    at = [("a", 0.1, 1.0), ("b", 0.5, 5.0), ("c", 0.6, 6.0)]
    got = decisions(scheduler, [(t, {"samples": 10, "val_logloss": v, "flops": f}) for t, v, f in at])
    assert got == [TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.STOP]
    assert scheduler.stopped == 2


@pytest.mark.parametrize("fixed", [True, False])
def test_the_trainable_trains_on_its_trial_s_rows_and_seed_and_the_record_says_so(fixed, monkeypatch):
    # A measurement (a fixed trial) carries its own rung, rows, seed and role; a searched trial its rung's.
    from dataclasses import asdict

    from unimixer_plan.data import DataSpec, load_data
    from unimixer_plan.plan_config import Budget, PlanConfig
    from unimixer_plan.run.trial_record import TrialRecord, TrialRole
    from unimixer_plan.search import trainable
    from unimixer_plan.search.rungs import FixedTrial
    from unimixer_plan.training.trainer import TrainSettings

    from tests.conftest import small_config

    reports = []
    monkeypatch.setattr(trainable.tune, "report", lambda metrics, **kw: reports.append(metrics))
    data = load_data(DataSpec(seed=0, vocab_cap=200, synthetic_val_rows=512), train_rows=2_000)
    model = small_config("rankmixer", **data.schema)
    plan = PlanConfig(budget=Budget(flops=1e6), fidelity=1_000, seed=3, train=TrainSettings(max_epochs=1))
    config = {"rung": 9, "measure_latency": False, "feasible": True}
    if fixed:
        config["trial"] = asdict(FixedTrial(model.to_dict(), rung=2, fidelity=500, seed=7, role="seed"))
    else:
        config |= {"model": model.to_dict(), "fidelity": 1_500, "seed": 3, "role": "search"}
    trainable.run_trial(config, data, plan.to_dict())
    final = reports[-1]
    assert final["status"] == "ok" and final["distinct_samples"] == (500 if fixed else 1_500)
    assert final["history"] and final["history"][0][:2] == [1, 500 if fixed else 1_500]
    record = TrialRecord.from_ray_result(0, trainable.trial_config(config), final, errored=False)
    expected = (2, TrialRole.SEED, 7, 500) if fixed else (9, TrialRole.SEARCH, 3, 1_500)
    assert (record.rung, record.role, record.seed, record.fidelity) == expected


def test_a_gpu_trial_without_cuda_fails_instead_of_training_on_the_cpu(monkeypatch):
    from unimixer_plan.data import DataSpec, load_data
    from unimixer_plan.plan_config import Budget, PlanConfig
    from unimixer_plan.run.trial_record import TrialRecord, TrialStatus
    from unimixer_plan.search import trainable

    from tests.conftest import small_config

    reports = []
    monkeypatch.setattr(trainable.tune, "report", lambda metrics, **kw: reports.append(metrics))
    monkeypatch.setattr(trainable.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(trainable, "evaluate", lambda *a, **k: pytest.fail("a GPU trial trained without CUDA"))
    data = load_data(DataSpec(seed=0, vocab_cap=200, synthetic_val_rows=512), train_rows=1_000)
    model = small_config("rankmixer", **data.schema)
    plan = PlanConfig(budget=Budget(flops=1e6), fidelity=1_000, gpus_per_trial=1)
    config = {"rung": 0, "measure_latency": False, "feasible": True}
    config |= {"model": model.to_dict(), "fidelity": 1_000, "seed": 0, "role": "search"}
    trainable.run_trial(config, data, plan.to_dict())
    record = TrialRecord.from_ray_result(0, trainable.trial_config(config), reports[-1], errored=False)
    assert record.status is TrialStatus.FAILED and "--gpus-per-trial 1: no CUDA device" in record.error


def test_a_trial_request_no_node_can_meet_is_named_with_its_option():
    from unimixer_plan.search.ray_session import unmet_trial_request

    cpu_node = {"Alive": True, "Resources": {"CPU": 2.0}}
    gpu_node = {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}
    dead_gpu_node = {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 4.0}}
    assert unmet_trial_request([cpu_node], cpus=1, gpus=0) is None
    assert unmet_trial_request([cpu_node, gpu_node], cpus=4, gpus=1) is None
    gpu = unmet_trial_request([cpu_node, dead_gpu_node], cpus=1, gpus=1)
    assert gpu.startswith("--gpus-per-trial 1: no node of this Ray can run a trial of 1 CPU and 1 GPU")
    assert "largest with 2 CPU and 0 GPU" in gpu
    cpu = unmet_trial_request([cpu_node, gpu_node], cpus=16, gpus=0)
    assert cpu.startswith("--cpus-per-trial 16: no node")
    # enough CPUs and enough GPUs, but not on one node
    assert unmet_trial_request([cpu_node, {"Alive": True, "Resources": {"CPU": 1.0, "GPU": 1.0}}], 2, 1)


def test_a_trained_architecture_is_reused_through_ray_and_kept_on_the_driver_s_disk(monkeypatch, tmp_path):
    # A trial never touches the run folder (on another node it cannot see it): it shares its result
    # through the cache actor, the driver's recorder keeps it in cache/, and a resumed run's actor,
    # filled from there, serves it to the same architecture without training.
    from unimixer_plan.data import DataSpec, load_data
    from unimixer_plan.plan_config import Budget, PlanConfig
    from unimixer_plan.run.folder import RunFolder
    from unimixer_plan.search import trainable
    from unimixer_plan.search.driver import TrialRecorder
    from unimixer_plan.search.ray_session import start_ray
    from unimixer_plan.search.result_cache import result_cache
    from unimixer_plan.training.trainer import TrainSettings

    from tests.conftest import small_config

    reports = []
    monkeypatch.setattr(trainable.tune, "report", lambda metrics, **kw: reports.append(metrics))
    data = load_data(DataSpec(seed=0, vocab_cap=200, synthetic_val_rows=512), train_rows=1_000)
    plan = PlanConfig(budget=Budget(flops=1e6), fidelity=1_000, train=TrainSettings(max_epochs=1))
    config = {"rung": 0, "measure_latency": False, "feasible": True, "fidelity": 1_000, "seed": 0, "role": "search"}
    config["model"] = small_config("rankmixer", **data.schema).to_dict()
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    runtime = start_ray(None, verbose=False)
    try:
        with result_cache({}) as results:
            trainable.run_trial(config, data, plan.to_dict(), results)
        trained = reports[-1]
        assert trained["status"] == "ok" and trained["cached"] is False
        assert not folder.cache_dir.exists()  # the trial wrote nothing

        recorder = TrialRecorder(folder, on_row=lambda record: None)
        ray_trial = SimpleNamespace(trial_id="t0", config=config, last_result=trained)
        recorder.on_trial_start(0, [], ray_trial)
        recorder.on_trial_complete(0, [], ray_trial)
        assert list(folder.cached_results()) == [trained["result_key"]]
        row = folder.load_trials()[0]  # when it ran, in UTC on the driver's clock
        started, ended = datetime.fromisoformat(row.started), datetime.fromisoformat(row.ended)
        assert started.utcoffset() == ended.utcoffset() == timedelta(0) and started <= ended

        monkeypatch.setattr(trainable, "evaluate", lambda *a, **k: pytest.fail("a cached architecture trained again"))
        with result_cache(folder.cached_results()) as results:
            trainable.run_trial(config, data, plan.to_dict(), results)
        reused = reports[-1]
        assert reused["cached"] is True
        assert {k: reused[k] for k in trainable.CACHED_FIELDS} == {k: trained[k] for k in trainable.CACHED_FIELDS}
        recorder.on_trial_complete(1, [], SimpleNamespace(trial_id="t1", config=config, last_result=reused))
        assert folder.load_trials()[1].val_logloss == trained["val_logloss"]
    finally:
        runtime.shutdown()


def test_a_raised_trial_is_recorded_with_its_exception_not_a_generic_line(tmp_path):
    from unimixer_plan.run.trial_record import ERRORED_TEXT, TrialRecord
    from unimixer_plan.search.driver import raised_error_text

    # the shape of Ray's error.txt for a worker node without this project (as a real cluster wrote it)
    traceback_text = (
        "Failure # 1 (occurred at 2026-12-05_05-54-12)\n"
        "RuntimeError: The actor with name ImplicitFunc failed to import on the worker.\n"
        "Traceback (most recent call last):\n"
        '  File "function_manager.py", line 696, in _load_actor_class_from_gcs\n'
        "    actor_class = pickle.loads(pickled_class)\n"
        "ModuleNotFoundError: No module named 'unimixer_plan'\n\n"
        "An unexpected internal error occurred while the worker was executing a task.\n"
    )
    error_file = tmp_path / "error.txt"
    error_file.write_text(traceback_text)
    raised = raised_error_text(SimpleNamespace(error_file=str(error_file), get_error=lambda: None))
    assert raised == "ModuleNotFoundError: No module named 'unimixer_plan'"
    record = TrialRecord.from_ray_result(0, {"rung": 0}, None, errored=True, raised=raised)
    assert record.status == "failed" and record.error == raised

    def unreadable():
        raise OSError("storage gone")

    assert raised_error_text(SimpleNamespace(error_file=None, get_error=unreadable)) is None
    from_storage = raised_error_text(SimpleNamespace(error_file=None, get_error=lambda: "x\nValueError: bad\n"))
    assert from_storage == "ValueError: bad"
    assert TrialRecord.from_ray_result(0, {"rung": 0}, None, errored=True, raised=None).error == ERRORED_TEXT


def test_a_ladder_rung_models_after_its_warm_start_and_a_direct_search_keeps_optuna_s_random_start():
    from unimixer_plan.search.driver import DIRECT_STARTUP_TRIALS, startup_trials
    from unimixer_plan.search.rungs import Rung

    ladder_rung = Rung(2, 1e5, 1e5, "rung-2", 6, False)
    direct = Rung(0, 1e5, 1e5, "plan", 24, False)
    assert startup_trials(ladder_rung, 3) == 3  # its first 3 trials are the families' carried-over shapes
    assert startup_trials(direct, 3) == DIRECT_STARTUP_TRIALS == 10


def test_a_retried_trial_keeps_the_start_of_its_first_attempt(tmp_path, monkeypatch):
    from unimixer_plan.run.folder import RunFolder
    from unimixer_plan.search import driver

    folder = RunFolder(tmp_path)
    recorder = driver.TrialRecorder(folder, on_row=lambda record: None)
    clock = iter(["2026-12-05T10:00:00.000+00:00", "2026-12-05T10:00:30.000+00:00", "2026-12-05T10:01:00.000+00:00"])
    monkeypatch.setattr(driver, "utc_timestamp", lambda: next(clock))
    trial = SimpleNamespace(trial_id="t0", config={"rung": 0}, last_result={"status": "failed", "epoch": 0})
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_start(0, [], trial)  # its worker died; Tune starts it again
    recorder.on_trial_complete(0, [], trial)
    (row,) = folder.load_trials()
    assert (row.started, row.ended) == ("2026-12-05T10:00:00.000+00:00", "2026-12-05T10:01:00.000+00:00")


def test_a_ladder_rung_s_search_balances_families_waits_for_its_warm_starts_and_halves_within_families(tmp_path):
    from fakes import cached_data
    from unimixer_plan.data import DataSpec
    from unimixer_plan.plan_config import Budget, PlanConfig
    from unimixer_plan.run.folder import RunFolder
    from unimixer_plan.search.driver import _search_config
    from unimixer_plan.search.rungs import Rung
    from unimixer_plan.search_spaces import load_spaces

    data = cached_data(DataSpec(), 1000)
    spaces = {f: s for f, s in load_spaces().items() if f in ("rankmixer", "wukong")}
    plan = PlanConfig(budget=Budget(flops=2.4e7), fidelity=1000)
    folder = RunFolder(tmp_path)
    start = ({"family": "rankmixer"}, {"family": "wukong"})
    for rung, ladder in (
        (Rung(2, 1e5, 1e5, "rung-2", 6, False, warm_start=start), True),
        (Rung(0, 1e5, 1e5, "plan", 6, False), False),
    ):
        _, config = _search_config(plan, folder, data, spaces, rung, 0, {"rung": rung.index})
        search = config.search_alg
        assert config.scheduler.group_by_family is ladder
        assert search.model_after == (2 if ladder else 0)
        assert search.balance_families == (("rankmixer", "wukong") if ladder else ())
