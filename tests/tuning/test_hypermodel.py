"""keras_resnet.tuning: the search space, hp.Fixed overrides, the tuners, the summary.

One small random search on synthetic data (two trials of two epochs, in-process) is the
search that the summary, history and plot checks read, and a one-trial search with the
one-cycle schedule (``--recipe fast``) checks that trials train with their per-step rate;
the space checks build nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest
from processes import command_env

from keras_resnet import plots, tuning
from keras_resnet.recipe import run_folder, training
from keras_resnet.recipe.augment import RandomPadCrop
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.optimizers import TorchSGD
from keras_resnet.recipe.schedules import OneCycle
from keras_resnet.tuning import ResNetHyperModel, SearchFolderError, SearchSpace, report
from keras_resnet.tuning.hypermodel import same_family

SMALL = dict(
    model="resnet20",
    synthetic=True,
    epochs=2,
    step_size=1,
    batch_size=64,
    train_subset=256,
    test_subset=64,
    verbose=0,
)
# The one-cycle recipe at the same size: 204 training images in 4 steps of 64 per epoch.
ONE_CYCLE = {key: value for key, value in SMALL.items() if key != "step_size"}
STEPS_PER_EPOCH = 4


@pytest.fixture(scope="module")
def split():
    return training.prepare_split(TrainConfig(**SMALL))


def hypermodel_for(split, space=None, **overrides):
    return ResNetHyperModel(TrainConfig(**{**SMALL, **overrides}), split, space)


# --------------------------------------------------------------------------- the space


@pytest.mark.parametrize(
    "epochs, expected", [(100, (25, 100, 25)), (10, (2, 10, 2)), (3, (1, 3, 1)), (1, (1, 1, 1))]
)
def test_default_step_sizes_go_from_four_drops_to_none(epochs, expected):
    assert SearchSpace().resolved_step_size(epochs) == expected


def test_default_space_is_log_learning_rate_and_step_size(split):
    hp = kt.HyperParameters()
    config = hypermodel_for(split, epochs=8, step_size=30, learning_rate=0.1).trial_config(hp)
    learning_rate, step_size = hp.space
    assert (learning_rate.name, learning_rate.min_value, learning_rate.max_value) == (
        "learning_rate",
        1e-3,
        1.0,
    )
    assert learning_rate.sampling == "log" and learning_rate.step is None
    assert (step_size.name, step_size.min_value, step_size.max_value, step_size.step) == (
        "step_size",
        2,
        8,
        2,
    )
    # Defaults: the config's learning rate; its step size moved onto the grid (30 -> 8).
    assert (config.learning_rate, config.step_size) == (0.1, 8)
    assert [p.name for p in hp.space] == list(SearchSpace().hyperparameters())


def test_a_trial_config_changes_only_the_searched_fields(split):
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.037)
    hp.Fixed("step_size", 2)
    hypermodel = hypermodel_for(split, epochs=8)
    config = hypermodel.trial_config(hp)
    assert config == dataclasses.replace(hypermodel.config, learning_rate=0.037, step_size=2)


def test_extra_hyperparameters_have_documented_ranges(split):
    hp = kt.HyperParameters()
    space = SearchSpace(extra=("gamma", "weight_decay", "shortcut", "model"))
    hypermodel_for(split, space).trial_config(hp)
    found = {p.name: p for p in hp.space}
    assert list(found) == list(space.hyperparameters())
    assert (found["gamma"].min_value, found["gamma"].max_value) == (0.05, 0.5)
    assert found["gamma"].default == 0.1 and found["weight_decay"].default == 5e-4
    assert (found["weight_decay"].min_value, found["weight_decay"].max_value) == (1e-5, 1e-3)
    assert list(found["shortcut"].values) == ["zero_pad", "projection"]
    assert tuple(found["model"].values) == same_family("resnet20")
    assert same_family("resnet18") == ("resnet18", "resnet34")


def test_the_fast_recipe_can_search_its_peak_label_smoothing_and_moving_average(split):
    hp = kt.HyperParameters()
    space = SearchSpace(extra=("label_smoothing", "ema"))
    hypermodel = ResNetHyperModel(TrainConfig.from_recipe("fast", **ONE_CYCLE), split, space)
    config = hypermodel.trial_config(hp)
    found = {p.name: p for p in hp.space}
    assert list(found) == ["learning_rate", "label_smoothing", "ema"]
    assert (found["label_smoothing"].min_value, found["label_smoothing"].max_value) == (0.0, 0.3)
    assert found["label_smoothing"].step == 0.05
    assert found["label_smoothing"].default == pytest.approx(0.1)  # the fast recipe's
    assert found["ema"].default is False
    assert (config.label_smoothing, config.ema) == (pytest.approx(0.1), False)
    fixed = tuning.fixed_hyperparameters({"ema": tuning.hypermodel.boolean("on")})
    assert hypermodel.trial_config(fixed).ema is True
    with pytest.raises(ValueError, match="Received: 'maybe'$"):
        tuning.hypermodel.boolean("maybe")


def test_a_grid_step_spaces_the_learning_rates(split):
    hp = kt.HyperParameters()
    space = SearchSpace(learning_rate=(0.01, 1.0), learning_rate_step=10.0)
    hypermodel_for(split, space).trial_config(hp)
    assert sorted(hp.space[0].values) == pytest.approx([0.01, 0.1, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(learning_rate=(0.0, 1.0)), "Received: learning_rate=(0.0, 1.0)"),
        (dict(learning_rate=(0.5, 0.1)), "Received: learning_rate=(0.5, 0.1)"),
        (dict(learning_rate_step=1.0), "Received: learning_rate_step=1.0"),
        (dict(step_size=(0, 4)), "Received: step_size=(0, 4)"),
        (dict(step_size=(5, 2)), "Received: step_size=(5, 2)"),
        (dict(step_size_step=0), "Received: step_size_step=0"),
        (dict(extra=("momentum",)), "Received: extra=('momentum',)"),
    ],
)
def test_invalid_spaces_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError) as info:
        SearchSpace(**kwargs)
    assert str(info.value).endswith(message)


def test_fixed_overrides_apply_and_unknown_names_are_refused(split):
    hp = tuning.fixed_hyperparameters({"learning_rate": 0.02, "step_size": 3})
    config = hypermodel_for(split, epochs=8).trial_config(hp)
    assert (config.learning_rate, config.step_size) == (0.02, 3)
    with pytest.raises(ValueError, match=r"Received: momentum=0\.8$"):
        tuning.fixed_hyperparameters({"momentum": 0.8})


def test_a_fixed_value_the_recipe_refuses_fails_before_any_trial(split, tmp_path):
    with pytest.raises(ValueError, match=r"Received: step_size=0$"):
        tuning.make_tuner(
            "random",
            hypermodel_for(split),
            directory=tmp_path,
            project_name="p",
            fixed={"step_size": 0},
        )
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "kind, max_trials, message",
    [
        ("hyperband", 5, "Received: max_trials=5"),
        ("annealing", None, "Received: kind='annealing'"),
        ("random", 0, "Received: max_trials=0"),
    ],
)
def test_invalid_tuner_settings_are_refused(split, tmp_path, kind, max_trials, message):
    with pytest.raises(ValueError) as info:
        tuning.make_tuner(
            kind, hypermodel_for(split), directory=tmp_path, project_name="p", max_trials=max_trials
        )
    assert str(info.value).endswith(message)


def test_build_compiles_the_recipe_with_the_trial_learning_rate(split):
    hp = tuning.fixed_hyperparameters({"learning_rate": 0.02})
    model = hypermodel_for(split).build(hp)
    # The recipe's model: augmentation, the split's normalization, then the config's ResNet.
    assert [layer.name for layer in model.layers] == [
        "images",
        "random_pad_crop",
        "random_flip",
        "normalization",
        "resnet20",
    ]
    crop = model.get_layer("random_pad_crop")
    assert isinstance(crop, RandomPadCrop) and crop.padding == 4
    mean = keras.ops.convert_to_numpy(model.get_layer("normalization").mean).ravel()
    np.testing.assert_allclose(mean, split.mean, rtol=1e-6)
    assert model.output.shape == (None, 10)
    # The recipe's optimizer at the trial's rate (StepLR: a value the callback sets).
    assert isinstance(model.optimizer, TorchSGD) and model.optimizer.momentum == 0.9
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.02)


def test_a_one_cycle_trial_searches_the_peak_rate_only(split):
    hp = kt.HyperParameters()
    hypermodel = ResNetHyperModel(TrainConfig.from_recipe("fast", **ONE_CYCLE), split)
    config = hypermodel.trial_config(hp)
    assert [p.name for p in hp.space] == ["learning_rate"]
    assert list(SearchSpace().hyperparameters(schedule="one_cycle")) == ["learning_rate"]
    assert config.learning_rate == 0.4  # the recipe's peak is the default


def test_a_one_cycle_build_spans_the_trials_steps(split):
    hypermodel = ResNetHyperModel(TrainConfig.from_recipe("fast", **ONE_CYCLE), split)
    assert hypermodel.steps_per_epoch == STEPS_PER_EPOCH  # ceil(204 / 64)
    model = hypermodel.build(tuning.fixed_hyperparameters({"learning_rate": 0.2}))
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == OneCycle.__name__
    assert schedule["config"]["peak"] == 0.2
    assert schedule["config"]["total_steps"] == SMALL["epochs"] * STEPS_PER_EPOCH


def test_fit_sets_the_trial_step_schedule(split):
    hp = tuning.fixed_hyperparameters({"learning_rate": 0.05, "step_size": 1})
    hypermodel = hypermodel_for(split, gamma=0.5, epochs=3)
    model = hypermodel.build(hp)
    history = hypermodel.fit(
        hp,
        model,
        split.x_train[:64],
        split.y_train[:64],
        validation_data=(split.x_val, split.y_val),
    )
    assert history.history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])
    assert len(history.history["val_accuracy"]) == 3


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "environ, role",
    [
        ({}, "single"),
        ({"KERASTUNER_TUNER_ID": "tuner0"}, "single"),
        (
            {
                "KERASTUNER_TUNER_ID": "chief",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            "chief",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "tuner1",
                "KERASTUNER_ORACLE_IP": "10.0.0.2",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            "worker",
        ),
    ],
)
def test_the_role_follows_kerastuner_variables(environ, role):
    assert tuning.search_role(environ) == role


@pytest.mark.parametrize(
    "environ, message",
    [
        (
            {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "8000"},
            "KERASTUNER_TUNER_ID is not set",
        ),
        (
            {"KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1"},
            "KERASTUNER_ORACLE_PORT is not set",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "tuner0",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "http",
            },
            "Received: KERASTUNER_ORACLE_PORT=http",
        ),
    ],
)
def test_a_partial_distributed_setting_is_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        tuning.search_role(environ)


# --------------------------------------------------------------------------- project folders


def test_a_corrupt_kerastuner_file_is_named_with_the_way_out(tmp_path):
    (tmp_path / "trial_0").mkdir()
    (tmp_path / "oracle.json").write_text('{"ongoing_trials": {}}')
    (tmp_path / "trial_0" / "trial.json").write_text("")
    with pytest.raises(SearchFolderError) as info:
        tuning.check_project(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'trial_0' / 'trial.json'} is corrupt or empty")
    assert "--overwrite" in message


def test_importing_the_tuning_package_leaves_kerastuner_as_it_is():
    code = (
        "import keras_resnet.tuning\n"
        "from keras_resnet.tuning import hypermodel, report, tuners\n"
        "from keras_tuner.src import utils\n"
        "print(utils.save_json.__module__, getattr(utils.save_json, 'keras_resnet_atomic', 0))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["keras_tuner.src.utils", "0"]


def test_after_make_tuner_a_kill_while_kerastuner_writes_leaves_its_json_whole(
    split, tmp_path, monkeypatch
):
    from keras_tuner.src import utils  # where KerasTuner writes every JSON file

    tuner = tuning.make_tuner(
        "random", hypermodel_for(split), directory=tmp_path, project_name="p", max_trials=1
    )
    patched = utils.save_json
    assert patched.keras_resnet_atomic
    tuning.make_tuner(
        "random", hypermodel_for(split), directory=tmp_path, project_name="p", max_trials=1
    )
    assert utils.save_json is patched  # applied once, not wrapped again
    oracle_file = Path(tuner.project_dir) / "oracle.json"
    tuner.oracle.save()
    before = oracle_file.read_text()
    renames = []

    def killed_before_the_rename(source, target):
        renames.append((Path(source), Path(target), json.loads(Path(source).read_text())))
        raise KeyboardInterrupt  # as a SIGKILL would land: the new file written, not renamed

    monkeypatch.setattr(os, "replace", killed_before_the_rename)
    seed = tuner.oracle.seed
    tuner.oracle.seed = seed + 1  # a new state to write
    with pytest.raises(KeyboardInterrupt):
        tuner.oracle.save()
    monkeypatch.undo()
    # KerasTuner's own save wrote the whole new state to a temporary file beside the target
    # and would have renamed it over oracle.json; the old oracle.json is untouched and whole.
    ((source, target, written),) = renames
    assert target == oracle_file and source.parent == oracle_file.parent
    assert source.name != oracle_file.name and written["seed"] == seed + 1
    assert oracle_file.read_text() == before
    assert json.loads(before)["seed"] == seed
    assert not list(oracle_file.parent.glob(".*"))  # the interrupted write cleaned up


def test_a_project_of_another_search_is_refused(split, tmp_path):
    hypermodel = hypermodel_for(split)
    tuning.make_tuner("random", hypermodel, directory=tmp_path, project_name="p", max_trials=1)
    other = hypermodel_for(split, SearchSpace(learning_rate=(0.01, 0.5)))
    with pytest.raises(SearchFolderError, match=r"differs in: space\)"):
        tuning.make_tuner("random", other, directory=tmp_path, project_name="p", max_trials=1)
    recipe = hypermodel_for(split, momentum=0.8)
    with pytest.raises(SearchFolderError, match="--overwrite"):
        tuning.make_tuner("random", recipe, directory=tmp_path, project_name="p", max_trials=1)
    # More trials for the same search is a continuation, not another search.
    tuning.make_tuner("random", hypermodel, directory=tmp_path, project_name="p", max_trials=5)


def test_a_new_project_or_one_with_whole_files_passes_the_check(tmp_path):
    missing = tmp_path / "missing"
    assert tuning.check_project(missing) is None
    assert not missing.exists()  # checking creates nothing
    (tmp_path / "trial_0").mkdir()
    (tmp_path / "oracle.json").write_text('{"ongoing_trials": {}}')
    (tmp_path / "trial_0" / "trial.json").write_text('{"status": "COMPLETED"}')
    assert tuning.check_project(tmp_path) is None


# --------------------------------------------------------------------------- a small search


@pytest.fixture(scope="module")
def finished_search(split, tmp_path_factory):
    directory = tmp_path_factory.mktemp("search")
    hypermodel = ResNetHyperModel(TrainConfig(**SMALL), split)
    tuner = tuning.make_tuner(
        "random", hypermodel, directory=directory, project_name="small", max_trials=2
    )
    tuner.search(split.x_train, split.y_train, validation_data=(split.x_val, split.y_val))
    rows = tuning.summarize(tuner)
    summary_path = report.write_summary(rows, Path(tuner.project_dir) / "summary.csv")
    figures = plots.plot_search(rows, report.trial_histories(tuner), tuner.project_dir)
    return tuner, rows, summary_path, figures


def test_every_trial_is_summarized_best_first(finished_search):
    tuner, rows, _, _ = finished_search
    assert len(rows) == 2
    assert {row["status"] for row in rows} == {"COMPLETED"}
    scores = [row["best_val_accuracy"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert tuner.oracle.objective.name == "val_accuracy"


def test_the_summary_agrees_with_each_trial_history(finished_search):
    tuner, rows, _, _ = finished_search
    for row in rows:
        trial_dir = Path(tuner.get_trial_dir(row["trial_id"]))
        history = run_folder.read_history(trial_dir / "history.csv")
        assert [r["epoch"] for r in history] == [0, 1]
        val = [r["val_accuracy"] for r in history]
        assert row["best_val_accuracy"] == pytest.approx(max(val))
        assert row["best_epoch"] == int(np.argmax(val)) + 1
        # The trial trained with its own schedule: StepLR with its step size and gamma 0.1.
        lr, step = row["learning_rate"], row["step_size"]
        expected = [lr * 0.1 ** (epoch // step) for epoch in range(2)]
        assert [r["learning_rate"] for r in history] == pytest.approx(expected, rel=1e-5)


def test_the_summary_csv_has_a_row_per_trial(finished_search):
    _, rows, path, _ = finished_search
    with open(path, newline="") as f:
        written = list(csv.DictReader(f))
    assert [r["trial_id"] for r in written] == [row["trial_id"] for row in rows]
    assert list(written[0]) == [
        "trial_id",
        "status",
        "learning_rate",
        "step_size",
        "best_val_accuracy",
        "best_epoch",
        "epochs",
        "seconds",
    ]
    assert float(written[0]["best_val_accuracy"]) == pytest.approx(rows[0]["best_val_accuracy"])
    table = report.format_summary(rows).splitlines()
    assert table[0].split() == list(written[0])
    assert len(table) == 3


def test_the_search_plots_are_pngs(finished_search):
    *_, figures = finished_search
    assert [path.name for path in figures] == [
        plots.SEARCH_SCATTER_FILE,
        plots.SEARCH_CURVES_FILE,
    ]
    for path in figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_best_config_is_the_best_trial(finished_search):
    tuner, rows, _, _ = finished_search
    best = tuning.best_config(tuner)
    assert best.learning_rate == rows[0]["learning_rate"]
    assert best.step_size == rows[0]["step_size"]
    assert best.epochs == SMALL["epochs"] and best.model == SMALL["model"]


def test_a_tie_goes_to_the_earlier_trial_in_the_summary_and_the_best_config(finished_search):
    # After a resume KerasTuner's trials can load in another order; a tie between the
    # first two must not make --retrain-best train another trial than summary.csv's first.
    tuner, *_ = finished_search
    trials = tuner.oracle.trials
    saved = dict(trials), {trial_id: trial.score for trial_id, trial in trials.items()}
    try:
        for trial in trials.values():
            trial.score = 0.5
        tuner.oracle.trials = dict(reversed(list(trials.items())))
        first = sorted(trials)[0]
        assert tuning.summarize(tuner)[0]["trial_id"] == first
        assert tuner.oracle.get_best_trials(1)[0].trial_id != first  # the order it would use
        best = tuning.best_config(tuner)
        assert best.learning_rate == trials[first].hyperparameters.get("learning_rate")
    finally:
        tuner.oracle.trials = saved[0]
        for trial_id, trial in saved[0].items():
            trial.score = saved[1][trial_id]


def test_the_search_settings_are_recorded(finished_search):
    tuner, *_ = finished_search
    settings = json.loads((Path(tuner.project_dir) / "search.json").read_text())
    assert settings["tuner"] == "random"
    assert settings["space"]["learning_rate"] == [0.001, 1.0]
    assert settings["fingerprint"] == TrainConfig(**SMALL).fingerprint()


def test_unfinished_trials_print_blank_and_are_not_plotted():
    rows = [
        {"trial_id": "0", "best_val_accuracy": math.nan},
        {"trial_id": "1", "best_val_accuracy": 0.4},
    ]
    assert "nan" not in report.format_summary(rows)
    with pytest.raises(ValueError, match="No finished trial"):
        plots.plot_search(rows[:1], {}, "unused")


# --------------------------------------------------------------------------- a one-cycle search


@pytest.fixture(scope="module")
def one_cycle_search(split, tmp_path_factory):
    directory = tmp_path_factory.mktemp("one_cycle")
    hypermodel = ResNetHyperModel(TrainConfig.from_recipe("fast", **ONE_CYCLE), split)
    tuner = tuning.make_tuner(
        "random", hypermodel, directory=directory, project_name="fast", max_trials=1
    )
    tuner.search(split.x_train, split.y_train, validation_data=(split.x_val, split.y_val))
    return tuner


def test_a_one_cycle_trial_trains_and_is_scored(one_cycle_search):
    (trial,) = one_cycle_search.oracle.trials.values()
    assert trial.status == "COMPLETED"
    assert math.isfinite(trial.score) and 0 <= trial.score <= 1
    assert set(trial.hyperparameters.values) == {"learning_rate"}
    (row,) = tuning.summarize(one_cycle_search)
    assert "step_size" not in row and row["best_val_accuracy"] == pytest.approx(trial.score)


def test_a_one_cycle_trial_follows_its_per_step_rate(one_cycle_search):
    (trial_id, trial), *_ = one_cycle_search.oracle.trials.items()
    history = run_folder.read_history(
        Path(one_cycle_search.get_trial_dir(trial_id)) / "history.csv"
    )
    assert [row["epoch"] for row in history] == [0, 1]
    # Each epoch starts at OneCycle(peak, epochs * steps per epoch) of its first step.
    peak = trial.hyperparameters.get("learning_rate")
    schedule = OneCycle(peak, SMALL["epochs"] * STEPS_PER_EPOCH)
    expected = [float(schedule(epoch * STEPS_PER_EPOCH)) for epoch in range(2)]
    assert [row["learning_rate"] for row in history] == pytest.approx(expected, rel=1e-5)
    best = TrainConfig.from_recipe("fast", **ONE_CYCLE, learning_rate=peak)
    assert tuning.best_config(one_cycle_search) == best


# --------------------------------------------------------------------------- a rerun trial


def test_a_trial_rerun_after_other_work_trains_as_its_first_attempt(split):
    """What a killed search does with its unfinished trial: run it again from its start,
    in a process whose history differs. The tuner seeds each execution before the build
    (``tuners._TrialRecorder``); the batches and draws are those of (seed, epoch)."""
    hypermodel = hypermodel_for(split, epochs=2)
    hp = tuning.fixed_hyperparameters({"learning_rate": 0.05, "step_size": 1})
    x_val, y_val = split.x_val[:32], split.y_val[:32]

    def attempt(values):
        keras.utils.set_random_seed(hypermodel.config.seed)  # as the tuner does
        model = hypermodel.build(values)
        history = hypermodel.fit(
            values, model, split.x_train[:64], split.y_train[:64], validation_data=(x_val, y_val)
        )
        return history.history, model.get_weights()

    first_history, first_weights = attempt(hp)
    attempt(tuning.fixed_hyperparameters({"learning_rate": 0.2, "step_size": 1}))  # other work
    np.random.random(5), keras.random.uniform((3,))
    history, weights = attempt(hp)
    assert history == first_history
    for have, want in zip(weights, first_weights, strict=True):
        np.testing.assert_array_equal(have, want)


def test_a_trial_on_a_streamed_folder_reads_its_files_batch_by_batch(tmp_path):
    from PIL import Image

    from keras_resnet.recipe.data import ImageFiles

    for split_name, count in (("train", 8), ("test", 2)):
        for label, name in enumerate(("a", "b")):
            for i in range(count):
                path = tmp_path / "folder" / split_name / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (20 + i, 24), (200 * label, 40, 90)).save(path)
    config = TrainConfig(
        **{
            **SMALL,
            "synthetic": False,
            "train_subset": None,
            "test_subset": None,
            "batch_size": 4,
            "epochs": 1,
        },
        data_dir=str(tmp_path / "folder"),
        image_size=16,
        memory_budget_mb=0,
        cache_dir=str(tmp_path / "cache"),
    )
    streamed = training.prepare_split(config)
    assert isinstance(streamed.x_train, ImageFiles) and streamed.image_size == 16
    hypermodel = ResNetHyperModel(config, streamed)
    hp = tuning.fixed_hyperparameters({"learning_rate": 0.05, "step_size": 1})
    history = hypermodel.fit(
        hp,
        hypermodel.build(hp),
        streamed.x_train,
        streamed.y_train,
        validation_data=(streamed.x_val, streamed.y_val),
    )
    assert len(history.history["val_accuracy"]) == 1
    assert history.history["val_accuracy"][0] * 4 == pytest.approx(
        round(history.history["val_accuracy"][0] * 4)
    )  # 4 validation images (20% of 16), each right or wrong
