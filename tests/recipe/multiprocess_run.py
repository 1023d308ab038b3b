"""The training command in one process of a multi-process run, with a tiny model.

Run by ``test_multiprocess.py``, one subprocess per process (the cluster comes from the
flags or Keras's ``KERAS_DISTRIBUTION_*`` variables, as for users):

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python tests/recipe/multiprocess_run.py \\
        WEIGHTS.npz --distribute --num-processes 2 --process-id 0 \\
        --job-addresses 127.0.0.1:PORT --synthetic ...

It runs ``keras-resnet train`` (``cli.train.main``) with the given flags, the ResNet
replaced by a tiny convolutional network (batch norm included, whose statistics span the
global batch), and then saves the trained model's weights to ``WEIGHTS.npz``: this test's
own copy, outside the run folder, so that each process's weights can be compared.
``MULTIPROCESS_BATCH_DELAY_S`` slows each batch read, so that a kill can land mid-epoch.
"""

import os
import sys
import time

import keras
import numpy as np

from keras_resnet.cli import train as train_command
from keras_resnet.recipe import pipeline, training


def tiny_model(name, num_classes, input_shape, **_):
    """A stand-in for ``get_model``: conv, batch norm, pooling, classifier."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def main(weights_path: str, argv: list[str]) -> None:
    built = []
    build = training.build_training_model

    def build_and_keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    training.build_training_model = build_and_keep
    training.get_model = tiny_model
    delay = float(os.environ.get("MULTIPROCESS_BATCH_DELAY_S", "0"))
    if delay:
        read = pipeline.EpochBatches.__getitem__

        def slow_read(self, index):
            time.sleep(delay)
            return read(self, index)

        pipeline.EpochBatches.__getitem__ = slow_read
    train_command.main(argv)
    if built:  # a finished run is reported, not retrained
        weights = built[0].get_weights()
        np.savez(weights_path, *weights)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
