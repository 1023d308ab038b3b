"""The CIFAR-10 recipe as a standard ``model.fit``: ``train(config) -> TrainResult``.

A run folder holds everything a run leaves behind, each file written atomically:

    config.json               the resolved config: backend, versions, seed, data source
    history.csv               one row per finished epoch, rewritten whole each epoch
    best.keras                the best epoch's model (raw 0-255 images in, probabilities out)
    test_metrics.json         test accuracy and loss, confusion matrix (written last)
    training_curves.png, confusion_matrix.png
    backup/                   BackupAndRestore's state while the run is unfinished

Running the same config again resumes an unfinished run from its last finished epoch
and returns the stored result of a finished one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_resnet import augment, data, plots
from keras_resnet.config import PRECISIONS, TrainConfig
from keras_resnet.models import get_model
from keras_resnet.optimizers import TorchSGD
from keras_resnet.schedules import OneCycle, step_decay

MONITOR = "val_accuracy"
CONFIG_FILE = "config.json"
BEST_MODEL_FILE = "best.keras"
BACKUP_DIR = "backup"


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (another config, nothing to resume)."""


class UnsupportedSetupError(ValueError):
    """A valid config that this backend or machine cannot run (``distribute`` on torch)."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished run reports; the same values are in its ``test_metrics.json``.

    Example:
        >>> result = train(TrainConfig(synthetic=True, model="resnet20", epochs=1))
        >>> 0.0 <= result.test_accuracy <= 1.0
        True
    """

    run_dir: Path
    test_accuracy: float
    test_loss: float
    best_epoch: int  # 1-based
    best_val_accuracy: float
    epochs_completed: int
    train_seconds: float


def default_jit_compile(backend: str) -> bool:
    """Whether ``model.compile`` gets ``jit_compile=True`` on this backend.

    Measured on a 2-core CPU (README, "Speed"): TensorFlow trains ResNet-18 at 1.09x a plain
    PyTorch model without XLA and 0.66x with it; ``torch.compile`` gave nothing over torch
    eager (0.74x against 0.76x) after minutes of compiling; JAX needs jit to be usable.

    Example:
        >>> default_jit_compile("tensorflow")
        False
    """
    return backend == "jax"


