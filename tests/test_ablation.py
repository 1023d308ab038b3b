"""The ablation command (benchmarks/ablation.py): variants as flags, a table, resumable runs."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from keras_resnet.recipe import training
from keras_resnet.recipe.flags import add_config_arguments, parse_flags

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.py"


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_variant_is_valid_recipe_flags(ablation):
    for name, flags in ablation.variant_flags(ablation.VARIANTS, ["ema", "peak-0.8"]).items():
        parser = add_config_arguments(argparse.ArgumentParser())
        config, _ = parse_flags(parser, ["--recipe", "fast", *flags])
        assert config.schedule == "one_cycle", name
    parser = add_config_arguments(argparse.ArgumentParser())
    assert (
        parse_flags(parser, ["--recipe", "fast", *ablation.VARIANTS["batch-256"]])[0].batch_size
        == 256
    )


def test_the_table_gives_each_mean_and_its_difference_from_the_fast_recipe(ablation):
    results = {
        "fast": [{"test_accuracy": 0.90, "minutes": 2.0}, {"test_accuracy": 0.92, "minutes": 4.0}],
        "ema": [{"test_accuracy": 0.93, "minutes": 3.0}, {"test_accuracy": 0.93, "minutes": 3.0}],
    }
    table = ablation.format_table(results, {"fast": [], "ema": ["--ema"]}).splitlines()
    assert table[2] == "| fast |  | 90.00%, 92.00% | 91.00% |  | 3.0 |"
    assert table[3] == "| ema | --ema | 93.00%, 93.00% | 93.00% | +2.00% | 3.0 |"


def test_a_tiny_ablation_trains_its_variant_and_resumes_without_training(
    ablation, tmp_path, monkeypatch
):
    # One variant, the moving average as the combination of one: one run.
    argv = ["--variants", "ema", "--seeds", "3"]
    argv += ["--output-dir", str(tmp_path), "--table", str(tmp_path / "table.md"), "--"]
    argv += ["--model", "resnet20", "--synthetic", "--epochs", "1", "--batch-size", "64"]
    argv += ["--train-subset", "128", "--test-subset", "32", "--verbose", "0"]
    table = ablation.main(argv)
    assert table.splitlines()[2].startswith("| ema | --ema | ")
    assert (tmp_path / "table.md").read_text() == table + "\n"
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # its run folder

    monkeypatch.setattr(training, "_train", lambda *a, **k: pytest.fail("retrained"))
    assert ablation.main(argv) == table
