"""Optional dependencies, grouped by use as the install extras are (see pyproject.toml).

The base install is what the models need (Keras, NumPy). Training needs the ``train``
extra, searching the ``tune`` extra; a missing one is an ``ImportError`` that names it.
"""

from __future__ import annotations

import importlib
import importlib.util

DISTRIBUTION = "keras3-resnet"
# Import name -> (the extra that installs it, its name on PyPI).
OPTIONAL_MODULES = {
    "tensorflow_datasets": ("train", "tensorflow-datasets"),
    "matplotlib": ("train", "matplotlib"),
    "PIL": ("train", "pillow"),
    "keras_tuner": ("tune", "keras-tuner"),
    "tensorboard": ("tune", "tensorboard"),
}
# An extra that installs another one too (pyproject.toml: tune = [keras3-resnet[train], ...]).
INCLUDED_EXTRAS = {"tune": ("train",)}


def require(module: str, purpose: str):
    """Import an optional dependency, or raise an ``ImportError`` naming its extra.

    Example:
        >>> require("matplotlib", "plotting").__name__
        'matplotlib'
    """
    extra, package = OPTIONAL_MODULES[module]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs {package}, which the '{extra}' extra installs: "
            f"pip install '{DISTRIBUTION}[{extra}]'. Received: import {module} failed ({error})"
        ) from error


def check_extra(extra: str, purpose: str, without: tuple[str, ...] = ()) -> None:
    """Raise an ``ImportError`` naming ``extra`` if any of its modules is not installed.

    Only looks the modules up; nothing is imported. ``without`` names modules of the extra
    that ``purpose`` can do without (their own users check for them).

    Example:
        >>> check_extra("train", "Training", without=("tensorflow_datasets",))
    """
    extras = (extra, *INCLUDED_EXTRAS.get(extra, ()))
    missing = [
        package
        for module, (module_extra, package) in OPTIONAL_MODULES.items()
        if module_extra in extras
        and module not in without
        and importlib.util.find_spec(module) is None
    ]
    if missing:
        raise ImportError(
            f"{purpose} needs {', '.join(missing)}, which the '{extra}' extra installs: "
            f"pip install '{DISTRIBUTION}[{extra}]'. Received: {', '.join(missing)} not installed"
        )
