"""Layers, parameters and multiply-accumulates of a registered model or a ``.keras`` file.

keras-resnet summary resnet56
keras-resnet summary resnet18 --input-size 224 --num-classes 1000
keras-resnet summary runs/RUN/best.keras --layers
"""

from __future__ import annotations

from collections.abc import Sequence

from keras_resnet.cli._common import CommandError, OneLineParser, load_model


def statistics(model) -> dict:
    """Parameters (trainable, as torchvision counts them, and all) and MACs of one forward
    pass, nested models (a run's backbone) included.

    Example:
        >>> statistics(keras_resnet.ResNet20())["trainable_parameters"]
        269722
    """
    import keras

    from keras_resnet.models.statistics import multiply_accumulates, trainable_parameters

    def macs(model):
        nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        return multiply_accumulates(model) + sum(macs(inner) for inner in nested)

    return {
        "trainable_parameters": trainable_parameters(model),
        "parameters": int(model.count_params()),
        "macs": macs(model),
        "input_shape": tuple(model.input_shape[1:]),
        "output_shape": tuple(model.output_shape[1:]),
    }


def build_parser() -> OneLineParser:
    """The command-line flags of ``keras-resnet summary``.

    Example:
        >>> build_parser().parse_args(["resnet20"]).input_size
        32
    """
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="a registered name (keras_resnet.list_models()) or a .keras file"
    )
    parser.add_argument(
        "--input-size", type=int, default=32, help="square input size of a named model (default 32)"
    )
    parser.add_argument(
        "--num-classes", type=int, default=10, help="classes of a named model (default 10)"
    )
    parser.add_argument(
        "--layers", action="store_true", help="also print Keras's layer-by-layer summary"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the model's statistics (and, with ``--layers``, its Keras summary); returns 0.

    Example:
        >>> main(["resnet20"])  # doctest: +SKIP
        resnet20: input (32, 32, 3), output (10,)
        0
    """
    args = build_parser().parse_args(argv)
    from keras_resnet.models.specs import MODEL_SPECS

    if args.model in MODEL_SPECS:
        from keras_resnet.models.builders import get_model

        size = args.input_size
        try:
            model = get_model(args.model, num_classes=args.num_classes, input_shape=(size, size, 3))
        except ValueError as error:
            raise CommandError(str(error)) from None
    elif args.model.endswith(".keras"):
        model = load_model(args.model)
    else:
        raise CommandError(
            f"{args.model!r} is neither a registered model ({', '.join(MODEL_SPECS)}) "
            "nor a .keras file"
        )
    if args.layers:
        model.summary()
    stats = statistics(model)
    print(f"{args.model}: input {stats['input_shape']}, output {stats['output_shape']}")
    print(f"  trainable parameters  {stats['trainable_parameters']:,}")
    print(f"  all parameters        {stats['parameters']:,}")
    print(f"  multiply-accumulates  {stats['macs'] / 1e6:,.1f} M per image")
    return 0
