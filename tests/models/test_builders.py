"""The model zoo: shapes, parameter counts against references, names, training, bad input."""

import keras
import numpy as np
import pytest
from conftest import imagenet_model

import keras_resnet
from keras_resnet import MODEL_SPECS, ResNetSpec, build_resnet, get_model, list_models
from keras_resnet.models import blocks
from keras_resnet.models.builders import total_stride
from keras_resnet.models.statistics import trainable_parameters

# torchvision.models.resnetXX(num_classes=1000): sum(p.numel() for p in model.parameters()).
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
# He et al. 2016, table 6 (CIFAR-10, option A), in millions.
PAPER_CIFAR_PARAMETERS_M = {
    "resnet20": 0.27,
    "resnet32": 0.46,
    "resnet44": 0.66,
    "resnet56": 0.85,
    "resnet110": 1.7,
}
# Channels of the last stage's output: 512 for BasicBlock, 4 x 512 for Bottleneck (He et
# al. 2016, table 1), 64 for the CIFAR family (section 4.2).
LAST_STAGE_CHANNELS = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "resnet20": 64,
    "resnet32": 64,
    "resnet44": 64,
    "resnet56": 64,
    "resnet110": 64,
}
BUILDERS = {
    "resnet18": keras_resnet.ResNet18,
    "resnet34": keras_resnet.ResNet34,
    "resnet50": keras_resnet.ResNet50,
    "resnet101": keras_resnet.ResNet101,
    "resnet152": keras_resnet.ResNet152,
    "resnet20": keras_resnet.ResNet20,
    "resnet32": keras_resnet.ResNet32,
    "resnet44": keras_resnet.ResNet44,
    "resnet56": keras_resnet.ResNet56,
    "resnet110": keras_resnet.ResNet110,
    "resnet50_v2": keras_resnet.ResNet50V2,
    "resnet101_v2": keras_resnet.ResNet101V2,
    "resnet152_v2": keras_resnet.ResNet152V2,
}
# New rows that differ from a faster row of their family only by more blocks: their training
# step runs with -m slow (preact_resnet1001's build alone takes tens of seconds;
# tests/models/test_variants.py checks its parameter count from the row in the normal suite).
SLOW_ROWS = {
    "resnet101_v1",
    "resnet152_v1",
    "resnet101_v2",
    "resnet152_v2",
    "resnet101d",
    "resnet152d",
    "preact_resnet1001",
}


def cifar_option_a_parameters(n: int, num_classes: int = 10) -> int:
    """Count the paper's CIFAR ResNet-(6n+2) by hand: convs, BN scale+offset, classifier."""
    total = 3 * 3 * 3 * 16 + 2 * 16  # stem conv + BN
    in_channels = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 3 * 3 * in_channels * width + 2 * width
            total += 3 * 3 * width * width + 2 * width
            in_channels = width
    return total + 64 * num_classes + num_classes


def test_every_constructor_builds_its_row():
    # The original rows and keras.applications' V2 names have constructors; every row is
    # reached by name with get_model.
    assert set(BUILDERS) <= set(list_models())
    assert list_models() == list(MODEL_SPECS)
    for name in ("resnet20", "resnet50_v2"):
        model = BUILDERS[name](input_shape=(32, 32, 3), stem="cifar", num_classes=3)
        reference = get_model(name, input_shape=(32, 32, 3), stem="cifar", num_classes=3)
        assert model.name == name
        assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_imagenet_parameter_counts_match_torchvision(name):
    assert trainable_parameters(imagenet_model(name)) == TORCHVISION_PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PAPER_CIFAR_PARAMETERS_M))
def test_cifar_parameter_counts_match_paper(name):
    model = BUILDERS[name]()
    count = trainable_parameters(model)
    n = MODEL_SPECS[name].blocks_per_stage[0]
    assert count == cifar_option_a_parameters(n)
    reference = PAPER_CIFAR_PARAMETERS_M[name]
    assert abs(count / 1e6 - reference) < 0.05 * reference
    assert model.count_params() > count  # moving statistics exist but are not trainable


def test_cifar_family_is_6n_plus_2_layers():
    for name, n in [("resnet20", 3), ("resnet32", 5), ("resnet44", 7), ("resnet56", 9)]:
        assert MODEL_SPECS[name].depth == 6 * n + 2 == int(name.removeprefix("resnet"))
    assert MODEL_SPECS["resnet110"].depth == 110


@pytest.mark.parametrize("name", sorted(LAST_STAGE_CHANNELS))
def test_the_last_stage_has_the_papers_channels(name):
    features = BUILDERS[name](input_shape=(32, 32, 3), include_top=False)
    assert features.output.shape[-1] == LAST_STAGE_CHANNELS[name]


