"""What the searcher tells Optuna, checked without Ray: duplicates, stops, failures."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from unimixer_plan.search.optuna_search import MAX_DUPLICATE_DRAWS, PlanSearch, model_key


class OneArchitecture:
    """A define-by-run space whose every proposal resolves to the same architecture."""

    def __call__(self, trial):
        trial.suggest_float("cost_level", 0.1, 1.0)
        trial.set_constraint("flops", -1.0)
        trial.set_constraint("params", -1.0)
        return {"model": {"family": "rankmixer", "d_model": 8}, "feasible": True, "trial_number": trial.number}


def _search(space=None, startup: int = 10, **options) -> PlanSearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return PlanSearch(
        space=space or OneArchitecture(),
        metric=["val_logloss", "flops"],
        mode=["min", "min"],
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=startup),
        latency_budget=None,
        **options,
    )


def _final(config: dict, logloss: float = 0.45, status: str = "ok") -> dict:
    return {"status": status, "val_logloss": logloss, "flops": 1000.0, "model_key": model_key(config)}


def test_a_trained_architecture_is_told_from_memory_not_trained_again():
    search = _search()
    first = search.suggest("a")
    search.on_trial_complete("a", _final(first))
    again = search.suggest("b")  # every proposal is the known architecture: each is answered, then it gives up
    assert again["model"] == first["model"]
    assert search.duplicates == MAX_DUPLICATE_DRAWS
    complete = search._ot_study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 1 + MAX_DUPLICATE_DRAWS
    assert all(t.values == [0.45, 1000.0] for t in complete)


def test_only_a_finished_trial_counts_as_trained():
    search = _search()
    first = search.suggest("a")
    search.on_trial_complete("a", _final(first, status="running"))  # stopped by successive halving
    search.suggest("b")
    assert search.duplicates == 0
    assert [t.state for t in search._ot_study.trials[:1]] == [TrialState.PRUNED]


@pytest.mark.parametrize(
    ("status", "error", "state"),
    [("running", False, TrialState.PRUNED), ("failed", False, TrialState.FAIL), ("ok", True, TrialState.FAIL)],
)
def test_stopped_and_failed_trials_never_reach_optuna_as_complete(status, error, state):
    search = _search()
    config = search.suggest("a")
    search.on_trial_complete("a", _final(config, status=status), error=error)
    assert search._ot_study.trials[0].state == state


def test_repeats_are_asked_again_at_most_once_per_trial_past_the_first_draws():
    # A converged search proposes known architectures forever; re-asking each time made every trial
    # read an ever larger study. Past MAX_DUPLICATE_DRAWS repeats, a trial may add only one more.
    search = _search()
    first = search.suggest("t0")
    search.on_trial_complete("t0", _final(first))
    for k in range(1, 6):
        assert search.suggest(f"t{k}")["model"] == first["model"]  # a repeat, run from the result cache
        search.on_trial_complete(f"t{k}", _final(first))
    # 20 for the first repeat, then about one per trial (uncapped: 20 per trial, 100)
    assert MAX_DUPLICATE_DRAWS <= search.duplicates <= MAX_DUPLICATE_DRAWS + 6
    assert len(search._ot_study.trials) <= 2 * 6 + MAX_DUPLICATE_DRAWS


def test_no_proposal_while_the_live_cluster_is_full_and_more_when_it_grows():
    capacity = {"now": 1}
    search = _search()
    search.capacity = lambda: capacity["now"]
    first = search.suggest("a")
    assert first is not None and search.suggest("b") is None  # one slot, taken: Tune asks again later
    capacity["now"] = 3  # a node joined
    assert search.suggest("b") is not None and search.suggest("c") is not None and search.suggest("d") is None
    search.on_trial_complete("a", _final(first, logloss=0.5))
    assert search.suggest("d") is not None


def test_after_the_warm_starts_the_sampler_waits_for_their_results_instead_of_proposing_blind():
    search = _search(
        startup=2,
        points_to_evaluate=[{"cost_level": 0.5}, {"cost_level": 0.7}],
        capacity=lambda: 8,
        model_after=2,
    )
    first, second = search.suggest("a"), search.suggest("b")  # the warm starts go out at once
    assert first is not None and second is not None
    assert [t.params["cost_level"] for t in search._ot_study.trials] == [0.5, 0.7]
    assert search.suggest("c") is None  # slots free, but TPE would propose at random: wait
    search.on_trial_complete("a", _final(first, logloss=0.5))
    assert search.suggest("c") is None  # one of the two start-up results in
    search.on_trial_complete("b", {"status": "failed"})  # a failed start-up trial reported too: never wait forever
    assert search.suggest("c") is not None and search.suggest("d") is not None  # now they go out together


def test_with_nothing_running_the_sampler_proposes_rather_than_wait():
    search = _search()
    search.model_after = 3
    assert search.suggest("a") is not None  # nothing runs that could report: waiting would stall the search


class TwoFamilies:
    """A define-by-run space over two families, each with its own knob (as CostAwareSpace names them)."""

    def __call__(self, trial):
        family = trial.suggest_categorical("family", ["rankmixer", "wukong"])
        depth = trial.suggest_int(f"{family}/depth", 1, 6)
        trial.set_constraint("flops", -1.0)
        trial.set_constraint("params", -1.0)
        model = {"family": family, "depth": depth, "d_model": 8 * trial.number + 8}  # every trial its own model
        return {"model": model, "feasible": True, "trial_number": trial.number}


def test_on_a_ladder_rung_each_family_gets_an_equal_share_and_tpe_picks_its_knobs():
    search = _search(
        TwoFamilies(),
        startup=2,
        points_to_evaluate=[{"family": "rankmixer", "rankmixer/depth": 3}, {"family": "wukong", "wukong/depth": 3}],
        balance_families=("rankmixer", "wukong"),
    )
    for k in range(10):
        config = search.suggest(f"t{k}")
        # wukong far better: an unbalanced TPE would give it nearly every trial
        loss = 0.45 if config["model"]["family"] == "wukong" else 0.60
        search.on_trial_complete(f"t{k}", {**_final(config, logloss=loss), "flops": 1000.0 + k})
    families = [t.params["family"] for t in search._ot_study.trials]
    assert families.count("rankmixer") == families.count("wukong") == 5
    assert {t.params.get("wukong/depth") for t in search._ot_study.trials if t.params["family"] == "wukong"} != {3}
