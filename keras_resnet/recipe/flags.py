"""The recipe's command-line flags, generated from ``TrainConfig``'s field metadata.

``experiments/cifar10.py`` and ``tuner/search.py`` take the same model, recipe, data and
run flags; each maps onto one ``TrainConfig`` field, so a search trial and a training run
given the same flags compute the same thing. A new field gets its flag from its metadata
(help, group, flag name, choices, default text: see ``config._field``), nothing here.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Collection, Sequence

from keras_resnet.recipe.config import FLAG_GROUPS, QUICK, RECIPES, TrainConfig, recipe_values

FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}
_TYPE_HINTS = typing.get_type_hints(TrainConfig)


def flag_name(field: dataclasses.Field) -> str:
    """A ``TrainConfig`` field's flag: its ``flag`` metadata, else ``--field-name``.

    Example:
        >>> flag_name(FIELDS["learning_rate"]), flag_name(FIELDS["batch_size"])
        ('--lr', '--batch-size')
    """
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def value_type(field: dataclasses.Field) -> type:
    """The type a field's flag parses into: its annotation without None.

    Example:
        >>> value_type(FIELDS["patience"]).__name__
        'int'
    """
    hint = _TYPE_HINTS[field.name]
    (single,) = [arg for arg in typing.get_args(hint) or (hint,) if arg is not type(None)]
    return single


def default_text(field: dataclasses.Field) -> str:
    """What ``--help`` shows as a field's default.

    Example:
        >>> default_text(FIELDS["epochs"]), default_text(FIELDS["nesterov"])
        ('100', 'off')
    """
    if field.metadata["default_text"] is not None:
        return field.metadata["default_text"]
    if isinstance(field.default, bool):
        return "on" if field.default else "off"
    return str(field.default)


def _help(field: dataclasses.Field) -> str:
    return _escaped(f"{field.metadata['help']} (default: {default_text(field)})")


def _escaped(help_text: str) -> str:
    return help_text.replace("%", "%%")  # argparse %-formats help strings


def _negatable(field: dataclasses.Field) -> bool:
    # A bool flag gets its --no- form where something besides the flag can turn it on: a
    # default other than False, or a preset (--no-nesterov under --recipe fast).
    presets = (QUICK, *RECIPES.values())
    return field.default is not False or any(field.name in preset for preset in presets)


def integers(text: str) -> tuple[int, ...]:
    """A comma-separated list of integers, as a flag's type.

    Example:
        >>> integers("32000,48000")
        (32000, 48000)
    """
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, e.g. 30,60,90; received {text!r}"
        ) from None


def _add_field_flag(group: argparse._ArgumentGroup, field: dataclasses.Field) -> None:
    # Every flag defaults to None, "not given", so that presets apply only under the flags
    # given explicitly. Choices are shown as argparse shows its own, but not handed to it:
    # TrainConfig.validate refuses other values, with the message of any invalid value.
    kwargs = {"dest": field.name, "default": None, "help": _help(field)}
    if value_type(field) is bool:
        kwargs["action"] = argparse.BooleanOptionalAction if _negatable(field) else "store_true"
    elif typing.get_origin(value_type(field)) is tuple:
        kwargs["type"] = integers
    else:
        kwargs["type"] = value_type(field)
    if field.metadata["choices"] is not None:
        kwargs["metavar"] = "{" + ",".join(field.metadata["choices"]) + "}"
    group.add_argument(flag_name(field), **kwargs)


def add_config_arguments(
    parser: argparse.ArgumentParser, omit: Collection[str] = ()
) -> argparse.ArgumentParser:
    """Add a flag for every ``TrainConfig`` field (and ``--recipe``, ``--quick``), except
    those in ``omit``; see ``config_from_args`` for how they combine.

    Example:
        >>> parser = add_config_arguments(argparse.ArgumentParser(), omit={"distribute"})
        >>> parser.parse_args(["--lr", "0.05"]).learning_rate
        0.05
    """
    groups = {name: parser.add_argument_group(name) for name in FLAG_GROUPS}
    if "recipe" not in omit:
        presets = "; ".join(
            f"{name}: " + ", ".join(f"{key}={value}" for key, value in values.items())
            for name, values in RECIPES.items()
            if values
        )
        groups["recipe"].add_argument(
            "--recipe",
            choices=list(RECIPES),
            help=_escaped(
                f"a preset of recipe flags, under --quick and the flags given; {presets} "
                "(default: step, the defaults shown here)"
            ),
        )
    if "quick" not in omit:
        groups["run"].add_argument(
            "--quick",
            action="store_true",
            help=_escaped(
                "smoke run: "
                + ", ".join(f"{key}={value}" for key, value in QUICK.items())
                + ", under the flags given (default: off)"
            ),
        )
    for field in FIELDS.values():
        if field.name not in omit:
            _add_field_flag(groups[field.metadata["group"]], field)
    return parser


# Fields that only some schedules read: given explicitly with another, they are refused
# rather than silently ignored (TrainConfig itself refuses milestones and warm-up steps
# without the multistep schedule).
SCHEDULE_FIELDS = {
    "step_size": ("step",),
    "gamma": ("step", "multistep"),
    "milestone_unit": ("multistep",),
}


def config_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, **defaults
) -> TrainConfig:
    """The validated ``TrainConfig`` the flags ask for; an invalid value exits with status 2.

    Precedence, lowest first: the config's own defaults, ``defaults``, the ``--recipe``
    preset (with its values for the chosen model), ``--quick``, the flags given explicitly
    (even one that repeats a default). ``--milestones`` without ``--schedule`` selects the
    multistep schedule.

    Example:
        >>> parser = add_config_arguments(argparse.ArgumentParser())
        >>> config_from_args(parser, parser.parse_args(["--quick", "--epochs=3"])).epochs
        3
    """
    explicit = {
        name: value for name, value in vars(args).items() if name in FIELDS and value is not None
    }
    if "milestones" in explicit and "schedule" not in explicit:
        explicit["schedule"] = "multistep"
    recipe = getattr(args, "recipe", None)
    quick = QUICK if getattr(args, "quick", False) else {}

    def merged(preset: dict) -> dict:
        layers = (defaults, preset, quick, explicit)
        return {name: value for layer in layers for name, value in layer.items()}

    values = merged(RECIPES[recipe] if recipe else {})
    if recipe:
        values = merged(recipe_values(recipe, values.get("model", FIELDS["model"].default)))
    try:
        config = TrainConfig(**values)
    except ValueError as error:
        parser.error(str(error))
    ignored = [
        name
        for name in explicit
        if name in SCHEDULE_FIELDS and config.schedule not in SCHEDULE_FIELDS[name]
    ]
    if ignored:
        name = ignored[0]
        parser.error(
            f"{flag_name(FIELDS[name])} has no effect with schedule={config.schedule!r}: it "
            f"belongs to the {' and '.join(SCHEDULE_FIELDS[name])} schedule. Drop it, or "
            f"choose that --schedule. Received: {name}={explicit[name]!r}"
        )
    return config


def parse_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None, **defaults):
    """``parser.parse_args(argv)`` and the ``TrainConfig`` its flags ask for.

    Example:
        >>> config, args = parse_flags(add_config_arguments(argparse.ArgumentParser()), [])
    """
    args = parser.parse_args(argv)
    return config_from_args(parser, args, **defaults), args
