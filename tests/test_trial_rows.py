"""A trial receives only the rows it needs, chosen once on the driver and recorded in the run folder."""

from __future__ import annotations

import json
import pickle

import pytest
from fakes import cached_data
from unimixer_plan.data import DataSpec
from unimixer_plan.errors import PlanError
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.search.rungs import FixedTrial, Rung, trial_rows

SMALL = DataSpec()  # the synthetic default


def test_trials_receive_a_prefix_of_the_training_rows_and_no_test_split():
    data = cached_data(SMALL, 4000)
    sent = data.for_trials(1000)
    assert len(sent.train) == 1000 and len(sent.test) == 0 and len(sent.val) == len(data.val)
    assert (sent.train.sparse == data.train.sparse[:1000]).all() and (
        sent.train.labels == data.train.labels[:1000]
    ).all()
    whole, part = len(pickle.dumps(data, protocol=5)), len(pickle.dumps(sent, protocol=5))
    rows_bytes = data.train.dense[:1].nbytes + data.train.sparse[:1].nbytes + 4
    # what travels is the prefix and the validation rows, not the 3,000 other training rows or the test split
    assert whole - part >= 3000 * rows_bytes + len(data.test) * rows_bytes * 0.99


def test_a_rung_needs_its_own_rows_and_measurements_the_largest_of_theirs():
    assert trial_rows(Rung(2, 1e5, 1e5, "rung-2", 6, False, samples=2000), fidelity=1000) == 2000
    assert trial_rows(Rung(0, 1e5, 1e5, "plan", 6, False), fidelity=1000) == 1000
    fixed = tuple(FixedTrial({"family": "wukong"}, r, n, 0, "data") for r, n in ((1, 250), (3, 1000), (2, 500)))
    assert trial_rows(Rung(4, None, 0, "measurements", 3, False, fixed=fixed), fidelity=1000) == 1000


def test_the_rows_are_recorded_and_a_resume_on_other_rows_is_refused(tmp_path):
    data = cached_data(SMALL, 4000)
    folder = RunFolder(tmp_path)
    folder.record_trial_rows("rung-1", data.trial_rows_record(1000))
    folder.record_trial_rows("rung-1", data.trial_rows_record(1000))  # the same rows again: a resume
    folder.record_trial_rows("measurements", data.trial_rows_record(2000))
    folder.record_trial_rows("measurements", data.trial_rows_record(1000))  # fewer measurements left: fine
    recorded = json.loads(folder.trial_rows_file.read_text())
    assert recorded["rung-1"]["train_rows"] == [0, 1000] and recorded["rung-1"]["val_rows"] == len(data.val)
    assert len(recorded["rung-1"]["train_fingerprint"]) == 16
    other = cached_data(DataSpec(seed=1), 4000)  # other contents, the same number of rows
    with pytest.raises(PlanError, match=r"the rows of study 'rung-1' differ from those recorded in trial_rows.json"):
        folder.record_trial_rows("rung-1", other.trial_rows_record(1000))
