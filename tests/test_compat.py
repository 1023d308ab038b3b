"""The third-party internals keras_resnet overrides: each checked, each write atomic."""

import json

import keras
import keras_tuner
import numpy as np
import pytest

from keras_resnet import _compat


def tiny_model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_backup_writes_weights_and_metadata_and_keeps_the_previous_backup(tmp_path):
    backup = _compat.AtomicBackupAndRestore(str(tmp_path))
    backup.set_model(tiny_model())
    for epoch in (0, 1):
        backup._current_epoch, backup._last_batch_seen = epoch, 3
        backup._save_model()
    assert json.loads(open(backup._training_metadata_path).read()) == {"epoch": 1, "batch": 3}
    assert json.loads(open(backup._prev_training_metadata_path).read()) == {"epoch": 0, "batch": 3}
    restored = tiny_model()
    restored.load_weights(backup._weights_path)
    np.testing.assert_array_equal(restored.get_weights()[0], backup.model.get_weights()[0])
    assert not [path.name for path in tmp_path.iterdir() if ".partial." in path.name]


def test_a_backup_interrupted_while_writing_the_weights_leaves_the_last_one_whole(tmp_path):
    backup = _compat.AtomicBackupAndRestore(str(tmp_path))
    backup.set_model(tiny_model())
    backup._current_epoch, backup._last_batch_seen = 0, 1
    backup._save_model()
    before = open(backup._weights_path, "rb").read()

    def killed(path, *args, **kwargs):
        open(path, "wb").write(b"half a file")
        raise KeyboardInterrupt

    backup.model.save_weights = killed
    backup._current_epoch = 1
    with pytest.raises(KeyboardInterrupt):
        backup._save_model()
    assert open(backup._weights_path, "rb").read() == before
    assert json.loads(open(backup._training_metadata_path).read())["epoch"] == 0
    assert not [path.name for path in tmp_path.iterdir() if ".partial." in path.name]


def test_a_moved_backup_internal_is_named(monkeypatch):
    monkeypatch.setattr(_compat, "_BACKUP_ATTRIBUTES", (*_compat._BACKUP_ATTRIBUTES, "_gone"))
    with pytest.raises(RuntimeError, match=r"has no BackupAndRestore\._gone.*tested with Keras"):
        _compat.AtomicBackupAndRestore("backup")


def test_a_moved_kerastuner_writer_is_named(monkeypatch):
    monkeypatch.delattr(keras_tuner.src.utils, "save_json")
    with pytest.raises(RuntimeError, match=r"KerasTuner .* has no src\.utils\.save_json"):
        _compat.make_kerastuner_writes_atomic()


def test_a_moved_kerastuner_execution_hook_is_named(monkeypatch):
    monkeypatch.delattr(keras_tuner.Tuner, "_build_and_fit_model")
    with pytest.raises(RuntimeError, match=r"has no Tuner\._build_and_fit_model"):
        _compat.check_execution_hook()


def _oracle(project_dir):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=3, seed=0)
    oracle.hyperparameters.Float("learning_rate", 1e-3, 1.0, sampling="log")
    oracle._set_project_dir(str(project_dir), "search")
    return oracle


def test_a_trial_killed_between_kerastuners_two_writes_is_rerun_after_a_reload(tmp_path):
    oracle = _oracle(tmp_path)
    first = oracle.create_trial("tuner0")
    first.status = "COMPLETED"
    oracle.update_trial(first.trial_id, {"val_accuracy": 0.5})
    oracle.end_trial(first)
    saved_oracle = (tmp_path / "search" / "oracle.json").read_text()
    second = oracle.create_trial("tuner0")  # writes trial_1/trial.json, then oracle.json
    # A kill between the two writes: trial 1's file says RUNNING, oracle.json predates it.
    (tmp_path / "search" / "oracle.json").write_text(saved_oracle)

    reloaded = _oracle(tmp_path)
    reloaded.reload()
    assert reloaded.trials[second.trial_id].status == "RUNNING"
    # KerasTuner alone would rerun the finished trial, and never the interrupted one.
    assert reloaded._retry_queue == [first.trial_id]
    assert _compat.requeue_orphaned_trials(reloaded) == [second.trial_id]
    assert reloaded._retry_queue == [second.trial_id]
    assert reloaded.create_trial("tuner0").trial_id == second.trial_id
    assert _compat.requeue_orphaned_trials(reloaded) == []  # running now: not queued again


def test_a_moved_kerastuner_retry_queue_is_named():
    class Oracle:
        trials = {}
        ongoing_trials = {}

    with pytest.raises(RuntimeError, match=r"oracle has no _retry_queue"):
        _compat.requeue_orphaned_trials(Oracle())
