"""Learning-rate schedules as plain functions of the epoch."""

from __future__ import annotations

from collections.abc import Callable


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
