"""Where each ladder rung's joint search starts: every family's best shape from the rung below."""

from __future__ import annotations

from unimixer_plan.run.trial_record import TrialRecord, TrialRole, TrialStatus
from unimixer_plan.search.warm_start import middle_knobs, recorded_proposals, warm_start_points
from unimixer_plan.search_spaces import IntRange, load_spaces

SPACES = {f: s for f, s in load_spaces().items() if f in ("unimixing_lite", "wukong")}


def row(trial_id: int, rung: int, family: str, loss: float, **knobs) -> TrialRecord:
    status = knobs.pop("status", TrialStatus.OK)
    role = knobs.pop("role", TrialRole.SEARCH)
    shape = {"n_tokens": 8, "depth": 2, "ffn_ratio": 2, "embed_dim": 16, "rank": 4} | knobs
    if family == "unimixing_lite":
        shape = {"heads": 2, "bases": 2} | shape
    return TrialRecord(
        trial_id=trial_id, rung=rung, role=role, family=family, d_model=32, status=status, val_logloss=loss,
        flops=1000 * trial_id + 1, **shape,
    )  # fmt: skip


def test_the_first_rung_starts_every_family_at_the_middle_of_its_space_at_the_top_of_the_budget():
    points = warm_start_points([], 1, SPACES)
    assert [p["family"] for p in points] == ["unimixing_lite", "wukong"]
    lite = points[0]
    assert lite["cost_level"] == 1.0
    # lists: the middle element; a log range: the geometric midpoint; a linear range: the midpoint
    assert lite["unimixing_lite/n_tokens"] == 16 and lite["unimixing_lite/heads"] == 4
    assert lite["unimixing_lite/rank"] == 8 and lite["unimixing_lite/depth"] == 4  # sqrt(1*64); (1+6)/2 rounded
    assert set(lite) == {"family", "cost_level"} | {f"unimixing_lite/{k}" for k in SPACES["unimixing_lite"].knobs}
    assert middle_knobs(SPACES["wukong"])["rank"] == round((2 * 64) ** 0.5)


def test_a_rung_starts_from_each_family_s_best_complete_search_trial_of_the_nearest_lower_rung():
    rows = [
        row(0, 1, "unimixing_lite", 0.55, n_tokens=4, depth=1),
        row(1, 2, "unimixing_lite", 0.53, n_tokens=16, depth=3),  # the nearest lower rung's best
        row(2, 2, "unimixing_lite", 0.54, n_tokens=32, depth=5),
        row(3, 2, "unimixing_lite", 0.50, n_tokens=8, depth=6, status=TrialStatus.STOPPED),  # not complete
        row(4, 2, "unimixing_lite", 0.49, n_tokens=8, depth=6, role=TrialRole.SEED),  # not a search trial
        row(5, 1, "wukong", 0.56, n_tokens=32, rank=16),  # wukong's nearest rung with a trial is 1
    ]
    lite, wukong = warm_start_points(rows, 3, SPACES)
    assert (lite["unimixing_lite/n_tokens"], lite["unimixing_lite/depth"]) == (16, 3)
    assert (wukong["wukong/n_tokens"], wukong["wukong/rank"]) == (32, 16)
    assert lite["cost_level"] == wukong["cost_level"] == 1.0


def test_on_resume_a_family_already_searched_on_the_rung_gets_no_start_point():
    rows = [row(0, 1, "unimixing_lite", 0.55), row(1, 2, "wukong", 0.60, status=TrialStatus.FAILED)]
    assert [p["family"] for p in warm_start_points(rows, 2, SPACES)] == ["unimixing_lite"]


def test_a_recorded_knob_outside_today_s_space_falls_back_to_the_middle():
    spaces = {"wukong": SPACES["wukong"]}
    (point,) = warm_start_points([row(0, 1, "wukong", 0.5, rank=999)], 2, spaces)
    rank = SPACES["wukong"].knobs["rank"]
    assert isinstance(rank, IntRange) and point["wukong/rank"] == middle_knobs(SPACES["wukong"])["rank"]


def test_a_shape_is_carried_as_proposed_not_as_a_low_budget_shrank_it(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="rung-1", storage=url, directions=["minimize", "minimize"])
    proposed = {"family": "wukong", "wukong/n_tokens": 16, "wukong/depth": 4, "wukong/rank": 8, "cost_level": 1.0}
    study.enqueue_trial(proposed)
    trial = study.ask()
    for name, value in proposed.items():
        trial.suggest_categorical(name, [value])
    study.tell(trial, [0.55, 1e4])
    # rung 1's budget shrank it to the smallest knobs before it trained
    shrunk = row(0, 1, "wukong", 0.55, n_tokens=4, depth=1, rank=2)
    shrunk = TrialRecord(**{**shrunk.__dict__, "optuna_trial": trial.number})
    proposals = recorded_proposals(url, {1: "rung-1", 2: "rung-2"})  # rung 2's study does not exist yet
    assert proposals == {(1, 0): proposed}
    (point,) = warm_start_points([shrunk], 2, {"wukong": SPACES["wukong"]}, proposals)
    assert (point["wukong/n_tokens"], point["wukong/depth"], point["wukong/rank"]) == (16, 4, 8)
    assert point["wukong/ffn_ratio"] == shrunk.ffn_ratio  # not among the proposed parameters: as it trained
    (without,) = warm_start_points([shrunk], 2, {"wukong": SPACES["wukong"]})  # no study: as it trained
    assert (without["wukong/n_tokens"], without["wukong/depth"]) == (4, 1)
