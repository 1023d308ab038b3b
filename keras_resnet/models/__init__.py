"""The models: the variant table, blocks, custom layers, builders, weight converters, statistics.

This layer imports Keras and NumPy only. Its public names load on first use.

Example:
    >>> from keras_resnet.models import ResNet20
    >>> ResNet20().count_params()
    271098
"""

from keras_resnet._lazy import lazy_exports

_BUILDERS = "keras_resnet.models.builders"
EXPORTS = {
    **{
        name: _BUILDERS
        for name in (
            "ResNet18",
            "ResNet34",
            "ResNet50",
            "ResNet101",
            "ResNet152",
            "ResNet20",
            "ResNet32",
            "ResNet44",
            "ResNet56",
            "ResNet110",
            "ResNet50V2",
            "ResNet101V2",
            "ResNet152V2",
            "build_resnet",
            "get_model",
            "list_models",
        )
    },
    "MODEL_SPECS": "keras_resnet.models.specs",
    "ResNetSpec": "keras_resnet.models.specs",
    "FusedBatchNormalization": "keras_resnet.models.layers",
    "ZeroPadShortcut": "keras_resnet.models.layers",
    "PRETRAINED": "keras_resnet.models.pretrained",
    "decode_predictions": "keras_resnet.models.imagenet",
    "preprocess_input": "keras_resnet.models.imagenet",
    "load_torchvision_weights": "keras_resnet.models.torchvision",
    "torchvision_state_dict": "keras_resnet.models.torchvision",
    "multiply_accumulates": "keras_resnet.models.statistics",
    "trainable_parameters": "keras_resnet.models.statistics",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS, globals())
