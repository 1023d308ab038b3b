"""Weights files checked before loading: another architecture or a file that is not a
weights file is one ValueError with an exact message, and no Keras warning."""

import warnings
import zipfile

import h5py
import numpy as np
import pytest

import keras_resnet
from keras_resnet.models.weights import WeightsFileError, describe, model_weight_shapes


@pytest.fixture(scope="module")
def resnet20_files(tmp_path_factory):
    """A ResNet-20's weights as .weights.h5 and as .keras."""
    folder = tmp_path_factory.mktemp("weights")
    model = keras_resnet.ResNet20()
    model.save_weights(folder / "resnet20.weights.h5")
    model.save(folder / "resnet20.keras")
    return folder


def _refused(build, path) -> str:
    """The message of the one error ``build(weights=path)`` raises; no warning may come."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightsFileError) as error:
            build(weights=str(path))
    assert [str(w.message) for w in caught] == []
    return str(error.value)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_weights_of_another_depth_name_both_models_and_the_first_layer(resnet20_files, suffix):
    path = resnet20_files / f"resnet20{suffix}"
    assert _refused(keras_resnet.ResNet32, path) == (
        f"{path} holds the weights of resnet20, which do not fit resnet32: the first layer "
        "that differs is conv2_block4_1_conv (in the model, not in the file). Build the "
        f"model the file was saved from, or pass another file. Received: weights='{path}'"
    )


def test_weights_of_other_widths_name_the_first_differing_shape(resnet20_files):
    path = resnet20_files / "resnet20.weights.h5"
    # ResNet-20's depth at twice its widths (small to build, unlike ResNet-18).
    wide = keras_resnet.ResNetSpec("basic", (3, 3, 3), (32, 64, 128), "zero_pad", "cifar", 10, 32)
    build = lambda **kw: keras_resnet.build_resnet(wide, name="wide_resnet20", **kw)  # noqa: E731
    assert _refused(build, path) == (
        f"{path} holds the weights of resnet20, which do not fit wide_resnet20 (a ResNet with "
        "3-3-3 blocks per stage: basic blocks, 32 stem channels, not a registered model): "
        "the first layer that differs is conv1_conv (variable shapes [(3, 3, 3, 16)] in the "
        "file, [(3, 3, 3, 32)] in the model). Build the model the file was saved from, or "
        f"pass another file. Received: weights='{path}'"
    )


def test_another_number_of_classes_is_refused_at_the_classifier(resnet20_files):
    path = resnet20_files / "resnet20.keras"
    message = _refused(lambda **kw: keras_resnet.ResNet20(num_classes=5, **kw), path)
    assert (
        "first layer that differs is predictions (variable shapes [(64, 10), (10,)] in "
        "the file, [(64, 5), (5,)] in the model)"
    ) in message


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("not weights")
    assert _refused(keras_resnet.ResNet20, path) == (
        f"{path} is not a Keras weights file: a .weights.h5 file is HDF5, and this one is "
        f"not. Received: weights='{path}'"
    )


def test_a_keras_file_that_is_not_a_zip_archive_is_named(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"\x89HDF\r\n")
    assert _refused(keras_resnet.ResNet20, path) == (
        f"{path} is not a Keras model file: a .keras file is a zip archive, and this one is "
        f"not. Received: weights='{path}'"
    )


def test_a_zip_without_weights_and_an_hdf5_without_layers_are_named(tmp_path):
    archive = tmp_path / "empty.keras"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("config.json", "{}")
    assert _refused(keras_resnet.ResNet20, archive) == (
        f"{archive} is not a Keras model file: it has no model.weights.h5. "
        f"Received: weights='{archive}'"
    )
    other = tmp_path / "other.weights.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros(3)
    assert _refused(keras_resnet.ResNet20, other) == (
        f"{other} holds no Keras 3 layer weights. Received: weights='{other}'"
    )


def test_describe_names_registered_and_unregistered_resnets():
    assert describe(model_weight_shapes(keras_resnet.ResNet56())) == "resnet56"
    custom = keras_resnet.build_resnet(
        keras_resnet.ResNetSpec("basic", (2, 1), (16, 32), stem="cifar", input_size=32)
    )
    assert describe(model_weight_shapes(custom), "mine") == (
        "mine (a ResNet with 2-1 blocks per stage: basic blocks, 16 stem channels, not a "
        "registered model)"
    )
