"""torchvision state dicts in the Keras models: the mapping, its errors, the CLI, and parity.

The parity tests compare with logits that torchvision itself computed. torchvision needs
``torch==2.14.1`` and the main environment has ``torch==2.13.0``, so the references are
made in a separate environment by ``tests/models/torchvision_reference.py`` and found through
``TORCHVISION_REFERENCE_DIR`` (``.ci/run`` makes them), or made here into a temporary
folder when ``TORCHVISION_PYTHON`` names that environment's python. Without either the
parity tests skip; every other test here needs neither.
"""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import imagenet_model
from save_reference import randomize_batch_norm_statistics
from torchvision_reference import DEPTHS, INPUT_SHAPE

import keras_resnet
from keras_resnet import load_torchvision_weights, torchvision_state_dict
from keras_resnet.models.convert import main
from keras_resnet.models.torchvision import read_state_dict, torchvision_module

# len(torchvision.models.resnetXX().state_dict()) and how many of those entries are
# num_batches_tracked, with torchvision 0.29.1.
TORCHVISION_STATE_DICT_SIZES = {
    "resnet18": (122, 20),
    "resnet34": (218, 36),
    "resnet50": (320, 53),
    "resnet101": (626, 104),
    "resnet152": (932, 155),
}
PARITY_TOLERANCE = 1e-4
REPO_ROOT = Path(__file__).resolve().parents[2]


def small_model(name="resnet18", **kwargs):
    """A torchvision-compatible model at 64x64 (the ImageNet stem asked for explicitly)."""
    channels_first = keras.config.image_data_format() == "channels_first"
    kwargs.setdefault("input_shape", (3, 64, 64) if channels_first else (64, 64, 3))
    kwargs.setdefault("classifier_activation", None)
    return keras_resnet.get_model(name, stem="imagenet", **kwargs)


def randomize(model, seed):
    """Random batch norm parameters and classifier bias, so their mapping is checked too."""
    randomize_batch_norm_statistics(model, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.1, channels).astype("float32"))
    bias = model.get_layer("predictions").bias
    bias.assign(rng.normal(0.0, 0.1, bias.shape).astype("float32"))
    return model


@functools.cache
def source_state_dict(name="resnet18"):
    """A state dict in torchvision's layout, from a seeded channels_last Keras model."""
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_last")
    try:
        keras.utils.set_random_seed(1)
        model = randomize(small_model(name), seed=1)
    finally:
        keras.config.set_image_data_format(previous)
    return torchvision_state_dict(model), model


def images(channels_first=False, batch=2, size=64):
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    return x.transpose(0, 3, 1, 2) if channels_first else x


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def weight(model, layer, variable="kernel"):
    return keras.ops.convert_to_numpy(getattr(model.get_layer(layer), variable))


# --- the mapping -----------------------------------------------------------------------


def test_module_names_follow_torchvision():
    assert torchvision_module("conv1_conv") == "conv1"
    assert torchvision_module("conv1_bn") == "bn1"
    assert torchvision_module("conv2_block1_1_conv") == "layer1.0.conv1"
    assert torchvision_module("conv5_block3_3_bn") == "layer4.2.bn3"
    assert torchvision_module("conv4_block23_2_conv") == "layer3.22.conv2"
    assert torchvision_module("conv3_block1_0_conv") == "layer2.0.downsample.0"
    assert torchvision_module("conv3_block1_0_bn") == "layer2.0.downsample.1"
    assert torchvision_module("predictions") == "fc"
    assert torchvision_module("avg_pool") is None


