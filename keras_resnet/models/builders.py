"""Model builders: ``build_resnet`` (stem -> stages -> head) and one line per variant."""

from __future__ import annotations

import numbers
import os

import keras

from keras_resnet.models import blocks, pretrained
from keras_resnet.models.data_format import channel_axis
from keras_resnet.models.specs import MODEL_SPECS, SHORTCUTS, STEMS, ResNetSpec
from keras_resnet.models.torchvision import load_torchvision_weights
from keras_resnet.models.weights import load_weights
from keras_resnet.validation import check_integer, check_number

POOLINGS = (None, "avg", "max")
# A `weights` path with one of these endings is a torchvision state dict (torch.save)...
PTH_SUFFIXES = (".pth", ".pt")
# ... and with one of these (but not .weights.h5) a legacy Keras file: keras.applications'.
LEGACY_H5_SUFFIXES = (".h5", ".hdf5")
# Inputs smaller than this on either side get the CIFAR stem when ``stem=None``:
# the ImageNet stem divides the size by 4 before the first stage, which leaves a
# 32x32 image only 1x1 at the last stage.
IMAGENET_STEM_MIN_SIZE = 128


def list_models() -> list[str]:
    """Names of all registered models, in table order.

    Example:
        >>> list_models()[:2]
        ['resnet18', 'resnet34']
    """
    return list(MODEL_SPECS)


