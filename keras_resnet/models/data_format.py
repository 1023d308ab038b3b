"""The image data format's channel axis, the one place that reads it.

This module imports Keras only inside ``channel_axis``: it is imported by modules that run
while Keras itself is being imported (``serialization`` registers the custom layers right
after ``import keras``), and a module-level ``import keras`` here would be circular then.
"""

from __future__ import annotations

DATA_FORMATS = ("channels_last", "channels_first")


def channel_axis(data_format: str | None = None) -> int:
    """The channel axis of a 4-D image batch: 1 for channels_first, else 3.

    Example:
        >>> channel_axis("channels_first"), channel_axis("channels_last")
        (1, 3)
    """
    if data_format is None:
        import keras

        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return 1 if data_format == "channels_first" else 3
