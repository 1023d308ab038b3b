"""recipe.run_folder: reading a history (the one reader), the test metrics, a run's figures
and its time to accuracy."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from keras_resnet import plots
from keras_resnet.recipe import run_folder

CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer"]
# Columns as CSVLogger writes them: "epoch" first, then the keys sorted.
COLUMNS = ["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]


def _row(epoch, val_accuracy=None):
    """A plausible history row; the learning rate steps down by 10x after epoch 4."""
    accuracy = 0.3 + 0.05 * epoch
    return {
        "epoch": epoch,
        "accuracy": accuracy,
        "learning_rate": 0.1 if epoch < 5 else 0.01,
        "loss": 2.0 / (epoch + 1),
        "val_accuracy": accuracy - 0.02 if val_accuracy is None else val_accuracy,
        "val_loss": 2.2 / (epoch + 1),
    }


def _write_history(path, rows, columns=COLUMNS):
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_lines(path, *lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.fixture
def run_dir(tmp_path):
    """A finished run: 8 epochs, epoch 3 logged twice (resumed after a crash)."""
    rows = [_row(e) for e in range(4)]
    rows[3]["val_accuracy"] = 0.0  # the stale row of epoch 3; the resumed one must win
    rows += [_row(e) for e in range(3, 8)]
    rows[-3]["val_accuracy"] = 0.9  # epoch 5 is the best validation epoch
    _write_history(tmp_path / run_folder.HISTORY_FILE, rows)

    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 10, size=(5, 5)) + np.diag([80, 70, 60, 75, 90])
    metrics = {
        "test_accuracy": float(np.trace(matrix) / matrix.sum()),
        "test_loss": 0.5,
        "class_names": CLASS_NAMES,
        "confusion_matrix": matrix.tolist(),
    }
    (tmp_path / run_folder.METRICS_FILE).write_text(json.dumps(metrics))
    return tmp_path


# --- read_history -------------------------------------------------------------------------


def test_read_history_dedupes_epochs_keeping_the_last_row(run_dir):
    rows = run_folder.read_history(run_dir / run_folder.HISTORY_FILE)
    assert [row["epoch"] for row in rows] == list(range(8))
    assert all(type(row["epoch"]) is int and list(row) == COLUMNS for row in rows)
    expected = [_row(e)["val_accuracy"] for e in range(8)]
    expected[5] = 0.9
    np.testing.assert_allclose([row["val_accuracy"] for row in rows], expected)
    np.testing.assert_allclose([row["learning_rate"] for row in rows], [0.1] * 5 + [0.01] * 3)


def test_read_history_sorts_and_reads_blank_and_na_cells_as_nan(tmp_path):
    path = _write_lines(
        tmp_path / "history.csv",
        "epoch,loss,top5_accuracy,val_loss",  # no accuracy, no learning rate
        "2,0.5,0.9,NA",
        "0,1.5,,1.6",
        "1,1.0,0.8,1.1",
        "0,1.4,0.7,1.5",  # epoch 0 again: this row wins
        "3,0.4",  # a row cut short: its missing cells are NaN
    )
    rows = run_folder.read_history(path)
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    assert [row["loss"] for row in rows] == [1.4, 1.0, 0.5, 0.4]
    np.testing.assert_allclose([row["val_loss"] for row in rows], [1.5, 1.1, np.nan, np.nan])
    assert math.isnan(rows[3]["top5_accuracy"])
    blank = _write_lines(tmp_path / "blank.csv", "epoch,loss,val_loss", "0,1.5,")
    assert math.isnan(run_folder.read_history(blank)[0]["val_loss"])


def test_read_history_skips_a_malformed_row_with_a_warning(tmp_path):
    path = _write_lines(
        tmp_path / "history.csv",
        "epoch,loss",
        "0,1.5",
        "1,1.0,7",  # more cells than the header
        "epoch,loss",  # a header repeated by a writer: skipped silently
        "x,0.9",  # no epoch number
        "2,0.5",
    )
    with pytest.warns(UserWarning) as warnings_seen:
        rows = run_folder.read_history(path)
    assert [(row["epoch"], row["loss"]) for row in rows] == [(0, 1.5), (2, 0.5)]
    messages = [str(warning.message) for warning in warnings_seen]
    assert len(messages) == 2
    assert "malformed row 3" in messages[0] and "history.csv" in messages[0]
    assert "malformed row 5" in messages[1]


def test_read_history_skips_a_row_cut_short_before_its_epoch(tmp_path):
    path = _write_lines(tmp_path / "history.csv", "loss,epoch", "0.9", "0.5,1")
    with pytest.warns(UserWarning, match="malformed row 2"):
        rows = run_folder.read_history(path)
    assert rows == [{"loss": 0.5, "epoch": 1}]


def test_read_history_missing_empty_or_without_epochs_names_the_file(tmp_path):
    path = tmp_path / "history.csv"
    with pytest.raises(FileNotFoundError, match="history.csv"):
        run_folder.read_history(path)
    assert run_folder.read_history(path, missing_ok=True) == []
    path.write_text("")
    with pytest.raises(ValueError, match=r"empty.*history\.csv"):
        run_folder.read_history(path)
    path.write_text("\n\n")
    with pytest.raises(ValueError, match=r"empty.*history\.csv"):
        run_folder.read_history(path, missing_ok=True)  # missing_ok is for a missing file
    _write_lines(path, "loss,val_loss", "1.0,1.1")
    with pytest.raises(ValueError, match=r"no 'epoch' column.*history\.csv"):
        run_folder.read_history(path)
    _write_lines(path, ",".join(COLUMNS))
    assert run_folder.read_history(path) == []  # a header alone: no finished epoch yet


def test_history_columns_and_write_history_round_trip(tmp_path):
    rows = [{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5, "val_loss": 1.6}]
    columns = run_folder.history_columns(rows)
    assert list(columns) == ["epoch", "loss", "val_loss"]
    assert columns["epoch"].dtype.kind == "i"
    np.testing.assert_array_equal(columns["epoch"], [0, 1])
    np.testing.assert_allclose(columns["val_loss"], [np.nan, 1.6])
    assert run_folder.history_columns([]) == {}

    path = run_folder.write_history(tmp_path / "history.csv", rows)
    assert path.read_text().splitlines()[0] == "epoch,loss,val_loss"
    read = run_folder.read_history(path)
    assert [row["epoch"] for row in read] == [0, 1]
    assert read[1] == {"epoch": 1, "loss": 1.5, "val_loss": 1.6}
    assert math.isnan(read[0]["val_loss"])  # the blank cell of the column added later


# --- read_test_metrics --------------------------------------------------------------------


def test_read_test_metrics_checks_the_file(run_dir):
    path = run_dir / run_folder.METRICS_FILE
    assert run_folder.read_test_metrics(path)["class_names"] == CLASS_NAMES
    path.write_text('{"test_accuracy": 0.9')  # cut short
    with pytest.raises(ValueError, match="Test metrics are not valid JSON: .*test_metrics"):
        run_folder.read_test_metrics(path)
    path.write_text('{"test_accuracy": 0.9}')
    with pytest.raises(ValueError, match="no 'confusion_matrix': .*test_metrics"):
        run_folder.read_test_metrics(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="no 'confusion_matrix'"):
        run_folder.read_test_metrics(path)


# --- plot_run -----------------------------------------------------------------------------


def _assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # a drawn figure, not an empty canvas


def test_plot_run_writes_both_figures_atomically(run_dir):
    paths = run_folder.plot_run(run_dir)
    assert paths == [run_dir / run_folder.CURVES_FILE, run_dir / run_folder.CONFUSION_FILE]
    for path in paths:
        _assert_png(path)
    # Nothing but the data and the figures is left behind (no temporary files).
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["history.csv", "test_metrics.json", "training_curves.png", "confusion_matrix.png"]
    )


def test_plot_run_draws_the_history_and_the_test_accuracy(run_dir, monkeypatch):
    drawn = {}

    def plot_history(history, path, *, title, test_accuracy):
        drawn.update(history=history, title=title, test_accuracy=test_accuracy)
        return path

    monkeypatch.setattr(plots, "plot_history", plot_history)
    run_folder.plot_run(run_dir)
    np.testing.assert_array_equal(drawn["history"]["epoch"], np.arange(8))
    assert drawn["history"]["val_accuracy"][5] == 0.9  # the resumed epoch 3 won, too
    assert drawn["history"]["val_accuracy"][3] == pytest.approx(_row(3)["val_accuracy"])
    metrics = json.loads((run_dir / run_folder.METRICS_FILE).read_text())
    assert drawn["test_accuracy"] == metrics["test_accuracy"]
    assert drawn["title"] == f"Training curves: {run_dir.name}"


def test_plot_run_without_test_metrics_draws_only_the_curves(run_dir):
    (run_dir / run_folder.METRICS_FILE).unlink()
    assert run_folder.plot_run(run_dir) == [run_dir / run_folder.CURVES_FILE]
    assert not (run_dir / run_folder.CONFUSION_FILE).exists()


def test_interrupted_plot_run_keeps_the_old_figure(run_dir, monkeypatch):
    (curves,) = run_folder.plot_run(run_dir)[:1]
    before = curves.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots.Figure, "savefig", fail)
    with pytest.raises(KeyboardInterrupt):
        run_folder.plot_run(run_dir)
    assert curves.read_bytes() == before
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


def test_plot_run_missing_folder_history_or_rows(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run folder not found"):
        run_folder.plot_run(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="history.csv"):
        run_folder.plot_run(tmp_path)
    _write_lines(tmp_path / run_folder.HISTORY_FILE, ",".join(COLUMNS))
    with pytest.raises(ValueError, match=r"no rows.*history\.csv"):
        run_folder.plot_run(tmp_path)


# --- time_and_accuracy --------------------------------------------------------------------


def _timed_run(path, seconds, val_accuracy):
    path.mkdir()
    rows = [
        {**_row(epoch), "epoch_seconds": s, "val_accuracy": acc}
        for epoch, (s, acc) in enumerate(zip(seconds, val_accuracy, strict=True))
    ]
    _write_history(path / run_folder.HISTORY_FILE, rows, [*COLUMNS, "epoch_seconds"])
    return path


def test_time_and_accuracy_sums_epoch_seconds_into_minutes(tmp_path):
    run = _timed_run(tmp_path / "run", [60, 120, 30], [0.5, 0.6, 0.7])
    minutes, accuracy = run_folder.time_and_accuracy(run)
    np.testing.assert_allclose(minutes, [1.0, 3.0, 3.5])
    np.testing.assert_allclose(accuracy, [0.5, 0.6, 0.7])


def test_time_and_accuracy_counts_an_untimed_epoch_as_zero(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write_lines(
        run / run_folder.HISTORY_FILE,
        "epoch,epoch_seconds,val_accuracy",
        "0,,0.5",  # an epoch logged before epoch_seconds existed
        "1,120,0.6",
    )
    minutes, accuracy = run_folder.time_and_accuracy(run)
    np.testing.assert_allclose(minutes, [0.0, 2.0])
    np.testing.assert_allclose(accuracy, [0.5, 0.6])


def test_time_and_accuracy_needs_epoch_seconds_and_val_accuracy(run_dir, tmp_path):
    with pytest.raises(ValueError, match="has no 'epoch_seconds' values"):
        run_folder.time_and_accuracy(run_dir)
    run = tmp_path / "untested"
    run.mkdir()
    _write_lines(run / run_folder.HISTORY_FILE, "epoch,epoch_seconds,val_accuracy", "0,60,NA")
    with pytest.raises(ValueError, match="has no 'val_accuracy' values"):
        run_folder.time_and_accuracy(run)
