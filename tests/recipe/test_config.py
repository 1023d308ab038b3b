"""TrainConfig: the recipe's defaults, the patience rule, validation and the fingerprint."""

import dataclasses
import json
import os
import re

import pytest

from keras_resnet.recipe.config import (
    EXECUTION_FIELDS,
    LATER_FIELDS,
    PATIENCE_AFTER_DROP,
    QUICK,
    RECIPES,
    TrainConfig,
)

# TrainConfig().fingerprint() on main before the fields of LATER_FIELDS were added: run
# folders made then must keep their names and stay resumable.
MAIN_DEFAULT_FINGERPRINT = "998d3e43"


def test_defaults_are_the_resnet18_recipe():
    config = TrainConfig()
    assert config.model == "resnet18"
    assert config.epochs == 100
    assert config.batch_size == 128
    assert config.learning_rate == 0.1
    assert config.momentum == 0.9
    assert config.weight_decay == 5e-4
    assert config.step_size == 30
    assert config.gamma == 0.1
    assert config.validation_fraction == 0.2
    assert config.patience is None
    assert config.precision == "fp32"
    assert config.data_dir is None and config.synthetic is False
    assert config.train_subset is None and config.test_subset is None
    assert config.schedule == "step" and config.nesterov is False
    assert config.label_smoothing == 0.0 and config.flip_test is False


def test_default_patience_is_step_size_plus_the_after_drop_allowance():
    assert TrainConfig().resolved_patience == 30 + PATIENCE_AFTER_DROP
    assert TrainConfig(step_size=3).resolved_patience == 3 + PATIENCE_AFTER_DROP


@pytest.mark.parametrize("step_size", [1, 3, 30, 82])
def test_default_patience_lets_a_drop_take_effect(step_size):
    # A plateau that starts right after one drop must survive until the next drop and
    # then get PATIENCE_AFTER_DROP more epochs: patience > step_size.
    patience = TrainConfig(step_size=step_size).resolved_patience
    assert patience > step_size
    assert patience - step_size == PATIENCE_AFTER_DROP >= 1


def test_explicit_patience_wins():
    assert TrainConfig(patience=5).resolved_patience == 5
    assert TrainConfig(step_size=3, patience=100).resolved_patience == 100


def _exact(text):
    """A regex for a message that ends with ``text`` exactly."""
    return re.escape(text) + "$"


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"epochs": -1}, "epochs=-1"),
        ({"epochs": 0}, "epochs=0"),
        ({"epochs": 2.5}, "epochs=2.5"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"step_size": 0}, "step_size=0"),
        ({"seed": -1}, "seed=-1"),
        ({"verbose": -1}, "verbose=-1"),
        ({"patience": 0}, "patience=0"),
        ({"train_subset": 0}, "train_subset=0"),
        ({"test_subset": -5}, "test_subset=-5"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"learning_rate": "0.1"}, "learning_rate='0.1'"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"momentum": -0.1}, "momentum=-0.1"),
        ({"weight_decay": -1e-4}, "weight_decay=-0.0001"),
        ({"gamma": 0.0}, "gamma=0.0"),
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"validation_fraction": 0}, "validation_fraction=0"),
        ({"validation_fraction": 1}, "validation_fraction=1"),
        ({"validation_fraction": 1.5}, "validation_fraction=1.5"),
        ({"validation_fraction": "0.2"}, "validation_fraction='0.2'"),
        ({"model": "resnet19"}, "model='resnet19'"),
        ({"shortcut": "option_c"}, "shortcut='option_c'"),
        ({"precision": "fp8"}, "precision='fp8'"),
        ({"schedule": "cosine"}, "schedule='cosine'"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
        ({"label_smoothing": -0.1}, "label_smoothing=-0.1"),
        ({"nesterov": 1}, "nesterov=1"),
        ({"flip_test": "yes"}, "flip_test='yes'"),
        # bool is an int subclass in Python; a flag passed by mistake must not count.
        ({"epochs": True}, "epochs=True"),
        ({"batch_size": True}, "batch_size=True"),
        ({"seed": False}, "seed=False"),
        ({"learning_rate": True}, "learning_rate=True"),
    ],
)
def test_invalid_values_raise_naming_the_field(kwargs, received):
    with pytest.raises(ValueError, match=_exact(f"Received: {received}")) as info:
        TrainConfig(**kwargs)
    name = next(iter(kwargs))
    assert f"`{name}`" in str(info.value)


