"""The recipe's command-line flags, shared by the training and the search commands.

``experiments/cifar10.py`` and ``tuner/search.py`` take the same model, recipe, data and
run flags; each maps onto one ``TrainConfig`` field, so a search trial and a training run
given the same flags compute the same thing.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Sequence

from keras_resnet.config import PRECISIONS, QUICK, RECIPES, SCHEDULES, TrainConfig
from keras_resnet.specs import MODEL_SPECS, SHORTCUTS

DEFAULTS = TrainConfig()
CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(TrainConfig))


def add_config_arguments(
    parser: argparse.ArgumentParser, omit: Collection[str] = ()
) -> argparse.ArgumentParser:
    """Add a flag for every ``TrainConfig`` field (and ``--quick``, ``--recipe``), except
    those in ``omit``.

    Every flag defaults to None, meaning "the config's default", so explicit flags can be
    told apart from defaults (``--quick`` applies only where no flag was given).

    Example:
        >>> parser = add_config_arguments(argparse.ArgumentParser(), omit={"distribute"})
        >>> parser.parse_args(["--lr", "0.05"]).learning_rate
        0.05
    """

    def add(group, flag, dest, **kwargs):
        if dest not in omit:
            group.add_argument(flag, dest=dest, **kwargs)

    model = parser.add_argument_group("model")
    add(model, "--model", "model", help=f"one of: {', '.join(MODEL_SPECS)} (default resnet18)")
    add(
        model,
        "--shortcut",
        "shortcut",
        help=f"one of: {', '.join(SHORTCUTS)} (default: the model's; none: a plain network)",
    )
    recipe = parser.add_argument_group("recipe")
    add(recipe, "--epochs", "epochs", type=int, help=f"maximum epochs (default {DEFAULTS.epochs})")
    add(recipe, "--batch-size", "batch_size", type=int, help=f"(default {DEFAULTS.batch_size})")
    add(
        recipe,
        "--lr",
        "learning_rate",
        type=float,
        help=f"initial SGD learning rate (default {DEFAULTS.learning_rate})",
    )
    add(recipe, "--momentum", "momentum", type=float, help=f"(default {DEFAULTS.momentum})")
    add(
        recipe,
        "--weight-decay",
        "weight_decay",
        type=float,
        help=f"PyTorch-style L2 (default {DEFAULTS.weight_decay})",
    )
    add(
        recipe,
        "--step-size",
        "step_size",
        type=int,
        help=f"epochs between LR drops (default {DEFAULTS.step_size})",
    )
    add(recipe, "--gamma", "gamma", type=float, help=f"LR drop factor (default {DEFAULTS.gamma})")
    add(
        recipe,
        "--recipe",
        "recipe",
        choices=list(RECIPES),
        help="a preset of the recipe flags, under any given explicitly; fast: "
        + ", ".join(f"{key}={value}" for key, value in RECIPES["fast"].items())
        + " (default notes: the defaults shown here)",
    )
    add(
        recipe,
        "--schedule",
        "schedule",
        choices=list(SCHEDULES),
        help="step: StepLR per epoch; one_cycle: per step up to --lr and down to 0 "
        f"(default {DEFAULTS.schedule})",
    )
    add(
        recipe,
        "--nesterov",
        "nesterov",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Nesterov momentum (default off)",
    )
    add(
        recipe,
        "--label-smoothing",
        "label_smoothing",
        type=float,
        help=f"(default {DEFAULTS.label_smoothing})",
    )
    add(
        recipe,
        "--flip-test",
        "flip_test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average test predictions over each image and its mirror image (default off)",
    )
    add(
        recipe,
        "--patience",
        "patience",
        type=int,
        help="early-stopping patience in epochs (default: step size + 10, so a drop always "
        "gets 10 epochs to improve before training stops)",
    )
    add(
        recipe,
        "--validation-fraction",
        "validation_fraction",
        type=float,
        help=f"held-out share of the training images (default {DEFAULTS.validation_fraction})",
    )
    add(recipe, "--seed", "seed", type=int, help=f"(default {DEFAULTS.seed})")
    add(
        recipe,
        "--deterministic",
        "deterministic",
        action="store_true",
        default=None,
        help="deterministic kernels",
    )
    source = parser.add_argument_group("data (default: tfds cifar10)")
    add(
        source,
        "--data-dir",
        "data_dir",
        help="image folder with train/<class>/* and test/<class>/*",
    )
    add(
        source,
        "--synthetic",
        "synthetic",
        action="store_true",
        default=None,
        help="generated data",
    )
    add(source, "--train-subset", "train_subset", type=int, help="use this many training images")
    add(source, "--test-subset", "test_subset", type=int, help="use this many test images")
    add(source, "--cache-dir", "cache_dir", help="cache for decoded image folders")
    run = parser.add_argument_group("run")
    add(
        run,
        "--quick",
        "quick",
        action="store_true",
        help="smoke run: "
        + ", ".join(f"{key}={value}" for key, value in QUICK.items())
        + " (explicit flags still win)",
    )
    add(run, "--precision", "precision", help=f"one of: {', '.join(PRECISIONS)} (default fp32)")
    add(
        run,
        "--distribute",
        "distribute",
        action="store_true",
        default=None,
        help="data-parallel over all local devices (jax, tensorflow)",
    )
    add(
        run,
        "--output-dir",
        "output_dir",
        help=f"parent of run folders (default {DEFAULTS.output_dir})",
    )
    add(run, "--run-name", "run_name", help="run folder name (default: model, seed and a hash)")
    add(
        run,
        "--jit-compile",
        "jit_compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA/jit compile the train step (default: on for jax, off otherwise)",
    )
    add(
        run,
        "--verbose",
        "verbose",
        type=int,
        help="0 silent, 1 progress bar, 2 one line per epoch (default 1)",
    )
    return parser


def config_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, **defaults
) -> TrainConfig:
    """The validated ``TrainConfig`` the flags ask for; an invalid value exits with status 2.

    Precedence: explicit flags, then ``--quick``'s values, then ``--recipe``'s, then
    ``defaults``, then the config's own defaults.

    Example:
        >>> parser = add_config_arguments(argparse.ArgumentParser())
        >>> config_from_args(parser, parser.parse_args(["--epochs=3"])).epochs
        3
    """
    values = {
        key: value
        for key, value in vars(args).items()
        if key in CONFIG_FIELDS and value is not None
    }
    if getattr(args, "quick", False):
        values = {**QUICK, **values}
    if getattr(args, "recipe", None):
        values = {**RECIPES[args.recipe], **values}
    try:
        return TrainConfig(**{**defaults, **values})
    except ValueError as error:
        parser.error(str(error))


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None, **defaults):
    """``parser.parse_args(argv)`` and the ``TrainConfig`` its flags ask for.

    Example:
        >>> config, args = parse_flags(add_config_arguments(argparse.ArgumentParser()), [])
    """
    args = parser.parse_args(argv)
    return config_from_args(parser, args, **defaults), args
