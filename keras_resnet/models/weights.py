"""Loading a ``.weights.h5`` or ``.keras`` file into a model, checked first.

Keras matches a weights file to a model by the order of its layers, so the weights of
another architecture load with one warning per unmatched layer and end in "A total of N
objects could not be loaded"; a file that is not a weights file fails with a bare h5py
``OSError``. ``load_weights`` reads the file's layers first (their names and variable
shapes, as Keras stores them) and refuses a file that does not fit with one ``ValueError``
naming the file's model, the target model and the first layer that differs.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import keras

from keras_resnet.models.specs import MODEL_SPECS

WEIGHTS_SUFFIXES = (".weights.h5", ".keras")
_BLOCK_NAME = re.compile(r"^conv(\d+)_block(\d+)_")


class WeightsFileError(ValueError):
    """A weights file that cannot be loaded into the model asked for."""


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.load_weights(path)`` after checking that the file holds this model's weights.

    Raises:
        WeightsFileError: the file is not a Keras weights or model file, or it holds the
            weights of another architecture (the message names both and the first layer
            that differs).

    Example:
        >>> load_weights(keras_resnet.ResNet20(), "resnet20.weights.h5")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if path.endswith(WEIGHTS_SUFFIXES):
        file_name, stored = read_weight_shapes(path)
        difference = first_difference(model_weight_shapes(model), stored)
        if difference is not None:
            target = describe(model_weight_shapes(model), model.name)
            source = describe(stored, file_name)
            raise WeightsFileError(
                f"{path} holds the weights of {source}, which do not fit {target}: the first "
                f"layer that differs is {difference}. Build the model the file was saved "
                f"from, or pass another file. Received: weights={path!r}"
            )
    model.load_weights(path)


def read_weight_shapes(path: str | os.PathLike) -> tuple[str | None, dict[str, list[tuple]]]:
    """The model name a ``.keras`` file records (None for ``.weights.h5``) and, by layer
    name, the shapes of the variables the file stores.

    Example:
        >>> name, shapes = read_weight_shapes("resnet20.keras")  # doctest: +SKIP
        >>> name, shapes["conv1_conv"]  # doctest: +SKIP
        ('resnet20', [(3, 3, 3, 16)])
    """
    import h5py  # a dependency of Keras

    path = os.fspath(path)
    received = f"Received: weights={path!r}"
    name = None
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise WeightsFileError(
                f"{path} is not a Keras model file: a .keras file is a zip archive, and this "
                f"one is not. {received}"
            )
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            if "model.weights.h5" not in members:
                raise WeightsFileError(
                    f"{path} is not a Keras model file: it has no model.weights.h5. {received}"
                )
            if "config.json" in members:
                config = json.loads(archive.read("config.json"))
                name = (config.get("config") or {}).get("name")
            source = io.BytesIO(archive.read("model.weights.h5"))
    else:
        if not h5py.is_hdf5(path):
            raise WeightsFileError(
                f"{path} is not a Keras weights file: a .weights.h5 file is HDF5, and this one "
                f"is not. {received}"
            )
        source = path
    shapes: dict[str, list[tuple]] = {}
    with h5py.File(source, "r") as store:

        def visit(key, item):
            if key.endswith("/vars") and isinstance(item, h5py.Group) and len(item):
                layer = item.attrs.get("name", key.rsplit("/", 2)[-2])
                # Keras names the variables 0, 1, ... in the layer's order.
                values = sorted(item.items(), key=lambda entry: int(entry[0]))
                shapes.setdefault(str(layer), [tuple(value.shape) for _, value in values])

        store.visititems(visit)
    if not shapes:
        raise WeightsFileError(f"{path} holds no Keras 3 layer weights. {received}")
    return name, shapes


def model_weight_shapes(model: keras.layers.Layer) -> dict[str, list[tuple]]:
    """By layer name, the shapes of each layer's variables, nested models included, in the
    model's layer order.

    Example:
        >>> model_weight_shapes(keras_resnet.ResNet20())["conv1_conv"]  # doctest: +SKIP
        [(3, 3, 3, 16)]
    """
    shapes: dict[str, list[tuple]] = {}
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.Model):
            for name, value in model_weight_shapes(layer).items():
                shapes.setdefault(name, value)
        elif layer.variables:
            shapes.setdefault(layer.name, [tuple(v.shape) for v in layer.variables])
    return shapes


def first_difference(target: dict[str, list[tuple]], stored: dict[str, list[tuple]]):
    """The first of the target's layers that the stored weights lack or shape otherwise,
    else the first stored layer the target lacks, described; None where they fit.

    Example:
        >>> first_difference({"a": [(3,)], "b": [(2,)]}, {"a": [(3,)]})
        'b (in the model, not in the file)'
        >>> first_difference({"a": [(3,)]}, {"a": [(4,)]})
        'a (variable shapes [(4,)] in the file, [(3,)] in the model)'
    """
    for name, shapes in target.items():
        if name not in stored:
            return f"{name} (in the model, not in the file)"
        if stored[name] != shapes:
            return f"{name} (variable shapes {stored[name]} in the file, {shapes} in the model)"
    for name in stored:
        if name not in target:
            return f"{name} (in the file, not in the model)"
    return None


def describe(shapes: dict[str, list[tuple]], name: str | None = None) -> str:
    """A model named by its layers: the registered ResNet with these blocks, else its
    blocks per stage, else its number of layers with weights; ``name`` goes first if given.

    Example:
        >>> describe({"conv1_conv": [(3, 3, 3, 16)], "conv2_block1_1_conv": [(3, 3, 16, 16)]})
        'a ResNet with 1 block per stage: basic blocks, 16 stem channels, not a registered model'
    """
    blocks: dict[int, set[int]] = {}
    bottleneck = False
    for layer in shapes:
        match = _BLOCK_NAME.match(layer)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
            bottleneck = bottleneck or layer.endswith("_3_conv")
    if not blocks or "conv1_conv" not in shapes:
        kind = f"a network of {len(shapes)} layers with weights, not a keras_resnet ResNet"
        return f"{name} ({kind})" if name else kind
    per_stage = tuple(len(blocks[stage]) for stage in sorted(blocks))
    block = "bottleneck" if bottleneck else "basic"
    stem_width = shapes["conv1_conv"][0][-1]
    for registered, spec in MODEL_SPECS.items():
        if (spec.block, spec.blocks_per_stage, spec.widths[0]) == (block, per_stage, stem_width):
            return registered if name in (None, registered) else f"{name} ({registered})"
    layout = "-".join(map(str, per_stage))
    unit = "block per stage" if set(per_stage) == {1} else "blocks per stage"
    kind = (
        f"a ResNet with {layout} {unit}: {block} blocks, {stem_width} stem channels, not a "
        "registered model"
    )
    return f"{name} ({kind})" if name else kind
