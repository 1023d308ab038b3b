"""Train a ResNet on CIFAR-10 with the project's recipe.

    keras-resnet train --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --quick --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --model resnet56 --shortcut zero_pad --epochs 164
    python experiments/cifar10.py --recipe fast --data-dir ../shared/datasets/cifar10-jpeg

Every default is the step recipe, a ResNet-18 StepLR recipe (keras_resnet/recipe/config.py
has each value and its source); ``--recipe fast`` is a preset of fewer, larger steps.
Running the same command again resumes an interrupted run from its last finished epoch; a
finished run is reported, not retrained (--overwrite retrains).
Regenerate a run's plots with ``keras-resnet plots RUN_DIR``; ``--tensorboard`` writes
TensorBoard logs into the run folder. ``python experiments/cifar10.py`` is this command.

Exit status: 0 a finished run; 2 the command or its setup refused before training (a bad
flag, a precision the CPU would emulate, a run folder that cannot be used); 3 training
diverged (a NaN or infinite loss: the run folder keeps its last good epoch and best model).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.flags import add_config_arguments, parse_flags

# The exit status of a run stopped at a non-finite loss (2 is a refused command).
EXIT_DIVERGED = 3


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; each recipe flag maps onto a ``TrainConfig`` field."""
    # Each flag's help names its default (every flag defaults to None, "not given").
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    run = parser.add_argument_group("run folder")
    run.add_argument(
        "--resume", action="store_true", help="require an existing run to continue (default: off)"
    )
    run.add_argument(
        "--overwrite", action="store_true", help="discard an existing run folder (default: off)"
    )
    return parser


def parse_config(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    """Flags -> a validated ``TrainConfig``; invalid flags exit with status 2."""
    parser = build_parser()
    config, args = parse_flags(parser, argv)
    if args.resume and args.overwrite:
        parser.error(
            "--resume continues a run and --overwrite discards it: choose one. "
            "Received: --resume --overwrite"
        )
    return config, args


def main(argv=None) -> dict:
    """Run the training job; returns its test metrics."""
    config, args = parse_config(argv)
    from keras_resnet.recipe import (
        DataSourceError,
        RunFolderError,
        TrainingDivergedError,
        UnsupportedSetupError,
        train,
    )

    try:
        result = train(config, resume=args.resume, overwrite=args.overwrite)
    except (DataSourceError, RunFolderError, UnsupportedSetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED) from None
    return dataclasses.asdict(result)
