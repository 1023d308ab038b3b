"""Learning-rate schedules: PyTorch's StepLR as a function of the epoch."""

import math

import keras
import numpy as np
import pytest

from keras_resnet.schedules import step_decay


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
