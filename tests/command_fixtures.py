"""Shared by the command tests (tests/cli): a small run folder, a ResNet-20 with the recipe's
augmentation and normalization inside, saved as best.keras beside its test metrics."""

import json

import keras
import numpy as np

from keras_resnet.recipe import TrainConfig, run_folder
from keras_resnet.recipe.training import build_training_model, precision_policy

CLASSES = tuple(f"kind{k}" for k in range(10))


def make_model(precision: str = "fp32") -> keras.Model:
    """A ResNet-20 training model on 32x32 images whose predictions are not one-hot: the
    classifier is scaled down so that every class gets some probability."""
    keras.utils.set_random_seed(0)
    with precision_policy(TrainConfig(precision=precision)):
        model = build_training_model(
            TrainConfig(model="resnet20", seed=0), (125.0, 122.0, 113.0), (62.0, 61.0, 66.0), 10
        )
    classifier = model.get_layer(index=-1).get_layer("predictions")
    kernel, bias = classifier.get_weights()
    classifier.set_weights([kernel * 0.05, bias])
    return model


def write_run_folder(path, model) -> str:
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / run_folder.BEST_MODEL_FILE)
    (path / run_folder.METRICS_FILE).write_text(
        json.dumps({"confusion_matrix": np.zeros((10, 10), int).tolist(), "class_names": CLASSES})
    )
    return str(path / run_folder.BEST_MODEL_FILE)


def images(count: int, size=(32, 32), seed: int = 0) -> np.ndarray:
    """Real-looking uint8 images: the recipe's generated stripes, resized when asked."""
    from PIL import Image

    from keras_resnet.recipe.data import make_synthetic

    x = make_synthetic(num_train=1, num_test=count, seed=seed).x_test
    if size != (32, 32):
        x = np.stack([np.asarray(Image.fromarray(im).resize(size[::-1])) for im in x])
    return x
