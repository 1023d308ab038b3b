"""Residual building blocks as plain functions ``x -> x`` on symbolic tensors.

Layer names follow keras.applications (``conv2_block1_1_conv``, ``..._bn``,
``..._relu``, ``..._add``, ``..._out``; the shortcut is ``..._0_...``) so weights
can be mapped by name.

Batch normalization uses PyTorch's constants (epsilon 1e-5, momentum 0.1, i.e.
Keras ``momentum=0.9``) rather than Keras's (1e-3, 0.99): the former give weight
parity with torchvision, and the moving statistics follow the weights closely
enough that validation accuracy in short CIFAR runs is not understated.
Convolutions use He initialization with fan-out, as torchvision does.
"""

from __future__ import annotations

import keras

from keras_resnet.models.layers import FusedBatchNormalization, ZeroPadShortcut, channel_axis

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def conv_bn(x, filters, kernel_size, strides=1, *, name, activation="relu"):
    """Convolution (no bias) -> batch norm -> optional activation.

    A strided convolution pads explicitly and symmetrically by ``kernel_size // 2``
    (PyTorch's convention) instead of using ``padding="same"``, whose asymmetric
    padding on even sizes would misalign with torchvision weights.

    Args:
        x: input tensor.
        filters: output channels.
        kernel_size: square kernel size.
        strides: convolution stride.
        name: prefix for the layer names (``{name}_conv``, ``{name}_bn``, ...).
        activation: activation after the batch norm, or None for none.

    Example:
        >>> x = keras.Input((32, 32, 3))
        >>> conv_bn(x, 16, 3, name="conv1").shape
        (None, 32, 32, 16)
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_out", distribution="untruncated_normal"
        ),
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(
        axis=channel_axis(), epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn"
    )(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def shortcut(x, filters, strides, kind, *, name):
    """The shortcut branch of a residual block.

    The rule (torchvision's): the shape changes when ``strides != 1`` or the
    channel count differs from ``filters``. Where it does, ``"projection"``
    (option B) uses a strided 1x1 conv + BN and ``"zero_pad"`` (option A) a
    parameter-free strided identity with zero channels appended; elsewhere both
    are the identity. ``"projection_all"`` (option C) projects in every block.
    ``"none"`` (a plain network) has no shortcut: it returns None, and the block
    ends without an addition.

    Example:
        >>> x = keras.Input((32, 32, 16))
        >>> shortcut(x, 32, 2, "zero_pad", name="conv3_block1").shape
        (None, 16, 16, 32)
    """
    if kind == "none":
        return None
    changes_shape = strides != 1 or x.shape[channel_axis()] != filters
    if kind == "projection_all" or (kind == "projection" and changes_shape):
        return conv_bn(x, filters, 1, strides, name=f"{name}_0", activation=None)
    if kind == "zero_pad" and changes_shape:
        return ZeroPadShortcut(filters, strides, name=f"{name}_0_shortcut")(x)
    return x


def _merge(residual, short, name):
    # A plain block (no shortcut) keeps the ``..._out`` name, so residual and plain
    # networks have the same layer names apart from ``..._add``.
    x = residual if short is None else keras.layers.Add(name=f"{name}_add")([short, residual])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def basic_block(x, filters, strides=1, shortcut_kind="projection", *, name):
    """BasicBlock: 3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, + shortcut, ReLU.

    Example:
        >>> x = keras.Input((32, 32, 64))
        >>> basic_block(x, 128, strides=2, name="conv3_block1").shape
        (None, 16, 16, 128)
    """
    short = shortcut(x, filters, strides, shortcut_kind, name=name)
    y = conv_bn(x, filters, 3, strides, name=f"{name}_1")
    y = conv_bn(y, filters, 3, name=f"{name}_2", activation=None)
    return _merge(y, short, name)


def bottleneck_block(x, filters, strides=1, shortcut_kind="projection", *, name):
    """Bottleneck (ResNet v1.5): 1x1 reduce -> 3x3 (stride) -> 1x1 expand to 4x filters.

    The stride sits on the 3x3 convolution, as in torchvision, not on the first 1x1
    as in the original paper and keras.applications.

    Example:
        >>> x = keras.Input((56, 56, 64))
        >>> bottleneck_block(x, 64, name="conv2_block1").shape
        (None, 56, 56, 256)
    """
    out_filters = 4 * filters
    short = shortcut(x, out_filters, strides, shortcut_kind, name=name)
    y = conv_bn(x, filters, 1, name=f"{name}_1")
    y = conv_bn(y, filters, 3, strides, name=f"{name}_2")
    y = conv_bn(y, out_filters, 1, name=f"{name}_3", activation=None)
    return _merge(y, short, name)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def residual_stage(x, block, filters, num_blocks, strides, shortcut_kind, *, name):
    """A stage of ``num_blocks`` blocks; only the first one strides and changes width.

    Example:
        >>> x = keras.Input((32, 32, 16))
        >>> residual_stage(x, "basic", 32, 3, 2, "zero_pad", name="conv3").shape
        (None, 16, 16, 32)
    """
    block_fn = BLOCKS[block]
    for index in range(1, num_blocks + 1):
        x = block_fn(
            x,
            filters,
            strides if index == 1 else 1,
            shortcut_kind,
            name=f"{name}_block{index}",
        )
    return x
