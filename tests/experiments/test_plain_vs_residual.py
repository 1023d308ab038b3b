"""experiments/plain_vs_residual.py: its results file, figures and table, its settings, and
its quick mode end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import processes
import pytest

from keras_resnet.recipe.callbacks import HistoryWriter

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "experiments" / "plain_vs_residual.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def script():
    return processes.load_script(SCRIPT, "plain_vs_residual")


def entry(depth: int, residual: bool, scale: float = 1.0) -> dict:
    """A network's results as ``train_and_probe`` records them (norms shrink with depth)."""
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


def test_error_curves_read_a_history(script, tmp_path):
    writer = HistoryWriter(tmp_path / "history.csv")
    for epoch, (acc, val) in enumerate([(0.25, 0.5), (0.5, 0.625)]):
        writer.on_epoch_end(epoch, {"accuracy": acc, "val_accuracy": val, "learning_rate": 0.1})
    curves = script.error_curves(tmp_path / "history.csv")
    assert curves == {
        "train_error": [0.75, 0.5],
        "val_error": [0.5, 0.375],
        "learning_rate": [0.1, 0.1],
    }
    with pytest.raises(ValueError, match="No finished epoch"):
        script.error_curves(tmp_path / "missing.csv")


def test_results_are_recorded_one_network_at_a_time_and_plotted(script, tmp_path):
    path = tmp_path / script.RESULTS_FILE
    assert script.read_results(path) == {}
    script.record_network(path, {"epochs": 2}, "plain-8", entry(8, False))
    results = script.record_network(path, {"epochs": 2}, "resnet-8", entry(8, True))
    assert json.loads(path.read_text()) == results
    assert list(results["networks"]) == ["plain-8", "resnet-8"]
    assert [p.name for p in script.plot_results(tmp_path)] == [
        script.GRADIENT_FLOW_FILE,
        script.DEGRADATION_FILE,
    ]
    for name in (script.GRADIENT_FLOW_FILE, script.DEGRADATION_FILE):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [script.RESULTS_FILE, script.GRADIENT_FLOW_FILE, script.DEGRADATION_FILE]
    )  # no temporary file left behind
    table = script.summary_table(results["networks"])
    assert "| plain-8 | 50.00% | 60.00% | 61.00% | 7 | 2 |" in table
    with pytest.raises(ValueError, match="No finished network"):
        script.plot_results(tmp_path / "empty")


def test_results_keep_the_gradient_norms_in_depth_order(script, tmp_path):
    # ResNet-110 has 18 blocks per stage: sorted keys would put block10 before block2.
    names = ["conv1_conv"] + [f"conv2_block{b}_{i}_conv" for b in range(1, 19) for i in (1, 2)]
    norms = {name: float(depth) for depth, name in enumerate(names)}
    path = tmp_path / script.RESULTS_FILE
    script.record_network(path, {}, "resnet-110", {"gradient_norms": {"init": norms}})
    stored = script.read_results(path)["networks"]["resnet-110"]["gradient_norms"]["init"]
    assert list(stored) == names


def test_script_settings_full_and_flags(script):
    settings = script.resolve_settings(script.build_parser().parse_args(["--full", "--epochs=3"]))
    assert settings["train_subset"] is None and settings["validation_fraction"] == 0.1
    assert (settings["epochs"], settings["step_size"], settings["weight_decay"]) == (3, 82, 1e-4)
    assert (settings["learning_rate"], settings["batch_size"]) == (0.1, 128)
    assert settings["depths"] == [20, 56]
    quick = script.resolve_settings(script.build_parser().parse_args(["--quick", "--depths=32"]))
    assert quick["depths"] == [32] and quick["epochs"] == script.QUICK["epochs"]


