"""The variant families against their references: keras.applications layer for layer,
timm's ResNet-D, the pre-activation and Wide ResNet papers; zero-initialized residuals,
dropout and inputs of any size."""

import dataclasses

import keras
import numpy as np
import pytest
from conftest import KERAS_APPLICATIONS

import keras_resnet
from keras_resnet import MODEL_SPECS, ResNetSpec, build_resnet, get_model
from keras_resnet.models.statistics import trainable_parameters

FAST_KERAS_APPLICATIONS = ("resnet50_v1", "resnet50_v2")
# timm's resnet50d/101d/152d (stem_width=32, stem_type="deep", avg_down=True), 1000 classes:
# torchvision's counts plus the deep stem's 19,232 (3*9*32 + 32*9*32 + 32*9*64 + BN
# 2*(32+32+64), less the 7x7 stem's 3*49*64 + 2*64); the average pool adds nothing.
TIMM_PARAMETERS = {"resnet50d": 25_576_264, "resnet101d": 44_568_392, "resnet152d": 60_212_040}
# He et al. 2016b ("Identity Mappings"), table 2/3, and Zagoruyko & Komodakis 2016, table 2
# (CIFAR-10), in millions. The papers' rounding leaves out the batch norms' scale and offset
# (preact_resnet1001: 10.33M with them, 10.18M without), so a tolerance of 2% is used.
PAPER_PARAMETERS_M = {
    "preact_resnet164": 1.7,
    "preact_resnet1001": 10.2,
    "wrn28_10": 36.5,
}


def x_batch(size=32, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(batch, size, size, 3)).astype("float32")


