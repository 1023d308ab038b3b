"""A trial whose loss becomes NaN is recorded as FAILED with the reason, and the search
goes on, however many fail in a row (KerasTuner's default stops after three). The NaN is
injected at a trial's first step into a one-layer stand-in model, by learning rate."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import stand_in_model

from keras_resnet import tuning
from keras_resnet.recipe import training
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.tuning import SearchSpace, hypermodel, report

TINY = dict(
    synthetic=True,
    epochs=1,
    batch_size=8,
    train_subset=40,  # 32 to fit in 4 steps, 8 to validate
    test_subset=8,
    verbose=0,
)
RATES = (0.01, 0.1, 1.0, 10.0)  # the grid: 0.01 to 10, a factor 10 apart
HEALTHY = 10.0  # every other rate gets a NaN


class PoisonFirstStep(keras.callbacks.Callback):
    """The learning-rate log, plus the classifier's kernel set to NaN before the first step."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def set_model(self, model):
        super().set_model(model)
        self.schedule.set_model(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.schedule.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.schedule.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            kernel = self.model.get_layer("predictions").kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hypermodel, "build_training_model", stand_in_model)
        schedule = hypermodel.learning_rate_callback

        def poisoned(config):
            if config.learning_rate == pytest.approx(HEALTHY):
                return schedule(config)
            return PoisonFirstStep(schedule(config))

        patch.setattr(hypermodel, "learning_rate_callback", poisoned)
        config = TrainConfig(**TINY)
        split = training.prepare_split(config)
        space = SearchSpace(learning_rate=(RATES[0], RATES[-1]), learning_rate_step=10.0)
        tuner = tuning.make_tuner(
            "grid",
            hypermodel.ResNetHyperModel(config, split, space),
            directory=tmp_path_factory.mktemp("search"),
            project_name="diverging",
            fixed={"step_size": 1},
        )
        tuner.search(split.x_train, split.y_train, validation_data=(split.x_val, split.y_val))
    return tuner, report.summarize(tuner)


def test_diverged_trials_are_failed_with_the_reason_and_the_search_goes_on(search):
    _, rows = search
    by_rate = {round(row["learning_rate"], 6): row for row in rows}
    assert sorted(by_rate) == list(RATES)
    healthy = by_rate.pop(HEALTHY)
    assert healthy["status"] == "COMPLETED"
    assert np.isfinite(healthy["best_val_accuracy"])
    assert "failure" not in healthy
    for rate, row in by_rate.items():
        assert row["status"] == "FAILED"
        assert row["epochs"] == 0  # no epoch of a diverged trial is recorded
        assert row["failure"] == (
            "Training diverged: the training loss became nan at epoch 1, step 1 of 4. Lower "
            f"the learning rate (--lr {rate:g}; try {rate / 10:g} or less)."
        )
    assert rows[0] is healthy  # the one scored trial is the best


def test_the_best_config_is_the_trial_that_did_not_diverge(search):
    tuner, _ = search
    assert tuning.best_config(tuner).learning_rate == pytest.approx(HEALTHY)


def test_the_summary_table_and_csv_carry_the_failure(search, tmp_path):
    _, rows = search
    path = report.write_summary(rows, tmp_path / "summary.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[-1] == "failure"
    assert "Training diverged" in report.format_summary(rows)
