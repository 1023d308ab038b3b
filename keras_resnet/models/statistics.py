"""Model statistics: parameters and multiply-accumulates, and the README's model table.

Run ``python -m keras_resnet.models.statistics`` to print the table of registered models.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from keras_resnet.models.builders import get_model, list_models, resolve_stem
from keras_resnet.models.specs import MODEL_SPECS


def trainable_parameters(model: keras.Model) -> int:
    """Parameters as torchvision counts them: weights and BN scale/offset, no moving stats.

    Example:
        >>> trainable_parameters(keras_resnet.ResNet20())
        269722
    """
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def multiply_accumulates(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass through the convolutions and Dense layers.

    This is the figure torchvision's model table lists as "GFLOPS" (1.81 G for
    ResNet-18 at 224x224); batch norm, additions and pooling are left out.

    Example:
        >>> multiply_accumulates(keras_resnet.ResNet18()) / 1e9
        1.81...
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out_shape = layer.output.shape
            in_channels = layer.input.shape[1 if layer.data_format == "channels_first" else -1]
            kernel = int(np.prod(layer.kernel_size))
            out_elements = int(np.prod(out_shape[1:]))
            total += out_elements * kernel * in_channels // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input.shape[-1]) * layer.units
    return total


def block_label(spec) -> str:
    """The block column: the block type, marked where it is pre-activation or the v1 bottleneck.

    Example:
        >>> block_label(MODEL_SPECS["resnet50_v2"]), block_label(MODEL_SPECS["resnet50_v1"])
        ('pre-act bottleneck', 'bottleneck (1x1 stride)')
    """
    label = f"pre-act {spec.block}" if spec.preact else spec.block
    if spec.block == "bottleneck" and spec.bottleneck_stride == "1x1":
        label += " (1x1 stride)"
    return label


def model_table(num_classes: int = 10, input_size: int = 32, names=None) -> list[dict]:
    """One row per model in ``names`` (default: every registered one) at ``input_size``,
    default stem and shortcut.

    Example:
        >>> model_table(names=["resnet20"])[0]["parameters"]
        269722
    """
    rows = []
    for name in list_models() if names is None else names:
        spec = MODEL_SPECS[name]
        model = get_model(name, num_classes=num_classes, input_shape=(input_size, input_size, 3))
        rows.append(
            {
                "name": name,
                "depth": spec.depth,
                "block": block_label(spec),
                "blocks": "-".join(map(str, spec.blocks_per_stage)),
                "shortcut": spec.shortcut,
                "stem": resolve_stem(spec, None, (input_size, input_size)),
                "parameters": trainable_parameters(model),
                "macs": multiply_accumulates(model),
            }
        )
    return rows


def format_markdown(rows: list[dict]) -> str:
    """Render ``model_table`` rows as a markdown table.

    Example:
        >>> print(format_markdown(model_table()).splitlines()[0])  # doctest: +SKIP
        | model | depth | block | blocks | shortcut | stem | parameters | MACs |
    """
    lines = [
        "| model | depth | block | blocks | shortcut | stem | parameters | MACs |",
        "|---|---:|---|---|---|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['depth']} | {row['block']} | {row['blocks']} | "
            f"{row['shortcut']} | {row['stem']} | {row['parameters']:,} | "
            f"{row['macs'] / 1e6:,.1f} M |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    """Print the model table.

    Example: ``python -m keras_resnet.models.statistics --input-size 224``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=32)
    args = parser.parse_args(argv)
    print(format_markdown(model_table(args.num_classes, args.input_size)))


if __name__ == "__main__":
    main()