@pytest.mark.parametrize("name", sorted(TORCHVISION_STATE_DICT_SIZES))
def test_exported_state_dict_has_torchvisions_size_and_loads_back(name):
    model = imagenet_model(name)
    state_dict = torchvision_state_dict(model)
    size, tracked = TORCHVISION_STATE_DICT_SIZES[name]
    assert len(state_dict) == size
    assert sum(key.endswith(".num_batches_tracked") for key in state_dict) == tracked
    width = 512 if name in ("resnet18", "resnet34") else 2048
    assert state_dict["fc.weight"].shape == (1000, width)
    assert state_dict["conv1.weight"].shape == (64, 3, 7, 7)
    assert state_dict["layer2.0.downsample.0.weight"].shape == (width // 4, width // 8, 1, 1)
    load_torchvision_weights(model, state_dict)  # every tensor fits exactly one weight


def test_layouts_are_converted():
    state_dict, model = source_state_dict()
    kernel = weight(model, "conv2_block1_1_conv")  # (h, w, in, out)
    np.testing.assert_array_equal(state_dict["layer1.0.conv1.weight"], kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state_dict["fc.weight"], weight(model, "predictions").T)
    np.testing.assert_array_equal(
        state_dict["layer1.0.bn1.running_var"],
        weight(model, "conv2_block1_1_bn", "moving_variance"),
    )
    assert state_dict["bn1.num_batches_tracked"].dtype == np.int64


def test_round_trip_into_a_fresh_model_gives_identical_outputs():
    for name in ("resnet18", "resnet50"):
        state_dict, source = source_state_dict(name)
        keras.utils.set_random_seed(2)
        fresh = small_model(name)
        assert np.abs(predict(fresh, images()) - predict(source, images())).max() > 1e-3
        load_torchvision_weights(fresh, state_dict)
        np.testing.assert_array_equal(predict(fresh, images()), predict(source, images()))


def test_channels_first_model_loads_the_same_state_dict(channels_first):
    state_dict, source = source_state_dict()  # built under channels_last
    model = load_torchvision_weights(small_model(), state_dict)
    np.testing.assert_allclose(
        predict(model, images(channels_first=True)), predict(source, images()), atol=1e-5
    )


def test_torch_tensors_and_bfloat16_are_accepted():
    torch = pytest.importorskip("torch")
    state_dict, source = source_state_dict()
    tensors = {key: torch.from_numpy(np.array(value)) for key, value in state_dict.items()}
    tensors["fc.bias"] = tensors["fc.bias"].to(torch.bfloat16)
    model = load_torchvision_weights(small_model(), tensors)
    expected = tensors["fc.bias"].float().numpy()
    np.testing.assert_array_equal(weight(model, "predictions", "bias"), expected)
    np.testing.assert_array_equal(weight(model, "conv1_conv"), weight(source, "conv1_conv"))


def test_weights_path_ending_in_pth_loads_torchvision_weights(tmp_path):
    torch = pytest.importorskip("torch")
    state_dict, source = source_state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save({key: torch.from_numpy(np.array(value)) for key, value in state_dict.items()}, path)
    assert set(read_state_dict(path)) == set(state_dict)
    model = keras_resnet.ResNet18(
        input_shape=(64, 64, 3), stem="imagenet", classifier_activation=None, weights=str(path)
    )
    np.testing.assert_array_equal(predict(model, images()), predict(source, images()))


def test_model_without_top_ignores_the_classifier():
    state_dict, source = source_state_dict()
    features = load_torchvision_weights(small_model(include_top=False, pooling="avg"), state_dict)
    expected = keras.Model(source.input, source.get_layer("avg_pool").output)
    np.testing.assert_array_equal(predict(features, images()), predict(expected, images()))


def test_skip_keeps_a_new_classifier_and_a_cifar_stem():
    state_dict, source = source_state_dict()
    keras.utils.set_random_seed(3)
    model = keras_resnet.ResNet18(num_classes=10, input_shape=(32, 32, 3))  # the CIFAR stem
    stem, head = weight(model, "conv1_conv"), weight(model, "predictions")
    load_torchvision_weights(model, state_dict, skip=("conv1_conv", "conv1_bn", "predictions"))
    np.testing.assert_array_equal(weight(model, "conv1_conv"), stem)
    np.testing.assert_array_equal(weight(model, "predictions"), head)
    assert not np.array_equal(
        weight(model, "conv1_bn", "gamma"), weight(source, "conv1_bn", "gamma")
    )
    for layer, variable in [("conv2_block1_1_bn", "gamma"), ("conv5_block2_2_conv", "kernel")]:
        np.testing.assert_array_equal(
            weight(model, layer, variable), weight(source, layer, variable)
        )


# --- errors: each names the first mismatch; nothing is assigned before all fit -----------


def changed(changes):
    state_dict = dict(source_state_dict()[0])
    for key, value in changes.items():
        if value is None:
            del state_dict[key]
        else:
            state_dict[key] = value
    return state_dict


@pytest.mark.parametrize(
    "state_dict, message",
    [
        (
            lambda: changed({"layer1.0.conv1.weight": None}),
            r"The state dict has no tensor 'layer1.0.conv1.weight' for "
            r"conv2_block1_1_conv.kernel \(its first key is 'conv1.weight'\): is it a "
            r"torchvision ResNet state dict\? Received: 121 tensors",
        ),
        (
            lambda: changed({"layer1.0.conv9.weight": np.zeros((64, 64, 3, 3), "float32")}),
            r"State dict tensor 'layer1.0.conv9.weight' of shape \(64, 64, 3, 3\) has no layer "
            r"in the model \(1 unused in all\). Received: layer1.0.conv9.weight",
        ),
        (
            lambda: changed({"layer2.0.conv1.weight": np.zeros((128, 64, 1, 3), "float32")}),
            r"Tensor 'layer2.0.conv1.weight' of shape \(128, 64, 1, 3\) does not fit "
            r"conv3_block1_1_conv.kernel of shape \(3, 3, 64, 128\) \(\(128, 64, 3, 3\) in "
            r"torchvision's layout\). Received: layer2.0.conv1.weight.shape=\(128, 64, 1, 3\)",
        ),
        (
            lambda: changed({"fc.weight": np.zeros((10, 512), "float32")}),
            r"classifier fc.weight has shape \(10, 512\), the model's predictions.kernel "
            r"\(512, 1000\): build the model with num_classes=10, or with include_top=False, "
            r"or pass skip=\('predictions',\) to keep its own classifier.",
        ),
        (
            lambda: {"arch": "resnet18", **source_state_dict()[0]},
            r"State dict entry 'arch' is of type str, not a tensor or array. Received: arch=str",
        ),
        (
            lambda: {"state_dict": source_state_dict()[0]},
            r"'state_dict' is of type dict, not a tensor or array. A training checkpoint\? "
            r"Pass its state dict, e.g. checkpoint\['state_dict'\]. Received: state_dict=dict",
        ),
        (lambda: 42, r"must be a state dict or the path of a .pth file. Received: .*=int"),
        (lambda: "/nonexistent/resnet18.pth", r"No such file.*Received: path='/nonexistent"),
    ],
)
def test_bad_state_dicts_are_refused_and_nothing_is_assigned(state_dict, message):
    model = small_model()
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=message):
        load_torchvision_weights(model, state_dict())
    for old, new in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda: keras_resnet.ResNet18(shortcut="zero_pad", input_shape=(64, 64, 3)),
            r"zero-padding shortcuts \(option A\).*shortcut='projection'. Received: model=",
        ),
        (
            lambda: keras_resnet.ResNet18(input_shape=(32, 32, 3)),
            r"CIFAR stem.*stem='imagenet', or pass skip=\('conv1_conv', 'conv1_bn'\)",
        ),
        (
            lambda: small_model("resnet34"),
            r"The state dict is a resnet18 \(basic blocks 2-2-2-2\) but the model a resnet34 "
            r"\(basic blocks 3-4-6-3\): build the matching model. Received: model='resnet34'",
        ),
        (
            lambda: keras_resnet.ResNet20(shortcut="projection"),
            r"resnet18 \(basic blocks 2-2-2-2\) but the model a basic blocks 3-3-3",
        ),
        (
            lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="head")]),
            r"Layer 'head' \(Dense\) has weights but no torchvision counterpart",
        ),
    ],
)
def test_incompatible_models_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        load_torchvision_weights(build(), source_state_dict()[0])


