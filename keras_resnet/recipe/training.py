"""The CIFAR-10 recipe as a standard ``model.fit``: ``train(config) -> TrainResult``.

``train`` checks the setup, prepares the run folder (``run_folder``), loads and splits the
data, builds the model (augmentation and normalization inside it), compiles it, fits it
with the recipe's callbacks, evaluates the best epoch's model on the test set once, and
draws the figures. Running the same config again resumes an unfinished run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_resnet import atomic, extras, hardware
from keras_resnet._compat import AtomicBackupAndRestore
from keras_resnet.models.builders import get_model
from keras_resnet.models.data_format import channel_axis
from keras_resnet.recipe import augment, data, pipeline
from keras_resnet.recipe import cluster as cluster_lib
from keras_resnet.recipe.callbacks import (
    HistoryWriter,
    ResumableEarlyStopping,
    StopAtStep,
    StopOnDivergence,
    ema_callbacks,
    learning_rate_callback,
    tensorboard_callback,
)
from keras_resnet.recipe.config import PRECISIONS, TrainConfig
from keras_resnet.recipe.distribution import (
    UnsupportedSetupError,
    distribution_scope,
    local_scope,
)
from keras_resnet.recipe.evaluation import evaluate_test_set
from keras_resnet.recipe.losses import recipe_loss
from keras_resnet.recipe.optimizers import TorchSGD
from keras_resnet.recipe.run_folder import (
    BACKUP_DIR,
    BEST_MODEL_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MONITOR,
    TENSORBOARD_DIR,
    best_row,
    damaged_error,
    environment,
    plot_run,
    prepare_run_dir,
    read_history,
    read_json_object,
    training_complete,
)
from keras_resnet.recipe.schedules import OneCycle, multistep

# TFDS is needed only where CIFAR-10 comes from it (data.load_tfds says so); an image
# folder trains without it, as on a machine that has no TensorFlow.
extras.check_extra("train", "Training with keras_resnet.recipe", without=("tensorflow_datasets",))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished run reports; the same values are in its ``test_metrics.json``.

    Example:
        >>> result = train(TrainConfig(synthetic=True, epochs=1))  # doctest: +SKIP
        >>> 0.0 <= result.test_accuracy <= 1.0  # doctest: +SKIP
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

    Only JAX: it needs jit to be usable. On a CPU, XLA made TensorFlow's training slower
    than its graph mode, and ``torch.compile`` gained nothing over torch eager after minutes
    of compiling (the README's "Speed" has the measurements).

    Example:
        >>> default_jit_compile("tensorflow")
        False
    """
    return backend == "jax"


