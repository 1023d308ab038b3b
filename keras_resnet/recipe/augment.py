"""Training-only augmentation and input normalization, as layers inside the model.

The CIFAR recipe of the ResNet paper pads each image by 4 pixels, crops a random 32x32
window from it, flips it horizontally at random, and normalizes each channel. Large
images (from ``RESIZED_CROP_MIN_SIZE``) get ImageNet's random resized crop instead. Keeping all
of that inside the model means a saved ``.keras`` file takes raw 0-255 images and needs
no separate preprocessing code at inference.

``keras.layers.RandomCrop`` is not a substitute for :class:`RandomPadCrop`: it crops the
whole batch at one location, and at inference it passes a padded 40x40 input through
unchanged (keras issue 21868).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_resnet.models.data_format import channel_axis
from keras_resnet.validation import check_integer, check_number

# Images at least this large get the ImageNet augmentation, a random resized crop; smaller
# ones CIFAR's pad-and-crop with an eighth of the side as padding (4 at 32). It is the size
# from which the models take the ImageNet stem (models.builders.IMAGENET_STEM_MIN_SIZE,
# not imported here: this module is imported while Keras is, before the models are).
RESIZED_CROP_MIN_SIZE = 128
# The crop's share of the image area and its aspect ratio. torchvision's defaults are
# (0.08, 1.0) for ImageNet; a from-scratch run on a small folder loses less of each image
# with 0.25 as the smallest share.
RESIZED_CROP_SCALE = (0.25, 1.0)
RESIZED_CROP_RATIO = (3 / 4, 4 / 3)

# Per-channel (R, G, B) statistics of the CIFAR-10 training images on the 0-255 scale:
# the widely used values (0.4914, 0.4822, 0.4465) and (0.2470, 0.2435, 0.2616) times 255.
# They are the reference and the fallback of `preprocessing`; statistics measured on the
# data actually used (for example the lossy JPEG copy) may be passed instead.
CIFAR10_MEAN = (0.4914 * 255.0, 0.4822 * 255.0, 0.4465 * 255.0)
CIFAR10_STD = (0.2470 * 255.0, 0.2435 * 255.0, 0.2616 * 255.0)


@keras.saving.register_keras_serializable(package="keras_resnet")
class RandomPadCrop(keras.layers.Layer):
    """Zero-pad each image, then crop it back to its size at a random per-image offset.

    In training every image of the batch gets its own offset ``(dy, dx)``, drawn
    uniformly from ``{0, ..., 2 * padding}`` squared, so the output is the window
    ``padded[dy:dy + height, dx:dx + width]`` of the zero-padded image. At inference
    (``training`` false or not given) the layer is the identity. The output shape always
    equals the input shape.

    The batch is padded once and the windows are read with a single vectorized gather,
    using only ``keras.ops`` and ``keras.random``, so the layer runs on the TensorFlow,
    JAX and PyTorch backends, eagerly and inside a compiled ``model.fit``, with an
    unknown batch size.

    Args:
        padding: non-negative int, the number of zero pixels added on each side.
            ``0`` makes the layer the identity.
        seed: int or None, seeds the layer's ``keras.random.SeedGenerator``.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Example:
        >>> layer = RandomPadCrop(padding=4, seed=0)
        >>> images = keras.random.uniform((8, 32, 32, 3), maxval=255.0)
        >>> tuple(layer(images, training=True).shape)
        (8, 32, 32, 3)
    """

    def __init__(self, padding=4, seed=None, data_format=None, **kwargs):
        check_integer(padding, "padding", minimum=0)
        data_format = data_format or keras.config.image_data_format()
        channel_axis(data_format)  # refuses anything but the two formats
        super().__init__(**kwargs)
        self.padding = int(padding)
        self.seed = seed
        self.data_format = data_format
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.padding == 0:
            return inputs
        return self._pad_and_crop(inputs)

    def _pad_and_crop(self, inputs):
        p = self.padding
        batch, *image_shape = ops.shape(inputs)
        if self.data_format == "channels_first":
            channels, height, width = image_shape
            pad_width = [[0, 0], [0, 0], [p, p], [p, p]]
        else:
            height, width, channels = image_shape
            pad_width = [[0, 0], [p, p], [p, p], [0, 0]]
        flat = ops.reshape(ops.pad(inputs, pad_width), (-1,))

        # Element strides of the padded batch, in the axis order of `image_shape`.
        padded_height, padded_width = height + 2 * p, width + 2 * p
        if self.data_format == "channels_first":
            row_stride, col_stride = padded_width, 1
            strides = (padded_height * padded_width, row_stride, col_stride)
        else:
            row_stride, col_stride = padded_width * channels, channels
            strides = (row_stride, col_stride, 1)
        image_stride = padded_height * padded_width * channels

        # One (dy, dx) per image: its crop is padded[b, dy:dy + height, dx:dx + width].
        offsets = keras.random.randint(
            (batch, 2), 0, 2 * p + 1, dtype="int32", seed=self.seed_generator
        )
        start = (
            ops.arange(batch, dtype="int32") * image_stride
            + offsets[:, 0] * row_stride
            + offsets[:, 1] * col_stride
        )
        # Flat (int32) index of every output element: its window's start plus its place in
        # the window.
        index = ops.add(ops.reshape(start, (-1, 1, 1, 1)), _index_grid(image_shape, strides))
        return ops.take(flat, index, axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(padding=self.padding, seed=self.seed, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="keras_resnet")
class RandomResizedCrop(keras.layers.Layer):
    """Crop a random box of each image and scale it back to the image's size (training only).

    In training each image of the batch gets its own box: a share of the image area drawn
    uniformly from ``scale``, an aspect ratio (width / height) drawn log-uniformly from
    ``ratio``, clipped to the image, at a uniform position; the box is resampled to the
    input's height and width (bilinear). At inference (``training`` false or not given)
    the layer is the identity. Keras 3.15 has no such layer (``RandomCrop`` crops the whole
    batch at one place, ``RandomZoom`` keeps the centre); this one is one
    ``keras.ops.image.affine_transform`` per batch, on every backend.

    Args:
        scale: (low, high) share of the image area, in (0, 1].
        ratio: (low, high) aspect ratio, positive.
        seed: int or None, seeds the layer's ``keras.random.SeedGenerator``.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.

    Example:
        >>> layer = RandomResizedCrop(seed=0)
        >>> images = keras.random.uniform((4, 128, 128, 3), maxval=255.0)
        >>> tuple(layer(images, training=True).shape)
        (4, 128, 128, 3)
    """

    def __init__(
        self,
        scale=RESIZED_CROP_SCALE,
        ratio=RESIZED_CROP_RATIO,
        seed=None,
        data_format=None,
        **kwargs,
    ):
        scale, ratio = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        for name, (low, high), top in (("scale", scale, 1.0), ("ratio", ratio, None)):
            check_number(low, f"{name}[0]", low=0.0, high=top, low_open=True)
            check_number(high, f"{name}[1]", low=low, high=top)
        data_format = data_format or keras.config.image_data_format()
        channel_axis(data_format)
        super().__init__(**kwargs)
        self.scale, self.ratio, self.seed = scale, ratio, seed
        self.data_format = data_format
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        batch = shape[0]
        if self.data_format == "channels_first":
            height, width = shape[2], shape[3]
        else:
            height, width = shape[1], shape[2]
        height, width = ops.cast(height, "float32"), ops.cast(width, "float32")
        draws = keras.random.uniform((batch, 4), seed=self.seed_generator)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * draws[:, 0]
        log_low, log_high = np.log(self.ratio[0]), np.log(self.ratio[1])
        aspect = ops.exp(log_low + (log_high - log_low) * draws[:, 1])
        box_w = ops.minimum(ops.sqrt(area * aspect), 1.0) * width
        box_h = ops.minimum(ops.sqrt(area / aspect), 1.0) * height
        left = (width - box_w) * draws[:, 2]
        top = (height - box_h) * draws[:, 3]
        # Output pixel (x, y) reads input (left + x * box_w / width, top + y * box_h / height).
        zeros = ops.zeros_like(left)
        transform = ops.stack(
            [box_w / width, zeros, left, zeros, box_h / height, top, zeros, zeros], axis=1
        )
        outputs = ops.image.affine_transform(
            ops.cast(inputs, "float32"),
            transform,
            interpolation="bilinear",
            fill_mode="nearest",
            data_format=self.data_format,
        )
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            scale=list(self.scale),
            ratio=list(self.ratio),
            seed=self.seed,
            data_format=self.data_format,
        )
        return config


def _index_grid(sizes, strides):
    """``sum_k arange(sizes[k]) * strides[k]``, broadcast to shape ``sizes``.

    Built with NumPy when every size and stride is a Python int (a constant, so eager JAX
    compiles no extra ops), else with ``keras.ops`` for dynamic image sizes.
    """
    xp = np if all(isinstance(v, int) for v in (*sizes, *strides)) else ops
    grid = 0
    for axis, (size, stride) in enumerate(zip(sizes, strides, strict=True)):
        shape = [1] * len(sizes)
        shape[axis] = -1
        grid = grid + xp.reshape(xp.arange(size, dtype="int32") * stride, shape)
    return grid


def preprocessing(
    inputs,
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    *,
    padding=None,
    seed=None,
    data_format=None,
):
    """Apply the training augmentation for the image size and per-channel normalization.

    Builds ``RandomPadCrop`` ("random_pad_crop") -> ``keras.layers.RandomFlip("horizontal")``
    ("random_flip") -> ``keras.layers.Normalization`` ("normalization") on a symbolic
    Keras tensor; images of at least ``RESIZED_CROP_MIN_SIZE`` on both sides get
    ``RandomResizedCrop`` ("random_resized_crop") instead of the pad-and-crop, as ImageNet
    training does. The augmentations act only in training (Keras passes the
    ``training`` flag), so at inference the result is ``(inputs - mean) / std`` per
    channel, and a model built on it takes raw 0-255 images.

    ``model.fit`` trains with augmentation; ``predict``/``evaluate`` and
    ``model(x, training=False)`` do not. Beware that a bare ``model(x)`` still flips at
    random: Keras's ``RandomFlip`` defaults to ``training=True`` when no flag is given
    (``RandomPadCrop`` defaults to the identity).

    Args:
        inputs: a symbolic Keras tensor of images on the 0-255 scale, of shape
            ``(batch, height, width, channels)`` or, for channels_first,
            ``(batch, channels, height, width)``.
        mean: per-channel means on the 0-255 scale (default ``CIFAR10_MEAN``).
        std: per-channel standard deviations on the 0-255 scale (default ``CIFAR10_STD``).
        padding: pixels of zero padding on each side before the random crop; 0 disables
            the crop. Default: an eighth of the smaller side (4 at 32x32).
        seed: int or None. The crop uses ``seed`` and the flip ``seed + 1``, so the two
            draw independent random streams.
        data_format: ``"channels_last"`` or ``"channels_first"``; defaults to
            ``keras.config.image_data_format()``.

    Returns:
        The normalized (and, in training, augmented) tensor, float32, same shape.

    Example:
        >>> inputs = keras.Input((32, 32, 3))
        >>> x = preprocessing(inputs, CIFAR10_MEAN, CIFAR10_STD, seed=0)
        >>> x = keras.layers.GlobalAveragePooling2D()(x)
        >>> model = keras.Model(inputs, keras.layers.Dense(10)(x))
    """
    data_format = data_format or keras.config.image_data_format()
    mean = np.asarray(mean, dtype="float64")
    std = np.asarray(std, dtype="float64")
    if mean.shape != std.shape:
        raise ValueError(
            "`mean` and `std` must have the same shape. "
            f"Received: mean={mean.tolist()}, std={std.tolist()}"
        )
    if np.any(std <= 0):
        raise ValueError(f"`std` must be positive. Received: std={std.tolist()}")
    flip_seed = None if seed is None else seed + 1
    axes = (2, 3) if data_format == "channels_first" else (1, 2)
    side = min(inputs.shape[axis] or 0 for axis in axes)

    if side >= RESIZED_CROP_MIN_SIZE and padding is None:
        crop = RandomResizedCrop(seed=seed, data_format=data_format, name="random_resized_crop")
    else:
        padding = side // 8 if padding is None else padding
        crop = RandomPadCrop(padding, seed=seed, data_format=data_format, name="random_pad_crop")
    x = crop(inputs)
    x = keras.layers.RandomFlip(
        "horizontal", seed=flip_seed, data_format=data_format, name="random_flip"
    )(x)
    return keras.layers.Normalization(
        axis=channel_axis(data_format),
        mean=mean.tolist(),
        variance=np.square(std).tolist(),
        name="normalization",
    )(x)
