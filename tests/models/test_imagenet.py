"""ImageNet inputs and outputs: each source's preprocessing, and the shipped class names."""

import numpy as np
import pytest

import keras_resnet
from keras_resnet import decode_predictions, preprocess_input
from keras_resnet.models.imagenet import class_index

MEAN_RGB = np.array([0.485, 0.456, 0.406])
STD_RGB = np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def images():
    return np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")


@pytest.mark.parametrize(
    "model, weights, convention",
    [
        ("resnet18", "imagenet", lambda x: (x / 255.0 - MEAN_RGB) / STD_RGB),
        ("resnet50", "imagenet_v2", lambda x: (x / 255.0 - MEAN_RGB) / STD_RGB),
        ("resnet50_v1", "imagenet", lambda x: x[..., ::-1] - CAFFE_MEAN_BGR),
        ("resnet152_v2", "imagenet", lambda x: x / 127.5 - 1.0),
    ],
)
def test_each_source_gets_its_own_convention(model, weights, convention):
    x = images()
    before = x.copy()
    result = np.asarray(preprocess_input(x, model, weights, data_format="channels_last"))
    np.testing.assert_allclose(result, convention(x.astype("float64")), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(x, before)  # the caller's array is not scaled in place


def test_the_model_itself_names_its_convention():
    model = keras_resnet.get_model("resnet50_v2", input_shape=(32, 32, 3), stem="imagenet")
    x = images()
    np.testing.assert_allclose(
        np.asarray(preprocess_input(x, model, data_format="channels_last")),
        x / 127.5 - 1.0,
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_model_without_published_weights_has_no_convention():
    with pytest.raises(ValueError, match="No published 'imagenet' weights for 'resnet56'"):
        preprocess_input(images(), "resnet56")
    with pytest.raises(ValueError) as error:
        preprocess_input(images(), "resnet18", weights="imagenet1k")
    assert str(error.value) == (
        "Unknown weights tag. Available: imagenet, imagenet_v2. Received: weights='imagenet1k'"
    )


def test_the_class_index_ships_with_the_package():
    names = class_index()
    assert len(names) == 1000
    assert names[0] == ("n01440764", "tench")
    assert names[2] == ("n01484850", "great_white_shark")
    assert names[999] == ("n15075141", "toilet_tissue")
    wordnet_ids = [wnid for wnid, _ in names]
    assert wordnet_ids == sorted(wordnet_ids) and len(set(wordnet_ids)) == 1000


def test_decode_predictions_gives_the_top_classes_best_first():
    scores = np.zeros((2, 1000), dtype="float32")
    scores[0, [1, 2, 3]] = [0.2, 0.5, 0.3]
    scores[1, 999] = 1.0
    decoded = decode_predictions(scores, top=2)
    assert decoded[0] == [
        ("n01484850", "great_white_shark", 0.5),
        ("n01491361", "tiger_shark", pytest.approx(0.3)),
    ]
    assert decoded[1][0] == ("n15075141", "toilet_tissue", 1.0)


@pytest.mark.parametrize(
    "predictions, top, message",
    [
        (
            np.zeros((2, 10)),
            5,
            "`predictions` must be a batch of 1000 ImageNet class scores, of shape (samples, "
            "1000). Received: predictions.shape=(2, 10)",
        ),
        (np.zeros((1, 1000)), 0, "`top` must be an integer from 1 to 1000. Received: top=0"),
    ],
)
def test_decode_predictions_refuses_what_is_not_imagenet_scores(predictions, top, message):
    with pytest.raises(ValueError) as error:
        decode_predictions(predictions, top=top)
    assert str(error.value) == message
