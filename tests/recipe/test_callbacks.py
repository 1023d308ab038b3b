"""The recipe's callbacks: early stopping and a history that survive a kill, the learning rate.

``drive`` plays what ``fit`` does with the callbacks, minus the training, so each check
takes a fraction of a second.
"""

from __future__ import annotations

import csv
import types

import keras
import numpy as np
import pytest

from keras_resnet.recipe import callbacks
from keras_resnet.recipe.callbacks import (
    HistoryWriter,
    LearningRateLogger,
    ResumableEarlyStopping,
    learning_rate_callback,
)
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.run_folder import read_history
from keras_resnet.recipe.schedules import OneCycle


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.stop_training = False
    return model


def epoch_weights(model, epoch):
    """Distinct, recognisable weights for each epoch."""
    return [np.full(w.shape, epoch + 1.0, dtype="float32") for w in model.get_weights()]


# val_accuracy rises to 0.5 at epoch 2, ties it at epoch 4 (not an improvement), and
# never beats it: with patience 3 training stops at the end of epoch 5.
VAL_ACCURACY = [0.1, 0.3, 0.5, 0.4, 0.5, 0.2, 0.6, 0.7]
PATIENCE, BEST_EPOCH, STOP_EPOCH = 3, 2, 5


def drive(stopper, model, history_path, epochs, log=None):
    """What fit does with these callbacks, minus the training: returns the stop epoch."""
    writer = HistoryWriter(history_path)
    writer.set_model(model)
    for epoch in epochs:
        stopper.on_epoch_begin(epoch)
        writer.on_epoch_begin(epoch)
        model.set_weights(epoch_weights(model, epoch))  # "training"
        logs = {"loss": 1.0 / (epoch + 1), "val_accuracy": VAL_ACCURACY[epoch]}
        stopper.on_epoch_end(epoch, logs)
        writer.on_epoch_end(epoch, logs)
        if log is not None:
            log.append(state_of(stopper))
        if model.stop_training:
            return epoch
    return None


def state_of(stopper):
    return {
        "best": stopper.best,
        "best_epoch": stopper.best_epoch,
        "wait": stopper.wait,
        "best_weights": [w.tolist() for w in stopper.best_weights],
    }


def new_stopper(tmp_path):
    return ResumableEarlyStopping(tmp_path / "history.csv", tmp_path / "best.keras", PATIENCE)


