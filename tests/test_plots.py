"""plots: the figures, drawn from data, and the ``python -m keras_resnet.plots`` command."""

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from keras_resnet import atomic, plots
from keras_resnet.recipe import run_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer"]


def _rows(epochs=8, best_epoch=5):
    """Plausible history rows; the learning rate steps down by 10x after epoch 4."""
    rows = []
    for epoch in range(epochs):
        accuracy = 0.3 + 0.05 * epoch
        rows.append(
            {
                "epoch": epoch,
                "accuracy": accuracy,
                "learning_rate": 0.1 if epoch < 5 else 0.01,
                "loss": 2.0 / (epoch + 1),
                "val_accuracy": 0.9 if epoch == best_epoch else accuracy - 0.02,
                "val_loss": 2.2 / (epoch + 1),
            }
        )
    return rows


@pytest.fixture
def history():
    """8 epochs of history columns, as ``run_folder.history_columns`` gives them."""
    return run_folder.history_columns(_rows())


@pytest.fixture
def matrix():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 10, size=(5, 5)) + np.diag([80, 70, 60, 75, 90])).tolist()


@pytest.fixture
def run_dir(tmp_path, matrix):
    """A finished run folder, written with the package's own writers."""
    run_folder.write_history(tmp_path / run_folder.HISTORY_FILE, _rows())
    metrics = {"test_accuracy": 0.8, "class_names": CLASS_NAMES, "confusion_matrix": matrix}
    atomic.write_json(tmp_path / run_folder.METRICS_FILE, metrics)
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


@pytest.fixture
def drawn(monkeypatch):
    """The figures that ``plots`` saves, kept for inspection (they are still written)."""
    figures = []
    save_figure = plots.save_figure

    def keep(fig, path):
        figures.append(fig)
        return save_figure(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figures


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


def test_plot_history_writes_a_png_of_the_documented_size(history, tmp_path):
    out = plots.plot_history(history, tmp_path / "sub" / "curves.png", test_accuracy=0.8)
    assert out == tmp_path / "sub" / "curves.png"
    width, height = (round(s * plots.DPI) for s in plots.CURVES_FIGSIZE)
    _assert_png(out, shape=(height, width))


def test_plot_history_draws_each_panel_and_marks_the_best_epoch(history, tmp_path, drawn):
    plots.plot_history(history, tmp_path / "curves.png", test_accuracy=0.8)
    (fig,) = drawn
    loss, accuracy, learning_rate = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy", "Learning rate"]
    assert _labels(accuracy) == ["train", "validation", "test 80.00%", "best val. 90.00%, epoch 6"]
    train_line = accuracy.get_lines()[0]
    np.testing.assert_array_equal(train_line.get_xdata(), np.arange(1, 9))  # 1-based epochs
    np.testing.assert_allclose(train_line.get_ydata(), history["accuracy"])
    assert learning_rate.get_yscale() == "log"
    best_lines = [line for line in loss.get_lines() if list(line.get_xdata()) == [6, 6]]
    assert best_lines  # the best epoch's vertical line in the other panels too


def test_plot_history_accepts_a_keras_history_dict_without_epochs(tmp_path, drawn):
    history = {"loss": [1.0, 0.8, 0.7], "accuracy": [0.5, 0.6, 0.65]}  # no validation, no lr
    _assert_png(plots.plot_history(history, tmp_path / "curves.png"))
    assert [ax.get_title() for ax in drawn[0].axes] == ["Loss", "Accuracy"]
    with pytest.raises(ValueError, match="no loss, accuracy or learning-rate"):
        plots.plot_history({"top5": [0.9]}, tmp_path / "none.png")
    with pytest.raises(ValueError, match="same length"):
        plots.plot_history({"loss": [1.0], "accuracy": [0.5, 0.6]}, tmp_path / "none.png")


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix(matrix, tmp_path, normalize):
    out = plots.plot_confusion_matrix(matrix, CLASS_NAMES, tmp_path / "cm.png", normalize=normalize)
    assert out == tmp_path / "cm.png"
    _assert_png(out)


def test_plot_confusion_matrix_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"square.*Received: shape=\(2, 3\)"):
        plots.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(ValueError, match=r"len\(class_names\)=3"):
        plots.plot_confusion_matrix(np.eye(2), ["a", "b", "c"], tmp_path / "cm.png")
    assert not list(tmp_path.iterdir())


def test_interrupted_save_keeps_the_old_figure(history, tmp_path, monkeypatch):
    curves = plots.plot_history(history, tmp_path / "curves.png")
    before = curves.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots.Figure, "savefig", fail)
    with pytest.raises(KeyboardInterrupt):
        plots.plot_history(history, curves)
    assert curves.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary file left


def test_plot_time_to_accuracy_draws_each_run(tmp_path, drawn):
    runs = {
        "slow": (np.array([5.0, 10.0, 15.0, 20.0]), np.array([0.4, 0.5, 0.55, 0.6]), None),
        "fast": ([2.0, 4.0, 6.0], [0.5, 0.7, 0.8], 0.79),
    }
    out = plots.plot_time_to_accuracy(runs, tmp_path / "tta.png")
    assert out == tmp_path / "tta.png"
    _assert_png(out)
    (ax,) = drawn[0].axes
    assert _labels(ax) == ["slow (val.)", "fast (val.)", "fast: test 79.00%"]
    slow, fast, test_star = ax.get_lines()
    np.testing.assert_allclose(fast.get_xdata(), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(slow.get_ydata(), [0.4, 0.5, 0.55, 0.6])
    assert (list(test_star.get_xdata()), list(test_star.get_ydata())) == ([6.0], [0.79])
    assert test_star.get_color() == fast.get_color()  # the star is in its run's colour


def test_main_plots_each_folder(run_dir, capsys):
    assert plots.main([str(run_dir)]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(run_dir / "training_curves.png"), str(run_dir / "confusion_matrix.png")]
    for path in out:
        _assert_png(Path(path))


def test_main_missing_folder_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        plots.main([str(tmp_path / "nope")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_main_reports_a_folder_without_history_and_plots_the_others(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plots.main([str(empty), str(run_dir)]) == 1
    captured = capsys.readouterr()
    assert "history.csv" in captured.err
    assert str(run_dir / "training_curves.png") in captured.out


def test_main_reports_damaged_test_metrics(run_dir, capsys):
    (run_dir / run_folder.METRICS_FILE).write_text("{")
    assert plots.main([str(run_dir)]) == 1
    assert "Test metrics are not valid JSON" in capsys.readouterr().err


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
