"""tuner/search.py as users run it: flags, a SIGKILL mid-trial and the same command again,
corrupt files, chief and workers on 127.0.0.1, and --retrain-best.

Searches here are real subprocesses on synthetic data: ResNet-20, 160 images (128 to fit,
32 to validate), trials of one or two epochs; the trials' schedules are checked in
test_hypermodel.py.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
from processes import command_env, load_script, sigkill_when, tail

from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.schedules import OneCycle
from keras_resnet.tuning import SearchSpace

REPO_ROOT = Path(__file__).resolve().parents[2]
SEARCH_SCRIPT = REPO_ROOT / "tuner" / "search.py"
TINY_FLAGS = [
    "--synthetic",
    "--model=resnet20",
    "--epochs=1",
    "--step-size=1",
    "--batch-size=64",
    "--train-subset=160",
    "--test-subset=32",
    "--verbose=2",
]
# The chief/worker protocol is KerasTuner's gRPC, the same under every backend; the
# trials themselves are covered per backend by the other tests. One backend suffices.
DISTRIBUTED_BACKEND = "torch"


@pytest.fixture(scope="module")
def cli():
    return load_script(SEARCH_SCRIPT, "search_cli")


def _env(**extra) -> dict:
    env = command_env(**extra)
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        if name not in extra:
            env.pop(name, None)
    return env


def _trials(project: Path) -> dict[str, dict]:
    trials = {}
    for path in sorted(project.glob("trial_*/trial.json")):
        try:
            trials[path.parent.name] = json.loads(path.read_text())
        except json.JSONDecodeError:  # being written (KerasTuner writes in place)
            continue
    return trials


# --------------------------------------------------------------------------- flags


def test_flags_map_onto_the_config_and_the_space(cli):
    config, space, fixed, role, project, args = cli.parse_search(
        [
            "--model=resnet56",
            "--epochs=12",
            "--lr=0.05",
            "--lr-min=0.01",
            "--lr-max=0.5",
            "--lr-step=2",
            "--step-size-min=3",
            "--step-size-step=3",
            "--tune=gamma, model",
            "--fixed=weight_decay=1e-4",
            "--tuner=grid",
            "--directory=searches",
            "--synthetic",
        ]
    )
    assert config == TrainConfig(
        model="resnet56",
        epochs=12,
        learning_rate=0.05,
        synthetic=True,
        output_dir=os.path.join("searches", "resnet56-grid", "best"),
    )
    assert space == SearchSpace(
        learning_rate=(0.01, 0.5),
        learning_rate_step=2.0,
        step_size=(3, 12),
        step_size_step=3,
        extra=("gamma", "model"),
    )
    assert fixed == {"weight_decay": 1e-4}
    assert (role, project, args.tuner) == ("single", "resnet56-grid", "grid")


@pytest.mark.parametrize(
    "flags, reason",
    [
        (["--lr-min=0"], "Received: learning_rate=(0.0, 1.0)"),
        (["--fixed=momentum=0.8"], "Received: --fixed momentum=0.8"),
        (["--fixed=step_size=two"], "Received: --fixed step_size=two"),
        (["--tune=depth"], "Received: extra=('depth',)"),
        (["--epochs=0"], "Received: epochs=0"),
        (["--retrain-epochs=0"], "Received: retrain_epochs=0"),
        (["--tuner=annealing"], "invalid choice: 'annealing'"),
    ],
)
def test_invalid_flags_exit_with_status_2(cli, capsys, flags, reason):
    with pytest.raises(SystemExit) as info:
        cli.main(["--synthetic", *flags])
    assert info.value.code == 2
    assert reason in capsys.readouterr().err.strip().splitlines()[-1]


def test_hyperband_with_max_trials_is_refused_before_any_trial(cli, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        cli.main([*TINY_FLAGS, "--tuner=hyperband", "--max-trials=4", f"--directory={tmp_path}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith("Received: max_trials=4")
    assert not list(tmp_path.glob("*/trial_*"))


def test_a_corrupt_oracle_file_stops_the_search_with_its_name(cli, capsys, tmp_path):
    project = tmp_path / "resnet20-random"
    project.mkdir()
    (project / "oracle.json").write_text("")
    with pytest.raises(SystemExit) as info:
        cli.main([*TINY_FLAGS, f"--directory={tmp_path}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {project / 'oracle.json'} is corrupt or empty" in err
    assert "--overwrite" in err
    assert (project / "oracle.json").read_text() == ""  # nothing was touched


def test_the_fast_recipe_flag_gives_its_config(cli):
    config, space, *_ = cli.parse_search(["--recipe=fast", "--epochs=4", "--synthetic"])
    assert config == TrainConfig.from_recipe(
        "fast",
        epochs=4,
        synthetic=True,
        output_dir=os.path.join("searches", "resnet18-random", "best"),
    )
    assert space.hyperparameters(config.schedule) == ("learning_rate",)


@pytest.mark.parametrize(
    "flag", ["--step-size-min=2", "--step-size-max=3", "--step-size-step=1", "--fixed=step_size=2"]
)
def test_step_size_flags_are_refused_with_the_one_cycle_schedule(cli, capsys, flag):
    with pytest.raises(SystemExit) as info:
        cli.parse_search(["--recipe=fast", "--epochs=4", "--synthetic", flag])
    assert info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "only apply to the StepLR schedule" in message
    assert message.endswith(
        f"Received: {flag.split('=')[0].replace('--fixed', '--fixed step_size')}"
    )


# --------------------------------------------------------------------------- the fast recipe


def test_a_fast_recipe_search_runs_end_to_end(tmp_path):
    """The one-cycle schedule sets its rate per step, so each trial's model is compiled with
    the trial's steps; step_size means nothing there and is not searched."""
    flags = [flag for flag in TINY_FLAGS if not flag.startswith(("--epochs", "--step-size"))]
    command = [sys.executable, str(SEARCH_SCRIPT), "--recipe=fast", *flags, "--epochs=2"]
    result = subprocess.run(
        [*command, "--max-trials=1"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
    project = tmp_path / "searches" / "resnet20-random"
    settings = json.loads((project / "search.json").read_text())
    assert settings["config"]["schedule"] == "one_cycle"
    assert settings["config"]["label_smoothing"] == 0.1
    (trial,) = _trials(project).values()
    assert trial["status"] == "COMPLETED" and math.isfinite(trial["score"])
    assert list(trial["hyperparameters"]["values"]) == ["learning_rate"]
    # 128 training images in batches of 64: 2 steps an epoch, 4 in the trial.
    peak = trial["hyperparameters"]["values"]["learning_rate"]
    schedule = OneCycle(peak, total_steps=4)
    with open(project / "trial_0" / "history.csv", newline="") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert rates == pytest.approx([float(schedule(0)), float(schedule(2))], rel=1e-5)
    with open(project / "summary.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert "step_size" not in row and float(row["learning_rate"]) == pytest.approx(peak)
    assert (project / "search_hyperparameters.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- kill and resume


@pytest.fixture(scope="module")
def resumed_search(tmp_path_factory):
    """A 3-trial random search killed with SIGKILL during trial 2, then run again."""
    work = tmp_path_factory.mktemp("search")
    project = work / "searches" / "resnet20-random"
    command = [sys.executable, str(SEARCH_SCRIPT), *TINY_FLAGS, "--max-trials=3"]
    env = _env()

    def second_trial_running() -> bool:
        trials = _trials(project)
        first_done = trials.get("trial_0", {}).get("status") == "COMPLETED"
        return first_done and trials.get("trial_1", {}).get("status") == "RUNNING"

    returncode = sigkill_when(
        command,
        second_trial_running,
        cwd=work,
        env=env,
        log=work / "first.log",
        waiting_for="second trial",
    )
    before = _trials(project)
    second = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if second.returncode != 0:
        pytest.fail(f"the resumed search failed:\n{second.stdout[-2000:]}{second.stderr[-3000:]}")
    return project, returncode, before, second, _trials(project), command, work


def test_a_killed_search_keeps_finished_trials_and_reruns_the_unfinished(resumed_search):
    project, returncode, before, second, after, *_ = resumed_search
    assert returncode == -signal.SIGKILL
    assert before["trial_1"]["status"] == "RUNNING"
    assert "Reloading Tuner" in second.stdout
    # The finished trial is kept as it was (not trained again) ...
    assert after["trial_0"] == before["trial_0"]
    # ... the unfinished one ran again with the same values, and the search reached 3.
    assert after["trial_1"]["hyperparameters"] == before["trial_1"]["hyperparameters"]
    assert sorted(after) == ["trial_0", "trial_1", "trial_2"]
    assert {trial["status"] for trial in after.values()} == {"COMPLETED"}
    for name in after:
        rows = list(csv.DictReader(open(project / name / "history.csv")))
        assert [row["epoch"] for row in rows] == ["0"], name


def test_the_resumed_search_writes_the_summary_and_plots(resumed_search):
    project, *_ = resumed_search
    with open(project / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["trial_id"] for row in rows) == ["0", "1", "2"]
    assert [float(row["best_val_accuracy"]) for row in rows] == sorted(
        (float(row["best_val_accuracy"]) for row in rows), reverse=True
    )
    for name in ("search_hyperparameters.png", "search_best_curves.png"):
        assert (project / name).read_bytes()[:4] == b"\x89PNG"


def test_retrain_best_trains_the_winner_as_a_run(resumed_search):
    project, *_, command, work = resumed_search
    result = subprocess.run(
        [*command, "--retrain-best"],
        cwd=work,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The search was complete: no trial ran again, the winner was trained once.
    assert sorted(_trials(project)) == ["trial_0", "trial_1", "trial_2"]
    with open(project / "summary.csv", newline="") as f:
        best = next(csv.DictReader(f))
    (run_dir,) = (project / "best").iterdir()
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["learning_rate"] == pytest.approx(float(best["learning_rate"]))
    assert config["step_size"] == int(best["step_size"])
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == 32
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in result.stdout


# --------------------------------------------------------------------------- chief and workers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    keras.backend.backend() != DISTRIBUTED_BACKEND,
    reason=f"runs once, under KERAS_BACKEND={DISTRIBUTED_BACKEND} (see DISTRIBUTED_BACKEND)",
)
def test_a_chief_and_two_workers_finish_every_trial_once(tmp_path):
    port = str(_free_port())
    command = [sys.executable, str(SEARCH_SCRIPT), *TINY_FLAGS, "--max-trials=4"]
    processes = {}
    logs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = _env(
                KERASTUNER_TUNER_ID=tuner_id,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=port,
            )
            logs[tuner_id] = tmp_path / f"{tuner_id}.log"
            with open(logs[tuner_id], "w") as log:
                processes[tuner_id] = subprocess.Popen(
                    command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + 540
        for tuner_id, process in processes.items():
            try:
                process.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{tuner_id} did not exit within 540 s:\n{tail(logs[tuner_id])}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for tuner_id, process in processes.items():
        assert process.returncode == 0, f"{tuner_id}:\n{tail(logs[tuner_id])}"
    project = tmp_path / "searches" / "resnet20-random"
    trials = _trials(project)
    assert sorted(trials) == ["trial_0", "trial_1", "trial_2", "trial_3"]
    assert {trial["status"] for trial in trials.values()} == {"COMPLETED"}
    # Each trial trained once: one history row (one epoch), no second execution.
    for name in trials:
        assert len(list(csv.DictReader(open(project / name / "history.csv")))) == 1
        assert not list((project / name).glob("history-*.csv"))
    # Each worker left when the chief had nothing more; the chief wrote the summary.
    for worker in ("tuner0", "tuner1"):
        assert f"worker {worker}: no trials left" in logs[worker].read_text()
    with open(project / "summary.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