def test_missing_data_dir_raises(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(ValueError, match=_exact(f"Received: data_dir={missing!r}")):
        TrainConfig(data_dir=missing)


def test_data_dir_and_synthetic_together_raise(tmp_path):
    with pytest.raises(
        ValueError, match=_exact(f"Received: data_dir={str(tmp_path)!r}, synthetic=True")
    ):
        TrainConfig(data_dir=str(tmp_path), synthetic=True)


def test_existing_data_dir_is_accepted(tmp_path):
    assert TrainConfig(data_dir=str(tmp_path)).data_dir == str(tmp_path)


def test_folders_may_be_paths_and_are_stored_as_str(tmp_path):
    # train() writes to_dict() into config.json: a pathlib.Path there used to fail with
    # "Object of type PosixPath is not JSON serializable" after loading the data.
    config = TrainConfig(data_dir=tmp_path, output_dir=tmp_path / "runs", cache_dir=tmp_path)
    assert (config.data_dir, config.output_dir, config.cache_dir) == (
        str(tmp_path),
        str(tmp_path / "runs"),
        str(tmp_path),
    )
    json.dumps(config.to_dict())
    assert config.fingerprint() == TrainConfig(data_dir=str(tmp_path)).fingerprint()
    assert config == TrainConfig(
        data_dir=str(tmp_path), output_dir=str(tmp_path / "runs"), cache_dir=str(tmp_path)
    )


def test_quick_overrides_are_a_valid_config():
    config = TrainConfig(**QUICK)
    assert config.model == "resnet20"
    assert config.epochs < TrainConfig().epochs
    assert config.step_size < config.epochs  # the quick run still sees a drop


def test_to_dict_round_trips():
    config = TrainConfig(model="resnet56", epochs=164, step_size=82, synthetic=True)
    assert TrainConfig(**config.to_dict()) == config
    assert config.to_dict()["epochs"] == 164


# A changed value for every field that changes what a run computes.
RECIPE_CHANGES = {
    "model": "resnet32",
    "shortcut": "projection",
    "epochs": 99,
    "batch_size": 64,
    "learning_rate": 0.05,
    "momentum": 0.8,
    "weight_decay": 1e-4,
    "step_size": 20,
    "gamma": 0.2,
    "patience": 5,
    "validation_fraction": 0.1,
    "seed": 1,
    "deterministic": True,
    "data_dir": "TMP",  # replaced by an existing folder in the test
    "synthetic": True,
    "train_subset": 100,
    "test_subset": 100,
    "precision": "bf16",
    "distribute": True,
    "schedule": "one_cycle",
    "nesterov": True,
    "label_smoothing": 0.1,
    "flip_test": True,
    "image_size": 64,
    "milestones": (10, 20),
    "milestone_unit": "step",
    "warmup_steps": 2,
    "warmup_learning_rate": 0.02,
    "max_steps": 1000,
    "ema": True,
    "ema_momentum": 0.9,
    "decay_norm_and_bias": False,
    "test_translate": 1,
    "zero_init_residual": True,
}
# The fields a recipe change needs beside it, in the base and the changed config alike.
RECIPE_BASES = {
    "milestones": {"schedule": "multistep", "milestones": (5,)},
    "warmup_steps": {"schedule": "multistep", "milestones": (5,)},
}
EXECUTION_CHANGES = {
    "output_dir": "elsewhere",
    "run_name": "my-run",
    "cache_dir": "/tmp/another-cache",
    "jit_compile": True,
    "verbose": 2,
    "memory_budget_mb": 1,
    "allow_emulated_precision": True,
    "tensorboard": True,
    "job_addresses": "10.0.0.1:1234",
    "num_processes": 2,
    "process_id": 1,
    "heartbeat_timeout": 30,
}


def test_every_field_is_classified():
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(EXECUTION_CHANGES) == set(EXECUTION_FIELDS)
    assert set(RECIPE_CHANGES) | set(EXECUTION_CHANGES) == fields


@pytest.mark.parametrize("name", sorted(RECIPE_CHANGES))
def test_fingerprint_changes_with_recipe_fields(name, tmp_path):
    value = str(tmp_path) if name == "data_dir" else RECIPE_CHANGES[name]
    base = TrainConfig(**RECIPE_BASES.get(name, {}))
    changed = dataclasses.replace(base, **{name: value})
    assert changed.fingerprint() != base.fingerprint()
    assert changed.resolved_run_name() != base.resolved_run_name()


@pytest.mark.parametrize("name", sorted(EXECUTION_CHANGES))
def test_fingerprint_ignores_execution_fields(name):
    base = TrainConfig()
    changed = dataclasses.replace(base, **{name: EXECUTION_CHANGES[name]})
    assert changed.fingerprint() == base.fingerprint()


def test_fingerprint_is_stable_and_short():
    assert TrainConfig().fingerprint() == TrainConfig().fingerprint()
    assert re.fullmatch(r"[0-9a-f]{8}", TrainConfig().fingerprint())


def test_default_fingerprint_is_mains():
    assert TrainConfig().fingerprint() == MAIN_DEFAULT_FINGERPRINT


def test_later_fields_leave_the_fingerprint_only_at_their_defaults():
    config = TrainConfig()
    assert {name: getattr(config, name) for name in LATER_FIELDS} == LATER_FIELDS
    assert TrainConfig(label_smoothing=0.1, nesterov=False).fingerprint() == (
        TrainConfig(label_smoothing=0.1).fingerprint()
    )


def test_recipes_are_presets_of_fields_that_explicit_values_override():
    assert TrainConfig.from_recipe("step") == TrainConfig()
    fast = TrainConfig.from_recipe("fast", epochs=5)
    assert fast.epochs == 5
    for name, value in RECIPES["fast"].items():
        if name != "epochs":
            assert getattr(fast, name) == value
    with pytest.raises(ValueError, match=_exact("Received: recipe='faster'")):
        TrainConfig.from_recipe("faster")


def test_fingerprint_uses_the_absolute_data_dir(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = TrainConfig(data_dir="data")
    absolute = TrainConfig(data_dir=os.path.join(str(tmp_path), "data"))
    assert relative.fingerprint() == absolute.fingerprint()


def test_run_name():
    config = TrainConfig(model="resnet20", seed=7)
    assert config.resolved_run_name() == f"resnet20-seed7-{config.fingerprint()}"
    assert TrainConfig(run_name="mine").resolved_run_name() == "mine"


@pytest.mark.parametrize("name", ["learning_rate", "weight_decay", "gamma", "momentum"])
def test_infinite_numbers_are_refused(name):
    with pytest.raises(ValueError, match=f"Received: {name}=inf"):
        TrainConfig(**{name: float("inf")})
