"""Accuracy reached per wall-clock time by finished (or running) training runs.

    python benchmarks/time_to_accuracy.py --plot docs/time_to_accuracy.png \\
        step=runs/resnet20-seed42-32afc851 fast=runs/resnet20-seed42-2a8f7320

Each ``LABEL=RUN_DIR`` is a run folder of ``experiments/cifar10.py``. The command prints a
markdown table (epochs, training time, best validation accuracy, test accuracy, and the
training time at which validation accuracy first reached each ``--thresholds`` value) and,
with ``--plot``, draws validation accuracy against training time
(``keras_resnet.plots.plot_time_to_accuracy``). Training time is the sum of the run's
``epoch_seconds`` (each epoch's training and validation pass; loading the data and the
final test evaluation are not included). Under the table, each run's machine (the CPU
model and flags its ``config.json`` records) is listed, since the times depend on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_resnet import hardware, plots
from keras_resnet.recipe import run_folder

THRESHOLDS = (0.8, 0.85, 0.9)


def summarize_run(run_dir: str | Path, thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """The time-to-accuracy figures of one run folder, and its curve: ``elapsed_minutes``
    (cumulative training time) and ``val_accuracy`` after each epoch.

    Example:
        >>> round(summarize_run("runs/resnet20-seed42-2a8f7320")["minutes_to"][0.8], 1)
        40.8
    """
    run_dir = Path(run_dir)
    minutes, accuracy = run_folder.time_and_accuracy(run_dir)
    best = int(np.nanargmax(accuracy))
    reached = {
        threshold: (
            float(minutes[np.argmax(accuracy >= threshold)])
            if (accuracy >= threshold).any()
            else None
        )
        for threshold in thresholds
    }
    metrics_path = run_dir / run_folder.METRICS_FILE
    metrics = run_folder.read_test_metrics(metrics_path) if metrics_path.exists() else {}
    return {
        "machine": recorded_machine(run_dir),
        "run_dir": str(run_dir),
        "elapsed_minutes": minutes.tolist(),
        "val_accuracy": accuracy.tolist(),
        "epochs": len(accuracy),
        "minutes": float(minutes[-1]),
        "best_val_accuracy": float(accuracy[best]),
        "best_epoch": best + 1,
        "test_accuracy": metrics.get("test_accuracy"),
        "single_view_test_accuracy": metrics.get("single_view_test_accuracy"),
        "minutes_to": reached,
    }


def recorded_machine(run_dir: str | Path) -> dict | None:
    """The machine a run's ``config.json`` records (``hardware.machine_record``), or None
    (a run from before the record, or no readable ``config.json``).

    Example:
        >>> recorded_machine("runs/b")["cpu_model"]  # doctest: +SKIP
        'AMD EPYC'
    """
    try:
        record = json.loads((Path(run_dir) / run_folder.CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record.get("machine") if isinstance(record, dict) else None


def format_machines(summaries: dict[str, dict]) -> str:
    """One line per run: its label and machine (``hardware.describe_machine``).

    Example:
        >>> format_machines({"fast": {"machine": None}})
        'machines:\n- fast: not recorded'
    """
    lines = ["machines:"]
    for label, run in summaries.items():
        machine = run.get("machine")
        text = "not recorded" if machine is None else hardware.describe_machine(machine)
        lines.append(f"- {label}: {text}")
    return "\n".join(lines)


def format_table(summaries: dict[str, dict], thresholds: Sequence[float] = THRESHOLDS) -> str:
    """The markdown table of ``summarize_run`` results, one row per label.

    Example:
        >>> print(format_table({"fast": summarize_run("runs/b")}).splitlines()[0])
        | recipe | epochs | training time | best validation | test | ...
    """

    def percent(value):
        return "–" if value is None else f"{value:.2%}"

    header = (
        "| recipe | epochs | training time | best validation (epoch) | test "
        "| test without flip averaging | "
        + " | ".join(f"validation ≥ {threshold:.0%} after" for threshold in thresholds)
        + " |"
    )
    lines = [header, "|---" * (6 + len(thresholds)) + "|"]
    for label, run in summaries.items():
        reached = [
            "not reached" if run["minutes_to"][t] is None else f"{run['minutes_to'][t]:.1f} min"
            for t in thresholds
        ]
        single_view = run["single_view_test_accuracy"]
        if run["test_accuracy"] is None:  # not finished: no test evaluation yet
            single_view_text = "–"
        elif single_view is None:  # evaluated without flip averaging
            single_view_text = "same"
        else:
            single_view_text = percent(single_view)
        lines.append(
            f"| {label} | {run['epochs']} | {run['minutes']:.1f} min "
            f"| {percent(run['best_val_accuracy'])} ({run['best_epoch']}) "
            f"| {percent(run['test_accuracy'])} "
            f"| {single_view_text} | " + " | ".join(reached) + " |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's arguments; ``runs`` becomes ``{label: Path}``.

    Example:
        >>> parse_args(["fast=runs/b"]).runs
        {'fast': PosixPath('runs/b')}
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    parser.add_argument("--plot", type=Path, help="also draw the curves into this image file")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    args = parser.parse_args(argv)
    runs = {}
    for item in args.runs:
        label, separator, folder = item.partition("=")
        if not separator or not label or not folder:
            parser.error(f"each run must be LABEL=RUN_DIR. Received: {item!r}")
        if not Path(folder).is_dir():
            parser.error(f"run folder not found: {folder}")
        runs[label] = Path(folder)
    args.runs = runs
    return args


def main(argv: Sequence[str] | None = None) -> str:
    """Print (and return) the table; draw the plot when asked.

    Example:
        >>> table = main(["step=runs/a", "fast=runs/b", "--plot", "docs/tta.png"])
    """
    args = parse_args(argv)
    try:
        summaries = {
            label: summarize_run(folder, args.thresholds) for label, folder in args.runs.items()
        }
    except (OSError, ValueError) as exc:  # a run folder without history, a corrupt file
        print(f"time_to_accuracy.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    table = format_table(summaries, args.thresholds)
    print(table)
    print(format_machines(summaries))
    if args.plot:
        curves = {
            label: (run["elapsed_minutes"], run["val_accuracy"], run["test_accuracy"])
            for label, run in summaries.items()
        }
        print(plots.plot_time_to_accuracy(curves, args.plot))
    return table


if __name__ == "__main__":
    main()
