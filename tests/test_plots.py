"""plots: reading a CSVLogger history, the figures of a run folder, and the command."""

import csv
import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from keras_resnet import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
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


@pytest.fixture
def run_dir(tmp_path):
    """A finished run: 8 epochs, epoch 3 logged twice (resumed after a crash)."""
    rows = [_row(e) for e in range(4)]
    rows[3]["val_accuracy"] = 0.0  # the stale row of epoch 3; the resumed one must win
    rows += [_row(e) for e in range(3, 8)]
    rows[-3]["val_accuracy"] = 0.9  # epoch 5 is the best validation epoch
    _write_history(tmp_path / "history.csv", rows)

    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 10, size=(5, 5)) + np.diag([80, 70, 60, 75, 90])
    metrics = {
        "test_accuracy": float(np.trace(matrix) / matrix.sum()),
        "test_loss": 0.5,
        "class_names": CLASS_NAMES,
        "confusion_matrix": matrix.tolist(),
    }
    (tmp_path / "test_metrics.json").write_text(json.dumps(metrics))
    return tmp_path


def _assert_png(path, shape=None):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    if shape is not None:
        assert image.shape[:2] == shape
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def test_read_history_dedupes_epochs_keeping_the_last_row(run_dir):
    history = plots.read_history(run_dir / "history.csv")
    assert list(history) == COLUMNS
    np.testing.assert_array_equal(history["epoch"], np.arange(8))
    assert history["epoch"].dtype.kind == "i"
    expected = [_row(e)["val_accuracy"] for e in range(8)]
    expected[5] = 0.9
    np.testing.assert_allclose(history["val_accuracy"], expected)
    np.testing.assert_allclose(history["learning_rate"], [0.1] * 5 + [0.01] * 3)
    assert all(v.shape == (8,) for v in history.values())


def test_read_history_sorts_and_tolerates_other_columns(tmp_path):
    columns = ["epoch", "loss", "top5_accuracy", "val_loss"]  # no accuracy, no learning rate
    path = tmp_path / "history.csv"
    with path.open("w", newline="") as fh:
        fh.write(",".join(columns) + "\n")
        fh.write("2,0.5,0.9,NA\n")
        fh.write("0,1.5,0.7,1.6\n")
        fh.write("1,1.0,0.8,1.1\n")
        fh.write("0,1.4,0.7,1.5\n")  # epoch 0 again: this row wins
    history = plots.read_history(path)
    assert list(history) == columns
    np.testing.assert_array_equal(history["epoch"], [0, 1, 2])
    np.testing.assert_allclose(history["loss"], [1.4, 1.0, 0.5])
    np.testing.assert_allclose(history["val_loss"], [1.5, 1.1, np.nan])


def test_read_history_missing_or_empty_file_names_it(tmp_path):
    missing = tmp_path / "history.csv"
    with pytest.raises(FileNotFoundError, match="history.csv"):
        plots.read_history(missing)
    missing.write_text("")
    with pytest.raises(ValueError, match=r"empty.*history\.csv"):
        plots.read_history(missing)
    missing.write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(ValueError, match=r"no rows.*history\.csv"):
        plots.read_history(missing)


def test_plot_history_writes_a_png_of_the_documented_size(run_dir, tmp_path):
    history = plots.read_history(run_dir / "history.csv")
    out = plots.plot_history(history, tmp_path / "sub" / "curves.png", test_accuracy=0.8)
    assert out == tmp_path / "sub" / "curves.png"
    width, height = (round(s * plots.DPI) for s in plots.CURVES_FIGSIZE)
    _assert_png(out, shape=(height, width))


def test_plot_history_accepts_a_keras_history_dict_without_epochs(tmp_path):
    history = {"loss": [1.0, 0.8, 0.7], "accuracy": [0.5, 0.6, 0.65]}  # no validation, no lr
    _assert_png(plots.plot_history(history, tmp_path / "curves.png"))
    with pytest.raises(ValueError, match="no loss, accuracy or learning-rate"):
        plots.plot_history({"top5": [0.9]}, tmp_path / "none.png")


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix(run_dir, tmp_path, normalize):
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    out = plots.plot_confusion_matrix(
        metrics["confusion_matrix"], CLASS_NAMES, tmp_path / "cm.png", normalize=normalize
    )
    assert out == tmp_path / "cm.png"
    _assert_png(out)


