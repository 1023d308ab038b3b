"""Tests for keras_resnet.recipe.augment on whichever backend KERAS_BACKEND selects."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_resnet.recipe import augment
from keras_resnet.recipe.augment import CIFAR10_MEAN, CIFAR10_STD, RandomPadCrop, preprocessing

# One batch size throughout: eager JAX compiles each op (random.randint ~1 s here) per shape.
BATCH = 64


@pytest.fixture(params=["channels_last", "channels_first"])
def data_format(request):
    old = keras.config.image_data_format()
    keras.config.set_image_data_format(request.param)
    yield request.param
    keras.config.set_image_data_format(old)


def unique_images(batch, height, width, channels, data_format):
    """A batch of identical images whose pixels hold distinct values 1, 2, 3, ..."""
    image = np.arange(1, height * width * channels + 1, dtype="float32")
    image = image.reshape(height, width, channels)
    if data_format == "channels_first":
        image = image.transpose(2, 0, 1)
    return np.broadcast_to(image, (batch, *image.shape)).copy()


def to_channels_last(x, data_format):
    return x.transpose(0, 2, 3, 1) if data_format == "channels_first" else x


def recover_offsets(outputs, padding, width, channels):
    """The (dy, dx) window start of each channels_last crop of a `unique_images` batch."""
    offsets = []
    for out in outputs:
        i, j = np.argwhere(out[..., 0] > 0)[0]  # any pixel of the original image
        flat = int(out[i, j, 0]) - 1
        row, col = divmod(flat // channels, width)
        offsets.append((int(row + padding - i), int(col + padding - j)))
    return offsets


def crop(layer, x):
    return ops.convert_to_numpy(layer(x, training=True))


def test_offsets_cover_all_positions_and_content_is_a_shifted_window(data_format):
    padding, height, width, channels = 4, 8, 8, 3
    x = unique_images(BATCH, height, width, channels, data_format)
    layer = RandomPadCrop(padding, seed=1)
    assert layer.data_format == data_format
    image = to_channels_last(x, data_format)[0]
    padded = np.pad(image, [(padding, padding), (padding, padding), (0, 0)])
    seen = set()
    for _ in range(32):  # 2048 draws; each of the 81 positions is expected ~25 times
        out = to_channels_last(crop(layer, x), data_format)
        assert out.shape == (BATCH, height, width, channels)
        for image, (dy, dx) in zip(
            out, recover_offsets(out, padding, width, channels), strict=True
        ):
            np.testing.assert_array_equal(image, padded[dy : dy + height, dx : dx + width])
            seen.add((dy, dx))
    assert seen == {(dy, dx) for dy in range(9) for dx in range(9)}


def test_offsets_differ_across_a_batch():
    x = unique_images(BATCH, 32, 32, 3, "channels_last")
    out = crop(RandomPadCrop(seed=7), x)
    offsets = recover_offsets(out, 4, 32, 3)
    assert len(set(offsets)) >= 20
    assert all(0 <= dy <= 8 and 0 <= dx <= 8 for dy, dx in offsets)


def test_seed_makes_crops_reproducible():
    x = unique_images(BATCH, 8, 8, 3, "channels_last")
    layer = RandomPadCrop(seed=3)
    first, second = crop(layer, x), crop(layer, x)
    # The same seed repeats the same sequence of crops ...
    twin = RandomPadCrop(seed=3)
    np.testing.assert_array_equal(crop(twin, x), first)
    np.testing.assert_array_equal(crop(twin, x), second)
    # ... of crops that move: each call draws new offsets, and another seed others.
    offsets = recover_offsets(first, 4, 8, 3)
    assert len(set(offsets)) > 1
    assert offsets != recover_offsets(second, 4, 8, 3)
    assert offsets != recover_offsets(crop(RandomPadCrop(seed=4), x), 4, 8, 3)


def test_inference_is_identity(data_format):
    shape = (2, 3, 32, 32) if data_format == "channels_first" else (2, 32, 32, 3)
    x = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    layer = RandomPadCrop(seed=0)
    for out in (layer(x), layer(x, training=False)):
        np.testing.assert_array_equal(ops.convert_to_numpy(out), x)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *shape[1:])
    inputs = keras.Input(shape[1:])
    assert RandomPadCrop()(inputs).shape == (None, *shape[1:])


def test_padding_zero_is_identity_in_training():
    x = unique_images(BATCH, 8, 8, 3, "channels_last")
    np.testing.assert_array_equal(crop(RandomPadCrop(0), x), x)


@pytest.mark.parametrize("padding", [-1, 2.5, "4", True, None])
def test_bad_padding_raises(padding):
    with pytest.raises(ValueError, match=r"`padding`.*Received: padding="):
        RandomPadCrop(padding)


def test_bad_data_format_raises():
    with pytest.raises(ValueError, match="Received: data_format='nhwc'"):
        RandomPadCrop(data_format="nhwc")


def test_serialize_round_trip(data_format):
    layer = RandomPadCrop(padding=2, seed=5, name="crop")
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == "keras_resnet>RandomPadCrop"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, RandomPadCrop)
    assert restored.get_config() == layer.get_config()
    assert (restored.padding, restored.seed, restored.data_format) == (2, 5, data_format)


def small_model(data_format, size=8):
    shape = (3, size, size) if data_format == "channels_first" else (size, size, 3)
    inputs = keras.Input(shape)
    x = preprocessing(inputs, CIFAR10_MEAN, CIFAR10_STD, seed=0)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x)), shape


def test_preprocessing_layers_and_inference_normalization(data_format):
    model, shape = small_model(data_format)
    names = [layer.name for layer in model.layers]
    assert names[1:4] == ["random_pad_crop", "random_flip", "normalization"]
    features = keras.Model(model.input, model.get_layer("normalization").output)
    x = np.random.default_rng(1).uniform(0, 255, (4, *shape)).astype("float32")
    axis_shape = (1, 3, 1, 1) if data_format == "channels_first" else (1, 1, 1, 3)
    mean = np.reshape(CIFAR10_MEAN, axis_shape)
    std = np.reshape(CIFAR10_STD, axis_shape)
    expected = (x - mean) / std
    np.testing.assert_allclose(features.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    # Keras's RandomFlip defaults to training=True when called directly, so pass it.
    out = ops.convert_to_numpy(features(x, training=False))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_saved_model_loads_without_custom_objects(tmp_path):
    model, shape = small_model("channels_last")
    x = np.random.default_rng(2).uniform(0, 255, (4, *shape)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("random_pad_crop"), RandomPadCrop)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


class KeepTrainingInputs(keras.layers.Layer):
    """The identity, which also keeps the batch it last saw in training in a variable, so
    that what a compiled train step computed can be read after ``fit``."""

    def __init__(self, batch, **kwargs):
        super().__init__(**kwargs)
        self.batch = batch

    def build(self, input_shape):
        self.kept = self.add_weight(
            shape=(self.batch, *input_shape[1:]), initializer="zeros", trainable=False
        )

    def call(self, inputs, training=None):
        if training:
            self.kept.assign(inputs)
        return inputs


def test_runs_inside_compiled_fit(data_format):
    # fit trains on random windows of each zero-padded image; evaluate sees the images.
    height = width = 8
    x = unique_images(BATCH, height, width, 3, data_format)
    inputs = keras.Input(x.shape[1:])
    keep = KeepTrainingInputs(BATCH)
    cropped = keep(RandomPadCrop(4, seed=0)(inputs))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(cropped))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    y = np.zeros((BATCH, 2), "float32")
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    trained_on = to_channels_last(ops.convert_to_numpy(keep.kept), data_format)
    padded = np.pad(to_channels_last(x, data_format)[0], [(4, 4), (4, 4), (0, 0)])
    offsets = recover_offsets(trained_on, 4, width, 3)
    for image, (dy, dx) in zip(trained_on, offsets, strict=True):
        np.testing.assert_array_equal(image, padded[dy : dy + height, dx : dx + width])
    assert len(set(offsets)) >= 20  # per image, not one offset for the batch
    # Inference (evaluate) is not training: the kept batch is still fit's.
    model.evaluate(x, y, batch_size=BATCH, verbose=0)
    kept = to_channels_last(ops.convert_to_numpy(keep.kept), data_format)
    np.testing.assert_array_equal(kept, trained_on)


def test_flip_mirrors_whole_images_in_training_and_never_at_inference(data_format):
    # No crop and no normalization (mean 0, std 1): only the flip acts.
    x = unique_images(BATCH, 8, 8, 3, data_format)
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, preprocessing(inputs, (0.0,) * 3, (1.0,) * 3, padding=0, seed=0))
    out = to_channels_last(ops.convert_to_numpy(model(x, training=True)), data_format)
    image = to_channels_last(x, data_format)[0]
    mirrored = [bool(np.array_equal(o, image[:, ::-1])) for o in out]
    unchanged = [bool(np.array_equal(o, image)) for o in out]
    assert all(m != u for m, u in zip(mirrored, unchanged, strict=True))  # one or the other
    assert 0 < sum(mirrored) < BATCH  # per image: P(all alike) = 2 ** -63
    np.testing.assert_array_equal(ops.convert_to_numpy(model(x, training=False)), x)


# --------------------------------------------------------------------------- random resized crop


def test_the_resized_crop_starts_where_the_models_imagenet_stem_does():
    from keras_resnet.models.builders import IMAGENET_STEM_MIN_SIZE

    assert augment.RESIZED_CROP_MIN_SIZE == IMAGENET_STEM_MIN_SIZE


def test_random_resized_crop_is_the_identity_at_inference_and_per_image_in_training():
    ramp = np.broadcast_to(np.arange(64, dtype="float32")[None, None, :, None], (6, 64, 64, 3))
    layer = augment.RandomResizedCrop(seed=3, data_format="channels_last")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ramp)), ramp)
    out = keras.ops.convert_to_numpy(layer(ramp, training=True))
    assert out.shape == ramp.shape
    # A horizontal ramp stays a ramp, stretched: each row runs from the box's left to its
    # right edge, within the image, and each image has its own box.
    first, last = out[:, 32, 0, 0], out[:, 32, -1, 0]
    assert (first >= 0).all() and (last <= 63).all() and (last > first).all()
    assert len(np.unique(np.round(first, 3))) == 6
    whole = augment.RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(whole(ramp, training=True)), ramp, atol=1e-3
    )


def test_random_resized_crop_round_trips_its_config_and_refuses_bad_ranges():
    layer = augment.RandomResizedCrop(scale=(0.5, 0.9), ratio=(0.8, 1.25), seed=7)
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(again) is augment.RandomResizedCrop
    assert (again.scale, again.ratio, again.seed) == ((0.5, 0.9), (0.8, 1.25), 7)
    with pytest.raises(ValueError, match=r"Received: scale\[0\]=0.0"):
        augment.RandomResizedCrop(scale=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"Received: ratio\[1\]=0.5"):
        augment.RandomResizedCrop(ratio=(0.75, 0.5))
