"""keras-resnet search --tensorboard: each trial's logs in the search project, read back with
TensorBoard's own reader (the same callback as a run's: tests/recipe/test_tensorboard.py)."""

import pytest
from tensorboard_events import scalars

from keras_resnet import cli
from keras_resnet.recipe import run_folder


@pytest.mark.slow  # a trial; the callback itself is checked by tests/recipe/test_tensorboard.py
def test_a_search_writes_each_trials_logs_into_its_project(tmp_path):
    flags = ["--synthetic", "--model=resnet20", "--epochs=1", "--step-size=1", "--batch-size=64"]
    flags += ["--train-subset=80", "--test-subset=16", "--verbose=0", "--max-trials=1"]
    assert cli.main(["search", *flags, "--tensorboard", f"--directory={tmp_path}"]) == 0
    logs = tmp_path / "resnet20-random" / run_folder.TENSORBOARD_DIR
    # <trial id>/execution<k> (KerasTuner's, on tensorflow) or <trial id> (the others).
    (train_dir,) = [*logs.glob("*/*/train"), *logs.glob("*/train")]
    assert train_dir.relative_to(logs).parts[0] == "0"  # the first trial's id
    found = scalars(train_dir)
    assert [step for step, _ in found["epoch_loss"]] == [0]
    assert "epoch_learning_rate" in found
