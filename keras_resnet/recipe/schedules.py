"""Learning-rate schedules as plain functions of the epoch, or of the step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import ops


def step_decay(learning_rate: float, step_size: int, gamma: float) -> Callable[[int], float]:
    """PyTorch's StepLR: ``learning_rate * gamma ** (epoch // step_size)``, epochs from 0.

    Returns a function of the epoch, for ``keras.callbacks.LearningRateScheduler``.

    Example:
        >>> schedule = step_decay(0.1, step_size=30, gamma=0.1)
        >>> [round(schedule(epoch), 6) for epoch in (0, 29, 30, 59, 60)]
        [0.1, 0.1, 0.01, 0.01, 0.001]
    """
    if step_size < 1:
        raise ValueError(f"`step_size` must be at least 1. Received: step_size={step_size}")

    def schedule(epoch: int, current_learning_rate: float | None = None) -> float:
        return float(learning_rate * gamma ** (epoch // step_size))

    return schedule


def multistep(
    learning_rate: float,
    milestones: Sequence[int],
    gamma: float,
    warmup_steps: int = 0,
    warmup_learning_rate: float = 0.01,
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """PyTorch's MultiStepLR, per step: the rate times ``gamma`` from each milestone on.

    ``milestones`` count steps from 0: with milestone 32000, steps 0-31999 (the first
    32000) train at ``learning_rate``. The first ``warmup_steps`` train at
    ``warmup_learning_rate`` (the ResNet paper's ResNet-110: 0.01 for 400 steps).

    Example:
        >>> schedule = multistep(0.1, [300, 400], 0.1, warmup_steps=100)
        >>> [round(float(schedule(step)), 6) for step in (0, 99, 100, 299, 300, 400)]
        [0.01, 0.01, 0.1, 0.1, 0.01, 0.001]
    """
    milestones = [int(m) for m in milestones]
    if warmup_steps and warmup_steps >= milestones[0]:
        raise ValueError(
            "`warmup_steps` must end before the first milestone. "
            f"Received: warmup_steps={warmup_steps}, milestones={milestones}"
        )
    rates = [learning_rate * gamma**k for k in range(len(milestones) + 1)]
    if warmup_steps:
        milestones, rates = [warmup_steps, *milestones], [warmup_learning_rate, *rates]
    # PiecewiseConstantDecay gives values[i] while step <= boundaries[i]; a milestone m is
    # the first step of the next value.
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [m - 1 for m in milestones], [float(rate) for rate in rates]
    )


@keras.saving.register_keras_serializable(package="keras_resnet")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """A triangular one-cycle rate, set by the optimizer at every step.

    Linear from ``start_factor * peak`` up to ``peak`` over the first ``warmup_fraction``
    of ``total_steps``, then linear down to 0 at ``total_steps`` (and 0 after it).

    Example:
        >>> schedule = OneCycle(0.4, total_steps=100, warmup_fraction=0.25)
        >>> [round(float(schedule(step)), 6) for step in (0, 25, 100)]
        [0.04, 0.4, 0.0]
    """

    def __init__(self, peak, total_steps, warmup_fraction=0.25, start_factor=0.1):
        _check_one_cycle(total_steps, warmup_fraction, start_factor)
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.start_factor = float(start_factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.warmup_fraction * self.total_steps
        rising = self.start_factor + (1 - self.start_factor) * step / warmup
        falling = ops.maximum(0.0, (self.total_steps - step) / (self.total_steps - warmup))
        return self.peak * ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "start_factor": self.start_factor,
        }


def _check_one_cycle(total_steps, warmup_fraction, start_factor) -> None:
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be at least 1. Received: total_steps={total_steps}")
    if not 0 < warmup_fraction < 1:
        raise ValueError(
            "`warmup_fraction` must be strictly between 0 and 1. "
            f"Received: warmup_fraction={warmup_fraction}"
        )
    if not 0 <= start_factor <= 1:
        raise ValueError(
            f"`start_factor` must be between 0 and 1. Received: start_factor={start_factor}"
        )
