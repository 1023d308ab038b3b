"""The paper's recipe (``--recipe paper``) and the recipe options the fast recipe is tuned from.

The paper's schedule (drops at 32k and 48k steps, a stop at 64k, ResNet-110's warm-up) is
checked value by value; the options (milestones, a step budget, the weights' moving
average, test-time shifts, no decay on vectors) on tiny models; one short synthetic run
takes them all through ``train``.
"""

from __future__ import annotations

import argparse
import json
import math

import keras
import numpy as np
import pytest

from keras_resnet.recipe import training
from keras_resnet.recipe.callbacks import StopAtStep, ema_callbacks
from keras_resnet.recipe.config import RECIPES, TrainConfig, recipe_values
from keras_resnet.recipe.evaluation import evaluate_test_set, shifted_views
from keras_resnet.recipe.flags import add_config_arguments, parse_flags
from keras_resnet.recipe.optimizers import TorchSGD
from keras_resnet.recipe.run_folder import BEST_MODEL_FILE, HISTORY_FILE, read_history
from keras_resnet.recipe.schedules import multistep


def _parser():
    return add_config_arguments(argparse.ArgumentParser(prog="train"))


def _tiny_model(num_classes=3, size=4):
    channels_first = keras.config.image_data_format() == "channels_first"
    inputs = keras.Input((3, size, size) if channels_first else (size, size, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _images(n, size=4, seed=0):
    rng = np.random.default_rng(seed)
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (n, 3, size, size) if channels_first else (n, size, size, 3)
    return rng.uniform(0, 1, shape).astype("float32"), rng.integers(0, 3, size=n)


def _schedule(model):
    """The learning-rate schedule a compiled model's optimizer evaluates at each step."""
    config = model.optimizer.get_config()["learning_rate"]
    return keras.saving.deserialize_keras_object(config)


def test_paper_recipe_is_section_4_2():
    config = TrainConfig.from_recipe("paper", model="resnet56")
    assert (config.batch_size, config.learning_rate, config.momentum) == (128, 0.1, 0.9)
    assert config.weight_decay == 1e-4 and config.gamma == 0.1
    assert (config.schedule, config.milestones, config.milestone_unit) == (
        "multistep",
        (32000, 48000),
        "step",
    )
    assert config.max_steps == 64000 and config.warmup_steps == 0
    assert int(50000 * (1 - config.validation_fraction)) == 45000  # the 45k/5k split
    # 45,000 images in batches of 128: 352 steps per epoch; the 64,000th step is in epoch 182.
    assert config.epochs == math.ceil(64000 / math.ceil(45000 / 128)) == 182
    assert config.resolved_patience >= config.epochs  # trained to the end


def test_paper_recipe_warms_resnet110_up_only():
    assert TrainConfig.from_recipe("paper", model="resnet110").warmup_steps == 400
    assert TrainConfig.from_recipe("paper", model="resnet110").warmup_learning_rate == 0.01
    config, _ = parse_flags(_parser(), ["--recipe", "paper", "--model", "resnet110"])
    assert (config.warmup_steps, config.warmup_learning_rate) == (400, 0.01)
    config, _ = parse_flags(_parser(), ["--recipe", "paper", "--model", "resnet56"])
    assert config.warmup_steps == 0
    # An explicit flag still wins over the model's preset value.
    config, _ = parse_flags(
        _parser(), ["--recipe", "paper", "--model", "resnet110", "--warmup-steps", "200"]
    )
    assert config.warmup_steps == 200


def test_paper_schedule_step_by_step():
    config = TrainConfig.from_recipe("paper", model="resnet110")
    model = _tiny_model()
    training.compile_model(model, config, steps_per_epoch=352)
    schedule = _schedule(model)
    rates = {step: float(schedule(step)) for step in (0, 399, 400, 31999, 32000, 47999, 48000)}
    expected = {0: 0.01, 399: 0.01, 400: 0.1, 31999: 0.1, 32000: 0.01, 47999: 0.01, 48000: 0.001}
    assert rates == pytest.approx(expected, rel=1e-6)


def test_recipe_values_refuse_an_unknown_recipe():
    with pytest.raises(ValueError, match="Received: recipe='papers'$"):
        recipe_values("papers", "resnet20")
    assert recipe_values("fast", "resnet110") == RECIPES["fast"]


def test_multistep_counts_epoch_milestones_in_steps():
    model = _tiny_model()
    config = TrainConfig(schedule="multistep", milestones=(2, 5), gamma=0.5, learning_rate=0.2)
    training.compile_model(model, config, steps_per_epoch=10)
    schedule = _schedule(model)
    got = [float(schedule(step)) for step in (0, 19, 20, 49, 50)]
    assert got == pytest.approx([0.2, 0.2, 0.1, 0.1, 0.05], rel=1e-6)


def test_multistep_warmup_must_end_before_the_first_milestone():
    with pytest.raises(ValueError, match=r"Received: warmup_steps=10, milestones=\[10\]$"):
        multistep(0.1, [10], 0.1, warmup_steps=10)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"schedule": "multistep"}, "Received: milestones=None$"),
        ({"schedule": "multistep", "milestones": (60, 30)}, r"Received: milestones=\(60, 30\)$"),
        ({"schedule": "multistep", "milestones": (0, 30)}, r"Received: milestones=\(0, 30\)$"),
        ({"milestones": (30,)}, "apply to schedule='multistep' only"),
        ({"warmup_steps": 5}, "apply to schedule='multistep' only"),
        ({"milestone_unit": "batch"}, "Received: milestone_unit='batch'$"),
        ({"max_steps": 0}, "Received: max_steps=0$"),
        ({"test_translate": -1}, "Received: test_translate=-1$"),
        ({"ema_momentum": 1.0}, "Received: ema_momentum=1.0$"),
    ],
)
def test_invalid_schedule_fields_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_milestones_flag_selects_the_multistep_schedule():
    config, _ = parse_flags(_parser(), ["--milestones", "30,60,90"])
    assert (config.schedule, config.milestones, config.milestone_unit) == (
        "multistep",
        (30, 60, 90),
        "epoch",
    )
    # config.json stores a list; it is the same config.
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config


