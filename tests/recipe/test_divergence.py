"""A non-finite loss stops training within its step: the message names the epoch and the
step, the command exits with status 3, and the run folder keeps its last good epoch and
best model. One run diverges for real (ResNet-20 at a learning rate of 1e20); the others
get a NaN injected at a chosen step into a small stand-in model, so that they check
exactly what is kept."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import stand_in_model
from processes import load_script

from keras_resnet.recipe import run_folder, training
from keras_resnet.recipe.callbacks import StopOnDivergence, TrainingDivergedError
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.run_folder import BACKUP_DIR, BEST_MODEL_FILE, read_history

REPO_ROOT = Path(__file__).resolve().parents[2]
# 40 synthetic images: 32 to fit in 4 steps of 8, 8 to validate; 3 epochs.
FLAGS = [
    "--synthetic",
    "--epochs=3",
    "--step-size=1",
    "--batch-size=8",
    "--train-subset=40",
    "--test-subset=8",
    "--verbose=0",
]
STEPS = 4


class PoisonAt(keras.callbacks.Callback):
    """Sets the classifier's kernel to NaN before step ``step`` (1-based) of ``epoch``."""

    def __init__(self, epoch: int, step: int):
        super().__init__()
        self.epoch, self.step, self._current = epoch, step, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if (self._current, batch + 1) == (self.epoch, self.step):
            kernel = self.model.get_layer("predictions").kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


@pytest.fixture(scope="module")
def cli():
    return load_script(REPO_ROOT / "experiments" / "cifar10.py", "cifar10_cli_divergence")


@pytest.fixture
def poisoned(monkeypatch):
    """Train the stand-in, with a NaN injected at ``poisoned(epoch, step)``."""

    def poison(epoch: int, step: int):
        monkeypatch.setattr(training, "build_training_model", stand_in_model)
        schedule = training.learning_rate_callback
        # The schedule's slot in train()'s callbacks takes the poison along.
        monkeypatch.setattr(
            training,
            "learning_rate_callback",
            lambda config: _Both(schedule(config), PoisonAt(epoch, step)),
        )

    return poison


class _Both(keras.callbacks.Callback):
    """Two callbacks in one slot, called in order."""

    def __init__(self, *callbacks):
        super().__init__()
        self.callbacks = callbacks

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_epoch_begin(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        for callback in self.callbacks:
            callback.on_train_batch_begin(batch, logs)


def _weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def test_a_nan_mid_epoch_stops_at_its_step_and_keeps_the_good_epochs(
    cli, capsys, tmp_path, poisoned
):
    poisoned(epoch=3, step=2)
    flags = [*FLAGS, f"--output-dir={tmp_path}"]
    config, _ = cli.parse_config(flags)
    run_dir = tmp_path / config.resolved_run_name()
    with pytest.raises(SystemExit) as info:
        cli.main(flags)
    assert info.value.code == cli.EXIT_DIVERGED == 3
    lines = capsys.readouterr().err.strip().splitlines()
    rows = read_history(run_dir / "history.csv")
    best_epoch = run_folder.best_row(rows)["epoch"] + 1
    assert lines == [
        "error: Training diverged: the training loss became nan at epoch 3, step 2 of 4. "
        "Lower the learning rate (--lr 0.1; try 0.01 or less). "
        f"{run_dir} keeps the 2 epoch(s) finished before it (history.csv) and the best "
        f"model, of epoch {best_epoch} (best.keras)."
    ]
    # The good epochs' rows, all finite; no test metrics; every weight kept is finite.
    assert [row["epoch"] for row in rows] == [0, 1]
    assert all(math.isfinite(value) for row in rows for value in row.values())
    assert not (run_dir / run_folder.METRICS_FILE).exists()
    best = _weights(run_dir / BEST_MODEL_FILE)
    assert all(np.isfinite(w).all() for w in best)
    backup = stand_in_model(config, None, None, 10)
    backup.load_weights(run_dir / BACKUP_DIR / "latest.weights.h5")
    assert all(np.isfinite(w).all() for w in backup.get_weights())


def test_a_nan_in_the_first_step_leaves_no_model(tmp_path, poisoned):
    poisoned(epoch=1, step=1)
    config = TrainConfig(**_config_values(tmp_path))
    with pytest.raises(TrainingDivergedError) as error:
        training.train(config)
    run_dir = tmp_path / config.resolved_run_name()
    assert str(error.value) == (
        "Training diverged: the training loss became nan at epoch 1, step 1 of 4. Lower the "
        f"learning rate (--lr 0.1; try 0.01 or less). No epoch had finished; {run_dir} holds "
        "no model."
    )
    assert not (run_dir / BEST_MODEL_FILE).exists()
    assert not (run_dir / "history.csv").exists()


def _config_values(tmp_path) -> dict:
    return dict(
        synthetic=True,
        epochs=3,
        step_size=1,
        batch_size=8,
        train_subset=40,
        test_subset=8,
        verbose=0,
        output_dir=str(tmp_path),
    )


def test_a_finite_loss_with_a_nan_validation_loss_stops_at_the_epoch_end():
    callback = StopOnDivergence(learning_rate=0.4)
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(0, {"loss": 2.3})
    with pytest.raises(TrainingDivergedError) as error:
        callback.on_epoch_end(0, {"loss": 2.3, "val_loss": float("inf")})
    assert str(error.value) == (
        "Training diverged: the validation loss became inf at the end of epoch 1. Lower the "
        "learning rate (--lr 0.4; try 0.04 or less)."
    )


def test_resnet20_at_an_absurd_learning_rate_diverges_for_real(tmp_path):
    # Keras's cross-entropy clips the probabilities, so a rate of 500 only saturates the
    # loss in these few steps on synthetic data (on JAX even 1e5 does); 1e20 overflows.
    config = TrainConfig(
        model="resnet20", **{**_config_values(tmp_path), "epochs": 2}, learning_rate=1e20
    )
    # Where it diverges is the backend's rounding; it is caught in a step, or at the epoch's
    # end where the last step's update made the validation loss NaN.
    where = (
        r"(the training loss became (nan|inf) at epoch \d, step \d of 4|"
        r"the validation loss became (nan|inf) at the end of epoch \d)"
    )
    with pytest.raises(
        TrainingDivergedError,
        match=rf"^Training diverged: {where}\. Lower the learning rate "
        r"\(--lr 1e\+20; try 1e\+19 or less\)\.",
    ) as error:
        training.train(config)
    run_dir = tmp_path / config.resolved_run_name()
    assert not (run_dir / run_folder.METRICS_FILE).exists()
    rows = read_history(run_dir / "history.csv", missing_ok=True)
    assert all(math.isfinite(row["loss"]) for row in rows), (rows, str(error.value))
