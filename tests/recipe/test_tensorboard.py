"""--tensorboard: a run writes TensorBoard event files into its run folder, read back here
with TensorBoard's own reader and compared with the run's history.csv."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tensorboard_events import scalars

from keras_resnet.recipe import TrainConfig, run_folder, train

pytest.importorskip("tensorboard")

TINY = dict(
    model="resnet20",
    synthetic=True,
    epochs=2,
    batch_size=64,
    train_subset=80,
    test_subset=16,
    verbose=0,
)


def test_tensorboard_logs_the_epoch_scalars_and_the_learning_rate(tmp_path):
    config = TrainConfig(**TINY, output_dir=str(tmp_path), tensorboard=True)
    assert config.fingerprint() == dataclasses.replace(config, tensorboard=False).fingerprint()
    result = train(config)
    logs = Path(result.run_dir) / run_folder.TENSORBOARD_DIR
    history = run_folder.read_history(Path(result.run_dir) / run_folder.HISTORY_FILE)
    train_scalars, validation = scalars(logs / "train"), scalars(logs / "validation")
    for tag, column in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy")):
        assert [step for step, _ in train_scalars[tag]] == [0, 1]
        np.testing.assert_allclose(
            [value for _, value in train_scalars[tag]], [row[column] for row in history], rtol=1e-5
        )
    np.testing.assert_allclose(
        [value for _, value in validation["epoch_accuracy"]],
        [row["val_accuracy"] for row in history],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        [value for _, value in train_scalars["epoch_learning_rate"]], [0.1, 0.1], rtol=1e-6
    )
    # Histograms are off: no histogram or image summaries.
    assert not [tag for tag in train_scalars if "histogram" in tag or "kernel" in tag]
