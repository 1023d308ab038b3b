"""Public names that load their module on first use (PEP 562), so importing a package is cheap."""

from __future__ import annotations

import importlib
from collections.abc import Mapping


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict):
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a name to its module.

    A name is imported from its module on first access and then kept in ``namespace`` (the
    package's ``globals()``), so later accesses cost nothing.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"train": "keras_resnet.recipe.training"},
        ...                                     globals())  # doctest: +SKIP
    """

    def get_attribute(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def list_names():
        return sorted({*namespace, *exports})

    return get_attribute, list_names
