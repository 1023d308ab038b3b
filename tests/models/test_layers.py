"""The package's layers.

ZeroPadShortcut: the option-A shortcut is a strided identity plus zero channels.
FusedBatchNormalization: the same layer as Keras's BatchNormalization (outputs, moving
statistics, gradients, config), run by one fused kernel on TensorFlow and torch.
"""

import keras
import numpy as np
import pytest

from keras_resnet import FusedBatchNormalization, ZeroPadShortcut, get_model


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


FUSED_BACKENDS = ("tensorflow", "torch")
BN_ARGS = dict(epsilon=1e-5, momentum=0.9)


def _batch_norm_pair(shape, axis, seed=0):
    """Keras's layer and the fused one, built on ``shape`` with the same random weights."""
    rng = np.random.default_rng(seed)
    layers = (
        keras.layers.BatchNormalization(axis=axis, **BN_ARGS),
        FusedBatchNormalization(axis=axis, **BN_ARGS),
    )
    weights = [rng.normal(size=shape[axis]).astype("float32") for _ in range(2)]
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(weights[0])
        layer.beta.assign(weights[1])
    return layers


def _numpy(x):
    return keras.ops.convert_to_numpy(keras.ops.cast(x, "float32"))


# One value per channel is the case torch's kernel refuses, so it falls back there.
@pytest.mark.parametrize("shape", [(8, 5, 5, 6), (1, 1, 1, 6)])
@pytest.mark.parametrize("axis", [3, 1, -1])
def test_fused_batch_norm_matches_keras_batch_norm(shape, axis):
    keras_bn, fused_bn = _batch_norm_pair(shape, axis)
    rng = np.random.default_rng(1)
    for _ in range(2):  # two training calls: the moving averages compound
        x = rng.normal(2.0, 3.0, size=shape).astype("float32")
        np.testing.assert_allclose(
            _numpy(fused_bn(x, training=True)), _numpy(keras_bn(x, training=True)), atol=1e-4
        )
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(
            _numpy(getattr(fused_bn, name)), _numpy(getattr(keras_bn, name)), rtol=1e-5
        )
    np.testing.assert_allclose(_numpy(fused_bn(x)), _numpy(keras_bn(x)), atol=1e-5)


def test_fused_batch_norm_runs_the_fused_kernel_where_there_is_one():
    backend = keras.backend.backend()
    expected = backend if backend in FUSED_BACKENDS else None
    x = keras.ops.ones((4, 3, 3, 8))
    layer = FusedBatchNormalization(axis=3)
    assert layer._fused_kernel(x, None) == expected
    assert FusedBatchNormalization(axis=-1)._fused_kernel(x, None) == expected
    assert FusedBatchNormalization(axis=1)._fused_kernel(x, None) == expected
    assert FusedBatchNormalization(axis=2)._fused_kernel(x, None) is None  # not channels
    assert layer._fused_kernel(keras.ops.ones((4, 8)), None) is None  # not 4-D
    assert layer._fused_kernel(x, keras.ops.ones((4, 3, 3))) is None  # masked
    assert FusedBatchNormalization(axis=3, fused=False)._fused_kernel(x, None) is None
    batch_norms = [
        layer
        for layer in get_model("resnet20").layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batch_norms) == 19  # the stem's and two per block, 9 blocks
    assert all(type(layer) is FusedBatchNormalization for layer in batch_norms)


def _tiny_network(batch_norm_class):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = batch_norm_class(axis=3, name="bn", **BN_ARGS)(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_fused_batch_norm_trains_like_keras_batch_norm():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 6, 6, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    trained = []
    for batch_norm_class in (keras.layers.BatchNormalization, FusedBatchNormalization):
        model = _tiny_network(batch_norm_class)
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
        trained.append((losses, [_numpy(w) for w in model.weights]))
    (keras_losses, keras_weights), (fused_losses, fused_weights) = trained
    np.testing.assert_allclose(fused_losses, keras_losses, rtol=1e-4)
    assert keras_losses[-1] < keras_losses[0]
    for fused, reference in zip(fused_weights, keras_weights, strict=True):
        np.testing.assert_allclose(fused, reference, rtol=1e-3, atol=1e-5)


def test_fused_batch_norm_in_bfloat16_matches_keras_and_keeps_float32_statistics():
    shape = (8, 5, 5, 6)
    x = np.random.default_rng(4).normal(2.0, 3.0, size=shape).astype("float32")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras_bn, fused_bn = _batch_norm_pair(shape, axis=3)
        keras_out, fused_out = keras_bn(x, training=True), fused_bn(x, training=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(fused_out.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(fused_bn.moving_variance.dtype) == "float32"
    np.testing.assert_allclose(_numpy(fused_out), _numpy(keras_out), atol=0.05)
    np.testing.assert_allclose(
        _numpy(fused_bn.moving_variance), _numpy(keras_bn.moving_variance), rtol=0.02
    )


def test_frozen_fused_batch_norm_normalizes_with_moving_statistics():
    shape = (8, 5, 5, 6)
    keras_bn, fused_bn = _batch_norm_pair(shape, axis=3)
    x = np.random.default_rng(5).normal(2.0, 3.0, size=shape).astype("float32")
    for layer in (keras_bn, fused_bn):
        layer.trainable = False
    np.testing.assert_allclose(
        _numpy(fused_bn(x, training=True)), _numpy(keras_bn(x, training=True)), atol=1e-5
    )
    np.testing.assert_array_equal(_numpy(fused_bn.moving_mean), np.zeros(6))


def test_fused_batch_norm_config_round_trip():
    layer = FusedBatchNormalization(axis=3, name="bn", fused=False, **BN_ARGS)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is FusedBatchNormalization
    assert (clone.axis, clone.epsilon, clone.momentum, clone.name, clone.fused) == (
        3,
        1e-5,
        0.9,
        "bn",
        False,
    )