def stage_output_shapes(model, spec):
    return [
        tuple(model.get_layer(f"conv{stage + 2}_block{blocks}_out").output.shape[1:])
        for stage, blocks in enumerate(spec.blocks_per_stage)
    ]


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_imagenet_stage_shapes(name):
    spec = MODEL_SPECS[name]
    model = imagenet_model(name)
    expansion = LAST_STAGE_CHANNELS[name] // 512
    assert stage_output_shapes(model, spec) == [
        (56, 56, 64 * expansion),
        (28, 28, 128 * expansion),
        (14, 14, 256 * expansion),
        (7, 7, 512 * expansion),
    ]
    assert model.get_layer("pool1_pool").output.shape[1:] == (56, 56, 64)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "resnet110"])
def test_cifar_stem_stage_shapes(name):
    spec = MODEL_SPECS[name]
    model = get_model(name, input_shape=(32, 32, 3), stem="cifar")
    sizes = [shape[0] for shape in stage_output_shapes(model, spec)]
    assert sizes == [32, 16, 8, 4][: len(spec.blocks_per_stage)]
    assert "pool1_pool" not in [layer.name for layer in model.layers]


def test_channels_first_shapes_and_batch_norm_axis(channels_first):
    model = keras_resnet.ResNet50(input_shape=(3, 224, 224), num_classes=10)
    spec = MODEL_SPECS["resnet50"]
    assert stage_output_shapes(model, spec)[-1] == (2048, 7, 7)
    assert model.get_layer("conv3_block1_2_bn").axis == 1
    assert model.get_layer("conv3_block1_0_conv").data_format == "channels_first"
    cifar = keras_resnet.ResNet20(input_shape=(3, 32, 32))
    assert stage_output_shapes(cifar, MODEL_SPECS["resnet20"])[-1] == (64, 8, 8)
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype("float32")
    assert cifar.predict(x, verbose=0).shape == (2, 10)


