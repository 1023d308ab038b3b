"""The test set, evaluated once at the end of a run: loss, accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np

from keras_resnet.models.layers import channel_axis


def evaluate_test_set(
    model, x_test, y_test, batch_size: int, replicas: int = 1, flip: bool = False
) -> dict:
    """Test loss, accuracy and confusion matrix (rows true, columns predicted) in one pass.

    With ``flip`` the predicted distribution of each image is averaged with that of its
    horizontal mirror image (test-time augmentation; a second pass), and the accuracy of
    the first pass alone is kept as ``single_view_test_accuracy``.

    With ``replicas`` > 1 every predicted batch is a multiple of it (data-parallel JAX
    shards each batch): the batch size is rounded up and the test set padded, and the
    padding's predictions are dropped, so every test image counts once.

    Example:
        >>> evaluate_test_set(model, x_test, y_test, 256)["test_accuracy"]  # doctest: +SKIP
        0.93
    """
    batch_size = -(-batch_size // replicas) * replicas

    def predict(images):
        padding = np.zeros((-len(images) % replicas, *images.shape[1:]), images.dtype)
        return model.predict(
            np.concatenate([images, padding]) if len(padding) else images,
            batch_size=batch_size,
            verbose=0,
        )[: len(images)].astype("float64")

    width_axis = 3 if channel_axis() == 1 else 2
    views = [[], []]  # as given, mirrored
    for images in _decoded_chunks(x_test, 8 * batch_size):
        views[0].append(predict(images))
        if flip:
            views[1].append(predict(np.flip(images, axis=width_axis)))
    probabilities = np.concatenate(views[0])
    single_view = {}
    if flip:
        single_view["single_view_test_accuracy"] = _accuracy(probabilities, y_test)
        probabilities = (probabilities + np.concatenate(views[1])) / 2
    predicted = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(y_test)), y_test]
    num_classes = probabilities.shape[1]
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    return {
        "test_accuracy": _accuracy(probabilities, y_test),
        "test_loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "confusion_matrix": confusion.tolist(),
        **single_view,
    }


def _decoded_chunks(x_test, size: int):
    """An array whole; images decoded on demand (``data.ImageFiles``) in chunks."""
    if isinstance(x_test, np.ndarray):
        yield x_test
        return
    for start in range(0, len(x_test), size):
        yield x_test[np.arange(start, min(start + size, len(x_test)))]


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())