def enable_determinism() -> None:
    """Ask the current backend for deterministic kernels (slower; same results per seed).

    It changes the whole process (TensorFlow then refuses unseeded random ops), so its
    example is not run as a doctest.

    Example:
        >>> enable_determinism()  # doctest: +SKIP
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
    shape = (3, image_size, image_size) if channel_axis() == 1 else (image_size, image_size, 3)
    inputs = keras.Input(shape, name="images")
    x = augment.preprocessing(inputs, mean, std, seed=config.seed)
    backbone = get_model(
        config.model,
        num_classes=num_classes,
        input_shape=shape,
        shortcut=config.shortcut,
        zero_init_residual=config.zero_init_residual,
    )
    return keras.Model(inputs, backbone(x), name=f"cifar10_{config.model}")


def compile_model(
    model: keras.Model, config: TrainConfig, steps_per_epoch: int | None = None
) -> None:
    """SGD with momentum and PyTorch-style weight decay, cross-entropy, accuracy.

    The learning rate: with "step", set each epoch by ``learning_rate_callback``; with
    "one_cycle" a per-step ``OneCycle`` over ``config.epochs * steps_per_epoch`` steps; with
    "multistep" a per-step ``schedules.multistep`` (epoch milestones counted in steps).
    ``label_smoothing`` > 0 smooths the loss (``recipe_loss``); ``ema`` keeps a moving
    average of the weights in the optimizer (``use_ema``; see ``callbacks.ema_callbacks``).

    A model built under fp16 (``mixed_float16``) gets dynamic loss scaling: Keras's
    ``compile`` wraps the optimizer in a ``keras.optimizers.LossScaleOptimizer`` when the
    model's dtype policy is ``mixed_float16`` (``auto_scale_loss=True``, its default).
    bf16 has float32's exponent range and needs none.

    Example:
        >>> config = TrainConfig(model="resnet20")
        >>> model = build_training_model(config, (120,) * 3, (60,) * 3, 10)
        >>> compile_model(model, config)
        >>> type(model.optimizer).__name__
        'TorchSGD'
    """
    learning_rate = config.learning_rate
    if config.schedule != "step" and (not steps_per_epoch or steps_per_epoch < 1):
        raise ValueError(
            f"`schedule={config.schedule!r}` sets the learning rate per step and needs the "
            "number of steps: pass steps_per_epoch (ceil(training images / batch size)). "
            f"Received: steps_per_epoch={steps_per_epoch!r}"
        )
    if config.schedule == "one_cycle":
        learning_rate = OneCycle(config.learning_rate, config.epochs * steps_per_epoch)
    elif config.schedule == "multistep":
        per = steps_per_epoch if config.milestone_unit == "epoch" else 1
        learning_rate = multistep(
            config.learning_rate,
            [milestone * per for milestone in config.milestones],
            config.gamma,
            config.warmup_steps,
            config.warmup_learning_rate,
        )
    jit = config.jit_compile
    if jit is None:
        jit = default_jit_compile(keras.backend.backend())
    model.compile(
        optimizer=TorchSGD(
            learning_rate=learning_rate,
            momentum=config.momentum,
            nesterov=config.nesterov,
            l2=config.weight_decay,
            decay_vectors=config.decay_norm_and_bias,
            use_ema=config.ema,
            ema_momentum=config.ema_momentum,
        ),
        loss=recipe_loss(config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit,
    )


def _stored_result(run_dir: Path) -> TrainResult:
    path = run_dir / METRICS_FILE
    metrics = read_json_object(path)
    names = [field.name for field in dataclasses.fields(TrainResult)[1:]]
    missing = [name for name in names if name not in metrics]
    if missing:
        raise damaged_error(path, f"it has no {', '.join(map(repr, missing))}")
    return TrainResult(run_dir=run_dir, **{name: metrics[name] for name in names})


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train, validate, early-stop, evaluate on the test set once, and plot.

    Args:
        config: the recipe (see ``TrainConfig``).
        resume: insist on continuing an existing run (an error if there is none);
            without it, an unfinished run with the same config resumes anyway.
        overwrite: discard an existing run folder and start over.

    Example:
        >>> result = train(TrainConfig(synthetic=True, epochs=2))  # doctest: +SKIP
        >>> result.epochs_completed  # doctest: +SKIP
        2
    """
    scope = distribution_scope(config)  # checks first: nothing loaded or written yet
    check_precision(config)
    new_run = not (Path(config.output_dir) / config.resolved_run_name()).exists()
    try:
        run_dir, finished = _prepare_shared_run_dir(config, resume, overwrite)
        if finished:
            if config.verbose:
                print(f"{run_dir} is finished; use --overwrite to train again.")
            return _stored_result(run_dir)

        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            enable_determinism()
        try:
            with precision_policy(config), scope as replicas:
                return _train(config, run_dir, replicas)
        except data.DataSourceError:
            # A folder refused at its listing leaves no empty run folder behind.
            if new_run and cluster_lib.is_writer() and not any(run_dir.iterdir()):
                run_dir.rmdir()
            raise
    except Exception as error:
        cluster_lib.exit_if_peer_lost(error)  # a multi-process run whose peer died: exits
        raise


