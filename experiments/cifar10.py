"""Train a ResNet on CIFAR-10 with the project's recipe.

    python experiments/cifar10.py --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --quick --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --model resnet56 --shortcut zero_pad --epochs 164

Every default is the notes' ResNet-18 recipe (see keras_resnet/config.py for each value
and its source). Running the same command again resumes an interrupted run from its last
finished epoch; a finished run is reported, not retrained (--overwrite retrains).
Regenerate a run's plots with ``python -m keras_resnet.plots RUN_DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnet.config import PRECISIONS, QUICK, TrainConfig  # noqa: E402
from keras_resnet.specs import MODEL_SPECS, SHORTCUTS  # noqa: E402

DEFAULTS = TrainConfig()


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; each maps onto a ``TrainConfig`` field."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", help=f"one of: {', '.join(MODEL_SPECS)} (default resnet18)")
    model.add_argument(
        "--shortcut",
        help=f"one of: {', '.join(SHORTCUTS)} (default: the model's; none: a plain network)",
    )
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--epochs", type=int, help=f"maximum epochs (default {DEFAULTS.epochs})")
    recipe.add_argument("--batch-size", type=int, help=f"(default {DEFAULTS.batch_size})")
    recipe.add_argument(
        "--lr",
        type=float,
        dest="learning_rate",
        help=f"initial SGD learning rate (default {DEFAULTS.learning_rate})",
    )
    recipe.add_argument("--momentum", type=float, help=f"(default {DEFAULTS.momentum})")
    recipe.add_argument(
        "--weight-decay", type=float, help=f"PyTorch-style L2 (default {DEFAULTS.weight_decay})"
    )
    recipe.add_argument(
        "--step-size", type=int, help=f"epochs between LR drops (default {DEFAULTS.step_size})"
    )
    recipe.add_argument("--gamma", type=float, help=f"LR drop factor (default {DEFAULTS.gamma})")
    recipe.add_argument(
        "--patience",
        type=int,
        help="early-stopping patience in epochs (default: step size + 10, so a drop always "
        "gets 10 epochs to improve before training stops)",
    )
    recipe.add_argument(
        "--validation-fraction",
        type=float,
        help=f"held-out share of the training images (default {DEFAULTS.validation_fraction})",
    )
    recipe.add_argument("--seed", type=int, help=f"(default {DEFAULTS.seed})")
    recipe.add_argument(
        "--deterministic", action="store_true", default=None, help="deterministic kernels"
    )
    source = parser.add_argument_group("data (default: tfds cifar10)")
    source.add_argument("--data-dir", help="image folder with train/<class>/* and test/<class>/*")
    source.add_argument("--synthetic", action="store_true", default=None, help="generated data")
    source.add_argument("--train-subset", type=int, help="use this many training images")
    source.add_argument("--test-subset", type=int, help="use this many test images")
    source.add_argument("--cache-dir", help="cache for decoded image folders")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: "
        + ", ".join(f"{key}={value}" for key, value in QUICK.items())
        + " (explicit flags still win)",
    )
    run.add_argument("--precision", help=f"one of: {', '.join(PRECISIONS)} (default fp32)")
    run.add_argument(
        "--distribute",
        action="store_true",
        default=None,
        help="data-parallel over all local devices (jax, tensorflow)",
    )
    run.add_argument("--output-dir", help=f"parent of run folders (default {DEFAULTS.output_dir})")
    run.add_argument("--run-name", help="run folder name (default: model, seed and a config hash)")
    run.add_argument("--resume", action="store_true", help="require an existing run to continue")
    run.add_argument("--overwrite", action="store_true", help="discard an existing run folder")
    run.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA/jit compile the train step (default: on for jax, off otherwise)",
    )
    run.add_argument(
        "--verbose", type=int, help="0 silent, 1 progress bar, 2 one line per epoch (default 1)"
    )
    return parser


def parse_config(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    """Flags -> a validated ``TrainConfig``; invalid flags exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    values = {
        key: value for key, value in vars(args).items() if key in fields and value is not None
    }
    if args.quick:
        values = {**QUICK, **values}
    try:
        return TrainConfig(**values), args
    except ValueError as error:
        parser.error(str(error))


def main(argv=None) -> dict:
    """Run the training job; returns its test metrics."""
    config, args = parse_config(argv)
    from keras_resnet.data import DataSourceError
    from keras_resnet.training import RunFolderError, UnsupportedSetupError, train

    try:
        result = train(config, resume=args.resume, overwrite=args.overwrite)
    except (DataSourceError, RunFolderError, UnsupportedSetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return dataclasses.asdict(result)


if __name__ == "__main__":
    main()
