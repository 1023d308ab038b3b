"""Run in an environment that has only the base install and one backend.

Checks that ResNet-18 builds, saves and loads there, that no optional dependency came with
the base install, and that the recipe and the search name their extras when used.
"""

import importlib.util
import os
import sys
import tempfile

import numpy as np

OPTIONAL = ("tensorflow_datasets", "matplotlib", "keras_tuner", "tensorboard")
present = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
assert not present, f"the base install pulled optional dependencies: {present}"

import keras  # noqa: E402

import keras_resnet  # noqa: E402

model = keras_resnet.ResNet18(num_classes=10, input_shape=(32, 32, 3))
images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "resnet18.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6
    )

for statement, extra in (
    ("keras_resnet.train", "train"),
    ("__import__('keras_resnet.recipe.training')", "train"),
    ("__import__('keras_resnet.tuning.tuners')", "tune"),
):
    try:
        eval(statement)
    except ImportError as error:
        assert f"[{extra}]" in str(error), error
    else:
        raise AssertionError(f"{statement} worked without the {extra} extra")
print(
    f"base install on {keras.backend.backend()}: ResNet-18 builds, saves and loads; "
    "train and tune name their extras"
)
sys.exit(0)
