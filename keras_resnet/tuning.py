"""KerasTuner search over the training recipe: the HyperModel, the tuners, their summary.

The search space is the initial learning rate (log scale) and the StepLR step size;
gamma, weight decay, the shortcut type and the depth can be added. Everything else is
the ``TrainConfig`` the training command uses, and every piece of a trial (data split,
model, optimizer, schedule) comes from ``keras_resnet.training``: a trial is the same
``model.fit`` as a training run with a few config fields changed.

Trials are selected on validation accuracy (the best epoch of each trial); the test set is
never passed to a search. Importing this module makes KerasTuner's JSON writes atomic
(see ``_save_json_atomically``), so a killed search can always be resumed.

A search project folder holds KerasTuner's own files plus:

    search.json           what the search computes (config, space, tuner); a rerun must match
    trial_*/history.csv   one row per epoch of each trial (history-1.csv... for more executions)
    summary.csv           one row per trial, best first
    search_*.png          validation accuracy against each hyperparameter; best trials' curves
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Collection, Mapping
from pathlib import Path

import keras
import keras_tuner as kt

from keras_resnet import plots, training
from keras_resnet.config import TrainConfig
from keras_resnet.specs import MODEL_SPECS

OBJECTIVE = training.MONITOR  # "val_accuracy"
TUNERS = ("random", "bayesian", "hyperband", "grid")
# Hyperparameters searched by default, then those a search may add (SearchSpace.extra).
DEFAULT_HYPERPARAMETERS = ("learning_rate", "step_size")
OPTIONAL_HYPERPARAMETERS = ("gamma", "weight_decay", "shortcut", "model")
# The value type of each hyperparameter (for hp.Fixed overrides given as text).
HYPERPARAMETER_TYPES = {
    "learning_rate": float,
    "step_size": int,
    "gamma": float,
    "weight_decay": float,
    "shortcut": str,
    "model": str,
}
SEARCH_FILE = "search.json"
SUMMARY_FILE = "summary.csv"
# The shortcuts a search may choose between (option C only adds parameters to option B).
SEARCHED_SHORTCUTS = ("zero_pad", "projection")
GAMMA_RANGE = (0.05, 0.5)  # log scale
WEIGHT_DECAY_RANGE = (1e-5, 1e-3)  # log scale


def _save_json_atomically(path, obj) -> str:
    """KerasTuner's ``utils.save_json``, written beside the file and renamed over it.

    KerasTuner rewrites ``oracle.json``, ``trial.json`` and ``tuner0.json`` in place, so
    a kill during a write (which the search's SIGKILL test hits) leaves an empty file
    and the search cannot resume. Remote paths (``gs://...``) keep KerasTuner's write.
    """
    path = os.fspath(path)
    if "://" in path:
        return _kerastuner_save_json(path, obj)
    text = json.dumps(obj)
    tmp = f"{path}.{os.getpid()}.partial"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return text


# Every JSON file KerasTuner writes goes through this one function (KerasTuner 1.4); if a
# later version moves it, searches still run and check_project still names a bad file.
_kerastuner_utils = getattr(getattr(kt, "src", None), "utils", None)
_kerastuner_save_json = getattr(_kerastuner_utils, "save_json", None)
if _kerastuner_save_json is not None and _kerastuner_save_json is not _save_json_atomically:
    _kerastuner_utils.save_json = _save_json_atomically


class SearchFolderError(RuntimeError):
    """A search project folder that cannot be resumed (corrupt files, another search)."""


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The ranges searched; the defaults suit a run of ``epochs`` epochs.

    Attributes:
        learning_rate: (low, high) of the initial learning rate, sampled on a log scale.
        learning_rate_step: multiplicative grid step of the learning rate (e.g. ``10**0.5``);
            None samples it continuously (a grid search then takes 10 log-spaced values).
        step_size: (low, high) of the StepLR step size in epochs; None gives
            ``(max(1, epochs // 4), epochs)``: from four drops to none in the run.
        step_size_step: spacing of the step sizes tried; None gives ``max(1, epochs // 4)``.
        extra: optional hyperparameters to search as well (``OPTIONAL_HYPERPARAMETERS``):
            gamma in [0.05, 0.5] (log), weight decay in [1e-5, 1e-3] (log), the shortcut
            ("zero_pad" or "projection"), and the model among those of the same family
            (block type and stem) as the config's.

    Example:
        >>> SearchSpace().resolved_step_size(epochs=100)
        (25, 100, 25)
    """

    learning_rate: tuple[float, float] = (1e-3, 1.0)
    learning_rate_step: float | None = None
    step_size: tuple[int, int] | None = None
    step_size_step: int | None = None
    extra: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "learning_rate", tuple(self.learning_rate))
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", tuple(self.step_size))
        low, high = self.learning_rate
        if not (0 < low < high and math.isfinite(high)):
            raise ValueError(
                "`learning_rate` must be a range (low, high) with 0 < low < high. "
                f"Received: learning_rate={self.learning_rate!r}"
            )
        if self.learning_rate_step is not None and not self.learning_rate_step > 1:
            raise ValueError(
                "`learning_rate_step` is a factor between grid values and must be above 1. "
                f"Received: learning_rate_step={self.learning_rate_step!r}"
            )
        if self.step_size is not None:
            low, high = self.step_size
            if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
                raise ValueError(
                    "`step_size` must be a range (low, high) of integers with 1 <= low <= "
                    f"high. Received: step_size={self.step_size!r}"
                )
        if self.step_size_step is not None and not (
            isinstance(self.step_size_step, int) and self.step_size_step >= 1
        ):
            raise ValueError(
                "`step_size_step` must be an integer of at least 1. "
                f"Received: step_size_step={self.step_size_step!r}"
            )
        unknown = [name for name in self.extra if name not in OPTIONAL_HYPERPARAMETERS]
        if unknown:
            raise ValueError(
                f"`extra` may hold {', '.join(OPTIONAL_HYPERPARAMETERS)}. "
                f"Received: extra={self.extra!r}"
            )

    def resolved_step_size(self, epochs: int) -> tuple[int, int, int]:
        """(low, high, spacing) of the step sizes for a run of ``epochs`` epochs.

        Example:
            >>> SearchSpace(step_size=(2, 8)).resolved_step_size(epochs=8)
            (2, 8, 2)
        """
        spacing = self.step_size_step or max(1, epochs // 4)
        low, high = self.step_size or (max(1, epochs // 4), epochs)
        return low, high, spacing

    def hyperparameters(self) -> tuple[str, ...]:
        """The names searched: learning rate, step size, then ``extra``.

        Example:
            >>> SearchSpace(extra=("gamma",)).hyperparameters()
            ('learning_rate', 'step_size', 'gamma')
        """
        return (*DEFAULT_HYPERPARAMETERS, *self.extra)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict.

        Example:
            >>> SearchSpace().to_dict()["learning_rate"]
            [0.001, 1.0]
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))


def same_family(model: str) -> tuple[str, ...]:
    """The registered models with the same block type and stem as ``model``.

    Example:
        >>> same_family("resnet20")
        ('resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110')
    """
    spec = MODEL_SPECS[model]
    return tuple(
        name
        for name, other in MODEL_SPECS.items()
        if (other.block, other.stem) == (spec.block, spec.stem)
    )


class ResNetHyperModel(kt.HyperModel):
    """The training recipe with some of its fields chosen by KerasTuner.

    ``build`` makes the model of ``training.build_training_model`` and compiles it with
    ``training.compile_model``; ``fit`` adds the StepLR schedule and early stopping of
    the recipe and calls ``model.fit`` with the config's batch size and epochs. Pass the
    training and validation arrays of a ``training.Split`` to ``tuner.search``.

    Args:
        config: the recipe; its learning rate and step size are the defaults of the
            searched values.
        split: gives the normalization statistics and the classes (the arrays go to
            ``search``).
        space: the ranges searched.

    Example:
        >>> hypermodel = ResNetHyperModel(TrainConfig(model="resnet20", epochs=8), split)
        >>> hypermodel.trial_config(kt.HyperParameters()).step_size
        8
    """

    def __init__(
        self, config: TrainConfig, split: training.Split, space: SearchSpace | None = None
    ):
        super().__init__(name=f"cifar10_{config.model}")
        self.config = config
        self.space = space or SearchSpace()
        self.mean, self.std = split.mean, split.std
        self.num_classes = split.num_classes
        self.image_size = split.x_train.shape[2]  # square images: a side in either layout

    def trial_config(self, hp: kt.HyperParameters) -> TrainConfig:
        """The config of a trial: the base config with the hyperparameters' values.

        Registers the hyperparameters in ``hp`` on first use (that is how KerasTuner
        learns the space); a value fixed in ``hp`` (``hp.Fixed``) is taken as is.

        Example:
            >>> hp = kt.HyperParameters()
            >>> hp.Fixed("learning_rate", 0.05)
            >>> hypermodel.trial_config(hp).learning_rate
            0.05
        """
        config, space = self.config, self.space
        low, high = space.learning_rate
        values = {
            "learning_rate": hp.Float(
                "learning_rate",
                low,
                high,
                step=space.learning_rate_step,
                sampling="log",
                default=_clip(config.learning_rate, (low, high)),
            )
        }
        low, high, spacing = space.resolved_step_size(config.epochs)
        values["step_size"] = hp.Int(
            "step_size",
            low,
            high,
            step=spacing,
            default=_nearest_on_grid(config.step_size, low, high, spacing),
        )
        if "gamma" in space.extra:
            values["gamma"] = hp.Float(
                "gamma", *GAMMA_RANGE, sampling="log", default=_clip(config.gamma, GAMMA_RANGE)
            )
        if "weight_decay" in space.extra:
            values["weight_decay"] = hp.Float(
                "weight_decay",
                *WEIGHT_DECAY_RANGE,
                sampling="log",
                default=_clip(config.weight_decay, WEIGHT_DECAY_RANGE),
            )
        if "shortcut" in space.extra:
            shortcut = config.shortcut or MODEL_SPECS[config.model].shortcut
            values["shortcut"] = hp.Choice(
                "shortcut",
                SEARCHED_SHORTCUTS,
                default=shortcut if shortcut in SEARCHED_SHORTCUTS else SEARCHED_SHORTCUTS[0],
            )
        if "model" in space.extra:
            values["model"] = hp.Choice("model", same_family(config.model), default=config.model)
        return dataclasses.replace(config, **values)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The recipe's compiled model for the trial's config.

        Example:
            >>> model = hypermodel.build(kt.HyperParameters())
        """
        config = self.trial_config(hp)
        model = training.build_training_model(
            config, self.mean, self.std, self.num_classes, self.image_size
        )
        training.compile_model(model, config)
        return model

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        """``model.fit`` with the trial's StepLR schedule and the recipe's early stopping.

        Example:
            >>> history = hypermodel.fit(hp, model, x, y, validation_data=(x_val, y_val))
        """
        config = self.trial_config(hp)
        # The schedule first: it adds the epoch's learning rate to the logs the others see.
        callbacks = [
            training.learning_rate_callback(config),
            keras.callbacks.EarlyStopping(
                monitor=OBJECTIVE, mode="max", patience=config.resolved_patience
            ),
            *callbacks,
        ]
        kwargs.setdefault("epochs", config.epochs)  # Hyperband passes its own
        kwargs.setdefault("batch_size", config.batch_size)
        kwargs.setdefault("verbose", config.verbose)
        return model.fit(*args, shuffle=True, callbacks=callbacks, **kwargs)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _nearest_on_grid(value: int, low: int, high: int, spacing: int) -> int:
    """The value of ``low, low + spacing, ... <= high`` nearest to ``value``."""
    index = round((min(max(value, low), high) - low) / spacing)
    return min(low + index * spacing, low + (high - low) // spacing * spacing)


class _TrialRecorder:
    """Seeds each execution of a trial and writes its per-epoch history in the trial folder.

    Execution ``k`` of every trial is seeded with ``config.seed + k``, so trials differ
    only in their hyperparameters (common random numbers) and a rerun trial repeats itself.
    """

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._executions_done = 0

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # KerasTuner's per-execution hook (one call per execution of a trial).
        execution = getattr(self, "_executions_done", 0)
        self._executions_done = execution + 1
        keras.utils.set_random_seed(self.hypermodel.config.seed + execution)
        path = Path(self.get_trial_dir(trial.trial_id)) / history_file_name(execution)
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), training.HistoryWriter(path)]
        return super()._build_and_fit_model(trial, *args, **kwargs)


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


def fixed_hyperparameters(values: Mapping[str, object]) -> kt.HyperParameters:
    """``hp.Fixed`` for each of ``values``: those are not searched.

    Example:
        >>> fixed_hyperparameters({"step_size": 30}).values
        {'step_size': 30}
    """
    hp = kt.HyperParameters()
    for name, value in values.items():
        if name not in HYPERPARAMETER_TYPES:
            raise ValueError(
                f"Only {', '.join(HYPERPARAMETER_TYPES)} can be fixed. Received: {name}={value!r}"
            )
        hp.Fixed(name, value)
    return hp


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
    ``overwrite``, an existing project is checked (``check_project``) and resumed.

    Example:
        >>> tuner = make_tuner("random", hypermodel, directory="searches",
        ...                    project_name="lr", max_trials=8)
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
    }
    if kind == "hyperband":
        options.update(max_epochs=hypermodel.config.epochs, factor=hyperband_factor)
    elif kind == "grid":
        options.update(max_trials=max_trials)  # None: the whole grid
    else:
        options.update(max_trials=10 if max_trials is None else max_trials)
    tuner = _TUNER_CLASSES[kind](**options)
    if not (project_dir / SEARCH_FILE).exists():
        training.write_json_atomic(project_dir / SEARCH_FILE, settings)
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


# --- results ---------------------------------------------------------------------------


def summarize(tuner) -> list[dict]:
    """One row per trial, best validation accuracy first (unfinished trials last).

    Each row has the trial id and status, the hyperparameters' values, the best
    validation accuracy (averaged over executions), the best epoch (1-based) and the
    epochs and seconds the trial trained (from its ``history.csv``).

    Example:
        >>> summarize(tuner)[0]["best_val_accuracy"]
        0.71
    """
    rows = []
    for trial_id, trial in tuner.oracle.trials.items():
        history = training.read_history_rows(
            Path(tuner.get_trial_dir(trial_id)) / history_file_name(0)
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
    return sorted(
        rows,
        key=lambda row: (
            math.isnan(row["best_val_accuracy"]),
            -(0 if math.isnan(row["best_val_accuracy"]) else row["best_val_accuracy"]),
            row["trial_id"],
        ),
    )


def trial_histories(tuner) -> dict[str, dict]:
    """Each trial's first-execution history columns (``plots.read_history``), by trial id.

    Example:
        >>> trial_histories(tuner)["0000"]["val_accuracy"]
        array([0.41, 0.55])
    """
    histories = {}
    for trial_id in tuner.oracle.trials:
        path = Path(tuner.get_trial_dir(trial_id)) / history_file_name(0)
        if path.exists():
            histories[trial_id] = plots.read_history(path)
    return histories


def write_summary(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write the summary rows as CSV, atomically (columns in first-seen order).

    Example:
        >>> write_summary(summarize(tuner), "searches/lr/summary.csv")
    """
    path = Path(path)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def format_summary(rows: list[dict], columns: Collection[str] | None = None) -> str:
    """The summary as an aligned text table for the terminal.

    Example:
        >>> print(format_summary(summarize(tuner)))
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
    """The base config with the best trial's hyperparameters.

    Example:
        >>> best_config(tuner).learning_rate
        0.13
    """
    best = tuner.oracle.get_best_trials(1)
    if not best:
        raise SearchFolderError("The search has no finished trial to take the best from.")
    return tuner.hypermodel.trial_config(best[0].hyperparameters)
