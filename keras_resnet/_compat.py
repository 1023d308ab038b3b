"""The third-party internals this package overrides, each checked before it is relied on.

Two libraries write files non-atomically, which a kill can leave cut short:

- Keras's ``BackupAndRestore`` writes its weights and its metadata in place
  (``AtomicBackupAndRestore`` overrides its private ``_save_model``);
- KerasTuner's ``utils.save_json`` rewrites ``oracle.json``, ``trial.json`` and
  ``tuner0.json`` in place (``make_kerastuner_writes_atomic`` replaces it when a tuner is
  made), and it has no public hook per execution of a trial (``ExecutionHook`` overrides
  ``Tuner._build_and_fit_model``).

Each override names the private attributes it needs; where an installed version lacks
one, a ``RuntimeError`` says which, and which versions are known to work, instead of a
run that silently loses its resumability.
"""

from __future__ import annotations

import json
import os
import shutil

import keras

from keras_resnet import atomic, extras

# The versions these overrides were written against and tested with.
TESTED_KERAS = "3.8 to 3.15"
TESTED_KERASTUNER = "1.4"
_BACKUP_ATTRIBUTES = (
    "_weights_path",
    "_prev_weights_path",
    "_training_metadata_path",
    "_prev_training_metadata_path",
    "_current_epoch",
    "_last_batch_seen",
)


def _moved(library: str, version: str, tested: str, what: str) -> RuntimeError:
    return RuntimeError(
        f"{library} {version} has no {what}, which keras_resnet overrides to write files "
        f"atomically (tested with {library} {tested}). Install a tested version, e.g. "
        f"pip install '{library.lower().replace(' ', '-')}=={tested.split()[-1]}.*'. "
        f"Received: {library} {version}"
    )


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` (one backup per epoch, the previous one kept) whose every file
    is replaced atomically, so a SIGKILL at any moment leaves a backup that loads.

    ``save=False`` saves to a temporary file that is deleted: the processes of a
    multi-process run besides process 0, which alone writes the shared backup, take part
    in the save's collective operations (``atomic.discarded_write``).

    Example:
        >>> backup = AtomicBackupAndRestore("runs/x/backup")
    """

    def __init__(self, backup_dir, save: bool = True):
        self.writes = save
        super().__init__(
            backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
        )
        missing = [name for name in _BACKUP_ATTRIBUTES if not hasattr(self, name)]
        if missing or not callable(getattr(super(), "_save_model", None)):
            raise _moved(
                "Keras",
                keras.__version__,
                TESTED_KERAS,
                f"BackupAndRestore.{(missing or ['_save_model'])[0]}",
            )

    def _save_model(self):
        if not self.writes:
            atomic.discarded_write(self._weights_path, self.model.save_weights)
            return
        for current, previous in (
            (self._weights_path, self._prev_weights_path),
            (self._training_metadata_path, self._prev_training_metadata_path),
        ):
            if os.path.exists(current):
                atomic.write_atomic(previous, lambda tmp, src=current: shutil.copyfile(src, tmp))
        atomic.write_atomic(self._weights_path, self.model.save_weights)
        atomic.write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


def _kerastuner():
    return extras.require("keras_tuner", "A hyperparameter search")


def requeue_orphaned_trials(oracle) -> list[str]:
    """Make a reloaded oracle rerun the trial a kill interrupted, and no finished one.

    KerasTuner's oracle writes ``oracle.json`` in ``end_trial`` while the ended trial still
    counts as ongoing, and ``create_trial`` writes the next trial's ``trial.json`` (RUNNING)
    before ``oracle.json``. A kill between those writes leaves a reloaded oracle that would
    rerun the finished trial and never the RUNNING one, which still counts toward
    ``max_trials``: the search ends with it RUNNING. Call after ``oracle.reload()``: the
    retry queue keeps only unfinished trials and gains the RUNNING ones missing from it;
    returns the ids added.

    Example:
        >>> requeue_orphaned_trials(tuner.oracle)  # doctest: +SKIP
        ['1']
    """
    queue = getattr(oracle, "_retry_queue", None)
    if queue is None:
        kt = _kerastuner()
        raise RuntimeError(
            f"KerasTuner {kt.__version__}'s oracle has no _retry_queue, which keras_resnet "
            f"uses to rerun a trial a kill interrupted (tested with KerasTuner "
            f"{TESTED_KERASTUNER}). Install a tested version. Received: KerasTuner "
            f"{kt.__version__}"
        )
    queue[:] = [trial_id for trial_id in queue if oracle.trials[trial_id].status not in FINAL]
    running = {trial.trial_id for trial in oracle.ongoing_trials.values()}
    orphans = [
        trial_id
        for trial_id, trial in oracle.trials.items()
        if trial.status == "RUNNING" and trial_id not in queue and trial_id not in running
    ]
    queue.extend(orphans)
    return orphans


# Trial statuses KerasTuner never runs again ("INVALID" trials may be retried).
FINAL = ("COMPLETED", "FAILED")


def make_kerastuner_writes_atomic() -> None:
    """Route KerasTuner's JSON writes through ``atomic.write_text`` (idempotent).

    Remote paths (``gs://...``) keep KerasTuner's own writer.

    Example:
        >>> make_kerastuner_writes_atomic()
    """
    kt = _kerastuner()
    utils = getattr(getattr(kt, "src", None), "utils", None)
    original = getattr(utils, "save_json", None)
    if original is None:
        raise _moved("KerasTuner", kt.__version__, TESTED_KERASTUNER, "src.utils.save_json")
    if getattr(original, "keras_resnet_atomic", False):
        return

    def save_json(path, obj):
        path = os.fspath(path)
        if "://" in path:
            return original(path, obj)
        text = json.dumps(obj)
        atomic.write_text(path, text)
        return text

    save_json.keras_resnet_atomic = True
    utils.save_json = save_json


class ExecutionHook:
    """A tuner mixin: ``on_execution_begin(trial, execution, fit_kwargs)`` before each
    execution of a trial (KerasTuner's private ``_build_and_fit_model``, once per execution).

    Example:
        >>> class Recorder(ExecutionHook, keras_tuner.RandomSearch):  # doctest: +SKIP
        ...     def on_execution_begin(self, trial, execution, fit_kwargs): ...  # doctest: +SKIP
    """

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._executions_done = 0

    def on_execution_begin(self, trial, execution: int, fit_kwargs: dict) -> None:
        """Called before execution ``execution`` (from 0) of ``trial``; may edit its kwargs."""

    def _build_and_fit_model(self, trial, *args, **kwargs):
        execution = getattr(self, "_executions_done", 0)
        self._executions_done = execution + 1
        self.on_execution_begin(trial, execution, kwargs)
        return super()._build_and_fit_model(trial, *args, **kwargs)


def check_execution_hook() -> None:
    """Raise if KerasTuner's ``Tuner`` no longer has the method ``ExecutionHook`` overrides.

    Example:
        >>> check_execution_hook()
    """
    kt = _kerastuner()
    if not callable(getattr(kt.Tuner, "_build_and_fit_model", None)):
        raise _moved("KerasTuner", kt.__version__, TESTED_KERASTUNER, "Tuner._build_and_fit_model")
