"""keras_resnet.atomic: a file is replaced whole or not at all, and no temporary file stays."""

from __future__ import annotations

import csv
import json
import os
import time

import keras
import numpy as np
import pytest

from keras_resnet import atomic


class WriterFailedError(Exception):
    pass


def names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_write_atomic_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    used = []

    def write(tmp):
        used.append(tmp)
        tmp.write_text("new")

    assert atomic.write_atomic(path, write) == path
    assert path.read_text() == "new"
    assert names(tmp_path) == ["notes.txt"]
    (tmp,) = used
    assert tmp.parent == tmp_path and tmp != path  # beside it, so the rename is atomic


def test_write_atomic_makes_the_folder(tmp_path):
    path = tmp_path / "runs" / "x" / "notes.txt"
    atomic.write_text(path, "hello")
    assert path.read_text() == "hello"


@pytest.mark.parametrize("error", [WriterFailedError, KeyboardInterrupt])
@pytest.mark.parametrize("wrote_first", [True, False])
def test_a_failed_writer_leaves_the_old_file_and_no_temporary_file(tmp_path, error, wrote_first):
    path = tmp_path / "test_metrics.json"
    path.write_text('{"test_accuracy": 0.9}')

    def write(tmp):
        if wrote_first:
            tmp.write_text('{"test_acc')  # cut short by the failure
        raise error("disk full")

    with pytest.raises(error, match="disk full"):
        atomic.write_atomic(path, write)
    assert path.read_text() == '{"test_accuracy": 0.9}'
    assert names(tmp_path) == ["test_metrics.json"]


def test_a_failed_first_write_leaves_no_file(tmp_path):
    def write(tmp):
        tmp.write_bytes(b"half")
        raise WriterFailedError

    with pytest.raises(WriterFailedError):
        atomic.write_atomic(tmp_path / "best.keras", write)
    assert names(tmp_path) == []


def test_partial_path_keeps_the_whole_suffix_and_is_fresh_each_time():
    first = atomic.partial_path("runs/x/latest.weights.h5")
    second = atomic.partial_path("runs/x/latest.weights.h5")
    assert first != second
    assert str(first.parent) == os.path.join("runs", "x")
    assert first.name.startswith(".") and first.name.endswith(".partial.latest.weights.h5")
    assert "".join(first.suffixes[-2:]) == ".weights.h5"


def test_keras_writers_accept_the_temporary_path(tmp_path):
    # model.save insists on ".keras" and save_weights on ".weights.h5".
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights([np.full((3, 2), 0.5, "float32"), np.array([1.0, -1.0], "float32")])
    atomic.write_atomic(tmp_path / "best.keras", model.save)
    atomic.write_atomic(tmp_path / "latest.weights.h5", model.save_weights)
    assert names(tmp_path) == ["best.keras", "latest.weights.h5"]
    loaded = keras.saving.load_model(tmp_path / "best.keras")
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.load_weights(tmp_path / "latest.weights.h5")
    for restored in (loaded, other):
        for got, want in zip(restored.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)


def test_write_json_is_sorted_and_indented(tmp_path):
    path = atomic.write_json(tmp_path / "m.json", {"b": [1, 2], "a": 0.5})
    assert path.read_text() == '{\n  "a": 0.5,\n  "b": [\n    1,\n    2\n  ]\n}'
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [1, 2]}


def read_csv(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_write_csv_leaves_a_missing_cell_blank(tmp_path):
    rows = [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5, "val_loss": 1.7}]
    path = atomic.write_csv(tmp_path / "history.csv", rows)
    # Columns in first-seen order by default.
    assert read_csv(path) == [["epoch", "loss", "val_loss"], ["0", "2.0", ""], ["1", "1.5", "1.7"]]
    path = atomic.write_csv(tmp_path / "history.csv", rows, ["val_loss", "epoch", "loss"])
    assert read_csv(path) == [["val_loss", "epoch", "loss"], ["", "0", "2.0"], ["1.7", "1", "1.5"]]


def test_write_csv_of_a_key_outside_the_columns_fails_and_keeps_the_old_file(tmp_path):
    path = atomic.write_csv(tmp_path / "history.csv", [{"epoch": 0}])
    with pytest.raises(ValueError, match="loss"):
        atomic.write_csv(path, [{"epoch": 0, "loss": 1.0}], ["epoch"])
    assert read_csv(path) == [["epoch"], ["0"]]
    assert names(tmp_path) == ["history.csv"]


def test_remove_stale_partials_removes_only_old_temporary_files(tmp_path):
    old_partial = atomic.partial_path(tmp_path / "best.keras")
    new_partial = atomic.partial_path(tmp_path / "history.csv")
    for path in (old_partial, new_partial, tmp_path / "best.keras", tmp_path / ".hidden"):
        path.write_text("x")
    # A partial an hour old: its writer was killed. The new one may still be written.
    old_partial_and_others = (old_partial, tmp_path / "best.keras", tmp_path / ".hidden")
    an_hour_ago = time.time() - 3600
    for path in old_partial_and_others:
        os.utime(path, (an_hour_ago, an_hour_ago))
    atomic.remove_stale_partials(tmp_path, older_than_s=600)
    assert names(tmp_path) == sorted([".hidden", "best.keras", new_partial.name])


def test_remove_stale_partials_of_a_missing_folder_does_nothing(tmp_path):
    atomic.remove_stale_partials(tmp_path / "nowhere", older_than_s=0)
    assert not (tmp_path / "nowhere").exists()
