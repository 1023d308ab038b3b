"""Data-parallel training: ``train(TrainConfig(distribute=True))`` on each backend.

The JAX and TensorFlow runs train in a subprocess on two virtual CPU devices, since the
device count is fixed when the backend starts (``distributed_run.py`` does the training
and the checks). Each subprocess picks its own backend, so each runs once, under the
matching ``KERAS_BACKEND`` of the test loop. torch has no data-parallel training in
released Keras: there the check is that ``train`` refuses early, with a clear message.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from processes import REPO_ROOT, command_env

from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.distribution import UnsupportedSetupError, distribution_scope
from keras_resnet.recipe.training import train

BACKEND = keras.backend.backend()
TESTS_DIR = Path(__file__).parent


def run_on_two_devices(backend: str, output_dir: Path, **env) -> dict:
    """Run ``distributed_run.py`` under ``backend``; the facts it prints as JSON."""
    completed = subprocess.run(
        [sys.executable, str(TESTS_DIR / "distributed_run.py"), str(output_dir)],
        env=command_env(KERAS_BACKEND=backend, **env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, (
        f"distributed_run.py failed under {backend}:\n"
        f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    BACKEND != "jax", reason="starts its own jax subprocess: runs once, under KERAS_BACKEND=jax"
)
def test_jax_data_parallel_run_completes_with_replicated_weights(tmp_path):
    flags = "--xla_force_host_platform_device_count=2"
    # XLA's backend (LLVM) optimizations cost only compile time here (58 s -> 35 s).
    flags += " --xla_backend_optimization_level=0"
    facts = run_on_two_devices(
        "jax", tmp_path, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    )
    assert facts["replicas"] == 2
    assert facts["epochs"] == 2
    assert facts["variables_checked"] > 0


@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="starts its own tensorflow subprocess: runs once, under KERAS_BACKEND=tensorflow",
)
def test_tensorflow_mirrored_run_completes_with_replicated_weights(tmp_path):
    facts = run_on_two_devices("tensorflow", tmp_path)
    assert facts["replicas"] == 2
    assert facts["epochs"] == 2
    assert facts["variables_checked"] > 0


@pytest.mark.skipif(BACKEND != "torch", reason="the refusal is torch's")
def test_torch_refuses_distribute_before_writing_anything(tmp_path):
    config = TrainConfig(
        model="resnet20",
        synthetic=True,
        train_subset=256,
        test_subset=64,
        epochs=1,
        batch_size=64,
        distribute=True,
        output_dir=str(tmp_path),
        verbose=0,
    )
    with pytest.raises(UnsupportedSetupError, match="no data-parallel training on torch") as error:
        train(config)
    assert "KERAS_BACKEND=jax or tensorflow" in str(error.value)
    assert "Received: distribute=True with backend='torch'" in str(error.value)
    assert list(tmp_path.iterdir()) == []  # refused before the run folder was made


@pytest.mark.skipif(BACKEND == "torch", reason="torch refuses `distribute`")
def test_distribute_takes_the_devices_this_process_has(tmp_path):
    # No virtual devices here: on a CPU-only machine that is one device, and a single
    # replica is not an error, so the same command runs on a one-GPU machine.
    devices = keras.distribution.list_devices()
    config = TrainConfig(distribute=True, batch_size=32 * len(devices), verbose=0)
    with distribution_scope(config) as replicas:
        assert replicas == len(devices)
        if BACKEND == "jax":
            assert isinstance(keras.distribution.distribution(), keras.distribution.DataParallel)
        else:
            import tensorflow as tf

            assert tf.distribute.get_strategy().num_replicas_in_sync == replicas
    if BACKEND == "jax":
        assert keras.distribution.distribution() is None  # restored on leaving


def test_without_distribute_the_scope_does_nothing():
    with distribution_scope(TrainConfig(distribute=False)) as replicas:
        assert replicas == 1
        if BACKEND == "jax":
            assert keras.distribution.distribution() is None
        elif BACKEND == "tensorflow":
            import tensorflow as tf

            assert not tf.distribute.has_strategy()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA conflicts with MirroredStrategy only")
def test_tensorflow_refuses_jit_compile_with_distribute():
    config = TrainConfig(distribute=True, jit_compile=True)
    with pytest.raises(UnsupportedSetupError, match="jit_compile=True` does not work with"):
        distribution_scope(config)
