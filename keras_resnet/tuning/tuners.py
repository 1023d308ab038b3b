"""The tuners: KerasTuner's, recording each trial's history; the project check; roles.

A search project folder holds KerasTuner's own files plus:

    search.json           what the search computes (config, space, tuner); a rerun must match
    trial_*/history.csv   one row per epoch of each trial (history-1.csv... for more executions)
    summary.csv           one row per trial, best first (``tuning.report``)
    search_*.png          validation accuracy against each hyperparameter; best trials' curves

Trials are selected on validation accuracy (the best epoch of each trial); the test set is
never passed to a search. KerasTuner's JSON writes are made atomic when a tuner is made
(``_compat.make_kerastuner_writes_atomic``), so a killed search can always be resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import keras

from keras_resnet import _compat, atomic
from keras_resnet.recipe.callbacks import HistoryWriter
from keras_resnet.tuning.hypermodel import (
    OBJECTIVE,
    ResNetHyperModel,
    fixed_hyperparameters,
    kt,
)

TUNERS = ("random", "bayesian", "hyperband", "grid")
SEARCH_FILE = "search.json"
SUMMARY_FILE = "summary.csv"


class SearchFolderError(RuntimeError):
    """A search project folder that cannot be resumed (corrupt files, another search)."""


class _TrialRecorder(_compat.ExecutionHook):
    """Seeds each execution of a trial and writes its per-epoch history in the trial folder.

    Execution ``k`` of every trial is seeded with ``config.seed + k``, so trials differ
    only in their hyperparameters (common random numbers) and a rerun trial repeats itself.
    A reloaded search also reruns a trial a kill left RUNNING between KerasTuner's two
    writes (``_compat.requeue_orphaned_trials``).
    """

    def reload(self):
        super().reload()
        if not self._is_worker():  # the chief's (or the lone tuner's) oracle
            _compat.requeue_orphaned_trials(self.oracle)

    def on_execution_begin(self, trial, execution, fit_kwargs):
        keras.utils.set_random_seed(self.hypermodel.config.seed + execution)
        path = Path(self.get_trial_dir(trial.trial_id)) / history_file_name(execution)
        fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", []), HistoryWriter(path)]


def history_file_name(execution: int) -> str:
    """``history.csv`` for a trial's first execution, ``history-{k}.csv`` for the others.

    Example:
        >>> history_file_name(0), history_file_name(2)
        ('history.csv', 'history-2.csv')
    """
    return "history.csv" if execution == 0 else f"history-{execution}.csv"


class RandomSearch(_TrialRecorder, kt.RandomSearch):
    """``keras_tuner.RandomSearch`` that records each trial's history."""