def test_milestones_flag_rejects_text_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_flags(_parser(), ["--milestones", "30,sixty"])
    assert exit_info.value.code == 2
    assert "expected comma-separated integers" in capsys.readouterr().err


def test_new_fields_at_their_defaults_keep_earlier_fingerprints():
    # Run folders made before these fields existed keep their names and resume.
    assert TrainConfig().fingerprint() == TrainConfig(ema=False, test_translate=0).fingerprint()
    assert TrainConfig(ema=True).fingerprint() != TrainConfig().fingerprint()


def test_stop_at_step_stops_mid_epoch_at_the_exact_step():
    x, y = _images(40)
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=10, epochs=3, callbacks=[StopAtStep(6)], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6
    assert len(history.history["loss"]) == 2  # 4 steps, then 2 of the second epoch


def test_stop_at_step_counts_from_the_epoch_a_resumed_fit_starts_at():
    stopper = StopAtStep(10)
    stopper.set_model(_tiny_model())
    stopper.set_params({"steps": 4, "epochs": 3})
    stopper.model.stop_training = False
    stopper.on_epoch_begin(2)  # a resumed fit's first epoch: steps 8 and 9 are the last
    stopper.on_train_batch_end(0)
    assert not stopper.model.stop_training
    stopper.on_train_batch_end(1)
    assert stopper.model.stop_training


class _WeightsProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at_epoch_end = []

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append([w.copy() for w in self.model.get_weights()])


def test_ema_validates_and_keeps_the_average_and_trains_on_the_weights():
    keras.utils.set_random_seed(0)
    x, y = _images(60)
    model = _tiny_model()
    config = TrainConfig(ema=True, ema_momentum=0.9, learning_rate=0.5)
    training.compile_model(model, config)
    average_in, training_back = ema_callbacks(config)
    between, after = _WeightsProbe(), _WeightsProbe()
    history = model.fit(
        x[:40],
        y[:40],
        validation_data=(x[40:], y[40:]),
        batch_size=10,
        epochs=2,
        callbacks=[*average_in, between, *training_back, after],
        verbose=0,
    )
    for epoch in range(2):
        averaged, trained = between.at_epoch_end[epoch], after.at_epoch_end[epoch]
        assert not all(np.allclose(a, t) for a, t in zip(averaged, trained, strict=True))
        # The logged validation loss is that of the averaged weights.
        probe = _tiny_model()
        probe.compile(loss="sparse_categorical_crossentropy")
        probe.set_weights(averaged)
        val_loss = probe.evaluate(x[40:], y[40:], batch_size=10, verbose=0)
        assert history.history["val_loss"][epoch] == pytest.approx(val_loss, rel=1e-5)


