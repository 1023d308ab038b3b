"""Residual building blocks as plain functions ``x -> x`` on symbolic tensors.

Layer names follow keras.applications (``conv2_block1_1_conv``, ``..._bn``,
``..._relu``, ``..._add``, ``..._out``; the shortcut is ``..._0_...``; a pre-activation
block starts with ``..._preact_bn``/``..._preact_relu`` and ends with the addition named
``..._out``) so weights can be mapped by name.

Batch normalization uses PyTorch's constants (epsilon 1e-5, momentum 0.1, i.e.
Keras ``momentum=0.9``) rather than Keras's (1e-3, 0.99): the former give weight
parity with torchvision, and the moving statistics follow the weights closely
enough that validation accuracy in short CIFAR runs is not understated. The rows in
keras.applications' layout take its epsilon (1.001e-5) from the table.
Convolutions use He initialization with fan-out, as torchvision does.

What differs between the families (pre-activation, where the bottleneck strides, which
convolutions carry a bias, dropout, zero-initialized residuals) arrives as one
``BlockOptions``; the bodies below are the same for all of them.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_resnet.models.data_format import channel_axis
from keras_resnet.models.layers import FusedBatchNormalization, ZeroPadShortcut

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class BlockOptions:
    """How a network's blocks are built (the table's columns plus two builder arguments).

    Attributes:
        preact: pre-activation blocks (BN -> ReLU -> conv), see ``ResNetSpec.preact``.
        bottleneck_stride: "3x3" (v1.5) or "1x1" (the paper's original bottleneck).
        conv_bias: "none", "all" or "unnormalized" (see ``specs.CONV_BIASES``).
        bn_epsilon: the batch norms' epsilon.
        dropout_rate: dropout before each residual branch's last convolution (Wide ResNets);
            0 adds no layer.
        zero_init_residual: each residual branch's last batch norm starts with scale 0, so
            every block starts as its shortcut (torchvision's ``zero_init_residual``).

    Example:
        >>> BlockOptions(preact=True).conv_bias
        'none'
    """

    preact: bool = False
    bottleneck_stride: str = "3x3"
    conv_bias: str = "none"
    bn_epsilon: float = BN_EPSILON
    dropout_rate: float = 0.0
    zero_init_residual: bool = False


DEFAULT_OPTIONS = BlockOptions()


def batch_norm(x, *, name, options=DEFAULT_OPTIONS, zero_gamma=False):
    """The batch norm on the data format's channel axis, with the options' epsilon.

    Example:
        >>> batch_norm(keras.Input((8, 8, 4)), name="post").shape
        (None, 8, 8, 4)
    """
    return FusedBatchNormalization(
        axis=channel_axis(),
        epsilon=options.bn_epsilon,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=f"{name}_bn",
    )(x)


def conv_bn(
    x,
    filters,
    kernel_size,
    strides=1,
    *,
    name,
    activation="relu",
    normalize=True,
    zero_gamma=False,
    options=DEFAULT_OPTIONS,
):
    """Convolution -> batch norm -> optional activation (``normalize=False``: the conv only).

    A strided convolution pads explicitly and symmetrically by ``kernel_size // 2``
    (PyTorch's convention) instead of using ``padding="same"``, whose asymmetric
    padding on even sizes would misalign with torchvision weights. The convolution has a
    bias as ``options.conv_bias`` says (see ``specs.CONV_BIASES``).

    Args:
        x: input tensor.
        filters: output channels.
        kernel_size: square kernel size.
        strides: convolution stride.
        name: prefix for the layer names (``{name}_conv``, ``{name}_bn``, ...).
        activation: activation after the batch norm, or None for none.
        normalize: add the batch norm (and the activation); False for a bare convolution.
        zero_gamma: start the batch norm's scale at 0.
        options: the network's ``BlockOptions``.

    Example:
        >>> x = keras.Input((32, 32, 3))
        >>> conv_bn(x, 16, 3, name="conv1").shape
        (None, 32, 32, 16)
    """
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    use_bias = options.conv_bias == "all" or (options.conv_bias == "unnormalized" and not normalize)
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_out", distribution="untruncated_normal"
        ),
        name=f"{name}_conv",
    )(x)
    if not normalize:
        return x
    x = batch_norm(x, name=name, options=options, zero_gamma=zero_gamma)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def dropout(x, rate, *, name):
    """``Dropout(rate)``, or ``x`` itself when ``rate`` is 0 (no layer: a disabled no-op).

    Example:
        >>> x = keras.Input((8, 8, 4))
        >>> dropout(x, 0.0, name="conv2_block1") is x
        True
    """
    if not rate:
        return x
    return keras.layers.Dropout(rate, name=f"{name}_dropout")(x)


def shortcut(x, filters, strides, kind, *, name, options=DEFAULT_OPTIONS, projection_input=None):
    """The shortcut branch of a residual block.

    The rule (torchvision's): the shape changes when ``strides != 1`` or the
    channel count differs from ``filters``. Where it does, ``"projection"``
    (option B) uses a strided 1x1 conv + BN, ``"avg_projection"`` (ResNet-D) a 2x2
    average pool then a stride-1 1x1 conv + BN, and ``"zero_pad"`` (option A) a
    parameter-free strided identity with zero channels appended; elsewhere all three are
    the identity. ``"projection_all"`` (option C) projects in every block.
    ``"projection_subsample"`` (keras.applications V2) projects where the channels change
    and, where only the resolution does, subsamples with a strided 1x1 max-pool.
    ``"none"`` (a plain network) has no shortcut: it returns None, and the block
    ends without an addition. In a pre-activation block the projections read
    ``projection_input`` (the block's BN + ReLU output) and have no batch norm.

    Example:
        >>> x = keras.Input((32, 32, 16))
        >>> shortcut(x, 32, 2, "zero_pad", name="conv3_block1").shape
        (None, 16, 16, 32)
    """
    if kind == "none":
        return None
    channels_change = x.shape[channel_axis()] != filters
    changes_shape = strides != 1 or channels_change
    source = x if projection_input is None else projection_input
    project = {"projection": changes_shape, "projection_subsample": channels_change}
    if kind == "projection_all" or project.get(kind, False):
        return conv_bn(
            source,
            filters,
            1,
            strides,
            name=f"{name}_0",
            activation=None,
            normalize=not options.preact,
            options=options,
        )
    if kind == "avg_projection" and changes_shape:
        if strides > 1:
            # timm's AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False): "same"
            # padding is only used on odd sizes, where the pad is left out of the average.
            source = keras.layers.AveragePooling2D(
                strides, strides, padding="same", name=f"{name}_0_pool"
            )(source)
        return conv_bn(
            source,
            filters,
            1,
            name=f"{name}_0",
            activation=None,
            normalize=not options.preact,
            options=options,
        )
    if kind == "zero_pad" and changes_shape:
        return ZeroPadShortcut(filters, strides, name=f"{name}_0_shortcut")(x)
    if kind == "projection_subsample" and strides > 1:
        return keras.layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
    return x


def _residual_block(x, convs, filters, shortcut_kind, name, options):
    """The one block body: ``convs`` is the branch's (filters, kernel, strides) in order.

    Post-activation (v1): conv-BN-ReLU ..., conv-BN, + shortcut, ReLU. Pre-activation
    (v2): BN-ReLU, conv-BN-ReLU ..., conv, + shortcut. Dropout (if any) precedes the
    branch's last conv; ``zero_init_residual`` zeroes the scale of the branch's last batch
    norm (in a pre-activation block the one before the last conv, whose zero output the
    conv keeps at zero).
    """
    strides = max(s for _, _, s in convs)
    projection_input = None
    if options.preact:
        x_in = x
        x = batch_norm(x, name=f"{name}_preact", options=options)
        x = keras.layers.Activation("relu", name=f"{name}_preact_relu")(x)
        projection_input, x = x, x
        short = shortcut(
            x_in,
            filters,
            strides,
            shortcut_kind,
            name=name,
            options=options,
            projection_input=projection_input,
        )
    else:
        short = shortcut(x, filters, strides, shortcut_kind, name=name, options=options)
    y = x
    last = len(convs)
    zero_index = last - 1 if options.preact else last
    for index, (width, kernel, stride) in enumerate(convs, start=1):
        if index == last:
            y = dropout(y, options.dropout_rate, name=name)
        y = conv_bn(
            y,
            width,
            kernel,
            stride,
            name=f"{name}_{index}",
            activation=None if index == last else "relu",
            normalize=not (options.preact and index == last),
            zero_gamma=options.zero_init_residual and index == zero_index,
            options=options,
        )
    return _merge(y, short, name, options)


def _merge(residual, short, name, options):
    # A plain block (no shortcut) keeps the ``..._out`` name, so residual and plain
    # networks have the same layer names apart from ``..._add``. A pre-activation block
    # ends with the addition itself (keras.applications V2 names it ``..._out``).
    if options.preact:
        if short is None:
            return keras.layers.Identity(name=f"{name}_out")(residual)
        return keras.layers.Add(name=f"{name}_out")([short, residual])
    x = residual if short is None else keras.layers.Add(name=f"{name}_add")([short, residual])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def basic_block(
    x, filters, strides=1, shortcut_kind="projection", *, name, options=DEFAULT_OPTIONS
):
    """BasicBlock: 3x3 conv (stride) -> BN -> ReLU -> 3x3 conv -> BN, + shortcut, ReLU.

    With ``options.preact``: BN -> ReLU -> 3x3 conv (stride) -> BN -> ReLU -> 3x3 conv,
    + shortcut.

    Example:
        >>> x = keras.Input((32, 32, 64))
        >>> basic_block(x, 128, strides=2, name="conv3_block1").shape
        (None, 16, 16, 128)
    """
    convs = [(filters, 3, strides), (filters, 3, 1)]
    return _residual_block(x, convs, filters, shortcut_kind, name, options)


def bottleneck_block(
    x, filters, strides=1, shortcut_kind="projection", *, name, options=DEFAULT_OPTIONS
):
    """Bottleneck: 1x1 reduce -> 3x3 -> 1x1 expand to 4x filters.

    The stride sits on the 3x3 convolution (ResNet v1.5, torchvision) by default, or on
    the first 1x1 (``options.bottleneck_stride="1x1"``: the original paper and
    keras.applications' v1).

    Example:
        >>> x = keras.Input((56, 56, 64))
        >>> bottleneck_block(x, 64, name="conv2_block1").shape
        (None, 56, 56, 256)
    """
    first, second = (1, strides) if options.bottleneck_stride == "3x3" else (strides, 1)
    convs = [(filters, 1, first), (filters, 3, second), (4 * filters, 1, 1)]
    return _residual_block(x, convs, 4 * filters, shortcut_kind, name, options)


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def residual_stage(
    x,
    block,
    filters,
    num_blocks,
    strides,
    shortcut_kind,
    *,
    name,
    downsample="first",
    options=DEFAULT_OPTIONS,
):
    """A stage of ``num_blocks`` blocks; one block strides, the first changes width.

    ``downsample="first"`` strides in the first block (the paper, torchvision),
    ``"last"`` in the last one (keras.applications V2).

    Example:
        >>> x = keras.Input((32, 32, 16))
        >>> residual_stage(x, "basic", 32, 3, 2, "zero_pad", name="conv3").shape
        (None, 16, 16, 32)
    """
    block_fn = BLOCKS[block]
    strided = 1 if downsample == "first" else num_blocks
    for index in range(1, num_blocks + 1):
        x = block_fn(
            x,
            filters,
            strides if index == strided else 1,
            shortcut_kind,
            name=f"{name}_block{index}",
            options=options,
        )
    return x
