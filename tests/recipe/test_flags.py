"""The command-line flags generated from TrainConfig's field metadata, and how they combine.

Every field gets a flag from its metadata alone (the parametrized round trip covers a new
field the day it is added); ``--help`` names each default once and, like any flag
parsing, loads no backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from processes import command_env, load_script

from keras_resnet.recipe import flags
from keras_resnet.recipe.config import QUICK, RECIPES, TrainConfig, _field

REPO_ROOT = Path(__file__).resolve().parents[2]
CIFAR10_SCRIPT = REPO_ROOT / "experiments" / "cifar10.py"
SEARCH_SCRIPT = REPO_ROOT / "tuner" / "search.py"
# Fields tuner/search.py has no flag for (a trial is judged on validation, one at a time).
SEARCH_OMITS = {
    "distribute",
    "run_name",
    "flip_test",
    "job_addresses",
    "num_processes",
    "process_id",
    "heartbeat_timeout",
}
BACKENDS = ("keras", "tensorflow", "jax", "torch", "keras_tuner")


@pytest.fixture(scope="module")
def commands():
    """Each command's parser and the fields it leaves out."""
    cifar10 = load_script(CIFAR10_SCRIPT, "cifar10_flags")
    search = load_script(SEARCH_SCRIPT, "search_flags")
    return {
        "cifar10": (cifar10.build_parser(), set()),
        "search": (search.build_parser(), SEARCH_OMITS),
    }


def _parser(omit=()):
    return flags.add_config_arguments(argparse.ArgumentParser(), omit=omit)


def _config_from(argv, **defaults):
    parser = _parser()
    return flags.config_from_args(parser, parser.parse_args(argv), **defaults)