def _prepare_shared_run_dir(config: TrainConfig, resume: bool, overwrite: bool):
    """``prepare_run_dir``; in a multi-process run process 0 prepares the folder first
    (and alone discards it for ``overwrite``), then the others check it."""
    cluster = cluster_lib.current()
    if cluster is None:
        return prepare_run_dir(config, resume=resume, overwrite=overwrite)
    if cluster.is_writer:
        prepared = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    cluster_lib.barrier("keras_resnet: run folder prepared")
    if not cluster.is_writer:
        prepared = prepare_run_dir(config, resume=resume, create=False)
    if config.verbose:
        print(
            f"Process {cluster.process_id} of {cluster.num_processes} (coordinator "
            f"{cluster.coordinator}); if a process dies the others stop within about "
            f"{config.heartbeat_timeout} s (--heartbeat-timeout): rerun the same command on "
            "every host to resume."
        )
    return prepared


@dataclasses.dataclass(frozen=True)
class Split:
    """A run's arrays: the training part, the held-out validation part, the test set.

    Images are uint8 arrays in the current image data format, or ``data.ImageFiles``
    that decode to them (a streamed image folder); ``mean`` and ``std`` are the
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

    @property
    def image_size(self) -> int:
        """The images' side (square images: axis 2 is a side in either layout)."""
        return self.x_train.shape[2]

    @property
    def streamed(self) -> bool:
        """Whether the images are files decoded while training (``data.ImageFiles``)."""
        return isinstance(self.x_train, data.ImageFiles)


def prepare_split(config: TrainConfig, replicas: int = 1) -> Split:
    """Load the config's data, shuffle once with its seed, and hold out the validation part.

    The last ``validation_fraction`` is held out, as ``validation_split`` would; the
    normalization statistics come from the rest. With ``replicas`` > 1 each part keeps a
    multiple of it, so every batch splits evenly over the devices.

    Example:
        >>> split = prepare_split(TrainConfig(synthetic=True, verbose=0))
        >>> len(split.x_train), len(split.x_val)  # 512 generated images, the last 20% held out
        (409, 103)
    """
    dataset = data.load_cifar10(
        data_dir=config.data_dir,
        synthetic=config.synthetic,
        cache_dir=config.cache_dir,
        progress=config.verbose > 0,
        image_size=config.image_size,
        memory_budget_mb=config.memory_budget_mb,
    )
    if config.train_subset or config.test_subset:
        dataset = data.subset(dataset, config.train_subset, config.test_subset, seed=config.seed)
    x_train, y_train = data.shuffle_once(dataset.x_train, dataset.y_train, config.seed)
    x_test, y_test = dataset.x_test, dataset.y_test
    num_fit = int(len(x_train) * (1 - config.validation_fraction))
    held_out = np.arange(num_fit, len(y_train))
    x_val, y_val = _multiple_of(
        replicas, data.take(x_train, held_out), y_train[num_fit:], "validation", config.verbose
    )
    x_train, y_train = _multiple_of(
        replicas,
        data.take(x_train, np.arange(num_fit)),
        y_train[:num_fit],
        "training",
        config.verbose,
    )
    mean, std = _channel_statistics(x_train)
    if channel_axis() == 1:
        x_train, x_val, x_test = (_channels_first(x) for x in (x_train, x_val, x_test))
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


# Streamed images: the normalization statistics come from this many training images
# (spread over the shuffled part), decoded once.
STATISTICS_SAMPLE = 2048


