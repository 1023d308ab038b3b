"""Registering every custom object a saved model can hold, as soon as Keras is imported.

A ``best.keras`` file names the package's layers (``keras_resnet>RandomPadCrop``), its
optimizer, loss and schedule; ``keras.saving.load_model`` finds them only once they are
registered, which happens when their modules are imported. ``import keras_resnet`` itself
does not import Keras (so that ``--help`` and a models-only import stay cheap); instead it
calls ``register_when_keras_is_imported``: at once if Keras is already imported, else right
after the first ``import keras`` finishes, through a one-shot import hook.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# The modules whose import registers a serializable class (all import Keras and NumPy only).
SERIALIZABLE_MODULES = (
    "keras_resnet.models.layers",
    "keras_resnet.recipe.augment",
    "keras_resnet.recipe.losses",
    "keras_resnet.recipe.optimizers",
    "keras_resnet.recipe.schedules",
)


def register_custom_objects() -> None:
    """Import every module in ``SERIALIZABLE_MODULES`` (their decorators register them).

    Example:
        >>> register_custom_objects()
        >>> keras.saving.get_registered_object("keras_resnet>RandomPadCrop").__name__
        'RandomPadCrop'
    """
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``keras`` to register once it has run.

    It leaves ``sys.meta_path`` only when Keras's module actually executes: a package that
    merely looks Keras up (TensorFlow's import calls ``find_spec("keras")``) must not spend
    the hook.
    """

    def __init__(self):
        self._looking = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._looking:
            return None
        self._looking = True  # the lookup below passes this finder again
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)  # one shot
            execute(module)
            register_custom_objects()

        spec.loader.exec_module = exec_module
        return spec


def register_when_keras_is_imported() -> None:
    """Register the custom objects now if Keras is imported, else after its import.

    Example:
        >>> register_when_keras_is_imported()
    """
    if "keras" in sys.modules:
        register_custom_objects()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
