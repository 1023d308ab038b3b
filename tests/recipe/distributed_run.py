"""A data-parallel ``train()`` on two CPU devices, checked from the inside.

Run by ``test_distribute.py`` in a subprocess, because the device count is fixed when
the backend starts:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/recipe/distributed_run.py OUT_DIR
    KERAS_BACKEND=tensorflow python tests/recipe/distributed_run.py OUT_DIR

For TensorFlow this script splits the CPU into two logical devices itself, before
TensorFlow initializes them. It checks that a batch of 63 is refused, then trains
through the real ``train(TrainConfig(..., distribute=True))`` path, keeping a handle on
the model that ``train`` builds, and asserts that there were two replicas, that every
model and optimizer variable is still identical on both, that the run folder is
complete, and that ``best.keras`` holds the trained weights. It prints one JSON line of
facts for the test to read and exits non-zero on the first failed check.
"""

import dataclasses
import json
import os
import sys
from pathlib import Path

BACKEND = os.environ.get("KERAS_BACKEND", "")
DEVICES = 2

if BACKEND == "tensorflow":
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_resnet.recipe import training  # noqa: E402
from keras_resnet.recipe.config import TrainConfig  # noqa: E402
from keras_resnet.recipe.distribution import distribution_scope  # noqa: E402
from keras_resnet.recipe.run_folder import read_history  # noqa: E402
from keras_resnet.recipe.training import train  # noqa: E402

EPOCHS = 2


TRAIN_IMAGES = 254  # 203 to fit and 51 to validate: both odd, so each loses one image
TEST_IMAGES = 63  # odd: padded to 64 for predict, and the padding's prediction dropped


def config(output_dir: str) -> TrainConfig:
    """Tiny, with parts that do not split evenly over two devices (batch 64)."""
    return TrainConfig(
        model="resnet20",
        synthetic=True,
        train_subset=TRAIN_IMAGES,
        test_subset=TEST_IMAGES,
        epochs=EPOCHS,
        batch_size=64,
        validation_fraction=0.2,
        distribute=True,
        output_dir=output_dir,
        verbose=2,
    )


def train_keeping_model(config: TrainConfig):
    """``train(config)``, plus the model it built (recorded as ``train`` builds it)."""
    built = []
    build = training.build_training_model

    def build_and_keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    training.build_training_model = build_and_keep
    try:
        result = train(config, overwrite=True)
    finally:
        training.build_training_model = build
    assert len(built) == 1, f"train() built {len(built)} models"
    return result, built[0]


def jax_replicas(model) -> tuple[int, int]:
    """The device count, after checking each variable is the same on every device."""
    import jax

    assert len(jax.devices()) == DEVICES, jax.devices()
    variables = [*model.variables, *model.optimizer.variables]
    for variable in variables:
        value = variable.value
        assert len(value.sharding.device_set) == DEVICES, (variable.path, value.sharding)
        assert value.sharding.is_fully_replicated, (variable.path, value.sharding)
        shards = [np.asarray(shard.data) for shard in value.addressable_shards]
        assert len(shards) == DEVICES, (variable.path, len(shards))
        for shard in shards[1:]:
            assert np.array_equal(shard, shards[0]), f"{variable.path} differs across devices"
    return DEVICES, len(variables)


def tensorflow_replicas(model) -> tuple[int, int]:
    """The strategy's replica count, after checking each MirroredVariable's copies agree."""
    strategy = model.distribute_strategy
    assert isinstance(strategy, tf.distribute.MirroredStrategy), strategy
    assert strategy.num_replicas_in_sync == DEVICES, strategy.num_replicas_in_sync
    variables = [*model.variables, *model.optimizer.variables]
    for variable in variables:
        value = variable.value
        assert isinstance(value, tf.distribute.DistributedValues), (variable.path, type(value))
        copies = [np.asarray(copy) for copy in value.values]
        assert len(copies) == DEVICES, (variable.path, len(copies))
        for copy in copies[1:]:
            assert np.array_equal(copy, copies[0]), f"{variable.path} differs across replicas"
    return strategy.num_replicas_in_sync, len(variables)


def check_batch_size_must_split_evenly(config: TrainConfig) -> None:
    odd = dataclasses.replace(config, batch_size=63)
    try:
        distribution_scope(odd)
    except ValueError as error:
        assert "must be a multiple of the 2 devices" in str(error), error
        assert "Received: batch_size=63" in str(error), error
    else:
        raise AssertionError("batch_size=63 on two devices was not refused")


def main(output_dir: str) -> dict:
    check_batch_size_must_split_evenly(config(output_dir))
    result, model = train_keeping_model(config(output_dir))
    check = {"jax": jax_replicas, "tensorflow": tensorflow_replicas}[BACKEND]
    replicas, checked = check(model)

    run_dir = Path(result.run_dir)
    rows = read_history(run_dir / "history.csv")
    assert len(rows) == EPOCHS, rows
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert np.sum(metrics["confusion_matrix"]) == TEST_IMAGES, metrics["confusion_matrix"]
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["replicas"] == DEVICES, stored
    assert (stored["train_images"], stored["validation_images"]) == (202, 50), stored
    # The trained model ends on the best epoch's weights, which best.keras holds.
    saved = keras.saving.load_model(run_dir / "best.keras")
    for mine, theirs in zip(model.get_weights(), saved.get_weights(), strict=True):
        assert np.array_equal(mine, theirs), "best.keras differs from the trained model"
    return {
        "backend": BACKEND,
        "replicas": replicas,
        "variables_checked": checked,
        "epochs": len(rows),
        "train_images": stored["train_images"],
        "validation_images": stored["validation_images"],
        "test_accuracy": result.test_accuracy,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