def test_importing_the_script_and_its_help_load_no_keras_and_write_nothing(tmp_path):
    code = (
        "import importlib.util, runpy, sys\n"
        f"path = {str(SCRIPT)!r}\n"
        "spec = importlib.util.spec_from_file_location('plain_vs_residual', path)\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "sys.argv = [path, '--help']\n"
        "try:\n"
        "    runpy.run_path(path, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = {'keras', 'tensorflow', 'jax', 'torch', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=processes.command_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "--quick" in completed.stdout
    assert list(tmp_path.iterdir()) == []


def test_main_trains_each_network_once_records_plots_and_skips_on_rerun(
    script, tmp_path, monkeypatch, capsys
):
    # train_and_probe itself runs in the slow end-to-end test below; here main's bookkeeping.
    trained = []

    def fake_train_and_probe(config, num_probe_images):
        trained.append((config, num_probe_images))
        return entry(int(config.model.removeprefix("resnet")), config.shortcut != "none")

    monkeypatch.setattr(script, "train_and_probe", fake_train_and_probe)
    flags = ["--quick", "--synthetic", "--depths", "20", "56", f"--output-dir={tmp_path}"]
    results = script.main(flags)

    (run_dir,) = tmp_path.glob("plain_vs_residual-*")
    labels = ["plain-20", "resnet-20", "plain-56", "resnet-56"]
    assert [config.run_name for config, _ in trained] == labels
    assert [(config.model, config.shortcut) for config, _ in trained] == [
        ("resnet20", "none"),
        ("resnet20", "zero_pad"),
        ("resnet56", "none"),
        ("resnet56", "zero_pad"),
    ]
    for config, num_probe_images in trained:
        assert num_probe_images == script.QUICK["probe_images"]
        assert (config.epochs, config.train_subset) == (1, script.QUICK["train_subset"])
        assert config.synthetic and Path(config.output_dir) == run_dir / "training"
    assert list(results["networks"]) == labels
    assert results["settings"]["depths"] == [20, 56]
    assert json.loads((run_dir / script.RESULTS_FILE).read_text()) == results
    for name in (script.GRADIENT_FLOW_FILE, script.DEGRADATION_FILE):
        assert (run_dir / name).read_bytes().startswith(PNG_MAGIC)
    assert "| resnet-56 | 50.00% | 60.00% | 61.00% | 55 | 2 |" in capsys.readouterr().out

    trained.clear()
    assert script.main(flags) == results
    assert trained == []
    assert capsys.readouterr().out.count("already in") == 4
    script.main([*flags, "--epochs=2"])  # other settings: another run folder, trained anew
    assert len(trained) == 4 and len(list(tmp_path.glob("plain_vs_residual-*"))) == 2


def test_main_rejects_an_unregistered_depth(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--synthetic", "--depths=19", f"--output-dir={tmp_path}"])
    assert exit_info.value.code == 2
    assert "resnet19" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# About a minute per backend on a busy 2-core CPU (64-87 s measured at load 6-8): two
# train() runs, each compiling, saving, evaluating and plotting.
@pytest.mark.slow
def test_script_quick_mode_end_to_end_then_rerun_skips(script, tmp_path, monkeypatch, capsys):
    from keras_resnet.recipe import training

    # The "init" probe must see the very weights train() starts from: per network, train()
    # builds its model first, then train_and_probe rebuilds it for the probe.
    stem_kernels = []
    build_training_model = training.build_training_model

    def recording(*args, **kwargs):
        model = build_training_model(*args, **kwargs)
        kernel = model.layers[-1].get_layer("conv1_conv").kernel
        stem_kernels.append(keras.ops.convert_to_numpy(kernel).copy())
        return model

    monkeypatch.setattr(training, "build_training_model", recording)
    flags = ["--quick", "--synthetic", f"--output-dir={tmp_path}", "--verbose=0"]
    results = script.main(flags)
    assert len(stem_kernels) == 4  # two networks, each built to train and to probe
    for trained_from, probed in zip(stem_kernels[::2], stem_kernels[1::2], strict=True):
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
    assert json.loads((run_dir / script.RESULTS_FILE).read_text()) == results
    assert (run_dir / script.GRADIENT_FLOW_FILE).exists()
    assert (run_dir / script.DEGRADATION_FILE).exists()

    def fail(*args, **kwargs):
        raise AssertionError("a recorded network was trained again")

    monkeypatch.setattr(script, "train_and_probe", fail)
    capsys.readouterr()
    assert script.main(flags) == results
    assert capsys.readouterr().out.count("already in") == 2
