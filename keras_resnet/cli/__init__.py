"""``keras-resnet``: one command for the package's jobs, each a subcommand with ``--help``.

    keras-resnet train --quick --data-dir ../shared/datasets/cifar10-jpeg
    keras-resnet search --tuner random --max-trials 8 --epochs 6 --model resnet20 ...
    keras-resnet export runs/RUN/best.keras --format onnx --output model.onnx
    keras-resnet predict runs/RUN/best.keras cat.png dog.jpg --top-k 3
    keras-resnet evaluate runs/RUN/best.keras --data-dir ../shared/datasets/cifar10-jpeg
    keras-resnet plots runs/RUN
    keras-resnet summary resnet56
    keras-resnet convert resnet50 resnet50-11ad3fa6.pth resnet50.keras

This module imports no backend: ``keras-resnet --help`` answers at once, and each
subcommand's module loads only when it runs. ``python experiments/cifar10.py`` and
``python tuner/search.py`` are the same ``train`` and ``search`` code.

Example:
    >>> main(["--help"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

PROG = "keras-resnet"
# Subcommand -> (module, the name of its main(argv) there, one line for --help).
COMMANDS = {
    "train": ("keras_resnet.cli.train", "main", "train a ResNet with the CIFAR-10 recipe"),
    "search": ("keras_resnet.cli.search", "main", "search the learning rate with KerasTuner"),
    "export": (
        "keras_resnet.cli.export",
        "main",
        "export a .keras model (SavedModel, ONNX, LiteRT), checked against it",
    ),
    "predict": ("keras_resnet.cli.predict", "main", "the top classes of image files"),
    "evaluate": (
        "keras_resnet.cli.evaluate",
        "main",
        "accuracy, per-class accuracy and the confusion matrix on an image folder",
    ),
    "plots": ("keras_resnet.plots", "main", "redraw the figures of run folders"),
    "summary": ("keras_resnet.cli.summary", "main", "layers, parameters and MACs of a model"),
    "convert": (
        "keras_resnet.models.convert",
        "main",
        "a torchvision .pth state dict into a .keras model",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the subcommands and their one-line descriptions.

    Example:
        >>> "export" in build_parser().format_help()
        True
    """
    lines = "\n".join(f"  {name:<10}{help_}" for name, (_, _, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The ResNet family for Keras 3: train, search, export, predict, evaluate.",
        epilog=f"commands:\n{lines}\n\n`{PROG} COMMAND --help` lists a command's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="the job")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``keras-resnet COMMAND ARGS...``; returns the exit status (2: bad input).

    Example:
        >>> main(["summary", "resnet20"])  # doctest: +SKIP
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help(None if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(
            f"{PROG}: error: unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    name, rest = argv[0], argv[1:]
    module, function, _ = COMMANDS[name]
    from keras_resnet.cli import _common

    _common.quiet_backends(
        rest, uses_tensorflow=name in ("export", "search"), loads_keras=name != "plots"
    )
    command = getattr(importlib.import_module(module), function)
    prog = f"{PROG} {name}"
    try:
        with _common.program_name(prog):
            status = command(rest)
    except _common.CommandError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    # train and search return their results (a dict); the others an exit status.
    return status if isinstance(status, int) else 0


def run() -> None:
    """The console script's entry point: ``sys.exit(main())``."""
    sys.exit(main())
