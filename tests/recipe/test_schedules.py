"""Learning-rate schedules: PyTorch's StepLR per epoch, the one-cycle schedule per step."""

import math

import keras
import numpy as np
import pytest

from keras_resnet.recipe.schedules import OneCycle, step_decay


@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 0.1), (29, 0.1), (30, 0.01), (59, 0.01), (60, 0.001), (89, 0.001), (90, 1e-4)],
)
def test_step_decay_matches_steplr(epoch, expected):
    schedule = step_decay(0.1, 30, 0.1)
    assert math.isclose(schedule(epoch), expected, rel_tol=1e-9)


def test_step_decay_is_a_plain_float_and_ignores_the_current_rate():
    # LearningRateScheduler calls schedule(epoch, current_lr); the value must not depend
    # on the current rate, or a resumed run would decay twice.
    schedule = step_decay(0.2, step_size=2, gamma=0.5)
    values = [schedule(epoch, 123.0) for epoch in range(6)]
    assert all(type(v) is float for v in values)
    np.testing.assert_allclose(values, [0.2, 0.2, 0.1, 0.1, 0.05, 0.05])


def test_step_decay_with_gamma_one_is_constant():
    schedule = step_decay(0.05, step_size=1, gamma=1.0)
    assert {schedule(epoch) for epoch in range(10)} == {0.05}


@pytest.mark.parametrize("step_size", [0, -3])
def test_step_decay_rejects_non_positive_step_size(step_size):
    with pytest.raises(ValueError, match=f"Received: step_size={step_size}$"):
        step_decay(0.1, step_size, 0.1)


def test_step_decay_drives_keras_learning_rate_scheduler():
    schedule = step_decay(0.1, step_size=2, gamma=0.1)
    callback = keras.callbacks.LearningRateScheduler(schedule)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    callback.set_model(model)
    seen = []
    for epoch in range(5):
        callback.on_epoch_begin(epoch)
        seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


def rate(schedule: OneCycle, step: int) -> float:
    """The schedule's learning rate at ``step``, as the optimizer reads it."""
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_rises_to_the_peak_then_falls_to_zero():
    schedule = OneCycle(0.4, total_steps=100, warmup_fraction=0.2, start_factor=0.1)
    values = [rate(schedule, step) for step in range(101)]
    # float32 arithmetic: equal to about 1e-7.
    np.testing.assert_allclose([values[0], values[20], values[60]], [0.04, 0.4, 0.2], rtol=1e-6)
    assert values[100] == 0.0
    assert max(values) == values[20]
    assert np.all(np.diff(values[:21]) > 0) and np.all(np.diff(values[20:]) < 0)
    assert rate(schedule, 150) == 0.0


def test_one_cycle_is_linear_between_its_corners():
    # Up from 0.1 * 0.4 to 0.4 over steps 0-20, then down to 0 at step 100, by hand.
    schedule = OneCycle(0.4, total_steps=100, warmup_fraction=0.2)
    by_hand = {
        0: 0.04,
        7: 0.4 * (0.1 + 0.9 * 7 / 20),
        20: 0.4,
        55: 0.4 * 45 / 80,
        99: 0.4 * 1 / 80,
        100: 0.0,
        120: 0.0,
    }
    for step, expected in by_hand.items():
        assert math.isclose(rate(schedule, step), expected, rel_tol=1e-6, abs_tol=1e-7), step
    restored = OneCycle.from_config(schedule.get_config())
    assert restored.get_config() == schedule.get_config()
    assert [rate(restored, step) for step in by_hand] == [rate(schedule, step) for step in by_hand]


def test_one_cycle_drives_the_optimizer_per_step():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(learning_rate=OneCycle(1.0, total_steps=8))
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 4 steps
    current = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    # Step 4 of 8, past the 2 warm-up steps: (8 - 4) / (8 - 2) of the peak.
    assert math.isclose(current, 4 / 6, rel_tol=1e-6)


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"total_steps": 0}, "total_steps=0"),
        ({"warmup_fraction": 1.0}, "warmup_fraction=1.0"),
        ({"start_factor": 2.0}, "start_factor=2.0"),
    ],
)
def test_one_cycle_rejects_bad_arguments(kwargs, received):
    arguments = {"peak": 0.1, "total_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {received}$"):
        OneCycle(**arguments)
