"""keras_resnet: the ResNet family for Keras 3 (TensorFlow, JAX, PyTorch backends).

Importing the package registers its custom layers and optimizer with Keras, so saved
``.keras`` files load with ``keras.saving.load_model`` and no ``custom_objects``.

Example:
    >>> import keras_resnet
    >>> model = keras_resnet.ResNet18(num_classes=10, input_shape=(32, 32, 3))
"""

from keras_resnet.augment import RandomPadCrop
from keras_resnet.config import TrainConfig
from keras_resnet.layers import FusedBatchNormalization, ZeroPadShortcut
from keras_resnet.models import (
    ResNet18,
    ResNet20,
    ResNet32,
    ResNet34,
    ResNet44,
    ResNet50,
    ResNet56,
    ResNet101,
    ResNet110,
    ResNet152,
    build_resnet,
    get_model,
    list_models,
)
from keras_resnet.optimizers import TorchSGD
from keras_resnet.specs import MODEL_SPECS, ResNetSpec
from keras_resnet.torchvision_weights import load_torchvision_weights, torchvision_state_dict
from keras_resnet.training import train

__version__ = "0.1.0"

__all__ = [
    "FusedBatchNormalization",
    "MODEL_SPECS",
    "RandomPadCrop",
    "ResNet18",
    "ResNet20",
    "ResNet32",
    "ResNet34",
    "ResNet44",
    "ResNet50",
    "ResNet56",
    "ResNet101",
    "ResNet110",
    "ResNet152",
    "ResNetSpec",
    "TorchSGD",
    "TrainConfig",
    "ZeroPadShortcut",
    "build_resnet",
    "get_model",
    "list_models",
    "load_torchvision_weights",
    "torchvision_state_dict",
    "train",
]
