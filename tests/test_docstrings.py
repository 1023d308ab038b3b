"""The docstring examples of every package module, run as doctests.

Examples are cheap by design (tiny inputs); those that need files, a trained model or
minutes (a run folder, a search) say ``# doctest: +SKIP`` and are shown, not run. Each
module's examples see its own globals plus ``keras``, ``np`` and ``keras_resnet``, and run
in a temporary folder, so examples that write files leave nothing behind.
"""

import doctest
import importlib
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnet

PACKAGE_DIR = Path(keras_resnet.__file__).parent
MODULES = sorted(
    ".".join(("keras_resnet", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)).removesuffix(
        ".__init__"
    )
    for path in PACKAGE_DIR.rglob("*.py")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    extra = {"keras": keras, "np": np, "keras_resnet": keras_resnet}
    for test in finder.find(module, module_name, globs={**vars(module), **extra}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed"