def test_channels_last_batch_norm_axis():
    model = keras_resnet.ResNet18(input_shape=(32, 32, 3))
    assert all(
        layer.axis in (3, -1)
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_stem_is_chosen_by_input_size():
    small = keras_resnet.ResNet18(input_shape=(32, 32, 3))
    large = keras_resnet.ResNet18(input_shape=(224, 224, 3))
    assert small.get_layer("conv1_conv").kernel_size == (3, 3)
    assert small.get_layer("conv1_conv").strides == (1, 1)
    assert large.get_layer("conv1_conv").kernel_size == (7, 7)
    assert large.get_layer("conv1_conv").strides == (2, 2)
    assert "pool1_pool" in [layer.name for layer in large.layers]
    # The paper's CIFAR family keeps its 3x3 stem at any size.
    assert keras_resnet.ResNet20(input_shape=(224, 224, 3)).get_layer("conv1_conv").kernel_size == (
        3,
        3,
    )


def test_layer_names_follow_keras_applications():
    names = {layer.name for layer in keras_resnet.ResNet50(input_shape=(64, 64, 3)).layers}
    expected = {
        "conv1_conv",
        "conv1_bn",
        "conv1_relu",
        "conv2_block1_0_conv",
        "conv2_block1_0_bn",
        "conv2_block1_1_conv",
        "conv2_block1_2_bn",
        "conv2_block1_3_conv",
        "conv2_block1_add",
        "conv2_block1_out",
        "conv5_block3_out",
        "avg_pool",
        "predictions",
    }
    assert expected <= names
    assert "conv2_block2_0_conv" not in names  # identity shortcut inside a stage


def test_architecture_details():
    model = keras_resnet.ResNet50(input_shape=(64, 64, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(not conv.use_bias for conv in convs)
    # v1.5: the stride of a downsampling bottleneck sits on the 3x3 convolution.
    assert model.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_0_conv").strides == (2, 2)
    assert model.get_layer("conv3_block2_2_conv").strides == (1, 1)
    bn = model.get_layer("conv1_bn")
    assert (bn.epsilon, bn.momentum) == (1e-5, 0.9)
    basic = keras_resnet.ResNet18(input_shape=(32, 32, 3))
    assert basic.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert basic.get_layer("conv2_block2_2_bn").output.shape == (None, 32, 32, 64)


def test_shortcut_options():
    def count(model, kind):
        return sum(isinstance(layer, kind) for layer in model.layers)

    option_a = keras_resnet.ResNet20()
    option_b = keras_resnet.ResNet20(shortcut="projection")
    option_c = keras_resnet.ResNet20(shortcut="projection_all")
    assert count(option_a, keras_resnet.ZeroPadShortcut) == 2
    assert count(option_a, keras.layers.Conv2D) == 19
    assert count(option_b, keras.layers.Conv2D) == 19 + 2
    assert count(option_c, keras.layers.Conv2D) == 19 + 9
    a, b = trainable_parameters(option_a), trainable_parameters(option_b)
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert b - a == projections
    assert count(keras_resnet.ResNet18(), keras_resnet.ZeroPadShortcut) == 0


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet18", "resnet50"])
def test_plain_network_is_option_a_without_the_additions(name):
    residual = get_model(name, input_shape=(32, 32, 3), shortcut="zero_pad")
    plain = get_model(name, input_shape=(32, 32, 3), shortcut="none")
    assert trainable_parameters(plain) == trainable_parameters(residual)
    assert plain.count_params() == residual.count_params()
    kinds = (keras.layers.Add, keras_resnet.ZeroPadShortcut)
    assert not [layer.name for layer in plain.layers if isinstance(layer, kinds)]
    # Only the additions and option A's shortcuts are missing; every other layer is kept.
    names = [layer.name for layer in residual.layers if not isinstance(layer, kinds)]
    assert [layer.name for layer in plain.layers] == names
    last_bn = "conv2_block1_2_bn" if MODEL_SPECS[name].block == "basic" else "conv2_block1_3_bn"
    assert plain.get_layer("conv2_block1_out").input is plain.get_layer(last_bn).output


def test_plain_network_is_the_chain_of_its_layers():
    keras.utils.set_random_seed(0)
    plain = keras_resnet.ResNet20(shortcut="none", classifier_activation=None)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    y = x
    for layer in plain.layers[1:]:  # in a chain, each layer feeds the next
        y = layer(y, training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )


def test_option_a_shortcut_inside_the_model_is_strided_identity_plus_zeros():
    model = keras_resnet.ResNet20()
    probe = keras.Model(
        model.input,
        [
            model.get_layer("conv2_block3_out").output,
            model.get_layer("conv3_block1_0_shortcut").output,
        ],
    )
    x = np.random.default_rng(1).uniform(0, 1, size=(2, 32, 32, 3)).astype("float32")
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(x))
    np.testing.assert_array_equal(after[..., :16], before[:, ::2, ::2, :])
    np.testing.assert_array_equal(after[..., 16:], 0.0)


def test_top_and_pooling_options():
    features = keras_resnet.ResNet18(input_shape=(32, 32, 3), include_top=False)
    assert features.output.shape == (None, 4, 4, 512)
    pooled = keras_resnet.ResNet50(input_shape=(64, 64, 3), include_top=False, pooling="max")
    assert pooled.output.shape == (None, 2048)
    assert pooled.layers[-1].name == "max_pool"
    avg = keras_resnet.ResNet20(include_top=False, pooling="avg")
    assert avg.output.shape == (None, 64)
    # Without the top, num_classes is not used and not checked.
    assert keras_resnet.ResNet20(include_top=False, num_classes=0).output.shape == (None, 8, 8, 64)


def test_classifier_activation():
    x = np.random.default_rng(0).uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    probabilities = keras_resnet.ResNet20().predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    logits = keras_resnet.ResNet20(classifier_activation=None).predict(x, verbose=0)
    assert np.abs(logits.sum(axis=1) - 1.0).max() > 1e-3
    assert keras_resnet.ResNet20().get_layer("predictions").units == 10


def test_defaults_and_names():
    assert keras_resnet.ResNet50().input.shape == (None, 224, 224, 3)
    assert keras_resnet.ResNet50().output.shape == (None, 1000)
    assert keras_resnet.ResNet56().input.shape == (None, 32, 32, 3)
    assert keras_resnet.ResNet56().name == "resnet56"
    assert build_resnet(56).name == "resnet56"
    assert keras_resnet.ResNet18(name="backbone").name == "backbone"
    custom = build_resnet(ResNetSpec("basic", (1, 1), (8, 16), stem="cifar", input_size=16))
    assert custom.output.shape == (None, 1000)
    assert isinstance(custom, keras.Model)


def test_resnet200_is_one_row(monkeypatch):
    monkeypatch.setitem(
        MODEL_SPECS, "resnet200", ResNetSpec("bottleneck", (3, 24, 36, 3), (64, 128, 256, 512))
    )
    assert "resnet200" in list_models()
    model = get_model("resnet200", input_shape=(32, 32, 3), num_classes=10)
    assert model.get_layer("conv4_block36_out").output.shape == (None, 8, 8, 1024)


# Rows whose inference at the initial moving statistics (mean 0, variance 1) overflows
# float32: batch norm then passes the residual stream through unscaled, so each of the
# 1001-layer net's 333 pre-activation blocks roughly doubles it until it overflows (NaN at
# the classifier), as in any framework's pre-activation net in inference mode before
# its statistics are learned. The training step itself is finite. These rows check inference
# with the statistics of the batch instead (momentum 0, one forward pass in training mode).
STATISTICS_NEEDED_ROWS = {"preact_resnet1001"}


def _row_param(name):
    return pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_ROWS else [])


def _set_moving_statistics_from(model, x):
    """Make every batch norm's moving statistics those of ``x``."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x, training=True)


@pytest.mark.parametrize("name", [_row_param(n) for n in list_models()])
def test_forward_and_training_step_for_every_model(name):
    # Eager, so that tracing ResNet-152's graph does not dominate the suite; compiled
    # training is exercised on small models by the training tests.
    keras.utils.set_random_seed(0)
    spec = MODEL_SPECS[name]
    # The last stage sees at least 2x2 (ResNet-D's fixed deep stem needs 64): batch norm
    # over a 1x1 map of two images normalizes two values and its gradients explode.
    size = max(16, 2 * total_stride(spec, spec.stem or "cifar"))
    model = get_model(name, input_shape=(size, size, 3), num_classes=4)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    y = np.array([0, 3])
    first_conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    before = keras.ops.convert_to_numpy(first_conv.kernel).copy()
    loss = model.train_on_batch(x, y)
    after = keras.ops.convert_to_numpy(first_conv.kernel)
    assert np.isfinite(loss)
    assert not np.allclose(before, after)
    if name in STATISTICS_NEEDED_ROWS:
        _set_moving_statistics_from(model, x)
        in_training = keras.ops.convert_to_numpy(model(x, training=True))
    prediction = keras.ops.convert_to_numpy(model(x, training=False))
    assert prediction.shape == (2, 4)
    assert np.all(np.isfinite(prediction))
    if name in STATISTICS_NEEDED_ROWS:
        np.testing.assert_allclose(prediction, in_training, atol=1e-3)


# Bad input: a ValueError naming the argument and the received value, before any layer.


@pytest.fixture
def no_layer_may_be_built(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were validated")

    monkeypatch.setattr(blocks, "conv_bn", fail)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"num_classes": -3}, "Received: num_classes=-3"),
        ({"num_classes": 2.5}, "Received: num_classes=2.5"),
        ({"input_shape": (32, 32)}, r"Received: input_shape=\(32, 32\)"),
        ({"input_shape": (32, 32, 0)}, r"Received: input_shape=\(32, 32, 0\)"),
        ({"input_shape": (32, 32, None)}, r"Received: input_shape=\(32, 32, None\)"),
        ({"input_shape": (32.0, 32, 3)}, r"Received: input_shape=\(32.0, 32, 3\)"),
        ({"input_shape": "32x32"}, "Received: input_shape='32x32'"),
        ({"input_shape": (4, 4, 3)}, r"at least 8. Received: input_shape=\(4, 4, 3\)"),
        (
            {"input_shape": (31, 64, 3), "stem": "imagenet"},
            r"at least 32. Received: input_shape=\(31, 64, 3\)",
        ),
        ({"shortcut": "option_d"}, "Received: shortcut='option_d'"),
        ({"stem": "tiny"}, "Received: stem='tiny'"),
        # A variable size cannot choose the stem by size.
        ({"stem": None, "input_shape": (32, None, 3)}, "Received: stem=None"),
        ({"dropout_rate": 1.0}, "Received: dropout_rate=1.0"),
        ({"dropout_rate": -0.1}, "Received: dropout_rate=-0.1"),
        ({"zero_init_residual": "yes"}, "Received: zero_init_residual='yes'"),
        ({"include_top": False, "pooling": "mean"}, "Received: pooling='mean'"),
        ({"weights": "/nonexistent/weights.h5"}, "Received: weights='/nonexistent/weights.h5'"),
    ],
)
def test_bad_arguments_raise_before_building(no_layer_may_be_built, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        keras_resnet.ResNet18(**kwargs)
    argument = next(iter(kwargs)) if "pooling" not in kwargs else "pooling"
    assert f"`{argument}`" in str(error.value)


def test_unknown_model_name_and_depth(no_layer_may_be_built):
    with pytest.raises(ValueError, match=r"Available: resnet18, .*Received: name='resnet19'"):
        get_model("resnet19")
    with pytest.raises(ValueError, match=r"Available: 18, 34, .*Received: depth=19"):
        build_resnet(19)


def test_weights_path_loads_saved_weights(tmp_path):
    source = keras_resnet.ResNet20()
    path = str(tmp_path / "resnet20.weights.h5")
    source.save_weights(path)
    loaded = keras_resnet.ResNet20(weights=path)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6
    )


def test_classifier_stays_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras_resnet.ResNet20()
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"