def _channel_statistics(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation on the 0-255 scale (channels-last ``x``)."""
    if isinstance(x, data.ImageFiles):
        picks = np.unique(np.linspace(0, len(x) - 1, min(STATISTICS_SAMPLE, len(x))).astype(int))
        x = x[picks]
    pixels = x.reshape(-1, x.shape[-1]).astype("float64")
    # A channel that never varies (a generated folder's may not) is divided by 1, not 0.
    return pixels.mean(axis=0), np.maximum(pixels.std(axis=0), 1.0)


def _channels_first(x):
    if isinstance(x, data.ImageFiles):
        return x.with_channels_first()
    return x.transpose(0, 3, 1, 2)


def check_precision(config: TrainConfig, device: str | None = None, cpu=None) -> None:
    """Refuse a precision the training device would emulate (``hardware.precision_problem``):
    bf16 on a CPU without native bf16, fp16 on any CPU, unless
    ``config.allow_emulated_precision``.

    ``device`` ("cpu" or "accelerator") and ``cpu`` (a ``hardware.CpuInfo``) default to
    this machine's: the device the backend trains on, the CPU ``/proc/cpuinfo`` describes.

    Raises:
        UnsupportedSetupError: naming the missing CPU feature and what to use instead.

    Example:
        >>> slow_cpu = hardware.CpuInfo("AMD EPYC", frozenset({"avx2"}))
        >>> check_precision(TrainConfig(precision="bf16"), device="cpu", cpu=slow_cpu)
        Traceback (most recent call last):
        ...
        keras_resnet.recipe.distribution.UnsupportedSetupError: `precision='bf16'` would be ...
    """
    if config.precision == "fp32" or config.allow_emulated_precision:
        return
    device = device or hardware.training_device()
    problem = hardware.precision_problem(config.precision, device, cpu or hardware.cpu_info())
    if problem is not None:
        raise UnsupportedSetupError(problem)


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
    return data.take(x, np.arange(keep)), y[:keep]


def _kept_after_divergence(run_dir: Path) -> str:
    """What a diverged run's folder still holds: its good epochs and their best model."""
    rows = read_history(run_dir / HISTORY_FILE, missing_ok=True)
    if not rows or not (run_dir / BEST_MODEL_FILE).exists():
        return f"No epoch had finished; {run_dir} holds no model."
    best = best_row(rows)["epoch"] + 1
    return (
        f"{run_dir} keeps the {len(rows)} epoch(s) finished before it ({HISTORY_FILE}) and "
        f"the best model, of epoch {best} ({BEST_MODEL_FILE})."
    )


def _train(config: TrainConfig, run_dir: Path, replicas: int = 1) -> TrainResult:
    split = prepare_split(config, replicas)
    x_train, y_train, x_val, y_val = split.x_train, split.y_train, split.x_val, split.y_val
    x_test, y_test, mean, std = split.x_test, split.y_test, split.mean, split.std

    # Several processes: process 0 alone writes the run folder, which every process reads
    # (it must be shared: recipe.cluster), and each feeds its part of every batch.
    cluster = cluster_lib.current()
    writer = cluster_lib.is_writer()
    shard = (0, 1) if cluster is None else (cluster.process_id, cluster.num_processes)
    config_path = run_dir / CONFIG_FILE
    if writer and not config_path.exists():
        atomic.write_json(
            config_path,
            {
                "config": config.to_dict(),
                "fingerprint": config.fingerprint(),
                "patience": config.resolved_patience,
                "train_images": len(x_train),
                "validation_images": len(x_val),
                "replicas": replicas,
                "num_processes": shard[1],
                "test_images": len(x_test),
                "image_size": split.image_size,
                "streamed": split.streamed,
                "normalization": {"mean": mean.tolist(), "std": std.tolist()},
                **environment(split.source),
            },
        )
    if cluster is not None:
        cluster_lib.barrier("keras_resnet: config written")
        cluster_lib.check_same_file(config_path)

    model = build_training_model(config, mean, std, split.num_classes, split.image_size)
    steps_per_epoch = -(-len(x_train) // config.batch_size)
    compile_model(model, config, steps_per_epoch=steps_per_epoch)
    epochs = config.epochs
    if config.max_steps:  # the epoch of the last step is the last
        epochs = min(epochs, -(-config.max_steps // steps_per_epoch))

    history_path = run_dir / HISTORY_FILE
    best_path = run_dir / BEST_MODEL_FILE
    stopper = ResumableEarlyStopping(
        history_path, best_path, config.resolved_patience, verbose=config.verbose, save=writer
    )
    # Order matters at each epoch's end: the learning rate is logged, the best model
    # saved, the history row written, then the backup. A kill before the backup reruns
    # the epoch, whose row is then replaced; every row in history.csv has its best model
    # on disk. (A kill in the instant between renaming best.keras and rewriting the
    # history can leave best.keras from the epoch that is then rerun.)
    # Each epoch's batches and augmentation draws are those of (seed, epoch), so the
    # epochs a resumed run retrains are those of the uninterrupted run (pipeline).
    # Streamed images (data.ImageFiles) are decoded batch by batch, in parallel threads.
    batches = pipeline.EpochBatches(x_train, y_train, config.batch_size, config.seed, shard=shard)
    validation = (x_val, y_val)
    if split.streamed or cluster is not None:
        validation = pipeline.EpochBatches(
            x_val, y_val, config.batch_size, config.seed, shuffle=False, shard=shard
        )
    # With --ema, the model holds the weights' average between the two EMA lists.
    average_in, training_back = ema_callbacks(config)
    # The divergence check first: at a non-finite loss it leaves fit before any file is
    # written with the diverged weights, saying what the run folder keeps.
    callbacks = [
        StopOnDivergence(config.learning_rate, note=lambda: _kept_after_divergence(run_dir)),
        pipeline.EpochSeeds(config.seed, batches),
        learning_rate_callback(config),
        *([StopAtStep(config.max_steps)] if config.max_steps else []),
        *average_in,
        stopper,
        *([HistoryWriter(history_path)] if writer else []),
        *training_back,
        AtomicBackupAndRestore(str(run_dir / BACKUP_DIR), save=writer),
    ]
    if config.tensorboard and writer:
        callbacks.append(tensorboard_callback(run_dir / TENSORBOARD_DIR))
    # A run killed after its last epoch but before its test metrics has nothing to fit.
    rows = read_history(history_path, missing_ok=True)
    if not training_complete(rows, config, epochs=epochs):
        model.fit(
            batches,
            epochs=epochs,
            validation_data=validation,
            validation_batch_size=config.batch_size if isinstance(validation, tuple) else None,
            shuffle=False,  # the order is the batches' own
            callbacks=callbacks,
            verbose=config.verbose,
        )
    cluster_lib.barrier("keras_resnet: trained")  # process 0's last files are written

    # The run folder, not this process's memory, says which epoch was best: after a
    # resume this process may not have trained it.
    rows = read_history(history_path)
    best = best_row(rows)
    # Each process evaluates the whole test set on its own devices, to the same metrics.
    with local_scope(replicas) as test_replicas:
        best_model = keras.saving.load_model(best_path)
        metrics = evaluate_test_set(
            best_model,
            x_test,
            y_test,
            batch_size=max(256, config.batch_size),
            replicas=test_replicas,
            flip=config.flip_test,
            translate=config.test_translate,
        )
    metrics.update(
        class_names=list(split.class_names),
        best_epoch=best["epoch"] + 1,
        best_val_accuracy=best[MONITOR],
        epochs_completed=len(rows),
        train_seconds=sum(row.get("epoch_seconds", 0.0) for row in rows),
    )
    if writer:
        atomic.write_json(run_dir / METRICS_FILE, metrics)
        shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)
        plot_run(run_dir)
    cluster_lib.barrier("keras_resnet: finished")  # the test metrics are written
    if config.verbose:
        print(
            f"test accuracy {metrics['test_accuracy']:.4f}, loss {metrics['test_loss']:.4f} "
            f"(best epoch {metrics['best_epoch']}); run folder {run_dir}"
        )
    return _stored_result(run_dir)
