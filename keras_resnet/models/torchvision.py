"""torchvision ResNet weights in the Keras models, and back.

The ImageNet-stem models with projection shortcuts have torchvision's layout layer for
layer, so a torchvision ``resnet18/34/50/101/152`` state dict maps onto them by name:

    Keras layer                     torchvision module
    conv1_conv, conv1_bn            conv1, bn1
    conv{s}_block{b}_{i}_conv/_bn   layer{s-1}.{b-1}.conv{i}/.bn{i}    (i = 1, 2, 3)
    conv{s}_block{b}_0_conv/_bn     layer{s-1}.{b-1}.downsample.0/.1   (the projection)
    predictions                     fc

Convolution kernels go from PyTorch's (out, in, h, w) to Keras's (h, w, in, out), which
Keras uses under either data format; the classifier's weight is transposed; batch norm's
``weight/bias/running_mean/running_var`` are ``gamma/beta/moving_mean/moving_variance``.
``num_batches_tracked`` is expected and ignored: it only matters to PyTorch's cumulative
moving average (``momentum=None``), which Keras does not have.

``python -m keras_resnet.models.convert`` turns a ``.pth`` file into a ``.keras`` file.
"""

from __future__ import annotations

import os
import pickle
import re

import keras
import numpy as np

from keras_resnet.models import pth
from keras_resnet.models.layers import ZeroPadShortcut
from keras_resnet.models.specs import MODEL_SPECS

# torchvision's input normalization for its ImageNet weights, on the 0-255 scale
# (torchvision.transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])).
IMAGENET_MEAN = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
IMAGENET_STD = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)

_IGNORED_SUFFIX = ".num_batches_tracked"
# The classifier, which a model without its top (include_top=False) does not load.
_CLASSIFIER = "predictions"


def _oihw_to_hwio(array):
    return array.transpose(2, 3, 1, 0)


def _hwio_to_oihw(array):
    return array.transpose(3, 2, 0, 1)


# Per Keras layer type: (Keras variable, torchvision tensor, torch -> Keras, Keras -> torch).
_TENSORS = {
    keras.layers.Conv2D: (("kernel", "weight", _oihw_to_hwio, _hwio_to_oihw),),
    keras.layers.BatchNormalization: (
        ("gamma", "weight", None, None),
        ("beta", "bias", None, None),
        ("moving_mean", "running_mean", None, None),
        ("moving_variance", "running_var", None, None),
    ),
    keras.layers.Dense: (
        ("kernel", "weight", np.transpose, np.transpose),
        ("bias", "bias", None, None),
    ),
}
_MODULES = {"conv1_conv": "conv1", "conv1_bn": "bn1", _CLASSIFIER: "fc"}
_BLOCK_LAYER = re.compile(r"conv(\d+)_block(\d+)_(\d+)_(conv|bn)")
_BLOCK_OUT = re.compile(r"conv(\d+)_block(\d+)_out")
_TORCH_BLOCK = re.compile(r"layer(\d+)\.(\d+)\.(conv3)?")


def torchvision_module(layer_name: str) -> str | None:
    """The torchvision module that holds a Keras layer's weights, or None.

    Example:
        >>> torchvision_module("conv3_block1_0_bn")
        'layer2.0.downsample.1'
    """
    if layer_name in _MODULES:
        return _MODULES[layer_name]
    match = _BLOCK_LAYER.fullmatch(layer_name)
    if match is None:
        return None
    stage, block, index, kind = match.groups()
    if index == "0":
        part = "downsample.0" if kind == "conv" else "downsample.1"
    else:
        part = f"{kind}{index}"
    return f"layer{int(stage) - 1}.{int(block) - 1}.{part}"


