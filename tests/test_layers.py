"""ZeroPadShortcut: the option-A shortcut is a strided identity plus zero channels."""

import keras
import numpy as np
import pytest

from keras_resnet import ZeroPadShortcut


@pytest.mark.parametrize("strides", [1, 2])
def test_zero_pad_shortcut_is_strided_identity_plus_zero_channels(strides):
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(filters=5, strides=strides)(x))
    expected = np.concatenate(
        [
            x[:, ::strides, ::strides, :],
            np.zeros((2,) + x[:, ::strides, ::strides].shape[1:3] + (2,)),
        ],
        axis=-1,
    )
    np.testing.assert_array_equal(y, expected)


def test_zero_pad_shortcut_channels_first(channels_first):
    x = np.arange(2 * 3 * 4 * 4, dtype="float32").reshape(2, 3, 4, 4)
    layer = ZeroPadShortcut(filters=6, strides=2)
    y = keras.ops.convert_to_numpy(layer(x))
    assert layer.data_format == "channels_first"
    np.testing.assert_array_equal(y[:, :3], x[:, :, ::2, ::2])
    np.testing.assert_array_equal(y[:, 3:], 0.0)


def test_zero_pad_shortcut_has_no_weights_and_symbolic_shape():
    layer = ZeroPadShortcut(filters=32, strides=2)
    out = layer(keras.Input((15, 16, 16)))
    assert layer.weights == []
    assert out.shape == (None, 8, 8, 32)


def test_zero_pad_shortcut_refuses_to_drop_channels():
    with pytest.raises(ValueError, match=r"use a projection shortcut. Received: filters=8"):
        ZeroPadShortcut(filters=8)(keras.Input((4, 4, 16)))


def test_zero_pad_shortcut_config_round_trip():
    layer = ZeroPadShortcut(filters=12, strides=2, name="short")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, ZeroPadShortcut)
    assert (clone.filters, clone.strides, clone.data_format, clone.name) == (
        12,
        2,
        "channels_last",
        "short",
    )
