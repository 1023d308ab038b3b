"""Mixed precision: every ``--precision`` trains on the current backend, the classifier in fp32.

Each check builds the training model of a tiny config (ResNet-20 on 16x16 crops of
synthetic images, batch 32) under ``training.precision_policy``, compiles it with
``training.compile_model``, and takes a few steps on one fixed batch: the loss must stay
finite and go down. Untimed: these check that each precision trains, not how fast (torch
on CPU computes float16 convolutions several times slower than float32).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_resnet.recipe import training
from keras_resnet.recipe.config import PRECISIONS, TrainConfig

TINY = dict(model="resnet20", synthetic=True, train_subset=128, test_subset=16, batch_size=32)
STEPS = 6
# Smaller than CIFAR's 32x32 to keep the checks short; ResNet-20 downsamples by 4.
IMAGE_SIZE = 16
# The compute dtype of the convolutions under each precision.
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@pytest.fixture(scope="module")
def split():
    return training.prepare_split(TrainConfig(**TINY, verbose=0))


def _train_steps(config: TrainConfig, split) -> tuple[keras.Model, list[float]]:
    """Build and compile under the config's policy, then train STEPS steps on one batch."""
    keras.utils.set_random_seed(config.seed)
    x = _crop(split.x_train[: config.batch_size]).astype("float32")
    y = split.y_train[: config.batch_size]
    with training.precision_policy(config):
        model = training.build_training_model(
            config, split.mean, split.std, split.num_classes, image_size=IMAGE_SIZE
        )
        training.compile_model(model, config)
        losses = [float(model.train_on_batch(x, y)[0]) for _ in range(STEPS)]
    return model, losses


def _crop(images: np.ndarray) -> np.ndarray:
    """The top-left IMAGE_SIZE x IMAGE_SIZE corner, in the current data format."""
    if keras.config.image_data_format() == "channels_first":
        return images[:, :, :IMAGE_SIZE, :IMAGE_SIZE]
    return images[:, :IMAGE_SIZE, :IMAGE_SIZE, :]


def test_every_precision_is_tested():
    assert set(COMPUTE_DTYPES) == set(PRECISIONS)


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_precision_trains_with_float32_classifier(precision, split):
    config = TrainConfig(**TINY, precision=precision, learning_rate=0.05, verbose=0)
    policy_before = keras.config.dtype_policy().name
    model, losses = _train_steps(config, split)

    assert keras.config.dtype_policy().name == policy_before
    assert np.all(np.isfinite(losses)), losses
    assert np.mean(losses[-2:]) < losses[0], losses
    backbone = model.get_layer(config.model)
    assert backbone.get_layer("conv1_conv").compute_dtype == COMPUTE_DTYPES[precision]
    assert backbone.get_layer("conv2_block1_2_conv").compute_dtype == COMPUTE_DTYPES[precision]
    # The weights stay float32 (mixed precision keeps a float32 copy to update).
    assert backbone.get_layer("conv1_conv").kernel.dtype == "float32"
    predictions = backbone.get_layer("predictions")
    assert predictions.compute_dtype == "float32"
    assert model.output.dtype == "float32"
    probabilities = model.predict(_crop(split.x_val[:4]), verbose=0)
    assert probabilities.dtype == np.float32


def test_fp16_scales_the_loss_and_other_precisions_do_not(split):
    """``model.compile`` wraps the optimizer in a LossScaleOptimizer under mixed_float16
    (Keras's ``auto_scale_loss=True``), since the model is built under that policy."""
    for precision in PRECISIONS:
        config = TrainConfig(**TINY, precision=precision, verbose=0)
        with training.precision_policy(config):
            model = training.build_training_model(
                config, split.mean, split.std, 10, image_size=IMAGE_SIZE
            )
            training.compile_model(model, config)
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (precision == "fp16"), precision
