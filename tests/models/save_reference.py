"""Save models and their predictions under the backend in KERAS_BACKEND.

Run by ``test_saving.py`` in a subprocess, so a model saved under one backend can
be loaded under another: ``KERAS_BACKEND=jax python tests/models/save_reference.py OUT``.
"""

import dataclasses
import sys
from pathlib import Path

import keras
import numpy as np

import keras_resnet


def _small(row, **kwargs):
    """A registered row's columns on ResNet-20's three stages of one basic block each, cheap
    to build, save and load (on JAX every new weight shape costs a compilation); ``kwargs``
    go to ``build_resnet``."""
    spec = dataclasses.replace(
        keras_resnet.MODEL_SPECS[row],
        block="basic",
        blocks_per_stage=(1, 1, 1),
        widths=(16, 32, 64),
    )
    return keras_resnet.build_resnet(spec, num_classes=10, input_shape=(32, 32, 3), **kwargs)


CASES = {
    "option_a": lambda: keras_resnet.ResNet20(),
    "option_b": lambda: keras_resnet.ResNet20(shortcut="projection"),
    "plain": lambda: keras_resnet.ResNet20(shortcut="none"),
    # The other families' columns: pre-activation in keras.applications' V2 layout (a
    # strided 1x1 max-pool, biases), keras.applications' v1 (a bias on every convolution,
    # its epsilon), the pre-activation paper's CIFAR nets, ResNet-D's deep stem and average
    # pool, a Wide ResNet with dropout.
    "v2": lambda: _small("resnet18_v2", stem="cifar"),
    "v1": lambda: _small("resnet50_v1", stem="cifar"),
    "preact_cifar": lambda: _small("preact_resnet110"),
    "d": lambda: _small("resnet50d"),
    "wide": lambda: _small("wrn16_8", dropout_rate=0.3),
}


def randomize_batch_norm_statistics(model, seed=0):
    """Give every BN layer non-trivial moving statistics, so loading them is checked."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))


def save(out_dir: Path) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 32, 32, 3)).astype("float32")
    np.save(out_dir / "inputs.npy", x)
    for case, build in CASES.items():
        model = build()
        randomize_batch_norm_statistics(model)
        model.save(out_dir / f"{case}.keras")
        np.save(out_dir / f"{case}.npy", model.predict(x, verbose=0))


if __name__ == "__main__":
    save(Path(sys.argv[1]))
