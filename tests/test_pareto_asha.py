from __future__ import annotations

from unimixer_plan.search.pareto_asha import DominationRungs


def test_cheap_but_worse_trials_survive_and_dominated_ones_stop():
    rungs = DominationRungs(milestones=(100, 300), eta=3)
    assert rungs.decide("a", 100, (0.50, 1e6))  # first at the rung: nothing dominates it
    assert rungs.decide("b", 100, (0.55, 1e4))  # worse logloss, far cheaper: on the front, continues
    assert rungs.decide("c", 100, (0.52, 1e5))  # between them: still non-dominated
    assert not rungs.decide("d", 100, (0.60, 2e6))  # dominated by a, b and c (3 >= ceil(4/3) = 2)
    assert rungs.decide("e", 100, (0.51, 9e5))  # dominated by nobody
    # plain ASHA on logloss alone would have stopped b (the worst logloss among a, b, c)


def test_each_rung_is_judged_once_and_below_the_first_rung_nothing_happens():
    rungs = DominationRungs(milestones=(100, 300), eta=3)
    assert rungs.decide("a", 50, (0.9, 1.0))
    assert rungs.recorded == {}
    assert rungs.decide("a", 120, (0.4, 1.0))
    assert rungs.decide("a", 150, (0.9, 9.0))  # same rung again: not re-judged
    assert len(rungs.recorded[100]) == 1
    assert rungs.decide("b", 310, (0.3, 0.5))  # jumps past both rungs: judged at each
    assert len(rungs.recorded[100]) == 2 and len(rungs.recorded[300]) == 1


def test_nan_objectives_stop_the_trial():
    rungs = DominationRungs(milestones=(10,))
    assert not rungs.decide("a", 10, (float("nan"), 1.0))
