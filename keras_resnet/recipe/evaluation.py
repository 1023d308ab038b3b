"""The test set, evaluated once at the end of a run: loss, accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np

from keras_resnet.models.data_format import channel_axis


def evaluate_test_set(
    model,
    x_test,
    y_test,
    batch_size: int,
    replicas: int = 1,
    flip: bool = False,
    translate: int = 0,
) -> dict:
    """Test loss, accuracy and confusion matrix (rows true, columns predicted).

    Test-time augmentation: with ``translate`` the predicted distribution of each image is
    averaged with those of the image shifted by ``translate`` pixels up-left and down-right
    (``shifted_views``); with ``flip``, of each view's horizontal mirror image too. The
    accuracy of the plain images alone is then kept as ``single_view_test_accuracy``.

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
    plain, averaged = [], []
    for images in _decoded_chunks(x_test, 8 * batch_size):
        views = [images, *shifted_views(images, translate)] if translate else [images]
        if flip:
            views += [np.flip(view, axis=width_axis) for view in views]
        predictions = [predict(view) for view in views]
        plain.append(predictions[0])
        averaged.append(sum(predictions) / len(predictions))
    probabilities = np.concatenate(plain)
    single_view = {}
    if flip or translate:
        single_view["single_view_test_accuracy"] = _accuracy(probabilities, y_test)
        probabilities = np.concatenate(averaged)
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


def shifted_views(images: np.ndarray, pixels: int) -> list[np.ndarray]:
    """``images`` shifted by ``pixels`` up-left and down-right, the edges reflected.

    Example:
        >>> image = np.arange(9).reshape(1, 3, 3, 1)
        >>> [view[0, :, :, 0].tolist() for view in shifted_views(image, 1)]  # doctest: +SKIP
        [[[0, 1, 0], [3, 4, 3], [0, 1, 0]], ...]
    """
    height, width = (2, 3) if channel_axis() == 1 else (1, 2)
    padding = [(0, 0)] * images.ndim
    padding[height] = padding[width] = (pixels, pixels)
    padded = np.pad(images, padding, mode="reflect")
    size_h, size_w = images.shape[height], images.shape[width]
    views = []
    for offset in (0, 2 * pixels):  # the window's corner in the padded image
        window = [slice(None)] * images.ndim
        window[height] = slice(offset, offset + size_h)
        window[width] = slice(offset, offset + size_w)
        views.append(padded[tuple(window)])
    return views


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())