def test_skip_must_name_layers_with_weights():
    with pytest.raises(ValueError, match=r"conv1_relu, fc. Received: skip=\('conv1_relu', 'fc'\)"):
        load_torchvision_weights(small_model(), source_state_dict()[0], skip=("fc", "conv1_relu"))


def test_reading_torchs_old_format_without_torch_says_to_install_it(tmp_path, monkeypatch):
    path = tmp_path / "resnet18.pth"
    # A pickle stream, torch's format before 1.6: only torch reads it.
    path.write_bytes(b"\x80\x02not a zip")
    model = small_model()  # built first: the torch backend imports torch while building
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError) as error:
        load_torchvision_weights(model, path)
    assert str(error.value) == (
        f"{path} is not in torch's zip format (torch 1.6 and later): reading torch's older "
        "format needs torch (pip install torch), or re-save the file with a recent torch. "
        f"Received: path='{path}'"
    )


@pytest.mark.parametrize(
    "content, problem",
    [
        (
            b"PK\x03\x04cut off",
            "is a damaged or cut-off zip archive, not a readable torch.save "
            "file: download or save it again",
        ),
        (
            b"hello",
            "is not a torch.save file (neither torch's zip format nor its older pickle format)",
        ),
    ],
)
def test_a_file_that_is_no_torch_save_file_is_named_without_calling_torch(
    tmp_path, monkeypatch, content, problem
):
    path = tmp_path / "resnet18.pth"
    path.write_bytes(content)
    model = small_model()
    monkeypatch.setitem(sys.modules, "torch", None)  # torch is never needed to say so
    with pytest.raises(ValueError) as error:
        load_torchvision_weights(model, path)
    assert str(error.value) == f"{path} {problem}. Received: path='{path}'"