def get_model(name: str, /, **kwargs) -> keras.Model:
    """Build a registered model by name; keyword arguments go to ``build_resnet``.

    Example:
        >>> model = get_model("resnet56", num_classes=100)
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in MODEL_SPECS:
        raise ValueError(
            f"Unknown model name. Available: {', '.join(MODEL_SPECS)}. Received: name={name!r}"
        )
    kwargs.setdefault("name", key)
    return build_resnet(MODEL_SPECS[key], **kwargs)


def resolve_stem(spec: ResNetSpec, stem: str | None, spatial: tuple) -> str:
    """The stem to use: the one asked for, else the spec's, else one chosen by size.

    With neither given, inputs of at least ``IMAGENET_STEM_MIN_SIZE`` on both sides
    get the ImageNet stem (7x7/2 conv + 3x3/2 max-pool) and smaller ones the CIFAR
    stem (3x3/1 conv, no pool). An input of variable size (a None in ``spatial``)
    cannot choose: it needs the stem given, here or in the spec.

    Example:
        >>> resolve_stem(MODEL_SPECS["resnet18"], None, (32, 32))
        'cifar'
    """
    stem = stem or spec.stem
    if stem is not None:
        return stem
    if None in spatial:
        raise ValueError(
            f"`stem` must be given (one of {', '.join(STEMS)}) when the input size is variable "
            "(a None in `input_shape`): the default stem is chosen by the input size. "
            f"Received: stem={stem!r}"
        )
    return "imagenet" if min(spatial) >= IMAGENET_STEM_MIN_SIZE else "cifar"


def total_stride(spec: ResNetSpec, stem: str) -> int:
    """How much the network downsamples: the stem's factor times 2 per strided stage.

    An input must be at least this large on both sides.

    Example:
        >>> total_stride(MODEL_SPECS["resnet50"], "imagenet")
        32
    """
    return (1 if stem == "cifar" else 4) * 2 ** (len(spec.blocks_per_stage) - 1)


def _spatial(input_shape) -> tuple[int, int]:
    if channel_axis() == 1:
        return tuple(input_shape[1:])
    return tuple(input_shape[:2])


def _positive_integer(d) -> bool:
    return isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0


def _validate(
    spec,
    num_classes,
    input_shape,
    include_top,
    pooling,
    weights,
    shortcut,
    stem,
    dropout_rate,
    zero_init_residual,
):
    """Check every user argument before any layer is built."""
    if include_top:
        check_integer(num_classes, "num_classes", minimum=1)
    channels_index = 0 if channel_axis() == 1 else 2
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(
            _positive_integer(d) or (d is None and i != channels_index)
            for i, d in enumerate(input_shape)
        )
    ):
        raise ValueError(
            "`input_shape` must be three positive integers (height, width, channels; "
            "channels first under channels_first); height and width may be None for a "
            f"variable size. Received: input_shape={input_shape!r}"
        )
    check_number(dropout_rate, "dropout_rate", low=0.0, high=1.0, high_open=True)
    if not isinstance(zero_init_residual, bool):
        raise ValueError(
            "`zero_init_residual` must be True or False. "
            f"Received: zero_init_residual={zero_init_residual!r}"
        )
    if shortcut not in SHORTCUTS:
        raise ValueError(
            f"`shortcut` must be one of {', '.join(SHORTCUTS)}. Received: shortcut={shortcut!r}"
        )
    if stem is not None and stem not in STEMS:
        raise ValueError(
            f"`stem` must be one of {', '.join(STEMS)} or None (chosen by input size). "
            f"Received: stem={stem!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    spatial = _spatial(input_shape)
    if pretrained.is_tag(weights):
        stem = _check_pretrained(
            spec, weights, num_classes, input_shape, include_top, shortcut, stem
        )
    elif weights is not None and not (
        isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)
    ):
        tags = ", ".join(repr(tag) for tag in pretrained.TAGS)
        raise ValueError(
            f"`weights` must be None, one of {tags} (published weights), or the path of an "
            "existing weights file (.weights.h5, .keras, a torchvision .pth, or a "
            f"keras.applications .h5). Received: weights={weights!r}"
        )
    resolved_stem = resolve_stem(spec, stem, spatial)
    stride = total_stride(spec, resolved_stem)
    if min((d for d in spatial if d is not None), default=stride) < stride:
        raise ValueError(
            f"`input_shape` is too small: with the {resolved_stem} stem the network "
            f"downsamples by {stride}, so height and width must be at least "
            f"{stride}. Received: input_shape={tuple(input_shape)!r}"
        )
    return resolved_stem


def registered_name(spec: ResNetSpec) -> str | None:
    """The table's name for a spec, or None for a spec not in the table.

    Example:
        >>> registered_name(MODEL_SPECS["resnet50_v2"])
        'resnet50_v2'
    """
    return next((name for name, row in MODEL_SPECS.items() if row == spec), None)


def _check_pretrained(spec, tag, num_classes, input_shape, include_top, shortcut, stem) -> str:
    """Refuse what published weights cannot fill; the stem they need (always ImageNet's)."""
    received = f"Received: weights={tag!r}"
    name = registered_name(spec)
    if name is None:
        raise ValueError(
            f"weights={tag!r} needs one of the table's models (a custom ResNetSpec has no "
            f"published weights): use get_model(name, weights={tag!r}). {received}"
        )
    entry = pretrained.pretrained_entry(name, tag)
    if include_top and num_classes != 1000:
        raise ValueError(
            f"weights={tag!r} with include_top=True needs num_classes=1000 (ImageNet's "
            "classes); for another number of classes, build with include_top=False and add "
            f"your own classifier. Received: num_classes={num_classes!r}"
        )
    channels = input_shape[0] if channel_axis() == 1 else input_shape[2]
    if channels != 3:
        raise ValueError(
            f"weights={tag!r} needs 3 input channels (RGB). "
            f"Received: input_shape={tuple(input_shape)!r}"
        )
    if stem not in (None, "imagenet") or shortcut != spec.shortcut:
        raise ValueError(
            f"weights={tag!r} fits {name} as {entry.source} built it: the ImageNet stem and "
            f"the {spec.shortcut!r} shortcuts; leave `stem` and `shortcut` unset. "
            f"Received: stem={stem!r}, shortcut={shortcut!r}"
        )
    return "imagenet"


def _stem(x, kind, filters, options):
    """The stem; in a pre-activation network its last convolution is bare (no BN, ReLU)."""
    last = {"activation": None, "normalize": False} if options.preact else {}
    if kind == "cifar":
        return blocks.conv_bn(x, filters, 3, 1, name="conv1", options=options, **last)
    if kind == "deep":
        # ResNet-D (timm's stem_type="deep"): three 3x3 convs, only the first strided.
        x = blocks.conv_bn(x, filters // 2, 3, 2, name="conv1_1", options=options)
        x = blocks.conv_bn(x, filters // 2, 3, 1, name="conv1_2", options=options)
        x = blocks.conv_bn(x, filters, 3, 1, name="conv1_3", options=options, **last)
    else:
        x = blocks.conv_bn(x, filters, 7, 2, name="conv1", options=options, **last)
    # Zero padding before the max-pool equals PyTorch's -inf padding: inputs are >= 0 after
    # the ReLU. (A pre-activation stem has no ReLU; keras.applications V2 pads with zeros
    # there too, and these rows reproduce it.)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def build_resnet(
    spec: ResNetSpec | int,
    *,
    num_classes: int | None = None,
    input_shape=None,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation="softmax",
    weights: str | None = None,
    shortcut: str | None = None,
    stem: str | None = None,
    dropout_rate: float = 0.0,
    zero_init_residual: bool = False,
    name: str | None = None,
) -> keras.Model:
    """Build a ResNet with the Functional API.

    Args:
        spec: a ``ResNetSpec`` or the depth of a registered model (18, 56, ...).
        num_classes: classifier outputs; defaults to the spec's (1000 or 10).
        input_shape: ``(height, width, channels)`` (channels first under
            ``channels_first``); defaults to the spec's native square size with 3
            channels (224 for the ImageNet family, 32 for the CIFAR family). Height and
            width may be None: the model then takes any size of at least
            ``total_stride`` (and ``stem`` must be given where the spec has none).
        include_top: add global average pooling and the ``predictions`` Dense layer.
        pooling: without the top, None (4-D feature map), "avg" or "max".
        classifier_activation: activation of ``predictions``; None gives logits.
        weights: None; ``"imagenet"`` (or ``"imagenet_v2"``) for the published ImageNet
            weights of the row (``pretrained.PRETRAINED``: torchvision's for
            resnet18..152, keras.applications' for the v1 and v2 layouts), downloaded
            once into Keras's cache; or the path of a ``.weights.h5``/``.keras`` file, a
            torchvision state dict (``.pth``/``.pt``, see ``load_torchvision_weights``)
            or a keras.applications ``.h5`` file.
        shortcut: "zero_pad" (option A), "projection" (B), "projection_all" (C) or
            "none" (a plain network: no shortcuts, otherwise identical); defaults to the
            spec's (A for the CIFAR family, B otherwise).
        stem: "imagenet", "cifar" or "deep" (ResNet-D's); defaults to the spec's, or by
            input size (see ``resolve_stem``).
        dropout_rate: dropout before each residual branch's last convolution (the Wide
            ResNets' dropout between the two convolutions); 0 adds no layer.
        zero_init_residual: start each residual branch's last batch-norm scale at 0, so
            each block starts as its shortcut (torchvision's option).
        name: model name.

    Example:
        >>> model = build_resnet(18, num_classes=10, input_shape=(32, 32, 3))
        >>> model.output.shape
        (None, 10)
    """
    if not isinstance(spec, ResNetSpec):
        registered = f"resnet{spec}"
        if registered not in MODEL_SPECS:
            depths = ", ".join(key.removeprefix("resnet") for key in MODEL_SPECS)
            raise ValueError(f"Unknown depth. Available: {depths}. Received: depth={spec!r}")
        name = name or registered
        spec = MODEL_SPECS[registered]
    num_classes = spec.num_classes if num_classes is None else num_classes
    if input_shape is None:
        size = spec.input_size
        input_shape = (3, size, size) if channel_axis() == 1 else (size, size, 3)
    shortcut = shortcut or spec.shortcut
    stem = _validate(
        spec,
        num_classes,
        input_shape,
        include_top,
        pooling,
        weights,
        shortcut,
        stem,
        dropout_rate,
        zero_init_residual,
    )
    options = blocks.BlockOptions(
        preact=spec.preact,
        bottleneck_stride=spec.bottleneck_stride,
        conv_bias=spec.conv_bias,
        bn_epsilon=spec.bn_epsilon,
        dropout_rate=float(dropout_rate),
        zero_init_residual=zero_init_residual,
    )

    inputs = keras.Input(tuple(input_shape), name="input")
    x = _stem(inputs, stem, spec.stem_width or spec.widths[0], options)
    stages = len(spec.widths)
    # "first": the first stage keeps the stem's resolution; "last": the last stage does
    # (keras.applications V2), the others stride in their last block.
    stage_strides = (
        [1] + [2] * (stages - 1) if spec.downsample == "first" else [2] * (stages - 1) + [1]
    )
    for index, (filters, num_blocks) in enumerate(
        zip(spec.widths, spec.blocks_per_stage, strict=True)
    ):
        x = blocks.residual_stage(
            x,
            spec.block,
            filters,
            num_blocks,
            strides=stage_strides[index],
            shortcut_kind=shortcut,
            name=f"conv{index + 2}",
            downsample=spec.downsample,
            options=options,
        )
    if spec.preact:
        x = blocks.batch_norm(x, name="post", options=options)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # Under a mixed-precision policy the classifier computes in float32, so the
        # softmax and the loss are not rounded to 16 bits.
        mixed = keras.config.dtype_policy().name.startswith("mixed")
        x = keras.layers.Dense(
            num_classes,
            activation=classifier_activation,
            dtype="float32" if mixed else None,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=name or "resnet")
    if pretrained.is_tag(weights):
        pretrained.load_pretrained(model, registered_name(spec), weights, include_top)
    elif weights is not None:
        path = os.fspath(weights)
        if path.endswith(PTH_SUFFIXES):
            load_torchvision_weights(model, path)
        elif path.endswith(LEGACY_H5_SUFFIXES) and not path.endswith(".weights.h5"):
            pretrained.load_keras_applications_weights(model, path)
        else:
            load_weights(model, path)
    return model


def ResNet18(**kwargs) -> keras.Model:
    """ResNet-18 (BasicBlock, 2-2-2-2). Example: ``ResNet18(num_classes=10)``."""
    return get_model("resnet18", **kwargs)


def ResNet34(**kwargs) -> keras.Model:
    """ResNet-34 (BasicBlock, 3-4-6-3). Example: ``ResNet34(num_classes=10)``."""
    return get_model("resnet34", **kwargs)


def ResNet50(**kwargs) -> keras.Model:
    """ResNet-50 (Bottleneck, 3-4-6-3). Example: ``ResNet50(num_classes=10)``."""
    return get_model("resnet50", **kwargs)


def ResNet101(**kwargs) -> keras.Model:
    """ResNet-101 (Bottleneck, 3-4-23-3). Example: ``ResNet101(num_classes=10)``."""
    return get_model("resnet101", **kwargs)


def ResNet152(**kwargs) -> keras.Model:
    """ResNet-152 (Bottleneck, 3-8-36-3). Example: ``ResNet152(num_classes=10)``."""
    return get_model("resnet152", **kwargs)


def ResNet20(**kwargs) -> keras.Model:
    """CIFAR ResNet-20 (n=3, option A). Example: ``ResNet20()``."""
    return get_model("resnet20", **kwargs)


def ResNet32(**kwargs) -> keras.Model:
    """CIFAR ResNet-32 (n=5, option A). Example: ``ResNet32()``."""
    return get_model("resnet32", **kwargs)


def ResNet44(**kwargs) -> keras.Model:
    """CIFAR ResNet-44 (n=7, option A). Example: ``ResNet44()``."""
    return get_model("resnet44", **kwargs)


def ResNet56(**kwargs) -> keras.Model:
    """CIFAR ResNet-56 (n=9, option A). Example: ``ResNet56()``."""
    return get_model("resnet56", **kwargs)


def ResNet110(**kwargs) -> keras.Model:
    """CIFAR ResNet-110 (n=18, option A). Example: ``ResNet110()``."""
    return get_model("resnet110", **kwargs)


# keras.applications' names for its pre-activation models, so code written against
# keras.applications.ResNet50V2 finds the same layout here; every other row (v1, ResNet-D,
# the pre-activation CIFAR nets, Wide ResNets) is reached by name with get_model, which
# keeps the public namespace to the names users already know.
def ResNet50V2(**kwargs) -> keras.Model:
    """keras.applications' ResNet50V2 layout. Example: ``ResNet50V2(num_classes=10)``."""
    return get_model("resnet50_v2", **kwargs)


def ResNet101V2(**kwargs) -> keras.Model:
    """keras.applications' ResNet101V2 layout. Example: ``ResNet101V2(num_classes=10)``."""
    return get_model("resnet101_v2", **kwargs)


def ResNet152V2(**kwargs) -> keras.Model:
    """keras.applications' ResNet152V2 layout. Example: ``ResNet152V2(num_classes=10)``."""
    return get_model("resnet152_v2", **kwargs)
