"""benchmarks/time_to_accuracy.py: the table and plot of accuracy against training time."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import time_to_accuracy  # noqa: E402


def _run(path, seconds, val_accuracy, metrics=None):
    """A run folder whose history has these epoch times and validation accuracies."""
    path.mkdir()
    with (path / "history.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "epoch_seconds", "val_accuracy"])
        writer.writerows(
            [epoch, s, acc]
            for epoch, (s, acc) in enumerate(zip(seconds, val_accuracy, strict=True))
        )
    if metrics is not None:
        (path / "test_metrics.json").write_text(json.dumps({"confusion_matrix": [], **metrics}))
    return path


def test_summary_gives_the_first_time_each_threshold_is_reached(tmp_path):
    run = _run(
        tmp_path / "fast",
        [120, 120, 120, 120],
        [0.70, 0.86, 0.84, 0.91],
        {"test_accuracy": 0.905, "single_view_test_accuracy": 0.9},
    )
    summary = time_to_accuracy.summarize_run(run, thresholds=(0.8, 0.85, 0.9, 0.95))
    assert summary["minutes_to"] == {0.8: 4.0, 0.85: 4.0, 0.9: 8.0, 0.95: None}
    assert (summary["epochs"], summary["minutes"]) == (4, 8.0)
    assert (summary["best_val_accuracy"], summary["best_epoch"]) == (0.91, 4)
    assert (summary["test_accuracy"], summary["single_view_test_accuracy"]) == (0.905, 0.9)
    row = time_to_accuracy.format_table({"fast": summary}).splitlines()[2]
    assert row.startswith("| fast | 4 | 8.0 min | 91.00% (4) | 90.50% | 90.00% | 4.0 min |")


def test_table_has_one_row_per_run(tmp_path):
    unfinished = _run(tmp_path / "notes", [300, 300], [0.5, 0.81])
    fast = _run(tmp_path / "fast", [60, 60], [0.8, 0.9], {"test_accuracy": 0.9})
    table = time_to_accuracy.main([f"notes={unfinished}", f"fast={fast}"]).splitlines()
    assert len(table) == 4
    assert table[2] == (
        "| notes | 2 | 10.0 min | 81.00% (2) | – | – | 10.0 min | not reached | not reached |"
    )
    assert (
        table[3]
        == "| fast | 2 | 2.0 min | 90.00% (2) | 90.00% | same | 1.0 min | 2.0 min | 2.0 min |"
    )


def test_plot_is_written(tmp_path):
    fast = _run(tmp_path / "fast", [60, 60], [0.8, 0.9], {"test_accuracy": 0.9})
    time_to_accuracy.main([f"fast={fast}", "--plot", str(tmp_path / "tta.png")])
    assert (tmp_path / "tta.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_draws_each_run_from_its_history_and_test_metrics(tmp_path, monkeypatch):
    drawn = {}

    def plot_time_to_accuracy(runs, path):
        drawn.update(runs)
        return path

    monkeypatch.setattr(time_to_accuracy.plots, "plot_time_to_accuracy", plot_time_to_accuracy)
    unfinished = _run(tmp_path / "step", [300, 300], [0.5, 0.81])
    fast = _run(tmp_path / "fast", [60, 60], [0.8, 0.9], {"test_accuracy": 0.9})
    time_to_accuracy.main([f"step={unfinished}", f"fast={fast}", "--plot", "tta.png"])
    assert drawn == {
        "step": ([5.0, 10.0], [0.5, 0.81], None),
        "fast": ([1.0, 2.0], [0.8, 0.9], 0.9),
    }


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("runs/x", "each run must be LABEL=RUN_DIR. Received: 'runs/x'"),
        ("a=missing", "run folder not found: missing"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(tmp_path, monkeypatch, capsys, argument, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        time_to_accuracy.main([argument])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("metrics", "Test metrics are not valid JSON: "),
        ("history", "Training history not found: "),
        ("epoch_seconds", "has no 'epoch_seconds' values to plot against time."),
    ],
)
def test_a_damaged_run_folder_exits_2_naming_the_file(tmp_path, capsys, damage, message):
    run = _run(tmp_path / "fast", [60, 60], [0.8, 0.9], {"test_accuracy": 0.9})
    if damage == "metrics":
        (run / "test_metrics.json").write_text('{"test_accuracy": 0.9')  # cut short
    elif damage == "history":
        (run / "history.csv").unlink()
    else:
        (run / "history.csv").write_text("epoch,val_accuracy\n0,0.8\n")
    with pytest.raises(SystemExit) as exit_info:
        time_to_accuracy.main([f"fast={run}"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_each_run_s_machine_is_listed_under_the_table(tmp_path, capsys):
    from keras_resnet import hardware

    recorded = _run(tmp_path / "new", [60], [0.5])
    machine = hardware.machine_record(hardware.CpuInfo("Test CPU", frozenset({"avx2", "fpu"})))
    (recorded / "config.json").write_text(json.dumps({"machine": machine}))
    older = _run(tmp_path / "old", [60], [0.5])
    summary = time_to_accuracy.summarize_run(recorded)
    assert summary["machine"] == machine
    time_to_accuracy.main([f"new={recorded}", f"old={older}"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [
        "machines:",
        f"- new: Test CPU, {machine['cpu_count']} CPUs, flags: avx2",
        "- old: not recorded",
    ]
