"""KerasTuner searches over the recipe: the space and HyperModel, the tuners, the report.

Searching needs the ``tune`` extra (``pip install 'keras3-resnet[tune]'``); the public names
load on first use.

Example:
    >>> from keras_resnet.tuning import SearchSpace
    >>> SearchSpace().resolved_step_size(epochs=100)
    (25, 100, 25)
"""

from keras_resnet import extras
from keras_resnet._lazy import lazy_exports

extras.check_extra("tune", "A hyperparameter search with keras_resnet.tuning")

EXPORTS = {
    "SearchSpace": "keras_resnet.tuning.hypermodel",
    "ResNetHyperModel": "keras_resnet.tuning.hypermodel",
    "fixed_hyperparameters": "keras_resnet.tuning.hypermodel",
    "make_tuner": "keras_resnet.tuning.tuners",
    "check_project": "keras_resnet.tuning.tuners",
    "search_role": "keras_resnet.tuning.tuners",
    "SearchFolderError": "keras_resnet.tuning.tuners",
    "summarize": "keras_resnet.tuning.report",
    "format_summary": "keras_resnet.tuning.report",
    "write_summary": "keras_resnet.tuning.report",
    "best_config": "keras_resnet.tuning.report",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS, globals())