def test_without_decay_on_vectors_only_matrices_decay():
    optimizer = TorchSGD(learning_rate=0.1, l2=0.5, decay_vectors=False)
    vector = keras.Variable(np.ones(3, "float32"))
    matrix = keras.Variable(np.ones((2, 2), "float32"))
    zero = [keras.ops.zeros((3,)), keras.ops.zeros((2, 2))]
    optimizer.apply_gradients(zip(zero, [vector, matrix], strict=True))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vector), 1.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(matrix), 1.0 - 0.1 * 0.5, rtol=1e-6)
    assert TorchSGD.from_config(optimizer.get_config()).decay_vectors is False


def test_shifted_views_move_the_image_and_reflect_its_edges():
    channels_first = keras.config.image_data_format() == "channels_first"
    image = np.arange(9).reshape(1, 1, 3, 3) if channels_first else np.arange(9).reshape(1, 3, 3, 1)
    views = [view.reshape(3, 3).tolist() for view in shifted_views(image, 1)]
    # Shifted by one pixel down-right (its up-left corner reflected), then up-left.
    assert views == [[[4, 3, 4], [1, 0, 1], [4, 3, 4]], [[4, 5, 4], [7, 8, 7], [4, 5, 4]]]


def test_test_translate_averages_the_plain_and_the_shifted_views():
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    x, y = _images(6)
    views = [x, *shifted_views(x, 1)]
    averaged = sum(model.predict(view, verbose=0) for view in views) / 3
    metrics = evaluate_test_set(model, x, y, batch_size=4, translate=1)
    expected_loss = -np.log(averaged[np.arange(6), y].astype("float64")).mean()
    assert metrics["test_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert "single_view_test_accuracy" in metrics


def test_a_short_run_with_milestones_a_step_budget_and_ema(tmp_path):
    config = TrainConfig(
        model="resnet20",
        synthetic=True,
        train_subset=256,
        test_subset=64,
        batch_size=64,
        epochs=3,
        schedule="multistep",
        milestones=(4,),
        milestone_unit="step",
        max_steps=6,
        ema=True,
        decay_norm_and_bias=False,
        test_translate=1,
        output_dir=str(tmp_path),
        verbose=0,
    )
    result = training.train(config)
    rows = read_history(result.run_dir / HISTORY_FILE)
    # 204 images fit: 4 steps per epoch; the 6th step ends the second epoch's run.
    assert [row["epoch"] for row in rows] == [0, 1] and result.epochs_completed == 2
    assert [row["learning_rate"] for row in rows] == pytest.approx([0.1, 0.01], rel=1e-6)
    assert math.isfinite(result.test_loss)
    best = keras.saving.load_model(result.run_dir / BEST_MODEL_FILE)
    assert best.optimizer.use_ema and best.optimizer.decay_vectors is False


def test_zero_init_residual_reaches_the_backbone():
    def zero_scales(model):
        backbone = model.layers[-1]
        return [
            layer.name
            for layer in backbone.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            and not np.any(keras.ops.convert_to_numpy(layer.gamma))
        ]

    mean, std = (120.0,) * 3, (60.0,) * 3
    plain = training.build_training_model(TrainConfig(model="resnet20"), mean, std, 10)
    config = TrainConfig(model="resnet20", zero_init_residual=True)
    zeroed = zero_scales(training.build_training_model(config, mean, std, 10))
    assert zero_scales(plain) == []
    # ResNet-20: nine basic blocks, each with its second batch norm at 0.
    assert len(zeroed) == 9 and all(name.endswith("_2_bn") for name in zeroed), zeroed
