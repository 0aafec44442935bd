"""The quickstart's retraining policy and its deliberately skewed scaler (the loop itself
runs end to end in tests/cli/test_cli.py::test_quickstart_in_a_fresh_folder)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.quickstart import MODEL_NAME, TEST_DATA, TRAIN_DATA
from driftline.quickstart_loop import LOOP_MONITOR, BatchStandardizer, retrain_policy
from driftline.retraining.policy import parse_policy


@pytest.mark.parametrize("scaling", ["fitted", "per_batch"])
def test_the_written_policy_is_a_valid_retrain_yaml(scaling: str) -> None:
    policy = parse_policy(retrain_policy(scaling))
    assert (policy.model, policy.deployment, policy.rollout) == (MODEL_NAME, MODEL_NAME, "canary")
    assert [(t.kind, t.monitor) for t in policy.triggers] == [("drift", LOOP_MONITOR)]
    assert policy.pipeline.name == "quickstart_retraining"
    assert policy.pipeline.module == "driftline.quickstart_loop"
    assert policy.pipeline.params == {
        "train": f"{TRAIN_DATA}@latest",
        "test": f"{TEST_DATA}@latest",
        "scaling": scaling,
    }
    assert (policy.evaluate.data, policy.evaluate.metric) == (f"{TEST_DATA}@latest", "log_loss")
    assert policy.challenger_must_beat is not None
    assert policy.challenger_must_beat.metric == "log_loss"
    # Each alert may start a cycle: the quickstart's three come seconds apart.
    assert policy.cooldown_seconds == 0


def test_per_batch_scaling_works_on_a_batch_and_fails_on_one_row() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(loc=5.0, scale=3.0, size=(200, 3)), columns=["a", "b", "c"])
    scaled = BatchStandardizer().fit_transform(frame)
    assert np.allclose(scaled.mean(axis=0), 0.0)
    assert np.allclose(scaled.std(axis=0, ddof=1), 1.0)
    assert np.isnan(BatchStandardizer().transform(frame.head(1))).all()
    labels = (frame["a"] > 5.0).astype(int)
    model = make_pipeline(BatchStandardizer(), LogisticRegression()).fit(frame, labels)
    assert (model.predict(frame) == labels).mean() > 0.9
    with pytest.raises(ValueError, match="NaN"):
        model.predict(frame.head(1))
