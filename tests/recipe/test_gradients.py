"""recipe.gradients: the gradient probe on tiny networks, checked against finite differences."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_resnet import ResNetSpec, build_resnet
from keras_resnet.recipe import gradients


def tiny(blocks_per_stage: int, shortcut: str, seed: int = 0) -> keras.Model:
    """A CIFAR-style ResNet on 16x16 inputs: stem, two stages of widths 8 and 16, 4 classes."""
    keras.utils.set_random_seed(seed)
    spec = ResNetSpec(
        "basic", (blocks_per_stage,) * 2, (8, 16), stem="cifar", num_classes=4, input_size=16
    )
    return build_resnet(spec, shortcut=shortcut)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 16, 16, 3)).astype("float32"), np.arange(16) % 4


def training_mode_loss(model, x, y) -> float:
    loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=True))
    return float(keras.ops.convert_to_numpy(loss))


def test_conv_layers_are_in_depth_order_and_found_in_nested_models():
    model = keras.Sequential([keras.Input((16, 16, 3)), tiny(1, "none")])
    assert [layer.name for layer in gradients.conv_layers(model)] == [
        "conv1_conv",
        "conv2_block1_1_conv",
        "conv2_block1_2_conv",
        "conv3_block1_1_conv",
        "conv3_block1_2_conv",
    ]


@pytest.mark.parametrize("shortcut", ["none", "zero_pad"])
def test_probe_norm_equals_a_finite_difference_along_the_gradient(batch, shortcut):
    # Along the unit gradient direction u, (L(K + eps u) - L(K - eps u)) / (2 eps) -> |g|.
    x, y = batch
    model = tiny(1, shortcut)
    grads = gradients.conv_gradients(model, x, y)
    norms = gradients.conv_gradient_norms(model, x, y)
    assert list(norms) == [layer.name for layer in gradients.conv_layers(model)]
    for name in ("conv1_conv", "conv3_block1_2_conv"):
        kernel = model.get_layer(name).kernel
        original = keras.ops.convert_to_numpy(kernel)
        direction = grads[name] / np.linalg.norm(grads[name])
        eps = 1e-3
        kernel.assign(original + eps * direction)
        up = training_mode_loss(model, x, y)
        kernel.assign(original - eps * direction)
        down = training_mode_loss(model, x, y)
        kernel.assign(original)
        assert (up - down) / (2 * eps) == pytest.approx(norms[name], rel=1e-2)


def test_probe_leaves_weights_and_batch_norm_statistics_unchanged(batch):
    model = tiny(1, "zero_pad")
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.variables]
    gradients.conv_gradient_norms(model, *batch)
    for variable, value in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)


def test_without_the_shortcut_a_blocked_branch_stops_the_gradient(batch):
    # The known small case: with every block's last BN scale at zero (the "zero-init
    # residual" start), each residual branch outputs zero. The plain network's output then
    # no longer depends on its shallow layers, so their gradient is exactly zero, while the
    # residual network passes it through its identity shortcuts.
    norms = {}
    for shortcut in ("none", "zero_pad"):
        model = tiny(2, shortcut)
        for layer in model.layers:
            if layer.name.endswith("_2_bn"):
                layer.gamma.assign(np.zeros(layer.gamma.shape, "float32"))
        norms[shortcut] = gradients.conv_gradient_norms(model, *batch)
    assert norms["none"]["conv1_conv"] == 0.0
    assert norms["zero_pad"]["conv1_conv"] > 1e-3
    assert norms["none"]["conv3_block2_2_conv"] == 0.0  # its output is zeroed too


def test_at_initialization_batch_norm_makes_deep_plain_gradients_grow_toward_the_input(batch):
    # What the README measures on plain-56 and ResNet-56, here on every backend: with
    # batch statistics, the first-to-last gradient ratio of a deeper plain network rises
    # far above its shallow version's and above the residual network's of the same depth.
    ratios = {
        (n, shortcut): gradients.first_to_last_ratio(
            gradients.conv_gradient_norms(tiny(n, shortcut), *batch)
        )
        for n in (1, 6)
        for shortcut in ("none", "zero_pad")
    }
    assert ratios[(6, "none")] > 3 * ratios[(6, "zero_pad")]
    assert ratios[(6, "none")] > 5 * ratios[(1, "none")]


def test_first_to_last_ratio():
    assert gradients.first_to_last_ratio({"a": 0.2, "b": 1.0, "c": 0.5}) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="Received: norms="):
        gradients.first_to_last_ratio({"a": 1.0})


def test_model_without_convolutions_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layer"):
        gradients.conv_gradients(model, np.zeros((1, 4)), np.zeros(1))


def test_backbone_norms_see_the_normalized_images_without_augmentation():
    from keras_resnet.recipe.config import TrainConfig
    from keras_resnet.recipe.training import build_training_model

    mean, std = np.array([120.0, 110.0, 100.0]), np.array([60.0, 50.0, 40.0])
    keras.utils.set_random_seed(0)
    model = build_training_model(TrainConfig(model="resnet20"), mean, std, num_classes=4)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, *model.input.shape[1:])).astype("uint8")
    labels = np.arange(4)
    channels = (1, 3, 1, 1) if keras.config.image_data_format() == "channels_first" else 3
    normalized = ((images - mean.reshape(channels)) / std.reshape(channels)).astype("float32")
    expected = gradients.conv_gradient_norms(model.layers[-1], normalized, labels)
    norms = gradients.backbone_gradient_norms(model, images, labels)
    assert list(norms) == list(expected) and len(norms) == 19  # ResNet-20: 19 convolutions
    np.testing.assert_allclose(list(norms.values()), list(expected.values()), rtol=1e-4)
