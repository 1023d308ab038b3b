"""The recipe's callbacks: the learning rate per epoch, a history and early stopping that
survive a kill (the run folder, not the process's memory, holds their state), and the
optional TensorBoard logs."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras

from keras_resnet import atomic
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.run_folder import MONITOR, best_row, read_history, write_history
from keras_resnet.recipe.schedules import step_decay


def learning_rate_callback(config: TrainConfig) -> keras.callbacks.Callback:
    """The recipe's schedule at each epoch: StepLR from ``config.learning_rate`` sets it;
    a per-step schedule ("one_cycle", set by the optimizer) is only logged.

    Either way the epoch's logs get ``learning_rate`` (the rate the epoch started with).

    Example:
        >>> callback = learning_rate_callback(TrainConfig(step_size=10))
    """
    if config.schedule == "step":
        return keras.callbacks.LearningRateScheduler(
            step_decay(config.learning_rate, config.step_size, config.gamma)
        )
    return LearningRateLogger()


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
    training stops nor which weights it restores.

    Example:
        >>> stopper = ResumableEarlyStopping(Path("h.csv"), Path("best.keras"), patience=40)
    """

    def __init__(self, history_path: Path, best_model_path: Path, patience: int, verbose=0):
        super().__init__(
            monitor=MONITOR,
            mode="max",
            patience=patience,
            restore_best_weights=True,
            verbose=verbose,
        )
        self.history_path = Path(history_path)
        self.best_model_path = Path(best_model_path)
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
            atomic.write_atomic(self.best_model_path, self.model.save)