def help_entries(text: str) -> dict[str, str]:
    """``--help`` output as {first flag of an entry: the entry on one line}."""
    entries, current = {}, None
    for line in text.splitlines():
        match = re.match(r"  (-[\w-]+)", line)
        if match:
            current = match.group(1)
            entries[current] = line.strip()
        elif current and line.startswith("   "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


# ----------------------------------------------------------------------- one flag per field


@pytest.mark.parametrize("command", ["cifar10", "search"])
def test_every_field_has_a_flag_except_those_the_command_omits(commands, command):
    parser, omitted = commands[command]
    destinations = {action.dest for action in parser._actions}
    assert set(flags.FIELDS) - destinations == omitted
    assert {"recipe", "quick"} <= destinations


# Text fields with a format of their own.
FORMATTED = {"job_addresses": "10.0.0.1:1234"}


def _changed_value(field: dataclasses.Field, folder: str):
    """A valid value other than the field's default, from its type and choices alone."""
    if field.name in FORMATTED:
        return FORMATTED[field.name]
    choices = field.metadata["choices"]
    if choices is not None:  # the last: "step" for schedule would need milestones
        return [choice for choice in choices if choice != field.default][-1]
    kind = flags.value_type(field)
    if kind is bool:
        return not field.default
    if kind is int:
        return (field.default or 15) + 1  # 16: a valid image size as well as a count
    if kind is float:
        return field.default / 2 or 0.5
    if kind is str:
        return folder  # an existing folder suits data_dir as well as any name
    if typing.get_origin(kind) is tuple:
        return (5, 10)
    raise TypeError(f"No test value for a {kind.__name__} field. Received: {field.name=}")


# The flags a changed value needs beside it, and what they set.
MULTISTEP = (["--milestones=5"], {"schedule": "multistep", "milestones": (5,)})
COMPANIONS = {"warmup_steps": MULTISTEP, "milestone_unit": MULTISTEP}
# What a value sets besides its own field (--milestones alone selects the multistep schedule).
IMPLIED = {"milestones": {"schedule": "multistep"}}


def _flag_argv(flag: str, value) -> list[str]:
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(value, tuple):
        return [f"{flag}={','.join(map(str, value))}"]
    return [f"{flag}={value}"]


@pytest.mark.parametrize("name", sorted(flags.FIELDS))
def test_a_flag_value_round_trips_into_the_config(name, tmp_path):
    field = flags.FIELDS[name]
    value = _changed_value(field, str(tmp_path))
    companion_argv, companion_fields = COMPANIONS.get(name, ([], {}))
    argv = [*companion_argv, *_flag_argv(flags.flag_name(field), value)]
    expected = {**companion_fields, **IMPLIED.get(name, {}), name: value}
    assert _config_from(argv) == dataclasses.replace(TrainConfig(), **expected)


@pytest.mark.parametrize(
    "argv, name, value",
    [
        (["--recipe=fast", "--no-nesterov"], "nesterov", False),
        (["--recipe=fast", "--no-flip-test"], "flip_test", False),
        (["--no-jit-compile"], "jit_compile", False),
        (["--jit-compile"], "jit_compile", True),
        (["--deterministic"], "deterministic", True),
        (["--synthetic"], "synthetic", True),
        (["--distribute"], "distribute", True),
    ],
)
def test_bool_flags_keep_their_spellings(argv, name, value):
    assert getattr(_config_from(argv), name) is value


def test_bool_flags_nothing_else_turns_on_have_no_off_form(capsys):
    # Neither a preset nor the default turns these on, so --no-... would have nothing to undo.
    for flag in ("--no-deterministic", "--no-synthetic", "--no-distribute"):
        with pytest.raises(SystemExit) as info:
            _parser().parse_args([flag])
        assert info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_omitted_fields_get_no_flag():
    parser = _parser(omit={"learning_rate", "quick"})
    destinations = {action.dest for action in parser._actions}
    assert "learning_rate" not in destinations and "quick" not in destinations
    assert "--lr" not in parser.format_help()


# ----------------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--schedule=cosine"], "Received: schedule='cosine'"),
        (["--shortcut=option_c"], "Received: shortcut='option_c'"),
        (["--precision=fp8"], "Received: precision='fp8'"),
        (["--model=resnet19"], "Received: model='resnet19'"),
        (["--lr=0"], "Received: learning_rate=0.0"),
        (["--patience=0"], "Received: patience=0"),
        (["--recipe=faster"], "invalid choice: 'faster'"),
        (["--epochs=two"], "invalid int value: 'two'"),
    ],
)
def test_an_invalid_value_exits_2_with_the_configs_message(capsys, argv, reason):
    with pytest.raises(SystemExit) as info:
        _config_from(argv)
    assert info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.endswith(reason) if "Received:" in reason else reason in last_line


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--recipe=fast", "--gamma=0.5"],
            "--gamma has no effect with schedule='one_cycle': it belongs to the step and "
            "multistep schedule. Drop it, or choose that --schedule. Received: gamma=0.5",
        ),
        (
            ["--schedule=step", "--milestones=5,8"],
            "`milestones` and `warmup_steps` apply to schedule='multistep' only. "
            "Received: schedule='step', milestones=(5, 8), warmup_steps=0",
        ),
        (
            ["--milestone-unit=step"],
            "--milestone-unit has no effect with schedule='step': it belongs to the multistep "
            "schedule. Drop it, or choose that --schedule. Received: milestone_unit='step'",
        ),
    ],
)
def test_a_flag_the_schedule_ignores_is_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        _config_from(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {message}")


def test_a_none_default_needs_words_and_a_field_a_known_group():
    with pytest.raises(ValueError, match="needs a `default_text`"):
        _field(None, "a new field", group="run")
    with pytest.raises(ValueError, match="Received: group='training'$"):
        _field(1, "a new field", group="training")


# ----------------------------------------------------------------------- precedence


def test_precedence_is_defaults_then_preset_then_quick_then_explicit_flags():
    # epochs is set at every level: the config (100), the fast preset, --quick, a flag.
    assert _config_from([]).epochs == TrainConfig().epochs
    assert _config_from([], epochs=50).epochs == 50
    assert _config_from(["--recipe=fast"], epochs=50).epochs == RECIPES["fast"]["epochs"]
    quick = _config_from(["--recipe=fast", "--quick"])
    assert quick.epochs == QUICK["epochs"]
    assert quick.label_smoothing == RECIPES["fast"]["label_smoothing"]  # the preset's rest
    assert _config_from(["--recipe=fast", "--quick", "--epochs=7"]).epochs == 7
    # A flag that repeats the default still wins over --quick's resnet20.
    assert _config_from(["--quick", "--model=resnet18"]).model == "resnet18"


def test_recipe_flag_is_a_preset_under_explicit_flags():
    fast = _config_from(["--recipe", "fast", "--epochs", "5", "--no-nesterov"])
    assert (fast.epochs, fast.nesterov) == (5, False)
    assert fast.schedule == "one_cycle" and fast.batch_size == RECIPES["fast"]["batch_size"]
    assert _config_from(["--recipe", "step"]) == TrainConfig()
    given = _config_from(["--schedule=one_cycle", "--label-smoothing=0.2", "--flip-test"])
    assert (given.schedule, given.label_smoothing, given.flip_test) == ("one_cycle", 0.2, True)


def test_parse_flags_returns_the_config_and_the_args():
    config, args = flags.parse_flags(_parser(), ["--quick"], synthetic=True)
    assert config == TrainConfig(synthetic=True, **QUICK)
    assert args.quick is True


# ----------------------------------------------------------------------- --help


@pytest.mark.parametrize("command", ["cifar10", "search"])
def test_help_names_each_default_once(commands, command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per entry's help, no wrapping
    parser, omitted = commands[command]
    entries = help_entries(parser.format_help())
    for name, field in flags.FIELDS.items():
        if name in omitted:
            continue
        entry = entries[flags.flag_name(field)]
        assert entry.count("(default") == 1, entry
        assert entry.endswith(f"(default: {flags.default_text(field)})"), entry
    for flag in ("--recipe", "--quick"):
        assert entries[flag].count("(default") == 1, entries[flag]


def test_every_cifar10_flag_names_its_default_once(commands, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    entries = help_entries(commands["cifar10"][0].format_help())
    for flag, entry in entries.items():
        if flag != "-h":
            assert entry.count("(default: ") == 1, entry


@pytest.mark.parametrize("script", [CIFAR10_SCRIPT, SEARCH_SCRIPT], ids=lambda path: path.name)
def test_help_loads_no_backend_and_shows_defaults_once(script):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=command_env(COLUMNS="1000"),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "keras_resnet.recipe.flags" in imported  # the log is there to look at
    assert [name for name in imported if name.split(".")[0] in BACKENDS] == []
    entries = help_entries(result.stdout)
    for flag, default in [("--epochs", "100"), ("--batch-size", "128"), ("--lr", "0.1")]:
        assert re.findall(rf"(?<![\w.]){re.escape(default)}(?![\w.])", entries[flag]) == [
            default
        ], entries[flag]
    assert "(default: None)" not in result.stdout