def test_plot_confusion_matrix_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"square.*Received: shape=\(2, 3\)"):
        plots.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(ValueError, match=r"len\(class_names\)=3"):
        plots.plot_confusion_matrix(np.eye(2), ["a", "b", "c"], tmp_path / "cm.png")
    assert not list(tmp_path.iterdir())


def test_plot_run_writes_both_figures_atomically(run_dir):
    paths = plots.plot_run(run_dir)
    assert paths == [run_dir / "training_curves.png", run_dir / "confusion_matrix.png"]
    for path in paths:
        _assert_png(path)
    # Nothing but the data and the figures is left behind (no temporary files).
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["history.csv", "test_metrics.json", "training_curves.png", "confusion_matrix.png"]
    )


def test_plot_run_without_test_metrics_draws_only_the_curves(run_dir):
    (run_dir / "test_metrics.json").unlink()
    assert plots.plot_run(run_dir) == [run_dir / "training_curves.png"]
    assert not (run_dir / "confusion_matrix.png").exists()


def test_interrupted_save_keeps_the_old_figure(run_dir, monkeypatch):
    (curves,) = plots.plot_run(run_dir)[:1]
    before = curves.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots.Figure, "savefig", fail)
    with pytest.raises(KeyboardInterrupt):
        plots.plot_run(run_dir)
    assert curves.read_bytes() == before
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]


def test_plot_run_missing_history(tmp_path):
    with pytest.raises(FileNotFoundError, match="history.csv"):
        plots.plot_run(tmp_path)


def test_main_plots_each_folder(run_dir, capsys):
    assert plots.main([str(run_dir)]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(run_dir / "training_curves.png"), str(run_dir / "confusion_matrix.png")]


def test_main_missing_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        plots.main([str(tmp_path / "nope")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_main_reports_a_folder_without_history(tmp_path, capsys):
    assert plots.main([str(tmp_path)]) == 1
    assert "history.csv" in capsys.readouterr().err


def test_module_imports_no_keras_backend():
    """plots.py on its own (outside the package __init__) pulls in no Keras or backend."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('plots', {plots.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "heavy = {'keras', 'tensorflow', 'jax', 'torch', 'matplotlib.pyplot'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _timed_run(path, seconds, val_accuracy):
    path.mkdir()
    rows = [
        {**_row(epoch), "epoch_seconds": s, "val_accuracy": acc}
        for epoch, (s, acc) in enumerate(zip(seconds, val_accuracy, strict=True))
    ]
    _write_history(path / "history.csv", rows, [*COLUMNS, "epoch_seconds"])
    return path


def test_time_and_accuracy_sums_epoch_seconds_into_minutes(tmp_path):
    run = _timed_run(tmp_path / "run", [60, 120, 30], [0.5, 0.6, 0.7])
    minutes, accuracy = plots.time_and_accuracy(run)
    np.testing.assert_allclose(minutes, [1.0, 3.0, 3.5])
    np.testing.assert_allclose(accuracy, [0.5, 0.6, 0.7])


def test_time_and_accuracy_needs_epoch_seconds(run_dir):
    with pytest.raises(ValueError, match="has no 'epoch_seconds' values"):
        plots.time_and_accuracy(run_dir)


def test_plot_time_to_accuracy_draws_each_run(tmp_path, run_dir):
    slow = _timed_run(tmp_path / "slow", [300] * 4, [0.4, 0.5, 0.55, 0.6])
    fast = _timed_run(tmp_path / "fast", [200] * 3, [0.5, 0.7, 0.8])
    (fast / "test_metrics.json").write_text((run_dir / "test_metrics.json").read_text())
    out = plots.plot_time_to_accuracy({"slow": slow, "fast": fast}, tmp_path / "tta.png")
    assert out == tmp_path / "tta.png"
    _assert_png(out)