def _entries(model: keras.Model):
    """(layer, Keras variable name, torchvision tensor name, to_keras, to_torch) per weight."""
    for layer in model.layers:
        if not layer.weights:
            continue
        module = torchvision_module(layer.name)
        table = next((t for cls, t in _TENSORS.items() if isinstance(layer, cls)), None)
        if module is None or table is None:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) has weights but no torchvision "
                "counterpart: only keras_resnet's ResNet-18/34/50/101/152 models map onto "
                f"torchvision. Received: model={model.name!r}"
            )
        for variable, tensor, to_keras, to_torch in table:
            if getattr(layer, variable, None) is None:
                raise ValueError(
                    f"Layer {layer.name!r} has no {variable!r} weight, which torchvision's "
                    f"{module}.{tensor} needs. Received: model={model.name!r}"
                )
            yield layer, variable, f"{module}.{tensor}", to_keras, to_torch


def _model_architecture(model: keras.Model) -> tuple[str, tuple[int, ...]]:
    """(block type, blocks per stage) read from the layer names."""
    blocks: dict[int, int] = {}
    for layer in model.layers:
        match = _BLOCK_OUT.fullmatch(layer.name)
        if match:
            stage, block = int(match[1]), int(match[2])
            blocks[stage] = max(blocks.get(stage, 0), block)
    names = {layer.name for layer in model.layers}
    block = "bottleneck" if "conv2_block1_3_conv" in names else "basic"
    return block, tuple(blocks[s] for s in sorted(blocks))


def _state_dict_architecture(names) -> tuple[str, tuple[int, ...]]:
    blocks: dict[int, int] = {}
    block = "basic"
    for name in names:
        match = _TORCH_BLOCK.match(name)
        if match:
            stage, index = int(match[1]), int(match[2])
            blocks[stage] = max(blocks.get(stage, 0), index + 1)
            block = "bottleneck" if match[3] else block
    return block, tuple(blocks[s] for s in sorted(blocks))


def _describe(architecture) -> str:
    block, blocks = architecture
    known = [
        name
        for name, spec in MODEL_SPECS.items()
        if (spec.block, spec.blocks_per_stage, spec.widths) == (block, blocks, (64, 128, 256, 512))
    ]
    layout = f"{block} blocks {'-'.join(map(str, blocks))}"
    return f"{known[0]} ({layout})" if known else layout


def _torch_shape(shape, to_torch) -> tuple[int, ...]:
    """A Keras weight's shape in torchvision's layout (a zero-stride view, no allocation)."""
    view = np.broadcast_to(np.zeros((), "float32"), tuple(shape))
    return tuple((to_torch(view) if to_torch else view).shape)


def _to_numpy(name, value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; bfloat16 has no NumPy dtype
        value = value.detach().cpu()
        value = (value.float() if value.is_floating_point() else value).numpy()
    array = np.asarray(value) if not isinstance(value, dict) else None
    if array is None or array.dtype.kind not in "biuf":
        hint = (
            f" A training checkpoint? Pass its state dict, e.g. checkpoint[{name!r}]."
            if isinstance(value, dict)
            else ""
        )
        raise ValueError(
            f"State dict entry {name!r} is of type {type(value).__name__}, not a tensor or array."
            f"{hint} Received: {name}={type(value).__name__}"
        )
    return array


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A torchvision state dict from a ``.pth`` file (``torch.save``), as NumPy arrays.

    A file in torch's zip format (every ``torch.save`` since torch 1.6, and every
    torchvision weights file) is read without torch (``models.pth``); one in the older
    format needs torch, and is loaded with ``weights_only=True`` (no pickled code).

    Example:
        >>> state_dict = read_state_dict("resnet18-f37072fd.pth")  # doctest: +SKIP
        >>> state_dict["fc.weight"].shape  # doctest: +SKIP
        (1000, 512)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(
            f"No such file: pass the path of a torchvision state dict saved with torch.save. "
            f"Received: path={path!r}"
        )
    with open(path, "rb") as f:
        start = f.read(2)
    if pth.is_torch_zip(path):
        state_dict = pth.read_pth(path)
    elif start == b"PK":
        raise pth.PthFormatError(
            f"{path} is a damaged or cut-off zip archive, not a readable torch.save file: "
            f"download or save it again. Received: path={path!r}"
        )
    elif start[:1] != b"\x80":  # torch's older format is a pickle stream
        raise pth.PthFormatError(
            f"{path} is not a torch.save file (neither torch's zip format nor its older "
            f"pickle format). Received: path={path!r}"
        )
    else:
        try:
            import torch
        except ImportError as error:
            raise ImportError(
                f"{path} is not in torch's zip format (torch 1.6 and later): reading torch's "
                "older format needs torch (pip install torch), or re-save the file with a "
                f"recent torch. Received: path={path!r}"
            ) from error
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError) as error:
            raise pth.PthFormatError(
                f"{path} could not be read as a torch.save file ({type(error).__name__}). "
                f"Received: path={path!r}"
            ) from None
    if not isinstance(state_dict, dict):
        raise ValueError(
            f"The file holds a {type(state_dict).__name__}, not a state dict: save "
            f"model.state_dict(). Received: path={path!r}"
        )
    return {name: _to_numpy(name, value) for name, value in state_dict.items()}


