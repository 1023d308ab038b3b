"""The recipe's loss: cross-entropy of integer labels, optionally smoothed."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_resnet")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards the uniform distribution.

    Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``, so the labels are
    one-hot encoded and passed to ``categorical_crossentropy``, which has.

    Example:
        >>> import numpy as np
        >>> loss = SparseSmoothedCrossentropy(0.1)
        >>> round(float(loss(np.array([0]), np.array([[0.9, 0.1]]))), 4)
        0.2152
    """

    def __init__(self, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        num_classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def recipe_loss(label_smoothing: float):
    """The loss ``compile`` gets: plain sparse cross-entropy, or the smoothed one.

    Example:
        >>> recipe_loss(0.0)
        'sparse_categorical_crossentropy'
    """
    if label_smoothing:
        return SparseSmoothedCrossentropy(label_smoothing)
    return "sparse_categorical_crossentropy"