def enable_determinism() -> None:
    """Ask the current backend for deterministic kernels (slower; same results per seed).

    Example:
        >>> enable_determinism()
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    elif backend == "jax":
        # XLA on CPU is deterministic; on GPU this flag must be set before JAX starts.
        flag = "--xla_gpu_deterministic_ops=true"
        if flag not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def build_training_model(
    config: TrainConfig, mean, std, num_classes: int, image_size: int = 32
) -> keras.Model:
    """Raw 0-255 images -> augmentation (training only) -> normalization -> the ResNet.

    Example:
        >>> model = build_training_model(TrainConfig(model="resnet20"), (120,) * 3, (60,) * 3, 10)
        >>> model.output.shape
        (None, 10)
    """
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, image_size, image_size) if channels_first else (image_size, image_size, 3)
    inputs = keras.Input(shape, name="images")
    x = augment.preprocessing(inputs, mean, std, seed=config.seed)
    backbone = get_model(
        config.model, num_classes=num_classes, input_shape=shape, shortcut=config.shortcut
    )
    return keras.Model(inputs, backbone(x), name=f"cifar10_{config.model}")


def compile_model(
    model: keras.Model, config: TrainConfig, steps_per_epoch: int | None = None
) -> None:
    """SGD with momentum and PyTorch-style weight decay, cross-entropy, accuracy.

    With ``schedule="one_cycle"`` the optimizer's learning rate is a per-step ``OneCycle``
    over ``config.epochs * steps_per_epoch`` steps; with "step" it is set each epoch by
    ``learning_rate_callback``. ``label_smoothing`` > 0 uses ``SparseSmoothedCrossentropy``.

    A model built under fp16 (``mixed_float16``) gets dynamic loss scaling: Keras's
    ``compile`` wraps the optimizer in a ``keras.optimizers.LossScaleOptimizer`` when the
    model's dtype policy is ``mixed_float16`` (``auto_scale_loss=True``, its default).
    bf16 has float32's exponent range and needs none.

    Example:
        >>> compile_model(model, TrainConfig())
    """
    learning_rate = config.learning_rate
    if config.schedule == "one_cycle":
        if not steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(
                "`schedule='one_cycle'` sets the learning rate per step and needs the number "
                "of steps: pass steps_per_epoch (ceil(training images / batch size)). "
                f"Received: steps_per_epoch={steps_per_epoch!r}"
            )
        learning_rate = OneCycle(config.learning_rate, config.epochs * steps_per_epoch)
    jit = config.jit_compile
    if jit is None:
        jit = default_jit_compile(keras.backend.backend())
    loss = "sparse_categorical_crossentropy"
    if config.label_smoothing:
        loss = SparseSmoothedCrossentropy(config.label_smoothing)
    model.compile(
        optimizer=TorchSGD(
            learning_rate=learning_rate,
            momentum=config.momentum,
            nesterov=config.nesterov,
            l2=config.weight_decay,
        ),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=jit,
    )


@keras.saving.register_keras_serializable(package="keras_resnet")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards the uniform distribution.

    Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing`` (3.15), so the
    labels are one-hot encoded and passed to ``categorical_crossentropy``, which has.

    Example:
        >>> loss = SparseSmoothedCrossentropy(0.1)
        >>> float(loss(np.array([0]), np.array([[0.9, 0.1]])))
        0.2...
    """

    def __init__(self, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        num_classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


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


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate each epoch started with to its logs (``learning_rate``).

    Example:
        >>> model.fit(x, y, callbacks=[LearningRateLogger()])
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self._rate


# --- files written atomically ----------------------------------------------------------


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place.

    Example:
        >>> write_json_atomic(Path("runs/x/test_metrics.json"), {"test_accuracy": 0.9})
    """
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename it.

    Example:
        >>> save_model_atomic(model, Path("runs/x/best.keras"))
    """
    tmp = path.with_name(f".{path.stem}.partial.keras")
    model.save(tmp)
    os.replace(tmp, path)


def read_history_rows(path: Path) -> list[dict]:
    """The rows of a ``history.csv``, values as floats and ``epoch`` as int; [] if absent.

    Example:
        >>> read_history_rows(Path("runs/x/history.csv"))[0]["epoch"]
        0
    """
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    # A blank cell (a column that appeared in a later epoch) reads as NaN.
    return [
        {
            key: int(value) if key == "epoch" else float(value) if value else math.nan
            for key, value in row.items()
        }
        for row in rows
    ]


# --- callbacks that survive a kill -------------------------------------------------------


class HistoryWriter(keras.callbacks.Callback):
    """Keeps ``history.csv`` at one row per finished epoch, rewritten atomically.

    Unlike ``CSVLogger(append=True)``, a row left by an epoch that is rerun after a
    resume is replaced rather than duplicated, and a kill never leaves half a line.
    Each row also records the epoch's wall time (``epoch_seconds``), so resumed runs
    still add up to their total training time.

    Example:
        >>> model.fit(x, y, callbacks=[HistoryWriter(Path("runs/x/history.csv"))])
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        rows = [row for row in read_history_rows(self.path) if row["epoch"] < epoch]
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        row["epoch_seconds"] = time.perf_counter() - self._epoch_start
        rows.append(row)
        keys = sorted({key for row in rows for key in row} - {"epoch"})
        tmp = self.path.with_name(f".{self.path.name}.partial")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", *keys], restval="")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


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
            for row in read_history_rows(self.history_path)
            if row["epoch"] < epoch and not math.isnan(row.get(MONITOR, math.nan))
        ]
        if not earlier or not self.best_model_path.exists():
            return
        best_row = _best_row(earlier)
        self.best = best_row[MONITOR]
        self.best_epoch = best_row["epoch"]
        self.wait = epoch - 1 - self.best_epoch
        saved = keras.saving.load_model(self.best_model_path, compile=False)
        self.best_weights = saved.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best_weights is not None:
            save_model_atomic(self.model, self.best_model_path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose weights and metadata files are replaced atomically.

    Keras writes them in place, so a SIGKILL during the write can leave a truncated
    metadata file that the next start cannot parse. Here each file is written beside
    its target and renamed over it.

    Example:
        >>> backup = AtomicBackupAndRestore("runs/x/backup")
    """

    def __init__(self, backup_dir):
        super().__init__(
            backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
        )

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        if os.path.exists(self._weights_path):
            shutil.copyfile(self._weights_path, self._prev_weights_path)
        if os.path.exists(self._training_metadata_path):
            shutil.copyfile(self._training_metadata_path, self._prev_training_metadata_path)
        tmp_weights = os.path.join(self.backup_dir, ".latest.partial.weights.h5")
        self.model.save_weights(tmp_weights, overwrite=True)
        os.replace(tmp_weights, self._weights_path)
        write_json_atomic(
            Path(self._training_metadata_path),
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


# --- the run folder ----------------------------------------------------------------------


def _environment(source: str) -> dict:
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    for module in ("numpy", "tensorflow", "jax", "torch"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "unknown")
    return {
        "backend": keras.backend.backend(),
        "image_data_format": keras.config.image_data_format(),
        "versions": versions,
        "data_source": source,
        "platform": platform.platform(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def prepare_run_dir(config: TrainConfig, *, resume: bool = False, overwrite: bool = False):
    """The run folder for ``config``, and whether it already holds a finished run.

    Example:
        >>> run_dir, finished = prepare_run_dir(TrainConfig(synthetic=True))
    """
    run_dir = Path(config.output_dir) / config.resolved_run_name()
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    config_path = run_dir / CONFIG_FILE
    if resume and not config_path.exists():
        raise RunFolderError(
            f"Nothing to resume: {run_dir} holds no run. Start it without --resume."
        )
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if stored.get("fingerprint") != config.fingerprint():
            raise RunFolderError(
                f"{run_dir} holds a run with another config (fingerprint "
                f"{stored.get('fingerprint')} != {config.fingerprint()}). Use another "
                "--run-name, or --overwrite to discard it."
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, (run_dir / plots.METRICS_FILE).exists()


def _best_row(rows: list[dict]) -> dict:
    """The first epoch with the highest validation accuracy (EarlyStopping's choice)."""
    return max(rows, key=lambda row: -math.inf if math.isnan(row[MONITOR]) else row[MONITOR])


def training_complete(rows: list[dict], config: TrainConfig) -> bool:
    """Whether ``history.csv`` rows already reach the last epoch or the stopping point.

    EarlyStopping stops at epoch ``e`` when ``e - best_epoch >= patience``.

    Example:
        >>> training_complete([], TrainConfig())
        False
    """
    if not rows:
        return False
    last_epoch = rows[-1]["epoch"]
    if last_epoch + 1 >= config.epochs:
        return True
    return last_epoch - _best_row(rows)["epoch"] >= config.resolved_patience


def _stored_result(run_dir: Path) -> TrainResult:
    metrics = json.loads((run_dir / plots.METRICS_FILE).read_text())
    return TrainResult(
        run_dir=run_dir,
        **{field.name: metrics[field.name] for field in dataclasses.fields(TrainResult)[1:]},
    )


def evaluate_test_set(
    model, x_test, y_test, batch_size: int, replicas: int = 1, flip: bool = False
) -> dict:
    """Test loss, accuracy and confusion matrix (rows true, columns predicted) in one pass.

    With ``flip`` the predicted distribution of each image is averaged with that of its
    horizontal mirror image (test-time augmentation; a second pass), and the accuracy of
    the first pass alone is kept as ``single_view_test_accuracy``.

    With ``replicas`` > 1 every predicted batch is a multiple of it (data-parallel JAX
    shards each batch): the batch size is rounded up and the test set padded, and the
    padding's predictions are dropped, so every test image counts once.

    Example:
        >>> evaluate_test_set(model, x_test, y_test, 256)["test_accuracy"]
        0.93
    """
    batch_size = -(-batch_size // replicas) * replicas
    padding = np.zeros((-len(x_test) % replicas, *x_test.shape[1:]), x_test.dtype)

    def predict(images):
        return model.predict(
            np.concatenate([images, padding]) if len(padding) else images,
            batch_size=batch_size,
            verbose=0,
        )[: len(images)].astype("float64")

    probabilities = predict(x_test)
    single_view = {}
    if flip:
        single_view["single_view_test_accuracy"] = _accuracy(probabilities, y_test)
        width_axis = 3 if keras.config.image_data_format() == "channels_first" else 2
        probabilities = (probabilities + predict(np.flip(x_test, axis=width_axis))) / 2
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(y_test)), y_test]
    num_classes = probabilities.shape[1]
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    return {
        "test_accuracy": _accuracy(probabilities, y_test),
        "test_loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "confusion_matrix": confusion.tolist(),
        **single_view,
    }


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def distribution_scope(config: TrainConfig):
    """The context a run trains in, yielding its number of data-parallel replicas.

    Without ``config.distribute`` it does nothing and yields 1. With it, every local
    accelerator (or every CPU device where there is none) holds a copy of the model and
    trains on an equal share of each batch:

    - JAX: ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``
      is the global distribution inside the context, so variables created there are
      replicated and each batch is sharded. Build the model inside it.
    - TensorFlow: a ``tf.distribute.MirroredStrategy`` scope over the local devices.
      XLA does not run with its per-replica variables, so ``jit_compile=True`` is refused
      (the default on TensorFlow is off). Each replica's BatchNormalization normalizes
      over its own share of the batch.
    - torch: an ``UnsupportedSetupError``, since released Keras has no data-parallel
      training on it.

    Only one machine's devices are used: multi-worker TensorFlow training is broken in
    Keras 3 (keras issue 20585). One device is not an error: the run then has a single
    replica, so the same command runs unchanged on a one-GPU machine. Every batch must
    split evenly over the replicas (JAX shards each batch; Keras on TensorFlow reduces
    the first batch of each fit and evaluation across replicas), so ``batch_size`` must
    be a multiple of the replica count and ``train`` keeps a multiple of it in the
    training and validation parts.

    The checks run when this function is called, before anything is loaded or written;
    the devices are taken and, when ``config.verbose``, printed on entering the context.

    Example:
        >>> with distribution_scope(TrainConfig(distribute=False)) as replicas:
        ...     replicas
        1
    """
    if not config.distribute:
        return contextlib.nullcontext(1)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise UnsupportedSetupError(
            "`distribute` needs the jax or tensorflow backend: released Keras has no "
            "data-parallel training on torch. Set KERAS_BACKEND=jax or tensorflow, or drop "
            f"--distribute. Received: distribute=True with backend={backend!r}"
        )
    if backend == "tensorflow" and config.jit_compile:
        raise UnsupportedSetupError(
            "`jit_compile=True` does not work with `distribute` on tensorflow: XLA cannot "
            "read MirroredStrategy's per-replica variables. Leave jit_compile unset (off "
            "on tensorflow) or drop --distribute. Received: distribute=True, jit_compile=True"
        )
    if backend == "jax":
        devices = keras.distribution.list_devices()
        engine = keras.distribution.DataParallel(devices=devices)
        name = "keras.distribution.DataParallel"
    else:
        import tensorflow as tf

        engine = tf.distribute.MirroredStrategy()
        devices = list(engine.extended.worker_devices)
        name = "tf.distribute.MirroredStrategy"
    if config.batch_size % len(devices):
        raise UnsupportedSetupError(
            f"`batch_size` must be a multiple of the {len(devices)} devices that "
            f"`distribute` splits each batch over ({', '.join(devices)}). "
            f"Received: batch_size={config.batch_size}"
        )
    return _replica_scope(engine.scope(), len(devices), f"{name} on {', '.join(devices)}", config)


@contextlib.contextmanager
def _replica_scope(scope, replicas: int, description: str, config: TrainConfig):
    with scope:
        if config.verbose:
            print(f"Data-parallel training: {replicas} replica(s), {description}")
        yield replicas


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train, validate, early-stop, evaluate on the test set once, and plot.

    Args:
        config: the recipe (see ``TrainConfig``).
        resume: insist on continuing an existing run (an error if there is none);
            without it, an unfinished run with the same config resumes anyway.
        overwrite: discard an existing run folder and start over.

    Example:
        >>> result = train(TrainConfig(model="resnet20", synthetic=True, epochs=2))
        >>> result.epochs_completed
        2
    """
    scope = distribution_scope(config)  # checks first: nothing loaded or written yet
    run_dir, finished = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    if finished:
        if config.verbose:
            print(f"{run_dir} is finished; use --overwrite to train again.")
        return _stored_result(run_dir)

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        enable_determinism()
    with precision_policy(config), scope as replicas:
        return _train(config, run_dir, replicas)


@dataclasses.dataclass(frozen=True)
class Split:
    """A run's arrays: the training part, the held-out validation part, the test set.

    Images are uint8 in the current image data format; ``mean`` and ``std`` are the
    per-channel statistics of the training part, which the model normalizes with.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def prepare_split(config: TrainConfig, replicas: int = 1) -> Split:
    """Load the config's data, shuffle once with its seed, and hold out the validation part.

    The last ``validation_fraction`` is held out, as ``validation_split`` would; the
    normalization statistics come from the rest. With ``replicas`` > 1 each part keeps a
    multiple of it, so every batch splits evenly over the devices.

    Example:
        >>> split = prepare_split(TrainConfig(synthetic=True))
        >>> len(split.x_val) == round(0.2 * (len(split.x_train) + len(split.x_val)))
        True
    """
    dataset = data.load_cifar10(
        data_dir=config.data_dir,
        synthetic=config.synthetic,
        cache_dir=config.cache_dir,
        progress=config.verbose > 0,
    )
    if config.train_subset or config.test_subset:
        dataset = data.subset(dataset, config.train_subset, config.test_subset, seed=config.seed)
    x_train, y_train = data.shuffle_once(dataset.x_train, dataset.y_train, config.seed)
    x_test, y_test = dataset.x_test, dataset.y_test
    num_fit = int(len(x_train) * (1 - config.validation_fraction))
    x_val, y_val = _multiple_of(
        replicas, x_train[num_fit:], y_train[num_fit:], "validation", config.verbose
    )
    x_train, y_train = _multiple_of(
        replicas, x_train[:num_fit], y_train[:num_fit], "training", config.verbose
    )
    pixels = x_train.reshape(-1, x_train.shape[-1]).astype("float64")
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    if keras.config.image_data_format() == "channels_first":
        x_train, x_val, x_test = (x.transpose(0, 3, 1, 2) for x in (x_train, x_val, x_test))
    return Split(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        mean,
        std,
        tuple(dataset.class_names),
        dataset.source,
    )


@contextlib.contextmanager
def precision_policy(config: TrainConfig):
    """Make the config's precision the global dtype policy, and restore the old one on exit.

    Example:
        >>> with precision_policy(TrainConfig(precision="bf16")):
        ...     keras.config.dtype_policy().name
        'mixed_bfloat16'
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[config.precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _multiple_of(replicas: int, x: np.ndarray, y: np.ndarray, part: str, verbose: int):
    """The leading images of ``x`` and ``y``, as many as a multiple of ``replicas`` holds."""
    keep = len(x) - len(x) % replicas
    if verbose and keep < len(x):
        print(
            f"Leaving out {len(x) - keep} of {len(x)} {part} images so that every batch "
            f"splits evenly over {replicas} replicas"
        )
    return x[:keep], y[:keep]


def _train(config: TrainConfig, run_dir: Path, replicas: int = 1) -> TrainResult:
    split = prepare_split(config, replicas)
    x_train, y_train, x_val, y_val = split.x_train, split.y_train, split.x_val, split.y_val
    x_test, y_test, mean, std = split.x_test, split.y_test, split.mean, split.std

    config_path = run_dir / CONFIG_FILE
    if not config_path.exists():
        write_json_atomic(
            config_path,
            {
                "config": config.to_dict(),
                "fingerprint": config.fingerprint(),
                "patience": config.resolved_patience,
                "train_images": len(x_train),
                "validation_images": len(x_val),
                "replicas": replicas,
                "test_images": len(x_test),
                "normalization": {"mean": mean.tolist(), "std": std.tolist()},
                **_environment(split.source),
            },
        )

    model = build_training_model(config, mean, std, split.num_classes)
    compile_model(model, config, steps_per_epoch=-(-len(x_train) // config.batch_size))

    history_path = run_dir / plots.HISTORY_FILE
    best_path = run_dir / BEST_MODEL_FILE
    stopper = ResumableEarlyStopping(
        history_path, best_path, config.resolved_patience, verbose=config.verbose
    )
    # Order matters at each epoch's end: the learning rate is logged, the best model
    # saved, the history row written, then the backup. A kill before the backup reruns
    # the epoch, whose row is then replaced; every row in history.csv has its best model
    # on disk. (A kill in the instant between renaming best.keras and rewriting the
    # history can leave best.keras from the epoch that is then rerun.)
    callbacks = [
        learning_rate_callback(config),
        stopper,
        HistoryWriter(history_path),
        AtomicBackupAndRestore(str(run_dir / BACKUP_DIR)),
    ]
    # A run killed after its last epoch but before its test metrics has nothing to fit.
    if not training_complete(read_history_rows(history_path), config):
        model.fit(
            x_train,
            y_train,
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_data=(x_val, y_val),
            shuffle=True,
            callbacks=callbacks,
            verbose=config.verbose,
        )

    # The run folder, not this process's memory, says which epoch was best: after a
    # resume this process may not have trained it.
    rows = read_history_rows(history_path)
    best_row = _best_row(rows)
    best_model = keras.saving.load_model(best_path)
    metrics = evaluate_test_set(
        best_model,
        x_test,
        y_test,
        batch_size=max(256, config.batch_size),
        replicas=replicas,
        flip=config.flip_test,
    )
    metrics.update(
        class_names=list(split.class_names),
        best_epoch=best_row["epoch"] + 1,
        best_val_accuracy=best_row[MONITOR],
        epochs_completed=len(rows),
        train_seconds=sum(row.get("epoch_seconds", 0.0) for row in rows),
    )
    write_json_atomic(run_dir / plots.METRICS_FILE, metrics)
    shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)
    plots.plot_run(run_dir)
    if config.verbose:
        print(
            f"test accuracy {metrics['test_accuracy']:.4f}, loss {metrics['test_loss']:.4f} "
            f"(best epoch {metrics['best_epoch']}); run folder {run_dir}"
        )
    return _stored_result(run_dir)