# --- the command line --------------------------------------------------------------------


def test_cli_converts_a_pth_into_a_keras_file(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    keras.utils.set_random_seed(4)
    source = small_model(num_classes=7)
    randomize_batch_norm_statistics(source)
    pth, out = tmp_path / "tuned.pth", tmp_path / "tuned.keras"
    arrays = torchvision_state_dict(source)
    torch.save({key: torch.from_numpy(np.array(value)) for key, value in arrays.items()}, pth)
    assert main(["resnet18", str(pth), str(out), "--input-size", "64", "--logits"]) == 0
    assert "7 classes" in capsys.readouterr().out
    converted = keras.saving.load_model(out)
    assert converted.input.shape == (None, 64, 64, 3)
    np.testing.assert_array_equal(predict(converted, images()), predict(source, images()))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["resnet20", "x.pth", "out.keras"], "model must be one of resnet18, resnet34, resnet50"),
        (["resnet18", "x.pth", "out.h5"], "the output file must end in .keras; got 'out.h5'"),
        (["resnet18", "/nonexistent.pth", "out.keras"], "No such file"),
    ],
)
def test_cli_exits_2_with_a_one_line_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_cli_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_resnet.models.convert",
            "resnet18",
            "missing.pth",
            "out.keras",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("Received: path='missing.pth'")


# --- parity with torchvision itself ------------------------------------------------------


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    """The folder written by tests/models/torchvision_reference.py (see the module docstring)."""
    given = os.environ.get("TORCHVISION_REFERENCE_DIR")
    python = os.environ.get("TORCHVISION_PYTHON")
    if given:
        folder = Path(given)
    elif python:
        folder = tmp_path_factory.mktemp("torchvision_reference")
        script = Path(__file__).with_name("torchvision_reference.py")
        subprocess.run([python, str(script), str(folder)], check=True, timeout=600)
    else:
        pytest.skip(
            "no torchvision reference: set TORCHVISION_REFERENCE_DIR to the output of "
            "tests/models/torchvision_reference.py, or TORCHVISION_PYTHON to a python with "
            "torchvision"
        )
    manifest = folder / "manifest.json"
    if not manifest.is_file():  # asked for and absent: a failure, never a skip
        pytest.fail(
            f"{folder} has no manifest.json: run tests/models/torchvision_reference.py into it"
        )
    recorded = json.loads(manifest.read_text())
    assert recorded["depths"] == list(DEPTHS)
    assert recorded["input_shape"] == list(INPUT_SHAPE)
    return folder


@functools.lru_cache(maxsize=1)  # one depth at a time: ResNet-152's is 240 MB
def reference(folder: Path, depth: int):
    arrays = np.load(folder / f"resnet{depth}.npz")
    return read_state_dict(folder / f"resnet{depth}.pth"), arrays["inputs"], arrays["logits"]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_logits_match_torchvision(reference_dir, depth, data_format, request):
    if data_format == "channels_first":
        request.getfixturevalue("channels_first")
    state_dict, inputs, expected = reference(reference_dir, depth)
    _, _, height, width = inputs.shape
    channels_first = data_format == "channels_first"
    model = keras_resnet.get_model(
        f"resnet{depth}",
        input_shape=(3, height, width) if channels_first else (height, width, 3),
        stem="imagenet",
        classifier_activation=None,
    )
    assert set(torchvision_state_dict(model)) == set(state_dict)
    load_torchvision_weights(model, state_dict)
    logits = predict(model, inputs if channels_first else inputs.transpose(0, 2, 3, 1))
    difference = float(np.abs(logits - expected).max())
    print(f"\nparity resnet{depth} {data_format} {keras.backend.backend()}: {difference:.1e}")
    assert difference <= PARITY_TOLERANCE, f"max |logit difference| {difference:.2e}"
