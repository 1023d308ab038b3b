"""The CIFAR-10 training recipe: config, flags, data, augmentation, schedules, optimizer,
loss, callbacks, the run folder, evaluation, distribution, and ``train(config)``.

Training needs the ``train`` extra (``pip install 'keras3-resnet[train]'``); its public names
load on first use.

Example:
    >>> from keras_resnet.recipe import TrainConfig
    >>> TrainConfig.from_recipe("fast").schedule
    'one_cycle'
"""

from keras_resnet._lazy import lazy_exports

EXPORTS = {
    "TrainConfig": "keras_resnet.recipe.config",
    "RECIPES": "keras_resnet.recipe.config",
    "train": "keras_resnet.recipe.training",
    "TrainResult": "keras_resnet.recipe.training",
    "prepare_split": "keras_resnet.recipe.training",
    "RunFolderError": "keras_resnet.recipe.run_folder",
    "TrainingDivergedError": "keras_resnet.recipe.callbacks",
    "UnsupportedSetupError": "keras_resnet.recipe.distribution",
    "DataSourceError": "keras_resnet.recipe.data",
    "load_cifar10": "keras_resnet.recipe.data",
    "RandomPadCrop": "keras_resnet.recipe.augment",
    "TorchSGD": "keras_resnet.recipe.optimizers",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS, globals())
