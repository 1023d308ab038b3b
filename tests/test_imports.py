"""The package's layering and its light import, checked in fresh interpreters.

Imports run one way: models <- recipe <- tuning <- cli (plots and the small shared modules
sit beside them); the library never imports the command scripts. ``import keras_resnet``
loads no backend and no optional dependency, yet a saved model loads without
``custom_objects`` once Keras is imported.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_resnet import serialization

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "keras_resnet"
HEAVY = ("keras", "tensorflow", "jax", "torch", "tensorflow_datasets", "matplotlib", "keras_tuner")
OPTIONAL = ("tensorflow_datasets", "matplotlib", "keras_tuner", "tensorboard", "PIL")
# What each layer may import from the package (the shared modules are stdlib-only or Keras-only).
SHARED = {
    "keras_resnet",
    "_lazy",
    "validation",
    "atomic",
    "extras",
    "serialization",
    "_compat",
    "hardware",
}
ALLOWED = {
    "models": {"models", "_lazy", "validation"},
    "recipe": {"models", "recipe", "plots", *SHARED},
    "tuning": {"models", "recipe", "tuning", "plots", *SHARED},
    "plots": {"atomic", "extras", "validation", "recipe"},  # recipe only in main
    # The keras-resnet command sits on top of everything.
    "cli": {"models", "recipe", "tuning", "plots", "cli", *SHARED},
}


def loaded_after(statement: str) -> list[str]:
    """The top-level module names a fresh interpreter holds after running ``statement``."""
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def package_imports(path: Path) -> set[str]:
    """The first component under keras_resnet of every keras_resnet import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "keras_resnet":
            names = [f"keras_resnet.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "keras_resnet":
                found.add(parts[1] if len(parts) > 1 else "keras_resnet")
            assert parts[0] not in ("experiments", "tuner", "benchmarks"), (path, name)
    return found


def layer_of(path: Path) -> str | None:
    """models, recipe, tuning or plots; None for the shared modules beside them."""
    top = path.relative_to(PACKAGE_DIR).parts[0].removesuffix(".py")
    return top if top in ALLOWED else None


@pytest.mark.parametrize(
    "path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE_DIR))
)
def test_each_module_imports_only_its_own_layer_and_those_below(path):
    layer = layer_of(path)
    imported = package_imports(path)
    if layer is None:  # a shared module imports no layer (the package's front page aside)
        if path.name not in ("__init__.py", "serialization.py"):
            assert not imported & set(ALLOWED), f"{path} imports {sorted(imported)}"
        return
    assert imported <= ALLOWED[layer], f"{path} imports {sorted(imported - ALLOWED[layer])}"


def test_import_keras_resnet_loads_no_backend_and_no_optional_dependency():
    loaded = loaded_after("import keras_resnet")
    assert [name for name in (*HEAVY, *OPTIONAL) if name in loaded] == []
    assert [name for name in loaded if name.startswith("keras_resnet")] == [
        "keras_resnet",
        "keras_resnet._lazy",
        "keras_resnet.models",
        "keras_resnet.serialization",
    ]


def test_models_layer_loads_keras_and_numpy_but_no_recipe_and_no_optional_dependency():
    # Keras itself imports matplotlib and Pillow where they are installed: only what the
    # models add to a bare `import keras` counts.
    by_keras = set(loaded_after("import keras"))
    loaded = loaded_after("import keras_resnet.models.builders, keras_resnet.models.convert")
    assert "keras" in loaded and "numpy" in loaded
    assert [name for name in OPTIONAL if name in loaded and name not in by_keras] == []
    # Importing Keras registers the serializable classes, some of which the recipe defines.
    registered = {"keras_resnet.recipe", *serialization.SERIALIZABLE_MODULES}
    above = [
        name for name in loaded if name.startswith(("keras_resnet.recipe", "keras_resnet.tuning"))
    ]
    assert sorted(set(above) - registered) == []
    assert "keras_resnet.plots" not in loaded


def test_recipe_layer_loads_no_tuning():
    loaded = loaded_after("import keras_resnet.recipe.training")
    assert "keras_tuner" not in loaded
    assert [name for name in loaded if name.startswith("keras_resnet.tuning")] == []


@pytest.mark.parametrize(
    "order",
    [
        "import keras_resnet, keras",
        "import keras, keras_resnet",
        # A lookup of Keras before its import (TensorFlow's import makes one) must not spend
        # the one-shot hook.
        "import importlib.util, keras_resnet\nimportlib.util.find_spec('keras')\nimport keras",
    ],
    ids=["keras_resnet_first", "keras_first", "keras_looked_up_first"],
)
def test_custom_objects_are_registered_whichever_is_imported_first(order):
    loaded_after(
        f"{order}\n"
        "for name in ('RandomPadCrop', 'ZeroPadShortcut', 'FusedBatchNormalization', 'TorchSGD',"
        " 'SparseSmoothedCrossentropy', 'OneCycle'):\n"
        "    assert keras.saving.get_registered_object(f'keras_resnet>{name}'), name"
    )


def test_lazy_names_are_the_documented_ones():
    import keras_resnet

    for name in keras_resnet.__all__:
        assert getattr(keras_resnet, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'ResNet19'"):
        keras_resnet.ResNet19  # noqa: B018


@pytest.mark.parametrize("module", serialization.SERIALIZABLE_MODULES)
def test_each_serializable_module_imports_first_in_a_fresh_interpreter(module):
    # Its `import keras` registers every serializable module while it is half imported:
    # none of them may need a name from another that is not defined yet.
    loaded = loaded_after(f"import {module}")
    assert set(serialization.SERIALIZABLE_MODULES) <= set(loaded)