def weight_layout(model):
    """(layer name, weight shapes) of every layer with weights, in the model's order."""
    return [
        (layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]


def randomize(model, seed=0):
    """Non-trivial BN statistics and conv biases, so that copying them is checked."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))


@pytest.mark.parametrize(
    "name",
    [
        n if n in FAST_KERAS_APPLICATIONS else pytest.param(n, marks=pytest.mark.slow)
        for n in KERAS_APPLICATIONS
    ],
)
def test_keras_applications_layout_layer_for_layer(name):
    size = 64  # the layout does not depend on the size; the forward pass is cheaper
    reference = getattr(keras.applications, KERAS_APPLICATIONS[name])(
        weights=None, input_shape=(size, size, 3), classifier_activation=None
    )
    model = get_model(
        name, input_shape=(size, size, 3), stem="imagenet", classifier_activation=None
    )
    assert weight_layout(model) == weight_layout(reference)
    assert [w.path for w in model.weights] == [w.path for w in reference.weights]
    assert model.count_params() == reference.count_params()
    assert trainable_parameters(model) == trainable_parameters(reference)
    # Loading keras.applications' weights is a copy by layer name; the outputs then agree.
    randomize(reference)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(reference.get_layer(layer.name).get_weights())
    x = x_batch(size)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x, training=False)),
        keras.ops.convert_to_numpy(reference(x, training=False)),
        rtol=1e-4,
        atol=1e-5,
    )


def test_keras_applications_details_are_columns_of_the_table():
    v1 = get_model("resnet50_v1", input_shape=(64, 64, 3), stem="imagenet")
    assert v1.get_layer("conv3_block1_1_conv").strides == (2, 2)  # the paper's bottleneck
    assert v1.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert all(layer.use_bias for layer in v1.layers if isinstance(layer, keras.layers.Conv2D))
    assert v1.get_layer("conv1_bn").epsilon == 1.001e-5
    v2 = get_model("resnet50_v2", input_shape=(64, 64, 3), stem="imagenet")
    assert v2.get_layer("conv1_conv").use_bias and "conv1_bn" not in [x.name for x in v2.layers]
    assert not v2.get_layer("conv2_block1_1_conv").use_bias
    # The stride sits on the last block of a stage; its identity is a strided 1x1 max-pool.
    assert v2.get_layer("conv2_block3_2_conv").strides == (2, 2)
    assert v2.get_layer("conv2_block1_2_conv").strides == (1, 1)
    pool = v2.get_layer("conv2_block3_0_pool")
    assert isinstance(pool, keras.layers.MaxPooling2D) and pool.pool_size == (1, 1)
    assert v2.get_layer("conv5_block3_out").output.shape == (None, 2, 2, 2048)
    assert v2.get_layer("post_bn").epsilon == 1.001e-5


def test_v2_basic_rows_in_the_same_style():
    model = get_model("resnet18_v2", input_shape=(64, 64, 3), stem="imagenet")
    assert model.get_layer("conv2_block2_0_pool").strides == (2, 2)
    assert model.get_layer("conv3_block1_0_conv").strides == (1, 1)  # 64 -> 128 channels
    assert model.get_layer("conv3_block1_0_conv").use_bias
    assert model.get_layer("conv5_block2_out").output.shape == (None, 2, 2, 512)
    assert isinstance(model.get_layer("post_relu"), keras.layers.Activation)


@pytest.mark.parametrize(
    "name",
    ["resnet50d", *(pytest.param(n, marks=pytest.mark.slow) for n in ("resnet101d", "resnet152d"))],
)
def test_resnet_d_parameter_counts_match_timm(name):
    model = get_model(name, num_classes=1000, input_shape=(64, 64, 3))
    assert trainable_parameters(model) == TIMM_PARAMETERS[name]


def test_resnet_d_differs_from_torchvision_by_the_deep_stem_only():
    # What the builds above check at 50 layers holds for timm's figures at every depth.
    from test_builders import TORCHVISION_PARAMETERS

    deep_stem = 3 * 9 * 32 + 32 * 9 * 32 + 32 * 9 * 64 + 2 * (32 + 32 + 64)
    seven_by_seven = 3 * 49 * 64 + 2 * 64
    for depth in (50, 101, 152):
        difference = TIMM_PARAMETERS[f"resnet{depth}d"] - TORCHVISION_PARAMETERS[f"resnet{depth}"]
        assert difference == deep_stem - seven_by_seven == 19_232


def test_resnet_d_deep_stem_and_average_pool_shortcut():
    model = keras_resnet.get_model("resnet50d", input_shape=(64, 64, 3))
    strides = [model.get_layer(f"conv1_{i}_conv").strides for i in (1, 2, 3)]
    assert strides == [(2, 2), (1, 1), (1, 1)]
    assert [model.get_layer(f"conv1_{i}_conv").filters for i in (1, 2, 3)] == [32, 32, 64]
    assert "conv2_block1_0_pool" not in [x.name for x in model.layers]  # stride 1: no pool
    pool = model.get_layer("conv3_block1_0_pool")
    assert isinstance(pool, keras.layers.AveragePooling2D) and pool.pool_size == (2, 2)
    assert model.get_layer("conv3_block1_0_conv").strides == (1, 1)
    # The projection reads the 2x2 average of the previous block's output.
    probe = keras.Model(model.input, [model.get_layer("conv2_block3_out").output, pool.output])
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(x_batch(64)))
    expected = before.reshape(2, 8, 2, 8, 2, -1).mean(axis=(2, 4))
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)


def preact_parameters(spec, num_classes=10):
    """Count a CIFAR pre-activation net from its row by hand: convs (no bias), BNs, classifier.

    Each block: the pre-activation BN over its input, a BN after every conv but the last,
    and a 1x1 projection (no BN) where the channels or the resolution change.
    """
    expansion = 4 if spec.block == "bottleneck" else 1
    stem = spec.stem_width or spec.widths[0]
    total = 3 * 3 * 3 * stem
    in_channels = stem
    for stage, (width, blocks) in enumerate(zip(spec.widths, spec.blocks_per_stage, strict=True)):
        out = expansion * width
        if spec.block == "bottleneck":
            convs = [(1, in_channels, width), (3, width, width), (1, width, out)]
        else:
            convs = [(3, in_channels, width), (3, width, width)]
        for block in range(blocks):
            if block > 0:
                convs[0] = (convs[0][0], out, width)
            first_in = convs[0][1]
            total += 2 * first_in  # the pre-activation BN
            total += sum(k * k * cin * cout for k, cin, cout in convs)
            total += sum(2 * cout for _, _, cout in convs[:-1])
            if first_in != out or (block == 0 and stage > 0):
                total += first_in * out
        in_channels = out
    return total + 2 * in_channels + in_channels * num_classes + num_classes  # post_bn, fc


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS_M))
def test_preact_and_wide_parameter_counts_match_the_papers(name):
    # Counted from the row (building preact_resnet1001 takes tens of seconds: see the
    # slow test below, which checks that the count equals the built model's).
    count = preact_parameters(MODEL_SPECS[name])
    reference = PAPER_PARAMETERS_M[name]
    assert abs(count / 1e6 - reference) < 0.02 * reference


# The count by hand against built models: small rows of both block types in the normal
# suite, every registered row with -m slow.
SMALL_PREACT = {
    "basic": ResNetSpec("basic", (2, 2, 2), (16, 32, 64), stem="cifar", preact=True),
    "bottleneck": ResNetSpec("bottleneck", (2, 2, 2), (16, 32, 64), stem="cifar", preact=True),
    "wide": ResNetSpec("basic", (2, 2, 2), (32, 64, 128), stem="cifar", preact=True, stem_width=16),
}


@pytest.mark.parametrize(
    "name",
    [
        *SMALL_PREACT,
        "wrn16_8",
        *(
            pytest.param(n, marks=pytest.mark.slow)
            for n in (
                "preact_resnet110",
                "preact_resnet164",
                "preact_resnet1001",
                "wrn28_10",
                "wrn40_4",
            )
        ),
    ],
)
def test_preact_parameter_count_by_hand_equals_the_built_model(name):
    spec = SMALL_PREACT.get(name) or MODEL_SPECS[name]
    model = build_resnet(spec, num_classes=10, input_shape=(32, 32, 3))
    assert trainable_parameters(model) == preact_parameters(spec)


def test_wide_resnet_layout():
    model = get_model("wrn28_10")
    assert MODEL_SPECS["wrn28_10"].depth == 28
    assert model.get_layer("conv1_conv").filters == 16
    assert [model.get_layer(f"conv{s}_block4_out").output.shape[-1] for s in (2, 3, 4)] == [
        160,
        320,
        640,
    ]
    assert model.get_layer("conv2_block1_0_conv").strides == (1, 1)  # 16 -> 160 channels


def test_dropout_sits_before_the_last_convolution_and_zero_is_no_layer():
    with_dropout = get_model("wrn16_8", dropout_rate=0.3)
    without = get_model("wrn16_8")
    dropouts = [x for x in with_dropout.layers if isinstance(x, keras.layers.Dropout)]
    assert len(dropouts) == sum(MODEL_SPECS["wrn16_8"].blocks_per_stage)
    assert all(d.rate == 0.3 for d in dropouts)
    conv = with_dropout.get_layer("conv3_block2_2_conv")
    assert conv.input is with_dropout.get_layer("conv3_block2_dropout").output
    assert not [x for x in without.layers if isinstance(x, keras.layers.Dropout)]
    names = [x.name for x in with_dropout.layers if not isinstance(x, keras.layers.Dropout)]
    assert [x.name for x in without.layers] == names
    # At inference dropout is the identity: with the same weights, the same outputs.
    without.set_weights(with_dropout.get_weights())
    x = x_batch()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(with_dropout(x, training=False)),
        keras.ops.convert_to_numpy(without(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def probe(model, names, x):
    outputs = [model.get_layer(n).output for n in names]
    return [keras.ops.convert_to_numpy(t) for t in keras.Model(model.input, outputs)(x)]


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_zero_init_residual_makes_each_block_its_shortcut(block):
    spec = ResNetSpec(block, (2, 2), (8, 16), stem="cifar", input_size=16)
    model = build_resnet(spec, zero_init_residual=True, num_classes=3)
    x = x_batch(16)
    last = "2" if block == "basic" else "3"
    # Post-activation: the block's output is relu(shortcut): here the projection's BN.
    out, short = probe(model, ["conv3_block1_out", "conv3_block1_0_bn"], x)
    np.testing.assert_allclose(out, np.maximum(short, 0.0), atol=1e-6)
    identity_in, identity_out = probe(model, ["conv3_block1_out", "conv3_block2_out"], x)
    np.testing.assert_allclose(identity_out, identity_in, atol=1e-6)
    assert not np.any(keras.ops.convert_to_numpy(model.get_layer(f"conv3_block1_{last}_bn").gamma))
    # Off (the default), the scales start at 1 and the block is not its shortcut.
    default = build_resnet(spec, num_classes=3)
    gamma = keras.ops.convert_to_numpy(default.get_layer(f"conv3_block1_{last}_bn").gamma)
    assert np.all(gamma == 1)
    out, short = probe(default, ["conv3_block1_out", "conv3_block1_0_bn"], x)
    assert np.abs(out - np.maximum(short, 0.0)).max() > 1e-3


def test_zero_init_residual_in_a_pre_activation_net():
    spec = ResNetSpec(
        "bottleneck",
        (2, 2),
        (8, 16),
        stem="cifar",
        input_size=16,
        preact=True,
        conv_bias="unnormalized",
    )
    model = build_resnet(spec, zero_init_residual=True, num_classes=3)
    out, short = probe(model, ["conv3_block1_out", "conv3_block1_0_conv"], x_batch(16))
    np.testing.assert_allclose(out, short, atol=1e-6)
    assert not np.any(keras.ops.convert_to_numpy(model.get_layer("conv3_block1_2_bn").gamma))


VARIABLE_SIZE_CASES = {
    "resnet18": (MODEL_SPECS["resnet18"], "imagenet"),
    # Small rows with the D and V2 columns (the registered ones only add blocks).
    "d": (
        ResNetSpec(
            "bottleneck", (1, 1, 1, 1), (8, 16, 32, 64), stem="deep", shortcut="avg_projection"
        ),
        None,
    ),
    "v2": (
        dataclasses.replace(MODEL_SPECS["resnet50_v2"], blocks_per_stage=(1, 2, 2, 1)),
        "imagenet",
    ),
}


@pytest.mark.parametrize("case", sorted(VARIABLE_SIZE_CASES))
def test_any_input_size_with_an_explicit_stem(case):
    spec, stem = VARIABLE_SIZE_CASES[case]
    model = build_resnet(
        spec, input_shape=(None, None, 3), stem=stem, num_classes=5, classifier_activation=None
    )
    assert model.input.shape == (None, None, None, 3)
    for height, width in [(64, 64), (96, 72)]:
        x = np.random.default_rng(height).uniform(0, 1, (2, height, width, 3)).astype("float32")
        fixed = build_resnet(
            spec,
            input_shape=(height, width, 3),
            stem=stem,
            num_classes=5,
            classifier_activation=None,
        )
        fixed.set_weights(model.get_weights())
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(model(x, training=False)),
            keras.ops.convert_to_numpy(fixed(x, training=False)),
            rtol=1e-4,
            atol=1e-5,
        )


def test_variable_size_needs_a_stem_and_known_sides_are_still_checked():
    with pytest.raises(ValueError, match=r"`stem` must be given .*Received: stem=None"):
        keras_resnet.ResNet50(input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"at least 32. Received: input_shape=\(None, 16, 3\)"):
        keras_resnet.ResNet50(input_shape=(None, 16, 3), stem="imagenet")
    # A row with a fixed stem (the CIFAR family, ResNet-D) needs none.
    assert keras_resnet.ResNet20(input_shape=(None, None, 3)).output.shape == (None, 10)


@pytest.mark.parametrize(
    "column, value",
    [
        ("downsample", "middle"),
        ("conv_bias", "some"),
        ("bottleneck_stride", "5x5"),
        ("stem", "tiny"),
    ],
)
def test_a_row_with_an_unknown_column_value_is_refused(column, value):
    with pytest.raises(ValueError, match=rf"`{column}` must be one of .*Received: {column}="):
        ResNetSpec("basic", (1,), (8,), **{column: value})
