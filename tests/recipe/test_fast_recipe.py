"""The fast recipe (``--recipe fast``): its pieces in the recipe modules, and that it trains.

One short synthetic run with the preset checks the whole path (per-step one-cycle rate,
Nesterov momentum, label smoothing, flip-averaged test evaluation, saving and reloading
the best model with them); the pieces are checked on tiny models. Untimed: whether the
recipe is faster to a given accuracy is for the benchmark, not for tests.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

from keras_resnet.recipe import training
from keras_resnet.recipe.config import RECIPES, TrainConfig
from keras_resnet.recipe.evaluation import evaluate_test_set
from keras_resnet.recipe.losses import SparseSmoothedCrossentropy
from keras_resnet.recipe.run_folder import BEST_MODEL_FILE, HISTORY_FILE, read_history
from keras_resnet.recipe.schedules import OneCycle

TINY_RUN = dict(
    model="resnet20",
    synthetic=True,
    epochs=2,
    batch_size=64,
    train_subset=256,
    test_subset=64,
    verbose=0,
)


def _tiny_model(num_classes=3, size=4):
    channels_first = keras.config.image_data_format() == "channels_first"
    inputs = keras.Input((3, size, size) if channels_first else (size, size, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_fast_recipe_trains_end_to_end(tmp_path):
    config = TrainConfig.from_recipe("fast", **TINY_RUN, output_dir=str(tmp_path))
    assert config.schedule == "one_cycle" and config.flip_test and config.nesterov
    result = training.train(config)

    assert result.epochs_completed == 2
    assert math.isfinite(result.test_loss) and 0.0 <= result.test_accuracy <= 1.0
    rows = read_history(result.run_dir / HISTORY_FILE)
    assert all(math.isfinite(row["loss"]) for row in rows)
    # Each epoch logs the rate it started with: the one-cycle schedule at that step.
    steps_per_epoch = -(-204 // 64)  # 204 of the 256 images are fit
    schedule = OneCycle(config.learning_rate, config.epochs * steps_per_epoch)
    for row in rows:
        expected = float(schedule(row["epoch"] * steps_per_epoch))
        assert math.isclose(row["learning_rate"], expected, rel_tol=1e-5), row
    stored = json.loads((result.run_dir / "config.json").read_text())
    assert stored["config"]["schedule"] == "one_cycle"
    best = keras.saving.load_model(result.run_dir / BEST_MODEL_FILE)
    assert isinstance(best.loss, SparseSmoothedCrossentropy)


def test_compile_model_applies_the_fast_recipe():
    config = TrainConfig.from_recipe("fast")
    model = _tiny_model()
    training.compile_model(model, config, steps_per_epoch=10)
    optimizer = model.optimizer
    assert optimizer.nesterov is True
    schedule = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, OneCycle)
    assert schedule.total_steps == config.epochs * 10
    assert schedule.peak == config.learning_rate
    assert isinstance(model.loss, SparseSmoothedCrossentropy)
    assert model.loss.label_smoothing == RECIPES["fast"]["label_smoothing"]


def test_compile_model_keeps_the_step_recipe_by_default():
    model = _tiny_model()
    training.compile_model(model, TrainConfig())
    assert model.optimizer.nesterov is False
    assert model.loss == "sparse_categorical_crossentropy"


def test_one_cycle_without_the_step_count_is_refused():
    with pytest.raises(ValueError, match="Received: steps_per_epoch=None$"):
        training.compile_model(_tiny_model(), TrainConfig(schedule="one_cycle"))


def test_smoothed_loss_of_integer_labels_equals_keras_on_one_hot_labels():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(5), size=8).astype("float32")
    labels = rng.integers(0, 5, size=8)
    one_hot = np.eye(5, dtype="float32")[labels]
    for smoothing in (0.0, 0.1):
        ours = SparseSmoothedCrossentropy(smoothing)(labels, probabilities)
        theirs = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)(
            one_hot, probabilities
        )
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-6
        )
    restored = SparseSmoothedCrossentropy.from_config(SparseSmoothedCrossentropy(0.2).get_config())
    assert restored.label_smoothing == 0.2


def test_flip_test_averages_each_image_with_its_mirror_image():
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    rng = np.random.default_rng(1)
    channels_first = keras.config.image_data_format() == "channels_first"
    x = rng.uniform(0, 1, (6, 3, 4, 4) if channels_first else (6, 4, 4, 3)).astype("float32")
    y = rng.integers(0, 3, size=6)
    mirrored = np.flip(x, axis=3 if channels_first else 2)
    averaged = (model.predict(x, verbose=0) + model.predict(mirrored, verbose=0)) / 2

    metrics = evaluate_test_set(model, x, y, batch_size=4, flip=True)
    expected_loss = -np.log(averaged[np.arange(6), y].astype("float64")).mean()
    assert metrics["test_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert metrics["test_accuracy"] == pytest.approx((averaged.argmax(1) == y).mean())
    plain = evaluate_test_set(model, x, y, batch_size=4)
    assert plain["test_loss"] != pytest.approx(metrics["test_loss"], rel=1e-5)
    assert "single_view_test_accuracy" not in plain
    assert metrics["single_view_test_accuracy"] == plain["test_accuracy"]
