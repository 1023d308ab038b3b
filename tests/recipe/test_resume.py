"""Exact resume: a run SIGKILLed at a random moment and resumed ends where the uninterrupted
run ends (history, weights, test metrics), bit for bit on a CPU with deterministic kernels.

Three processes of the training command on a tiny generated set: the uninterrupted
reference, one killed at a random point (between epochs or inside one, after 1 or 2
backed-up epochs), and the same command resuming it. The random point is printed with
any failure, to rerun it (``KERAS_RESNET_KILL_POINT=epochs,delay``). The cheaper checks
below do the same in one process, with a fit interrupted by an exception at a random
batch.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from processes import command_env, sigkill_when

from keras_resnet.recipe import pipeline
from keras_resnet.recipe.run_folder import read_history

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_SCRIPT = REPO_ROOT / "experiments" / "cifar10.py"
EPOCHS = 4
# ResNet-20 on 160 generated images (128 fit, 32 validation) in batches of 32: each epoch
# is four short steps, so a kill lands between epochs as often as inside one.
FLAGS = [
    "--synthetic",
    "--model=resnet20",
    f"--epochs={EPOCHS}",
    "--step-size=2",
    "--batch-size=32",
    "--train-subset=160",
    "--test-subset=32",
    "--deterministic",
    "--verbose=2",
]
TIME_COLUMNS = {"epoch_seconds"}


def _backed_up(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def _kill_point() -> tuple[int, float]:
    text = os.environ.get("KERAS_RESNET_KILL_POINT")
    if text:
        epochs, delay = text.split(",")
        return int(epochs), float(delay)
    rng = random.Random()
    return rng.choice((1, 2)), round(rng.uniform(0.0, 1.5), 2)


def _run(command, work, env, name):
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"the {name} run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def _only_run(output_dir: Path) -> Path:
    (run_dir,) = [p for p in output_dir.iterdir() if p.is_dir()]
    return run_dir


def _weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


@pytest.mark.slow  # three processes: about 2 minutes on a busy 2-core machine
def test_a_run_killed_at_a_random_point_resumes_to_the_uninterrupted_result(tmp_path):
    env = command_env()
    if keras.backend.backend() == "jax":  # the later processes reuse the first's compilation
        env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax-cache")
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    command = [sys.executable, str(CLI_SCRIPT), *FLAGS]

    _run([*command, "--output-dir=reference"], tmp_path, env, "reference")
    reference = _only_run(tmp_path / "reference")

    epochs, delay = _kill_point()
    point = f"kill point {epochs},{delay} (KERAS_RESNET_KILL_POINT to rerun it)"
    resumed = tmp_path / "resumed" / reference.name
    backed_up_at = []

    def ready() -> bool:
        if _backed_up(resumed) < epochs:
            return False
        backed_up_at.append(backed_up_at[0] if backed_up_at else time.monotonic())
        return time.monotonic() - backed_up_at[0] >= delay

    sigkill_when(
        [*command, "--output-dir=resumed"],
        ready,
        cwd=tmp_path,
        env=env,
        log=tmp_path / "killed.log",
        waiting_for=f"{epochs} backed-up epochs",
    )
    if (resumed / "test_metrics.json").exists():
        pytest.fail(f"the run finished before the kill ({point}): make its epochs longer")
    killed_at = _backed_up(resumed)
    second = _run([*command, "--output-dir=resumed", "--resume"], tmp_path, env, "resumed")
    assert f"Epoch {killed_at + 1}/{EPOCHS}" in second.stdout, point
    assert f"Epoch {killed_at}/{EPOCHS}" not in second.stdout, point

    expected, got = read_history(reference / "history.csv"), read_history(resumed / "history.csv")
    assert len(got) == len(expected) == EPOCHS, point
    for want, have in zip(expected, got, strict=True):
        keys = set(want) - TIME_COLUMNS
        assert {k: have[k] for k in keys} == {k: want[k] for k in keys}, point
    metrics = [json.loads((d / "test_metrics.json").read_text()) for d in (reference, resumed)]
    for key in ("test_accuracy", "test_loss", "confusion_matrix", "best_epoch"):
        assert metrics[1][key] == metrics[0][key], f"{key}, {point}"
    for want, have in zip(
        _weights(reference / "best.keras"), _weights(resumed / "best.keras"), strict=True
    ):
        np.testing.assert_array_equal(have, want, err_msg=point)


# --------------------------------------------------------------------------- in-process


def test_batch_i_of_epoch_e_is_a_pure_function_of_seed_epoch_and_index():
    x, y = np.arange(50).reshape(50, 1, 1, 1).astype("uint8"), np.arange(50)
    first = pipeline.EpochBatches(x, y, batch_size=8, seed=3)
    second = pipeline.EpochBatches(x, y, batch_size=8, seed=3)
    first.set_epoch(5)
    for epoch in (0, 5):  # second visits epoch 0 before 5; first jumps straight there
        second.set_epoch(epoch)
    for i in reversed(range(len(first))):  # any order of reads
        np.testing.assert_array_equal(first[i][1], second[i][1])
    # Every image once per epoch, in an order that changes with the epoch and the seed.
    epoch5 = np.concatenate([first[i][1] for i in range(len(first))])
    assert sorted(epoch5.tolist()) == list(range(50)) and len(first) == 7
    first.set_epoch(6)
    assert np.concatenate([first[i][1] for i in range(7)]).tolist() != epoch5.tolist()
    other_seed = pipeline.EpochBatches(x, y, batch_size=8, seed=4)
    other_seed.set_epoch(5)
    assert np.concatenate([other_seed[i][1] for i in range(7)]).tolist() != epoch5.tolist()
    np.testing.assert_array_equal(first[6][0][:, 0, 0, 0], first[6][1])  # images follow labels


def _augmenting_model():
    from keras_resnet.recipe.augment import RandomPadCrop

    inputs = keras.Input((8, 8, 3))
    x = RandomPadCrop(2, seed=1)(inputs)
    return keras.Model(inputs, keras.layers.RandomFlip("horizontal", seed=2)(x))


def test_reseeding_makes_an_epochs_augmentation_independent_of_earlier_draws():
    images = keras.random.uniform((16, 8, 8, 3), maxval=255.0, seed=0)
    model = _augmenting_model()
    assert len(pipeline.seed_states(model)) == 2

    def draws(before: int):
        for _ in range(before):  # what an earlier epoch drew
            model(images, training=True)
        pipeline.reseed(model, seed=42, epoch=3)
        return keras.ops.convert_to_numpy(model(images, training=True))

    after_none, after_three = draws(0), draws(3)
    np.testing.assert_array_equal(after_three, after_none)
    pipeline.reseed(model, seed=42, epoch=4)
    assert not np.array_equal(keras.ops.convert_to_numpy(model(images, training=True)), after_none)


class _InterruptError(Exception):
    pass


class _InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _InterruptError


def _fit(backup_dir, epochs=4, interrupt=None, disturb=0):
    """A tiny augmenting model fitted with the recipe's pieces; returns its weights and
    history. ``disturb`` draws that many numbers from every global generator first."""
    from keras_resnet._compat import AtomicBackupAndRestore
    from keras_resnet.recipe.optimizers import TorchSGD
    from keras_resnet.recipe.schedules import step_decay

    keras.utils.set_random_seed(0)
    random.random(), np.random.random(disturb), keras.random.uniform((disturb + 1,))
    x = np.random.default_rng(1).integers(0, 255, (40, 8, 8, 3)).astype("uint8")
    y = np.arange(40) % 3
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Rescaling(1 / 255)(_augmenting_model()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(h)))
    model.compile(TorchSGD(0.1, momentum=0.9, l2=5e-4), "sparse_categorical_crossentropy")
    batches = pipeline.EpochBatches(x, y, batch_size=8, seed=42)
    callbacks = [
        pipeline.EpochSeeds(42, batches),
        keras.callbacks.LearningRateScheduler(step_decay(0.1, 2, 0.5)),
        AtomicBackupAndRestore(str(backup_dir)),
    ]
    if interrupt:
        callbacks.append(_InterruptAt(*interrupt))
    history = model.fit(batches, epochs=epochs, shuffle=False, callbacks=callbacks, verbose=0)
    return model.get_weights(), history.history


def test_a_fit_interrupted_at_a_random_batch_resumes_to_the_uninterrupted_weights(tmp_path):
    epoch, batch = random.Random().choice((1, 2)), random.Random().randrange(5)
    point = f"interrupted after batch {batch} of epoch {epoch}"
    want_weights, want_history = _fit(tmp_path / "reference")
    with pytest.raises(_InterruptError):
        _fit(tmp_path / "resumed", interrupt=(epoch, batch))
    # Another process state: the global generators are elsewhere, the epochs before the
    # interruption are not retrained.
    weights, history = _fit(tmp_path / "resumed", disturb=7)
    assert len(history["loss"]) == 4 - epoch, point  # epochs from the last backup
    assert history["loss"] == want_history["loss"][epoch:], point
    assert history["learning_rate"] == want_history["learning_rate"][epoch:], point
    for have, want in zip(weights, want_weights, strict=True):  # momentum restored too
        np.testing.assert_array_equal(have, want, err_msg=point)
