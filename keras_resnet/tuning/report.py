"""A search's results: one row per trial, its table, its CSV, the best config."""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from pathlib import Path

from keras_resnet import atomic
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.run_folder import history_columns, read_history
from keras_resnet.tuning.tuners import SearchFolderError, history_file_name


def summarize(tuner) -> list[dict]:
    """One row per trial, best validation accuracy first (unfinished trials last).

    Each row has the trial id and status, the hyperparameters' values, the best
    validation accuracy (averaged over executions), the best epoch (1-based), the
    epochs and seconds the trial trained (from its ``history.csv``) and, only for a
    FAILED trial, why (``failure``: "Training diverged: ..." for one stopped at a NaN loss).

    Example:
        >>> summarize(tuner)[0]["best_val_accuracy"]  # doctest: +SKIP
        0.71
    """
    rows = []
    for trial_id, trial in tuner.oracle.trials.items():
        history = read_history(
            Path(tuner.get_trial_dir(trial_id)) / history_file_name(0), missing_ok=True
        )
        rows.append(
            {
                "trial_id": trial_id,
                "status": trial.status,
                **trial.hyperparameters.values,
                "best_val_accuracy": math.nan if trial.score is None else float(trial.score),
                "best_epoch": trial.best_step + 1 if trial.score is not None else "",
                "epochs": len(history),
                "seconds": round(sum(row.get("epoch_seconds", 0.0) for row in history), 1),
            }
        )
        if trial.status == "FAILED":
            rows[-1]["failure"] = failure_reason(trial.message)
    return sorted(rows, key=_rank)


def _rank(row: dict) -> tuple:
    """Best validation accuracy first; ties go to the earlier trial, unscored trials last.

    The one order for the summary and for ``best_config``: KerasTuner's
    ``get_best_trials`` breaks ties by the order its trials were loaded, which after a
    resume need not be the trials' order, so --retrain-best could train another
    trial than the summary's first row.
    """
    score = row["best_val_accuracy"]
    return (math.isnan(score), -(0.0 if math.isnan(score) else score), row["trial_id"])


def failure_reason(message: str | None) -> str:
    """The error of a failed trial from KerasTuner's ``trial.message`` (a traceback): its
    last line, without the exception's class.

    Example:
        >>> failure_reason("keras_tuner.errors.FailedTrialError: Training diverged: loss nan")
        'Training diverged: loss nan'
    """
    lines = [line for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    head, sep, rest = lines[-1].partition(": ")
    return rest.strip() if sep and " " not in head else lines[-1].strip()


def trial_histories(tuner) -> dict[str, dict]:
    """Each trial's first-execution history columns (``run_folder.history_columns``), by id.

    Example:
        >>> trial_histories(tuner)["0000"]["val_accuracy"]  # doctest: +SKIP
        array([0.41, 0.55])
    """
    histories = {}
    for trial_id in tuner.oracle.trials:
        path = Path(tuner.get_trial_dir(trial_id)) / history_file_name(0)
        if path.exists():
            histories[trial_id] = history_columns(read_history(path))
    return histories


def write_summary(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write the summary rows as CSV, atomically (columns in first-seen order).

    Example:
        >>> write_summary(summarize(tuner), "searches/lr/summary.csv")  # doctest: +SKIP
    """
    return atomic.write_csv(path, rows)


def format_summary(rows: list[dict], columns: Collection[str] | None = None) -> str:
    """The summary as an aligned text table for the terminal.

    Example:
        >>> print(format_summary(summarize(tuner)))  # doctest: +SKIP
    """
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    table = [columns, *[[cell(row.get(column, "")) for column in columns] for row in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.rjust(width) for text, width in zip(line, widths, strict=True))
        for line in table
    )


def best_config(tuner) -> TrainConfig:
    """The base config with the best trial's hyperparameters: ``summarize``'s first
    completed row, so the winner is the summary's.

    Example:
        >>> best_config(tuner).learning_rate  # doctest: +SKIP
        0.13
    """
    scored = [
        row
        for row in summarize(tuner)
        if row["status"] == "COMPLETED" and not math.isnan(row["best_val_accuracy"])
    ]
    if not scored:
        raise SearchFolderError("The search has no finished trial to take the best from.")
    best = tuner.oracle.trials[scored[0]["trial_id"]]
    return tuner.hypermodel.trial_config(best.hyperparameters)