def _check_model(model: keras.Model, skip: frozenset[str]) -> None:
    if any(isinstance(layer, ZeroPadShortcut) for layer in model.layers):
        raise ValueError(
            "The model uses zero-padding shortcuts (option A), which have no weights for "
            "torchvision's projection shortcuts: build it with shortcut='projection'. "
            f"Received: model={model.name!r}"
        )
    names = {layer.name for layer in model.layers}
    if "conv1_conv" in names and "conv1_conv" not in skip and "pool1_pool" not in names:
        raise ValueError(
            "The model has the CIFAR stem (3x3 conv, no max-pool), torchvision the ImageNet "
            "stem (7x7/2 conv + max-pool): build it with stem='imagenet', or pass "
            "skip=('conv1_conv', 'conv1_bn') to load everything but the stem. "
            f"Received: model={model.name!r}"
        )


def load_torchvision_weights(
    model: keras.Model,
    state_dict_or_path,
    *,
    skip=(),
) -> keras.Model:
    """Load a torchvision ResNet state dict (or ``.pth`` file) into a keras_resnet model.

    Every tensor of the state dict must fit exactly one weight of the model and every
    weight must get one, else a ``ValueError`` names the first mismatch; nothing is
    assigned until all of them fit. Two exceptions: ``num_batches_tracked`` is ignored,
    and a model without its top (``include_top=False``) ignores the classifier ``fc``.

    Args:
        model: a ResNet-18/34/50/101/152 with the ImageNet stem and projection
            shortcuts (the defaults at 224x224), in either data format.
        state_dict_or_path: a dict of torch tensors or NumPy arrays (torchvision's
            ``model.state_dict()``), or the path of a ``.pth`` file.
        skip: Keras layer names to leave as they are, with their torchvision tensors
            ignored: ``("predictions",)`` keeps a new classifier of another size,
            ``("conv1_conv", "conv1_bn")`` a CIFAR stem.

    Returns:
        The model, with the weights loaded.

    Example:
        >>> model = keras_resnet.ResNet50(classifier_activation=None)
        >>> load_torchvision_weights(model, "resnet50-11ad3fa6.pth")  # doctest: +SKIP
    """
    skip = frozenset((skip,) if isinstance(skip, str) else skip)
    layer_names = {layer.name for layer in model.layers if layer.weights}
    unknown = sorted(skip - layer_names)
    if unknown:
        raise ValueError(
            f"`skip` names layers that the model does not have or that have no weights: "
            f"{', '.join(unknown)}. Received: skip={tuple(sorted(skip))!r}"
        )
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        state_dict = read_state_dict(state_dict_or_path)
    elif isinstance(state_dict_or_path, dict):
        state_dict = {k: _to_numpy(k, v) for k, v in state_dict_or_path.items()}
    else:
        raise ValueError(
            "`state_dict_or_path` must be a state dict or the path of a .pth file. "
            f"Received: state_dict_or_path={type(state_dict_or_path).__name__}"
        )
    entries = list(_entries(model))
    expected, given = _model_architecture(model), _state_dict_architecture(state_dict)
    if given[1] and given != expected:
        raise ValueError(
            f"The state dict is a {_describe(given)} but the model a {_describe(expected)}: "
            f"build the matching model. Received: model={model.name!r}"
        )
    _check_model(model, skip)

    plan = []
    ignored = {name for name in state_dict if name.endswith(_IGNORED_SUFFIX)}
    if _CLASSIFIER not in layer_names:
        ignored |= {"fc.weight", "fc.bias"}
    for layer, variable, tensor, to_keras, to_torch in entries:
        if layer.name in skip:
            ignored.add(tensor)
            continue
        target = getattr(layer, variable)
        if tensor not in state_dict:
            raise ValueError(
                f"The state dict has no tensor {tensor!r} for {layer.name}.{variable} (its "
                f"first key is {next(iter(state_dict), None)!r}): is it a torchvision ResNet "
                f"state dict? Received: {len(state_dict)} tensors"
            )
        array = state_dict[tensor]
        value = to_keras(array) if to_keras else array
        if tuple(value.shape) != tuple(target.shape):
            if layer.name == _CLASSIFIER:
                raise ValueError(
                    f"The state dict's classifier {tensor} has shape {array.shape}, the "
                    f"model's {layer.name}.{variable} {tuple(target.shape)}: build the model "
                    f"with num_classes={array.shape[0]}, or with include_top=False, or pass "
                    f"skip=('{_CLASSIFIER}',) to keep its own classifier. "
                    f"Received: {tensor}.shape={array.shape}"
                )
            raise ValueError(
                f"Tensor {tensor!r} of shape {array.shape} does not fit {layer.name}.{variable} "
                f"of shape {tuple(target.shape)} ({_torch_shape(target.shape, to_torch)} in "
                f"torchvision's layout). Received: {tensor}.shape={array.shape}"
            )
        plan.append((target, tensor, value))
    # One tensor per weight: the table maps distinct layer names to distinct tensors (the
    # tests check that the export of each depth has as many entries as torchvision's).
    used = {tensor for _, tensor, _ in plan}
    unused = [name for name in state_dict if name not in used and name not in ignored]
    if unused:
        raise ValueError(
            f"State dict tensor {unused[0]!r} of shape {tuple(state_dict[unused[0]].shape)} has "
            f"no layer in the model ({len(unused)} unused in all). Received: {unused[0]}"
        )
    for target, _, value in plan:
        target.assign(value.astype(keras.backend.standardize_dtype(target.dtype)))
    return model


def torchvision_state_dict(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights as a torchvision state dict of NumPy arrays.

    The inverse of ``load_torchvision_weights``: with ``torch.from_numpy`` on each array,
    torchvision's ``model.load_state_dict`` accepts it (``num_batches_tracked`` is 0).

    Example:
        >>> state_dict = torchvision_state_dict(keras_resnet.ResNet18())
        >>> state_dict["layer1.0.conv1.weight"].shape
        (64, 64, 3, 3)
    """
    _check_model(model, frozenset())
    state_dict = {}
    for layer, variable, tensor, _, to_torch in _entries(model):
        array = keras.ops.convert_to_numpy(getattr(layer, variable))
        state_dict[tensor] = to_torch(array) if to_torch else array
        if isinstance(layer, keras.layers.BatchNormalization) and variable == "moving_variance":
            module = tensor.rsplit(".", 1)[0]
            state_dict[f"{module}{_IGNORED_SUFFIX}"] = np.array(0, dtype="int64")
    return state_dict