class BayesianOptimization(_TrialRecorder, kt.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` that records each trial's history."""


class Hyperband(_TrialRecorder, kt.Hyperband):
    """``keras_tuner.Hyperband`` that records each trial's history."""


class GridSearch(_TrialRecorder, kt.GridSearch):
    """``keras_tuner.GridSearch`` that records each trial's history."""


_TUNER_CLASSES = {
    "random": RandomSearch,
    "bayesian": BayesianOptimization,
    "hyperband": Hyperband,
    "grid": GridSearch,
}


def make_tuner(
    kind: str,
    hypermodel: ResNetHyperModel,
    *,
    directory: str | os.PathLike,
    project_name: str,
    max_trials: int | None = None,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
    fixed: Mapping[str, object] | None = None,
    overwrite: bool = False,
):
    """A KerasTuner tuner of ``kind`` over ``hypermodel``, maximizing validation accuracy.

    Hyperband takes no ``max_trials``: its trials follow from the epochs
    (``hypermodel.config.epochs`` as ``max_epochs``) and ``hyperband_factor``. Unless
    ``overwrite``, an existing project is checked (``check_project``) and resumed. A trial
    that diverges is recorded as FAILED with its reason (``report.summarize``'s ``failure``)
    and the search goes on, however many fail.

    Example:
        >>> tuner = make_tuner("random", hypermodel, directory="searches",  # doctest: +SKIP
        ...                    project_name="lr", max_trials=8)  # doctest: +SKIP
    """
    if kind not in _TUNER_CLASSES:
        raise ValueError(f"`kind` must be one of {', '.join(TUNERS)}. Received: kind={kind!r}")
    if kind == "hyperband" and max_trials is not None:
        raise ValueError(
            "Hyperband sets its number of trials from the epochs and the factor; leave "
            f"`max_trials` unset. Received: max_trials={max_trials}"
        )
    if max_trials is not None and max_trials < 1:
        raise ValueError(f"`max_trials` must be at least 1. Received: max_trials={max_trials}")
    if executions_per_trial < 1:
        raise ValueError(
            "`executions_per_trial` must be at least 1. "
            f"Received: executions_per_trial={executions_per_trial}"
        )
    _compat.check_execution_hook()
    _compat.make_kerastuner_writes_atomic()
    # A fixed value the recipe refuses (say step_size=0) fails here, not in every trial.
    hypermodel.trial_config(fixed_hyperparameters(fixed or {}))
    project_dir = Path(directory) / project_name
    settings = {
        "tuner": kind,
        "config": hypermodel.config.to_dict(),
        "fingerprint": hypermodel.config.fingerprint(),
        "space": hypermodel.space.to_dict(),
        "fixed": dict(fixed or {}),
        "executions_per_trial": executions_per_trial,
        "hyperband_factor": hyperband_factor if kind == "hyperband" else None,
    }
    if not overwrite:
        check_project(project_dir, settings)
    options = {
        "hypermodel": hypermodel,
        "objective": kt.Objective(OBJECTIVE, direction="max"),
        "seed": hypermodel.config.seed,
        "hyperparameters": fixed_hyperparameters(fixed or {}),
        "tune_new_entries": True,
        "executions_per_trial": executions_per_trial,
        "directory": os.fspath(directory),
        "project_name": project_name,
        "overwrite": overwrite,
        # A failed trial (one that diverged) is an answer about its hyperparameters, not a
        # broken search: KerasTuner's default stops the search after 3 in a row, which a
        # range of learning rates reaching too high can give. The trials are bounded anyway.
        "max_consecutive_failed_trials": None,
    }
    if kind == "hyperband":
        options.update(max_epochs=hypermodel.config.epochs, factor=hyperband_factor)
    elif kind == "grid":
        options.update(max_trials=max_trials)  # None: the whole grid
    else:
        options.update(max_trials=10 if max_trials is None else max_trials)
    tuner = _TUNER_CLASSES[kind](**options)
    if not (project_dir / SEARCH_FILE).exists():
        atomic.write_json(project_dir / SEARCH_FILE, settings)
    return tuner


def _search_fingerprint(settings: Mapping) -> str:
    """What must match for a project to be resumed: all settings but run-only fields."""
    kept = {key: value for key, value in settings.items() if key != "config"}
    text = json.dumps(kept, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def check_project(project_dir: str | os.PathLike, settings: Mapping | None = None) -> None:
    """Raise ``SearchFolderError`` if a project cannot be resumed; do nothing if it is new.

    Every JSON file KerasTuner reloads must parse (a kill while KerasTuner writes one can
    leave it empty or cut short), and the stored search must be the one asked for.

    Example:
        >>> check_project("searches/lr")
    """
    project_dir = Path(project_dir)
    if not project_dir.exists():
        return
    files = [project_dir / SEARCH_FILE, project_dir / "oracle.json"]
    files += sorted(project_dir.glob("tuner*.json"))
    files += sorted(project_dir.glob("trial_*/trial.json"))
    stored = {}
    for path in files:
        if not path.exists():
            continue
        try:
            stored[path.name] = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SearchFolderError(
                f"{path} is corrupt or empty ({error.__class__.__name__}: {error}), so the "
                "search in it cannot be resumed. Start it again with --overwrite (which "
                "discards its trials), or use another --project-name."
            ) from None
    if settings is None or SEARCH_FILE not in stored:
        return
    previous = stored[SEARCH_FILE]
    if _search_fingerprint(previous) != _search_fingerprint(settings) or previous.get(
        "fingerprint"
    ) != settings.get("fingerprint"):
        changed = sorted(
            key
            for key in set(previous) | set(settings)
            if key != "config" and previous.get(key) != settings.get(key)
        )
        raise SearchFolderError(
            f"{project_dir} holds another search (it differs in: {', '.join(changed)}). "
            "Use another --project-name, or --overwrite to discard it."
        )


DISTRIBUTED_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def search_role(environ: Mapping[str, str] | None = None) -> str:
    """ "single", "chief" or "worker", from KerasTuner's distribution variables.

    KerasTuner runs distributed when ``KERASTUNER_ORACLE_IP`` is set; the process whose
    ``KERASTUNER_TUNER_ID`` contains "chief" serves the trials, the others train them.
    A partial setting is an error here rather than a ``KeyError`` deep in KerasTuner.

    Example:
        >>> search_role({"KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1",
        ...              "KERASTUNER_ORACLE_PORT": "8000"})
        'worker'
    """
    environ = os.environ if environ is None else environ
    present = [name for name in DISTRIBUTED_VARIABLES if environ.get(name)]
    if not {"KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"} & set(present):
        return "single"
    missing = [name for name in DISTRIBUTED_VARIABLES if name not in present]
    if missing:
        raise ValueError(
            f"A distributed search needs all of {', '.join(DISTRIBUTED_VARIABLES)}; "
            f"{', '.join(missing)} is not set. Set it, or unset the others to search alone. "
            f"Received: {', '.join(f'{name}={environ[name]}' for name in present)}"
        )
    port = environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            "`KERASTUNER_ORACLE_PORT` must be a port number (1-65535). "
            f"Received: KERASTUNER_ORACLE_PORT={port}"
        )
    return "chief" if "chief" in environ["KERASTUNER_TUNER_ID"] else "worker"
