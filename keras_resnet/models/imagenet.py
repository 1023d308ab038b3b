"""ImageNet inputs and outputs: each weights source's preprocessing, and class names.

The class index (``imagenet_class_index.json``) ships with the package, so
``decode_predictions`` works offline: index -> (WordNet ID, name), the 1000 ILSVRC-2012
synsets in sorted-ID order (the order of torchvision's and keras.applications' outputs),
each named by its first WordNet lemma with spaces as underscores ("great_white_shark"),
as keras.applications names them. It was derived from timm 1.0.31's
``imagenet_synsets.txt`` and ``imagenet_synset_to_lemma.txt``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import keras
import numpy as np

from keras_resnet.models.pretrained import pretrained_entry

CLASS_INDEX_FILE = "imagenet_class_index.json"
NUM_CLASSES = 1000


def preprocess_input(x, model, weights: str = "imagenet", data_format=None):
    """Scale 0-255 RGB images as the model's published weights expect.

    The convention follows the weights' source (``pretrained.PRETRAINED``): torchvision's
    ("torch": 0-1, then ImageNet's mean and std), keras.applications v1's ("caffe": BGR,
    ImageNet's mean subtracted) or v2's ("tf": -1 to 1). The work is
    ``keras.applications.imagenet_utils.preprocess_input``'s; a NumPy input is copied
    first (that function scales float arrays in place).

    Args:
        x: images, 0-255 RGB, NumPy or a tensor, channels as ``data_format`` says.
        model: the model's name (``"resnet50_v2"``) or the model itself (its ``name``).
        weights: the weights tag (``"imagenet"``, ``"imagenet_v2"``).
        data_format: None for Keras's setting.

    Example:
        >>> x = np.full((1, 224, 224, 3), 255.0)
        >>> float(preprocess_input(x, "resnet50_v2").max())
        1.0
    """
    name = model.name if isinstance(model, keras.Model) else model
    mode = pretrained_entry(name, weights).preprocessing
    if isinstance(x, (np.ndarray, list, tuple)):
        x = np.array(x, dtype=keras.config.floatx())
    return keras.applications.imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)


@functools.cache
def class_index() -> tuple[tuple[str, str], ...]:
    """(WordNet ID, name) of each ImageNet class, by output index.

    Example:
        >>> class_index()[1]
        ('n01443537', 'goldfish')
    """
    text = resources.files(__package__).joinpath(CLASS_INDEX_FILE).read_text()
    table = json.loads(text)
    return tuple(tuple(table[str(i)]) for i in range(len(table)))


def decode_predictions(predictions, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ImageNet predictions, best first, as
    (WordNet ID, name, score), like keras.applications' ``decode_predictions``.

    Example:
        >>> scores = np.zeros((1, 1000)); scores[0, 1] = 0.9
        >>> decode_predictions(scores, top=1)
        [[('n01443537', 'goldfish', 0.9)]]
    """
    scores = np.asarray(keras.ops.convert_to_numpy(predictions), dtype="float64")
    if scores.ndim != 2 or scores.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"`predictions` must be a batch of {NUM_CLASSES} ImageNet class scores, of shape "
            f"(samples, {NUM_CLASSES}). Received: predictions.shape={scores.shape}"
        )
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"`top` must be an integer from 1 to {NUM_CLASSES}. Received: top={top!r}")
    names = class_index()
    decoded = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([(*names[i], float(row[i])) for i in best])
    return decoded
