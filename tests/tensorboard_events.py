"""Reading TensorBoard event files back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of ``folder``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    found = {}
    for tag in accumulator.Tags()["tensors"]:  # Keras writes scalars as tensor summaries
        found[tag] = [
            (event.step, float(np.asarray(tensor_util.make_ndarray(event.tensor_proto))))
            for event in accumulator.Tensors(tag)
        ]
    for tag in accumulator.Tags()["scalars"]:
        found[tag] = [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return found
