"""The prepared GPU run (benchmarks/gpu_fast_resnet18.py), rehearsed with a tiny budget.

The same ``run`` command a GPU machine runs, here on the test backend's CPU, a tiny
generated image folder and ResNet-20 for one epoch: flags, data, the fast recipe and the
summary, not the speed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_fast_resnet18.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_fast_resnet18", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_folder(root: Path, classes=("cat", "dog"), per_class=(24, 8)) -> Path:
    rng = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class, strict=True):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 60, (32, 32, 3)) + 150 * label
                Image.fromarray(pixels.astype("uint8")).save(folder / f"{index}.jpg")
    return root


def test_rehearsal_trains_the_fast_recipe_and_writes_the_summary(script, tmp_path, capsys):
    data = _image_folder(tmp_path / "images")
    out = tmp_path / "out"
    summary = script.main(
        ["run", "--data-dir", str(data), "--output-dir", str(out), "--model", "resnet20"]
        + ["--epochs", "1", "--cache-dir", str(tmp_path / "cache"), "--verbose", "0"]
    )
    assert summary["device"] == "cpu" and summary["epochs_completed"] == 1
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["wall_seconds"] >= summary["train_seconds"] > 0
    # The fast recipe under the flags given, in fp32 on a CPU.
    config = summary["config"]
    assert (config["schedule"], config["batch_size"], config["precision"]) == (
        "one_cycle",
        512,
        "fp32",
    )
    assert json.loads((out / "summary.json").read_text())["test_accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )
    run_dir = out / script.RUN_NAME
    assert (run_dir / "history.csv").exists() and (run_dir / "test_metrics.json").exists()
    assert "test accuracy" in capsys.readouterr().out


def test_without_keras_and_wheels_it_says_what_to_run_first(script, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "keras" else real_find_spec(name, *args),
    )
    with pytest.raises(SystemExit, match="no wheels are in .*: run `python benchmarks/gpu"):
        script.ensure_keras(tmp_path / "no-wheels")
