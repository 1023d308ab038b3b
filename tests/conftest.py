"""Shared fixtures: the data format switch and small helpers."""

import functools

import keras
import pytest

import keras_resnet

# keras.applications' constructors whose layout a row reproduces (built with weights=None).
KERAS_APPLICATIONS = {
    "resnet50_v1": "ResNet50",
    "resnet101_v1": "ResNet101",
    "resnet152_v1": "ResNet152",
    "resnet50_v2": "ResNet50V2",
    "resnet101_v2": "ResNet101V2",
    "resnet152_v2": "ResNet152V2",
}


@pytest.fixture
def channels_first():
    """Run a test under ``channels_first``, restoring the previous format afterwards."""
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format(previous)


@functools.cache
def imagenet_model(name: str) -> keras.Model:
    """A registered model as torchvision configures it (1000 classes, 224x224, ImageNet
    stem), built once per session because the large ones take seconds to build."""
    return keras_resnet.get_model(name, num_classes=1000, input_shape=(224, 224, 3))


@pytest.fixture(scope="session")
def run_model(tmp_path_factory):
    """The command tests' run folder (``command_fixtures``): (path of its best.keras, the
    model)."""
    from command_fixtures import make_model, write_run_folder

    model = make_model()
    return write_run_folder(tmp_path_factory.mktemp("run"), model), model


def stand_in_model(config, mean, std, num_classes, image_size=32) -> keras.Model:
    """A one-layer model in place of the ResNet (``build_training_model``'s signature), for
    tests of what surrounds the model."""
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, image_size, image_size) if channels_first else (image_size, image_size, 3)
    inputs = keras.Input(shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)
