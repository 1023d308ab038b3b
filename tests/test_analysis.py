"""The gradient probe on tiny networks, the results file and figures, the script's quick mode."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import processes
import pytest

from keras_resnet import ResNetSpec, analysis, build_resnet
from keras_resnet.training import HistoryWriter

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "experiments" / "plain_vs_residual.py"


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
    assert [layer.name for layer in analysis.conv_layers(model)] == [
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
    grads = analysis.conv_gradients(model, x, y)
    norms = analysis.conv_gradient_norms(model, x, y)
    assert list(norms) == [layer.name for layer in analysis.conv_layers(model)]
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
    analysis.conv_gradient_norms(model, *batch)
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
        norms[shortcut] = analysis.conv_gradient_norms(model, *batch)
    assert norms["none"]["conv1_conv"] == 0.0
    assert norms["zero_pad"]["conv1_conv"] > 1e-3
    assert norms["none"]["conv3_block2_2_conv"] == 0.0  # its output is zeroed too


def test_at_initialization_batch_norm_makes_deep_plain_gradients_grow_toward_the_input(batch):
    # What the README measures on plain-56 and ResNet-56, here on every backend: with
    # batch statistics, the first-to-last gradient ratio of a deeper plain network rises
    # far above its shallow version's and above the residual network's of the same depth.
    ratios = {
        (n, shortcut): analysis.first_to_last_ratio(
            analysis.conv_gradient_norms(tiny(n, shortcut), *batch)
        )
        for n in (1, 6)
        for shortcut in ("none", "zero_pad")
    }
    assert ratios[(6, "none")] > 3 * ratios[(6, "zero_pad")]
    assert ratios[(6, "none")] > 5 * ratios[(1, "none")]


def test_first_to_last_ratio():
    assert analysis.first_to_last_ratio({"a": 0.2, "b": 1.0, "c": 0.5}) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="Received: norms="):
        analysis.first_to_last_ratio({"a": 1.0})


def test_model_without_convolutions_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layer"):
        analysis.conv_gradients(model, np.zeros((1, 4)), np.zeros(1))


def test_error_curves_read_a_history(tmp_path):
    writer = HistoryWriter(tmp_path / "history.csv")
    for epoch, (acc, val) in enumerate([(0.25, 0.5), (0.5, 0.625)]):
        writer.on_epoch_end(epoch, {"accuracy": acc, "val_accuracy": val, "learning_rate": 0.1})
    curves = analysis.error_curves(tmp_path / "history.csv")
    assert curves == {
        "train_error": [0.75, 0.5],
        "val_error": [0.5, 0.375],
        "learning_rate": [0.1, 0.1],
    }
    with pytest.raises(ValueError, match="No finished epoch"):
        analysis.error_curves(tmp_path / "missing.csv")


def entry(depth: int, residual: bool, scale: float = 1.0) -> dict:
    norms = {f"conv{i}": scale / (i + 1) for i in range(depth - 1)}
    return {
        "depth": depth,
        "residual": residual,
        "train_error": [0.8, 0.5],
        "val_error": [0.85, 0.6],
        "test_error": 0.61,
        "gradient_norms": {"init": norms, "trained": norms},
        "first_to_last_ratio": {"init": depth - 1.0, "trained": 2.0},
    }


def test_results_are_recorded_one_network_at_a_time_and_plotted(tmp_path):
    path = tmp_path / analysis.RESULTS_FILE
    assert analysis.read_results(path) == {}
    analysis.record_network(path, {"epochs": 2}, "plain-8", entry(8, False))
    results = analysis.record_network(path, {"epochs": 2}, "resnet-8", entry(8, True))
    assert json.loads(path.read_text()) == results
    assert list(results["networks"]) == ["plain-8", "resnet-8"]
    assert [p.name for p in analysis.plot_results(tmp_path)] == [
        analysis.GRADIENT_FLOW_FILE,
        analysis.DEGRADATION_FILE,
    ]
    for name in (analysis.GRADIENT_FLOW_FILE, analysis.DEGRADATION_FILE):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    table = analysis.summary_table(results["networks"])
    assert "| plain-8 | 50.00% | 60.00% | 61.00% | 7 | 2 |" in table
    with pytest.raises(ValueError, match="No finished network"):
        analysis.plot_results(tmp_path / "empty")


def load_script():
    return processes.load_script(SCRIPT, "plain_vs_residual")


@pytest.fixture(scope="module")
def script():
    return load_script()


def test_importing_the_script_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert callable(load_script().main)
    assert list(tmp_path.iterdir()) == []


def test_script_settings_full_and_flags(script):
    settings = script.resolve_settings(script.build_parser().parse_args(["--full", "--epochs=3"]))
    assert settings["train_subset"] is None and settings["validation_fraction"] == 0.1
    assert (settings["epochs"], settings["step_size"], settings["weight_decay"]) == (3, 82, 1e-4)
    assert (settings["learning_rate"], settings["batch_size"]) == (0.1, 128)
    assert settings["depths"] == [20, 56]
    quick = script.resolve_settings(script.build_parser().parse_args(["--quick", "--depths=32"]))
    assert quick["depths"] == [32] and quick["epochs"] == script.QUICK["epochs"]


# About a minute per backend on a busy 2-core CPU (64-87 s measured at load 6-8): two
# train() runs, each compiling, saving, evaluating and plotting.
@pytest.mark.slow
def test_script_quick_mode_end_to_end_then_rerun_skips(script, tmp_path, monkeypatch, capsys):
    from keras_resnet import training

    # The "init" probe must see the very weights train() starts from.
    stem_kernels = {"train": [], "probe": []}

    def recording(original, key):
        def build(*args, **kwargs):
            model = original(*args, **kwargs)
            kernel = model.layers[-1].get_layer("conv1_conv").kernel
            stem_kernels[key].append(keras.ops.convert_to_numpy(kernel).copy())
            return model

        return build

    monkeypatch.setattr(
        training, "build_training_model", recording(training.build_training_model, "train")
    )
    monkeypatch.setattr(
        analysis, "build_training_model", recording(analysis.build_training_model, "probe")
    )
    flags = ["--quick", "--synthetic", f"--output-dir={tmp_path}", "--verbose=0"]
    results = script.main(flags)
    assert len(stem_kernels["train"]) == len(stem_kernels["probe"]) == 2
    for trained_from, probed in zip(stem_kernels["train"], stem_kernels["probe"], strict=True):
        np.testing.assert_array_equal(trained_from, probed)
    networks = results["networks"]
    assert list(networks) == ["plain-20", "resnet-20"]
    for label, net in networks.items():
        assert net["residual"] == label.startswith("resnet")
        assert len(net["train_error"]) == len(net["val_error"]) == script.QUICK["epochs"]
        for moment in ("init", "trained"):
            norms = net["gradient_norms"][moment]
            assert len(norms) == net["depth"] - 1  # every conv; the classifier is Dense
            assert all(np.isfinite(v) and v > 0 for v in norms.values())
    (run_dir,) = tmp_path.glob("plain_vs_residual-*")
    assert json.loads((run_dir / analysis.RESULTS_FILE).read_text()) == results
    assert (run_dir / analysis.GRADIENT_FLOW_FILE).exists()
    assert (run_dir / analysis.DEGRADATION_FILE).exists()

    def fail(*args, **kwargs):
        raise AssertionError("a recorded network was trained again")

    monkeypatch.setattr(analysis, "train_and_probe", fail)
    capsys.readouterr()
    assert script.main(flags) == results
    assert capsys.readouterr().out.count("already in") == 2
