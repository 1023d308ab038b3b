"""The package's custom layers, registered so saved models load without ``custom_objects``."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class ZeroPadShortcut(keras.layers.Layer):
    """The paper's option-A shortcut: strided identity, new channels filled with zeros.

    The input is subsampled by taking every ``strides``-th pixel (the pixel grid a
    stride-``s`` convolution with padding 1 and kernel 3 centres on), then zero
    channels are appended up to ``filters``. It has no weights.

    Some CIFAR implementations pad half the new channels in front and half behind;
    that differs from appending only by a fixed permutation of channels, which the
    next layers absorb, so the two are equivalent networks.

    Args:
        filters: number of output channels, at least the number of input channels.
        strides: spatial subsampling factor.
        data_format: "channels_last" or "channels_first"; defaults to
            ``keras.config.image_data_format()``.

    Example:
        >>> layer = ZeroPadShortcut(filters=32, strides=2)
        >>> layer(keras.ops.ones((1, 8, 8, 16))).shape
        (1, 4, 4, 32)
    """

    def __init__(self, filters, strides=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.data_format = data_format or keras.config.image_data_format()
        self.channel_axis = 1 if self.data_format == "channels_first" else 3

    def build(self, input_shape):
        in_channels = input_shape[self.channel_axis]
        if in_channels is not None and in_channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut cannot reduce channels from {in_channels} to "
                f"{self.filters}: use a projection shortcut. Received: filters={self.filters}"
            )

    def call(self, inputs):
        s = self.strides
        if self.data_format == "channels_first":
            x = inputs[:, :, ::s, ::s]
        else:
            x = inputs[:, ::s, ::s, :]
        missing = self.filters - x.shape[self.channel_axis]
        if missing == 0:
            return x
        paddings = [[0, 0]] * 4
        paddings[self.channel_axis] = [0, missing]
        return ops.pad(x, paddings)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial_axes = (2, 3) if self.data_format == "channels_first" else (1, 2)
        for axis in spatial_axes:
            if shape[axis] is not None:
                shape[axis] = (shape[axis] - 1) // self.strides + 1
        shape[self.channel_axis] = self.filters
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides, data_format=self.data_format)
        return config
