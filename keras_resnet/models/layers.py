"""The models' custom layers, registered so saved models load without ``custom_objects``."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_resnet.models.data_format import channel_axis


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
        >>> tuple(layer(keras.ops.ones((1, 8, 8, 16))).shape)
        (1, 4, 4, 32)
    """

    def __init__(self, filters, strides=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.data_format = data_format or keras.config.image_data_format()
        self.channel_axis = channel_axis(self.data_format)

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


@keras.saving.register_keras_serializable(package="keras_resnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization``, computed by one fused kernel on TensorFlow and torch.

    Keras's layer builds batch normalization from separate ops (the batch mean, the
    variance, then the scale and shift). TensorFlow without XLA and torch in eager mode run
    each as its own kernel, a pass over the activations apiece, forward and backward; this
    layer calls their fused kernels instead (``tf.nn.fused_batch_norm``,
    ``torch.nn.functional.batch_norm``): one kernel each way (the README's "Speed" has what
    that gains). JAX compiles the whole step with XLA, which fuses these ops itself, so there
    it runs Keras's layer.

    It is the same layer otherwise: the same weights and config, the same moving-average
    update (with the batch's biased variance, as Keras's layer uses), the same outputs up
    to float rounding, and its saved models load on every backend. Where the fused
    kernels do not apply (masks, ``renorm``, ``synchronized``, no ``center`` or
    ``scale``, inputs not 4-D or normalized over another axis than the channels, and on
    torch a single value per channel), it runs Keras's layer unchanged.

    Args:
        fused: False runs Keras's layer everywhere (to measure what the fused kernels
            give, as ``benchmarks/benchmark.py --batch-norm keras`` does).
        **kwargs: ``keras.layers.BatchNormalization``'s arguments.

    Example:
        >>> layer = FusedBatchNormalization(axis=3, epsilon=1e-5, momentum=0.9)
        >>> tuple(layer(keras.ops.ones((2, 4, 4, 8)), training=True).shape)
        (2, 4, 4, 8)
    """

    def __init__(self, fused=True, **kwargs):
        super().__init__(**kwargs)
        self.fused = bool(fused)

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}

    def _fused_kernel(self, inputs, mask):
        """The backend whose fused kernel applies to ``inputs``, or None."""
        backend = keras.backend.backend()
        if not self.fused or backend not in ("tensorflow", "torch") or mask is not None:
            return None
        if self.renorm or self.synchronized or not (self.center and self.scale):
            return None
        if len(inputs.shape) != 4 or self.axis % 4 not in (1, 3):
            return None
        if keras.backend.standardize_dtype(inputs.dtype) not in ("float32", "float16", "bfloat16"):
            return None
        if backend == "torch" and math.prod(inputs.shape) <= inputs.shape[self.axis]:
            return None  # torch's kernel refuses one value per channel in training
        return backend

    def call(self, inputs, training=None, mask=None):
        backend = self._fused_kernel(inputs, mask)
        if backend is None:
            return super().call(inputs, training=training, mask=mask)
        training = bool(training) and self.trainable
        fused = _tensorflow_batch_norm if backend == "tensorflow" else _torch_batch_norm
        outputs, mean, variance = fused(self, inputs, training)
        if training:
            # Both kernels return the unbiased variance (times n / (n - 1), for n > 1 values
            # per channel); Keras's layer averages the biased one.
            values = ops.cast(ops.size(inputs), "float32") / inputs.shape[self.axis]
            variance = variance * ops.maximum(values - 1.0, 1.0) / values
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        return ops.cast(outputs, self.compute_dtype)


def _tensorflow_batch_norm(layer, inputs, training):
    """(outputs, batch mean, unbiased batch variance) by ``tf.nn.fused_batch_norm``."""
    import tensorflow as tf

    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs,
        scale=ops.cast(layer.gamma, "float32"),
        offset=ops.cast(layer.beta, "float32"),
        mean=None if training else ops.cast(layer.moving_mean, "float32"),
        variance=None if training else ops.cast(layer.moving_variance, "float32"),
        epsilon=layer.epsilon,
        data_format="NCHW" if layer.axis % 4 == 1 else "NHWC",
        is_training=training,
    )
    return outputs, mean, variance


def _torch_batch_norm(layer, inputs, training):
    """(outputs, batch mean, unbiased batch variance) by ``torch.nn.functional.batch_norm``.

    A channels_last batch is viewed as NCHW without a copy (torch's kernel takes the
    channels_last memory layout as it is). In training, scratch buffers with momentum 1
    receive the batch's statistics.
    """
    import torch

    channels_first = layer.axis % 4 == 1
    x = inputs if channels_first else inputs.permute(0, 3, 1, 2)
    gamma, beta = ops.cast(layer.gamma, "float32"), ops.cast(layer.beta, "float32")
    if training:
        mean = torch.zeros_like(gamma, requires_grad=False)
        variance = torch.ones_like(gamma, requires_grad=False)
        momentum = 1.0
    else:
        mean = ops.cast(layer.moving_mean, "float32")
        variance = ops.cast(layer.moving_variance, "float32")
        momentum = 0.0
    outputs = torch.nn.functional.batch_norm(
        x, mean, variance, gamma, beta, training=training, momentum=momentum, eps=layer.epsilon
    )
    if not channels_first:
        outputs = outputs.permute(0, 2, 3, 1)
    return outputs, mean, variance