def test_early_stopping_restores_and_saves_the_best_epoch(tmp_path, monkeypatch):
    saved_epochs, saved_paths = [], []
    real_save = keras.Model.save

    def save_spy(model, filepath, *args, **kwargs):
        saved_epochs.append(float(model.get_weights()[0].flat[0]) - 1)
        saved_paths.append(filepath)
        real_save(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save_spy)
    model = tiny_model()
    stopper = new_stopper(tmp_path)
    stopper.set_model(model)
    stopper.on_train_begin()
    stopped = drive(stopper, model, tmp_path / "history.csv", range(len(VAL_ACCURACY)))
    assert stopped == STOP_EPOCH
    # best.keras was written at each improvement only, the last time at the best epoch.
    assert saved_epochs == [0, 1, 2]
    # Each save went to a temporary ".keras" file beside best.keras, renamed over it.
    assert all(p.parent == tmp_path and p.name.endswith(".partial.best.keras") for p in saved_paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "history.csv"]
    stopper.on_train_end()
    best = epoch_weights(model, BEST_EPOCH)
    for got, want in zip(model.get_weights(), best, strict=True):
        np.testing.assert_array_equal(got, want)
    saved = keras.saving.load_model(tmp_path / "best.keras", compile=False)
    for got, want in zip(saved.get_weights(), best, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("resume_epoch", [1, 3, 4, 5])
def test_early_stopping_state_survives_a_resume(tmp_path, resume_epoch):
    # The uninterrupted run, recording the stopper's state at the end of each epoch.
    reference = tmp_path / "reference"
    reference.mkdir()
    model = tiny_model()
    stopper = new_stopper(reference)
    stopper.set_model(model)
    stopper.on_train_begin()
    states = []
    stopped = drive(stopper, model, reference / "history.csv", range(8), log=states)
    assert stopped == STOP_EPOCH

    # A run killed after epoch resume_epoch - 1: its history.csv and best.keras.
    killed = tmp_path / "killed"
    killed.mkdir()
    first = new_stopper(killed)
    model = tiny_model()
    first.set_model(model)
    first.on_train_begin()
    drive(first, model, killed / "history.csv", range(resume_epoch))

    # A new process: a NEW stopper and model (weights as BackupAndRestore left them).
    resumed_model = tiny_model()
    resumed_model.set_weights(epoch_weights(resumed_model, resume_epoch - 1))
    resumed = new_stopper(killed)
    resumed.set_model(resumed_model)
    resumed.on_train_begin()
    resumed.on_epoch_begin(resume_epoch)
    # Rebuilt from the folder: as the uninterrupted stopper stood after epoch - 1.
    assert state_of(resumed) == states[resume_epoch - 1]
    # (drive() calls on_epoch_begin(resume_epoch) again: the state is rebuilt only once.)
    stopped_again = drive(resumed, resumed_model, killed / "history.csv", range(resume_epoch, 8))
    assert stopped_again == STOP_EPOCH
    resumed.on_train_end()
    for got, want in zip(
        resumed_model.get_weights(), epoch_weights(resumed_model, BEST_EPOCH), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    rows = read_history(killed / "history.csv")
    assert [row["epoch"] for row in rows] == list(range(STOP_EPOCH + 1))


def test_history_writer_replaces_a_rerun_epoch(tmp_path):
    path = tmp_path / "history.csv"
    writer = HistoryWriter(path)
    for epoch, loss in [(0, 2.0), (1, 1.5), (1, 1.25), (2, 1.0)]:  # epoch 1 is rerun
        writer.on_epoch_begin(epoch)
        writer.on_epoch_end(epoch, {"loss": loss, "val_accuracy": 0.1 * (epoch + 1)})
    rows = read_history(path)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert [row["loss"] for row in rows] == [2.0, 1.25, 1.0]
    with open(path, newline="") as f:
        assert len(list(csv.reader(f))) == 4  # header + 3 rows
    # An epoch rerun from an earlier backup drops the rows after it too.
    writer.on_epoch_end(1, {"loss": 9.0, "val_accuracy": 0.0})
    assert [(r["epoch"], r["loss"]) for r in read_history(path)] == [(0, 2.0), (1, 9.0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]  # no temp file


def test_history_writer_records_each_epochs_wall_time(tmp_path, monkeypatch):
    clock = iter([10.0, 10.0, 12.5, 20.0, 21.0])  # __init__, begin 0, end 0, begin 1, end 1
    monkeypatch.setattr(callbacks, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    writer = HistoryWriter(tmp_path / "history.csv")
    for epoch in (0, 1):
        writer.on_epoch_begin(epoch)
        writer.on_epoch_end(epoch, {"loss": 1.0})
    rows = read_history(tmp_path / "history.csv")
    assert [row["epoch_seconds"] for row in rows] == [2.5, 1.0]


# --------------------------------------------------------------------------- learning rate


def _rate(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_learning_rate_callback_sets_the_step_schedule_and_logs_a_per_step_one():
    config = TrainConfig(schedule="step", learning_rate=0.2, step_size=10, gamma=0.5)
    step = learning_rate_callback(config)
    assert isinstance(step, keras.callbacks.LearningRateScheduler)
    assert [step.schedule(epoch) for epoch in (0, 9, 10, 20)] == pytest.approx(
        [0.2, 0.2, 0.1, 0.05]
    )
    assert isinstance(learning_rate_callback(TrainConfig(schedule="one_cycle")), LearningRateLogger)


def test_learning_rate_logger_logs_the_rate_each_epoch_started_with():
    # OneCycle over 8 steps, 2 steps an epoch: the epochs start at steps 0, 2, 4, 6.
    schedule = OneCycle(1.0, total_steps=8)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    history = model.fit(
        x, y, batch_size=2, epochs=4, shuffle=False, callbacks=[LearningRateLogger()], verbose=0
    )
    expected = [_rate(schedule, step) for step in (0, 2, 4, 6)]
    assert expected == pytest.approx([0.1, 1.0, 2 / 3, 1 / 3], rel=1e-6)
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-6)
