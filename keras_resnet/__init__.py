"""keras_resnet: the ResNet family for Keras 3 (TensorFlow, JAX, PyTorch backends).

Three layers, imports running one way: ``keras_resnet.models`` (builders, layers, weight
converters; Keras and NumPy only) <- ``keras_resnet.recipe`` (the CIFAR-10 training recipe)
<- ``keras_resnet.tuning`` (KerasTuner searches). The names below load on first use, so
``import keras_resnet`` is cheap; it also registers every custom object a saved model can
hold, so ``.keras`` files load with ``keras.saving.load_model`` and no ``custom_objects``
(see ``keras_resnet.serialization``).

Example:
    >>> import keras_resnet
    >>> model = keras_resnet.ResNet18(num_classes=10, input_shape=(32, 32, 3))
    >>> model.output.shape
    (None, 10)
"""

from keras_resnet import serialization
from keras_resnet._lazy import lazy_exports
from keras_resnet.models import EXPORTS as _MODEL_EXPORTS

__version__ = "0.1.0"

EXPORTS = {
    **_MODEL_EXPORTS,
    "RandomPadCrop": "keras_resnet.recipe.augment",
    "TorchSGD": "keras_resnet.recipe.optimizers",
    "TrainConfig": "keras_resnet.recipe.config",
    "train": "keras_resnet.recipe.training",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS, globals())

serialization.register_when_keras_is_imported()
