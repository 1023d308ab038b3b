"""The recipe's callbacks: the learning rate per epoch, a history and early stopping that
survive a kill (the run folder, not the process's memory, holds their state), and the
divergence check that stops training at the first non-finite loss, and the optional
TensorBoard logs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras

from keras_resnet import atomic
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.run_folder import MONITOR, best_row, read_history, write_history
from keras_resnet.recipe.schedules import step_decay


def learning_rate_callback(config: TrainConfig) -> keras.callbacks.Callback:
    """The recipe's schedule at each epoch: StepLR from ``config.learning_rate`` sets it;
    a per-step schedule ("multistep", "one_cycle": set by the optimizer) is only logged.

    Either way the epoch's logs get ``learning_rate`` (the rate the epoch started with).

    Example:
        >>> callback = learning_rate_callback(TrainConfig(step_size=10))
    """
    if config.schedule == "step":
        return keras.callbacks.LearningRateScheduler(
            step_decay(config.learning_rate, config.step_size, config.gamma)
        )
    return LearningRateLogger()


class StopAtStep(keras.callbacks.Callback):
    """Stops training after ``max_steps`` training steps in all, mid-epoch if need be.

    Steps are counted from the epoch (``epoch * steps per epoch``), so a resumed run stops
    where the uninterrupted one would.

    Example:
        >>> model.fit(x, y, epochs=182, callbacks=[StopAtStep(64000)])  # doctest: +SKIP
    """

    def __init__(self, max_steps: int):
        super().__init__()
        self.max_steps = max_steps
        self._step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._step = epoch * self.params["steps"]

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step >= self.max_steps:
            self.model.stop_training = True


def ema_callbacks(config: TrainConfig) -> tuple[list, list]:
    """With ``config.ema``: callbacks that evaluate and keep the weights' moving average.

    Validation runs on the optimizer's moving average (``keras.callbacks.SwapEMAWeights``);
    the first list also puts the average in the model at each epoch's end, for the
    callbacks placed between the two lists (the best model saved is the average), and the
    second puts the training weights back, for the callbacks after it (a backup holds the
    training weights and the average, so that a resumed run trains on as before).
    Without ``config.ema`` both lists are empty.

    Example:
        >>> ema_callbacks(TrainConfig())
        ([], [])
    """
    if not config.ema:
        return [], []
    swap = keras.callbacks.SwapEMAWeights()
    # SwapEMAWeights' test hooks swap only when the other weights are in the model.
    average_in = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: swap.on_test_begin())
    training_back = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: swap.on_test_end())
    return [swap, average_in], [training_back]


class TrainingDivergedError(RuntimeError):
    """Training stopped at a non-finite loss (``StopOnDivergence``)."""


class StopOnDivergence(keras.callbacks.Callback):
    """Raise ``TrainingDivergedError`` at the first step whose loss is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN``, which lets the epoch end (its validation,
    checkpoints and history row then see the NaN weights), the error leaves ``fit`` from
    the step itself: no callback's ``on_epoch_end`` runs, so the files they write keep the
    last good epoch. A finite training loss with a non-finite validation loss is caught at
    the epoch's end, before the callbacks after this one. Put it first in the list.

    The message names the epoch and step (1-based) and suggests a rate ten times lower
    than ``learning_rate`` (the ``--lr`` given), else than the optimizer's rate at the time;
    ``note()``, if given, adds a sentence (``train`` says what the run folder keeps).

    Example:
        >>> model.fit(x, y, callbacks=[StopOnDivergence(0.1), ...])  # doctest: +SKIP
    """

    def __init__(self, learning_rate: float | None = None, note: Callable[[], str] | None = None):
        super().__init__()
        self.learning_rate = learning_rate
        self.note = note
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            steps = self.params.get("steps")
            where = f"step {batch + 1}" + (f" of {steps}" if steps else "")
            self._raise(
                f"the training loss became {float(loss)} at epoch {self._epoch + 1}, {where}"
            )

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._raise(f"the validation loss became {float(loss)} at the end of epoch {epoch + 1}")

    def _raise(self, what: str):
        rate = self.learning_rate
        if rate is None:
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        message = (
            f"Training diverged: {what}. Lower the learning rate (--lr {rate:g}; try "
            f"{rate / 10:g} or less)."
        )
        if self.note is not None:
            message += f" {self.note()}"
        raise TrainingDivergedError(message)


def tensorboard_callback(log_dir: str | Path) -> keras.callbacks.TensorBoard:
    """TensorBoard logs in ``log_dir``: each epoch's scalars, the learning rate among them
    (Keras's callback logs the optimizer's), without histograms, graph or per-step rows.

    Open them with ``tensorboard --logdir RUN_DIR/tensorboard``.

    Example:
        >>> callback = tensorboard_callback("runs/x/tensorboard")
        >>> callback.histogram_freq
        0
    """
    return keras.callbacks.TensorBoard(
        log_dir=str(log_dir), histogram_freq=0, write_graph=False, update_freq="epoch"
    )


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate each epoch started with to its logs (``learning_rate``).

    Example:
        >>> model.fit(x, y, callbacks=[LearningRateLogger()])  # doctest: +SKIP
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._rate


class HistoryWriter(keras.callbacks.Callback):
    """Keeps ``history.csv`` at one row per finished epoch, rewritten atomically.

    Unlike ``CSVLogger(append=True)``, a row left by an epoch that is rerun after a
    resume is replaced rather than duplicated, and a kill never leaves half a line.
    Each row also records the epoch's wall time (``epoch_seconds``), so resumed runs
    still add up to their total training time.

    Example:
        >>> model.fit(x, y, callbacks=[HistoryWriter(Path("runs/x/history.csv"))])  # doctest: +SKIP
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in read_history(self.path, missing_ok=True) if row["epoch"] < epoch]
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        row["epoch_seconds"] = time.perf_counter() - self._epoch_start
        write_history(self.path, [*rows, row])


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on validation accuracy that keeps the best epoch's model on disk.

    Each time validation accuracy improves, the model is saved atomically to
    ``best_model_path``. Keras resets EarlyStopping's state at every ``fit``; after a
    resume this callback rebuilds it (best value and epoch, epochs waited, best weights)
    from ``history.csv`` and the saved best model, so a kill changes neither when
    training stops nor which weights it restores. ``save=False`` saves to a temporary file
    that is deleted (the processes of a multi-process run besides process 0: see
    ``atomic.discarded_write``).

    Example:
        >>> stopper = ResumableEarlyStopping(Path("h.csv"), Path("best.keras"), patience=40)
    """

    def __init__(
        self,
        history_path: Path,
        best_model_path: Path,
        patience: int,
        verbose=0,
        save: bool = True,
    ):
        super().__init__(
            monitor=MONITOR,
            mode="max",
            patience=patience,
            restore_best_weights=True,
            verbose=verbose,
        )
        self.history_path = Path(history_path)
        self.best_model_path = Path(best_model_path)
        self.writes = save
        self._state_restored = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._state_restored = False

    def on_epoch_begin(self, epoch, logs=None):
        # The first epoch of this fit() is where a resumed run restarts.
        if self._state_restored:
            return
        self._state_restored = True
        earlier = [
            row
            for row in read_history(self.history_path, missing_ok=True)
            if row["epoch"] < epoch and not math.isnan(row.get(MONITOR, math.nan))
        ]
        if not earlier or not self.best_model_path.exists():
            return
        best = best_row(earlier)
        self.best = best[MONITOR]
        self.best_epoch = best["epoch"]
        self.wait = epoch - 1 - self.best_epoch
        saved = keras.saving.load_model(self.best_model_path, compile=False)
        self.best_weights = saved.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best_weights is not None:
            if self.writes:
                atomic.write_atomic(self.best_model_path, self.model.save)
            else:
                atomic.discarded_write(self.best_model_path, self.model.save)
