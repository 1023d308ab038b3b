"""Matplotlib figures of a run and a search, drawn from data (never from a folder).

Figures are built on ``matplotlib.figure.Figure`` without pyplot, so no GUI backend or
global figure state is involved, and written with ``keras_resnet.atomic``, so an
interrupted plot never leaves a truncated image. This module imports no Keras. Reading a
run folder is ``keras_resnet.recipe.run_folder``'s job; its ``plot_run`` calls these, as

    python -m keras_resnet.plots RUN_DIR [RUN_DIR ...]

does for several folders.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_resnet import atomic, extras
from keras_resnet.validation import float_or_nan

extras.require("matplotlib", "Drawing figures")

from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, PercentFormatter  # noqa: E402

DPI = 120
CURVES_FIGSIZE = (10.0, 4.0)  # inches; three panels (loss, accuracy, learning rate)
# Past this many classes the numbers in the cells would be unreadable; only colour is drawn.
MAX_ANNOTATED_CLASSES = 30

# Accuracy columns under the names Keras uses for `metrics=["accuracy"]` and friends.
_ACCURACY_KEYS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "acc")
_LEARNING_RATE_KEYS = ("learning_rate", "lr")
_TRAIN_COLOR, _VAL_COLOR, _BEST_COLOR = "tab:blue", "tab:orange", "tab:green"


def plot_history(
    history,
    path: str | os.PathLike,
    *,
    title: str = "Training curves",
    test_accuracy: float | None = None,
) -> Path:
    """Plot loss, accuracy and learning rate per epoch into one image.

    Panels: loss (train vs validation), accuracy (train vs validation) and, when
    logged, the learning rate on a log scale. Epochs are 1-based on the x axis. The
    epoch with the best validation accuracy (or, without one, the lowest validation
    loss) is marked in every panel. Panels or lines without data are left out.

    Args:
        history: ``{column: values}`` (``run_folder.history_columns``), a Keras
            ``History.history`` dict (no ``epoch`` key: epochs count from 0), or a
            ``keras.callbacks.History``.
        path: the image file to write; its suffix picks the format (PNG for ``.png``).
        title: the figure title.
        test_accuracy: when given, drawn as a horizontal line in the accuracy panel.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Example:
        >>> plot_history({"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}, "curves.png")
        PosixPath('curves.png')
    """
    data = _as_float_columns(getattr(history, "history", history))
    length = len(next(iter(data.values()), ()))
    epochs = data.pop("epoch", np.arange(length, dtype=float)) + 1

    acc_key = next((k for k in _ACCURACY_KEYS if _has(data, k) or _has(data, f"val_{k}")), None)
    lr_key = next((k for k in _LEARNING_RATE_KEYS if _has(data, k)), None)
    has_loss = _has(data, "loss") or _has(data, "val_loss")
    if not (has_loss or acc_key or lr_key):
        raise ValueError(
            "`history` has no loss, accuracy or learning-rate values to plot. "
            f"Received: columns={sorted(data)}"
        )
    best = _best_epoch(data, acc_key)

    panels = [
        name for name, present in [("loss", has_loss), ("acc", acc_key), ("lr", lr_key)] if present
    ]
    fig = Figure(figsize=CURVES_FIGSIZE, dpi=DPI, layout="constrained")
    axes = dict(zip(panels, fig.subplots(1, len(panels), squeeze=False)[0], strict=True))
    markers = {"marker": "o", "markersize": 3} if len(epochs) <= 30 else {}

    if "loss" in axes:
        ax = axes["loss"]
        _line(ax, epochs, data.get("loss"), "train", _TRAIN_COLOR, markers)
        _line(ax, epochs, data.get("val_loss"), "validation", _VAL_COLOR, markers)
        ax.set(title="Loss", xlabel="epoch", ylabel="loss")
    if "acc" in axes:
        ax = axes["acc"]
        _line(ax, epochs, data.get(acc_key), "train", _TRAIN_COLOR, markers)
        _line(ax, epochs, data.get(f"val_{acc_key}"), "validation", _VAL_COLOR, markers)
        if test_accuracy is not None:
            ax.axhline(
                test_accuracy,
                color="tab:red",
                linestyle=":",
                linewidth=1.2,
                label=f"test {test_accuracy:.2%}",
            )
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    if "lr" in axes:
        ax = axes["lr"]
        lr = data[lr_key]
        positive = np.where(lr > 0, lr, np.nan)
        ax.plot(epochs, positive, color="tab:purple", drawstyle="steps-mid", label="learning rate")
        if np.isfinite(positive).any():
            ax.set_yscale("log")
        ax.set(title="Learning rate", xlabel="epoch", ylabel="learning rate (log scale)")

    if best is not None:
        index, key, label = best
        for ax in axes.values():
            ax.axvline(epochs[index], color=_BEST_COLOR, linestyle="--", linewidth=1, alpha=0.8)
        target = axes["acc" if key != "val_loss" else "loss"]
        target.plot(
            epochs[index],
            data[key][index],
            marker="*",
            markersize=12,
            linestyle="none",
            color=_BEST_COLOR,
            label=f"{label}, epoch {epochs[index]:.0f}",
            zorder=5,
        )

    # Falling loss leaves the upper right free, rising accuracy the lower right.
    legend_places = {"loss": "upper right", "acc": "lower right", "lr": "best"}
    for name, ax in axes.items():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc=legend_places[name], fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_confusion_matrix(
    matrix,
    class_names: Sequence[str] | None,
    path: str | os.PathLike,
    normalize: bool = True,
    *,
    title: str = "Confusion matrix",
) -> Path:
    """Draw a confusion matrix as a heat map with the value written in each cell.

    Rows are the true class and columns the predicted class. With ``normalize`` each
    row is divided by its total (the diagonal is then the per-class recall); else
    the raw counts are shown. The title gives the overall accuracy (trace / total).

    Args:
        matrix: square array of counts, ``matrix[true, predicted]``.
        class_names: one name per row, or None for ``0 .. n-1``.
        path: the image file to write; its suffix picks the format.
        normalize: show row fractions instead of counts.
        title: the first line of the figure title.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Example:
        >>> plot_confusion_matrix([[9, 1], [2, 8]], ["cat", "dog"], "cm.png")
        PosixPath('cm.png')
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(
            f"`matrix` must be a non-empty square 2-D array. Received: shape={counts.shape}"
        )
    n = counts.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(
            f"`class_names` must have one name per row of `matrix` ({n}). "
            f"Received: len(class_names)={len(names)}"
        )

    total = counts.sum()
    accuracy = np.trace(counts) / total if total > 0 else math.nan
    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        vmax, colorbar_label = 1.0, "fraction of the true class"
    else:
        values = counts
        vmax, colorbar_label = max(counts.max(), 1.0), "count"

    side = min(max(4.0, 0.5 * n + 2.5), 16.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.85, label=colorbar_label)

    ticks = np.arange(n)
    ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.tick_params(length=0)
    ax.set_xticks(ticks[:-1] + 0.5, minor=True)
    ax.set_yticks(ticks[:-1] + 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)

    if n <= MAX_ANNOTATED_CLASSES:
        fontsize = 9 if n <= 12 else 7
        for (row, col), value in np.ndenumerate(values):
            text = _cell_text(value, normalize)
            color = "white" if value > 0.5 * vmax else "black"
            ax.text(col, row, text, ha="center", va="center", color=color, fontsize=fontsize)

    accuracy_text = "n/a" if math.isnan(accuracy) else f"{accuracy:.2%}"
    kind = "row-normalized" if normalize else "counts"
    ax.set_title(f"{title} ({kind})\naccuracy {accuracy_text} of {int(total):,} samples")
    return save_figure(fig, path)


SEARCH_SCATTER_FILE = "search_hyperparameters.png"
SEARCH_CURVES_FILE = "search_best_curves.png"
# Searched values drawn on a log axis; others (step size, depth choices) on a linear one.
_LOG_SCALE_HYPERPARAMETERS = ("learning_rate", "gamma", "weight_decay")


def plot_search(
    rows: Sequence[Mapping],
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    out_dir: str | os.PathLike,
    hyperparameters: Sequence[str] = ("learning_rate", "step_size"),
    num_curves: int = 5,
) -> list[Path]:
    """The figures of a hyperparameter search, written into ``out_dir``.

    ``search_hyperparameters.png`` has one panel per hyperparameter: each finished trial's
    best validation accuracy against its value (colored by the first other
    hyperparameter, the best trial ringed). ``search_best_curves.png`` has the
    validation accuracy per epoch of the ``num_curves`` best trials.

    Args:
        rows: one mapping per trial (``tuning.summarize``): ``trial_id``,
            ``best_val_accuracy`` and the hyperparameters' values.
        histories: trial id -> its history columns (``run_folder.history_columns``).
        out_dir: the folder to write into.
        hyperparameters: the columns to plot against.
        num_curves: how many of the best trials' curves to draw.

    Example:
        >>> plot_search(rows, histories, "searches/lr")  # doctest: +SKIP
    """
    finished = [row for row in rows if math.isfinite(float_or_nan(row.get("best_val_accuracy")))]
    if not finished:
        raise ValueError("No finished trial to plot: every `best_val_accuracy` is missing.")
    finished.sort(key=lambda row: -float(row["best_val_accuracy"]))
    accuracy = np.array([float(row["best_val_accuracy"]) for row in finished])
    out_dir = Path(out_dir)

    fig = Figure(figsize=(4.5 * len(hyperparameters), 4.0), layout="constrained")
    axes = fig.subplots(1, len(hyperparameters), squeeze=False)[0]
    for ax, name in zip(axes, hyperparameters, strict=True):
        x = [row.get(name) for row in finished]
        numeric = all(isinstance(value, (int, float)) for value in x)
        positions = np.array(x, dtype=float) if numeric else _category_positions(ax, x)
        others = [other for other in hyperparameters if other != name]
        color_by = others[0] if others else None
        colors = [float_or_nan(row.get(color_by)) for row in finished] if color_by else None
        if colors is not None and np.isfinite(colors).all():
            log_colors = color_by in _LOG_SCALE_HYPERPARAMETERS and min(colors) > 0
            norm = LogNorm() if log_colors else None
            points = ax.scatter(positions, accuracy, c=colors, cmap="viridis", norm=norm, zorder=2)
            colorbar = fig.colorbar(points, ax=ax, label=color_by)
            colorbar.ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.scatter(positions, accuracy, color=_VAL_COLOR, zorder=2)
        ax.scatter(
            positions[:1],
            accuracy[:1],
            s=160,
            facecolors="none",
            edgecolors="red",
            label=f"best: {accuracy[0]:.2%}",
            zorder=3,
        )
        if numeric and name in _LOG_SCALE_HYPERPARAMETERS:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # labels only at powers of ten
        ax.set_xlabel(name)
        ax.set_ylabel("best validation accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle(f"{len(finished)} trials")
    paths = [save_figure(fig, out_dir / SEARCH_SCATTER_FILE)]

    fig = Figure(figsize=CURVES_FIGSIZE, layout="constrained")
    ax = fig.subplots()
    for rank, row in enumerate(finished[:num_curves]):
        history = _as_float_columns(histories.get(str(row["trial_id"]), {}))
        if not _has(history, "val_accuracy"):
            continue
        epochs = (
            history["epoch"] + 1
            if "epoch" in history
            else np.arange(1, len(history["val_accuracy"]) + 1)
        )
        label = ", ".join(f"{name}={_short(row.get(name))}" for name in hyperparameters)
        ax.plot(
            epochs,
            history["val_accuracy"],
            marker="o",
            markersize=3,
            linewidth=2.0 if rank == 0 else 1.2,
            label=f"#{rank + 1} {label}",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(f"Validation accuracy of the {min(num_curves, len(finished))} best trials")
    paths.append(save_figure(fig, out_dir / SEARCH_CURVES_FILE))
    return paths


def plot_time_to_accuracy(
    runs: Mapping[str, tuple[Sequence[float], Sequence[float], float | None]],
    path: str | os.PathLike,
    *,
    title: str = "Validation accuracy against training time",
) -> Path:
    """Validation accuracy of several runs against their cumulative training wall time.

    Args:
        runs: legend label -> (cumulative minutes after each epoch, validation accuracy
            after each epoch, test accuracy or None); a test accuracy is drawn as a star
            at the run's last epoch (``run_folder.time_and_accuracy`` gives the first two).
        path: the image file to write.
        title: the figure title.

    Example:
        >>> plot_time_to_accuracy({"step": ([1.0, 2.0], [0.5, 0.6], 0.61)}, "tta.png")
        PosixPath('tta.png')
    """
    fig = Figure(figsize=(7.0, 4.5), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for label, (minutes, accuracy, test_accuracy) in runs.items():
        (line,) = ax.plot(minutes, accuracy, marker="o", markersize=3, label=f"{label} (val.)")
        if test_accuracy is not None:
            ax.plot(
                minutes[-1],
                test_accuracy,
                marker="*",
                markersize=13,
                linestyle="none",
                color=line.get_color(),
                label=f"{label}: test {test_accuracy:.2%}",
            )
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title)
    return save_figure(fig, path)


def _category_positions(ax, values) -> np.ndarray:
    """Positions 0..k-1 for categorical values, labelled on the x axis."""
    categories = list(dict.fromkeys(str(value) for value in values))
    ax.set_xticks(range(len(categories)), categories)
    return np.array([categories.index(str(value)) for value in values], dtype=float)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: redraw the figures of each run folder given.

    Exits with status 2 (nothing plotted) when a folder does not exist; returns 1
    when some folder could not be plotted (the others still are), else 0.

    Example:
        >>> main(["runs/resnet18", "runs/resnet56"])  # doctest: +SKIP
        0
    """
    from keras_resnet.recipe import run_folder

    parser = argparse.ArgumentParser(
        # "keras-resnet plots" when the one command runs it.
        prog=sys.argv[0]
        if sys.argv[0].startswith("keras-resnet")
        else "python -m keras_resnet.plots",
        description=f"Redraw {run_folder.CURVES_FILE} and {run_folder.CONFUSION_FILE} in "
        "training run folders.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folder")
    args = parser.parse_args(argv)

    missing = [str(d) for d in args.run_dirs if not d.is_dir()]
    if missing:
        parser.exit(2, f"{parser.prog}: error: run folder not found: {', '.join(missing)}\n")
    status = 0
    for run_dir in args.run_dirs:
        try:
            for path in run_folder.plot_run(run_dir):
                print(path)
        except (OSError, ValueError) as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            status = 1
    return status


def _as_float_columns(history) -> dict[str, np.ndarray]:
    if not isinstance(history, Mapping):
        raise TypeError(
            "`history` must be a mapping of column name to values or a keras History. "
            f"Received: type={type(history).__name__}"
        )
    data = {str(k): np.asarray(v, dtype=float).reshape(-1) for k, v in history.items()}
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise ValueError(
            "All `history` columns must have the same length. "
            f"Received: lengths={ {k: len(v) for k, v in data.items()} }"
        )
    return data


def _has(data: Mapping[str, np.ndarray], key: str | None) -> bool:
    """Whether ``key`` is a column with at least one finite value (CSVLogger writes NA)."""
    return key in data and bool(np.isfinite(data[key]).any())


def _best_epoch(data, acc_key) -> tuple[int, str, str] | None:
    """Index, column and legend label of the best validation epoch, if any."""
    val_acc = f"val_{acc_key}"
    if acc_key and _has(data, val_acc):
        index = int(np.nanargmax(data[val_acc]))
        return index, val_acc, f"best val. {data[val_acc][index]:.2%}"
    if _has(data, "val_loss"):
        index = int(np.nanargmin(data["val_loss"]))
        return index, "val_loss", f"best val. {data['val_loss'][index]:.4g}"
    return None


def _line(ax, epochs, values, label, color, markers) -> None:
    if values is not None and np.isfinite(values).any():
        ax.plot(epochs, values, label=label, color=color, linewidth=1.5, **markers)


def _cell_text(value: float, normalize: bool) -> str:
    return f"{value:.2f}" if normalize else f"{value:.0f}"


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically; the suffix of ``path`` picks the format (PNG for ``.png``).

    Example:
        >>> save_figure(Figure(), "figure.png")
        PosixPath('figure.png')
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI))


if __name__ == "__main__":
    sys.exit(main())
