"""The run folder: every file a training run leaves, its one writer and its one reader.

    config.json               the resolved config: backend, versions, seed, data source
    history.csv               one row per finished epoch, rewritten whole each epoch
    best.keras                the best epoch's model (raw 0-255 images in, probabilities out)
    test_metrics.json         test accuracy and loss, confusion matrix (written last)
    training_curves.png       loss, accuracy and learning rate per epoch
    confusion_matrix.png      the test confusion matrix, row-normalized
    backup/                   BackupAndRestore's state while the run is unfinished
    tensorboard/              TensorBoard's event files (--tensorboard): train/, validation/

Every file is written with ``keras_resnet.atomic``; ``history.csv`` is read only by
``read_history``. Running the same config again resumes an unfinished run from its last
finished epoch and returns the stored result of a finished one.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import platform
import shutil
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from keras_resnet import atomic, hardware
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.validation import float_or_nan

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
METRICS_FILE = "test_metrics.json"
CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"
# The metric early stopping and the best epoch are chosen on.
MONITOR = "val_accuracy"


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (another config, nothing to resume, a
    damaged file)."""


# What a damaged run folder's message offers: the files are never changed for the user.
DAMAGED_WAY_OUT = "Restore the file, or use --overwrite to discard the run and train it again."
BACKUP_METADATA_FILE = "training_metadata.json"
BACKUP_WEIGHTS_FILE = "latest.weights.h5"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def read_history(path: str | os.PathLike, *, missing_ok: bool = False) -> list[dict]:
    """The rows of a ``history.csv``, one per epoch in epoch order.

    ``epoch`` is an int (0-based, as Keras logs it); every other value a float, NaN for a
    blank or non-numeric cell (a column that appeared in a later epoch; ``NA``). Where an
    epoch appears twice (a run resumed by another writer), the last row wins; a malformed
    row (more cells than the header) is skipped with a warning.

    Raises:
        FileNotFoundError: no such file, unless ``missing_ok`` (then ``[]``).
        ValueError: the file is empty or has no ``epoch`` column.

    Example:
        >>> read_history("runs/x/history.csv")[0]["epoch"]  # doctest: +SKIP
        0
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            lines = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        if missing_ok:
            return []
        raise FileNotFoundError(f"Training history not found: {path}") from None
    if not lines:
        raise ValueError(f"Training history is empty: {path}")
    header = [name.strip() for name in lines[0]]
    if "epoch" not in header:
        raise ValueError(f"Training history has no 'epoch' column: {path}. Received: {header}")
    epoch_index = header.index("epoch")
    by_epoch: dict[int, dict] = {}
    for number, line in enumerate(lines[1:], start=2):
        if len(line) > epoch_index and line[epoch_index].strip() == "epoch":  # a repeated header
            continue
        row = dict(zip(header, map(float_or_nan, line), strict=False))
        if len(line) > len(header) or not math.isfinite(row.get("epoch", math.nan)):
            warnings.warn(f"{path}: skipping malformed row {number}: {line}", stacklevel=2)
            continue
        row = {name: row.get(name, math.nan) for name in header}  # a row cut short
        row["epoch"] = int(row["epoch"])
        by_epoch[row["epoch"]] = row
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def history_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """History rows as one array per column (``epoch`` an int array), for the figures.

    Example:
        >>> history_columns([{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5}])["loss"]
        array([2. , 1.5])
    """
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {
        name: np.array([row.get(name, math.nan) for row in rows], dtype=float) for name in names
    }
    if "epoch" in columns:
        columns["epoch"] = columns["epoch"].astype(int)
    return columns


def write_history(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write history rows, ``epoch`` first and the other columns sorted, atomically.

    Example:
        >>> write_history("runs/x/history.csv", [{"epoch": 0, "loss": 2.0}])  # doctest: +SKIP
    """
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    return atomic.write_csv(path, rows, ["epoch", *keys])


def read_test_metrics(path: str | os.PathLike) -> dict:
    """A run's ``test_metrics.json``, checked: a file that is not JSON, or not the test
    metrics (no confusion matrix), raises a ``ValueError`` that names it.

    Example:
        >>> read_test_metrics("runs/x/test_metrics.json")["test_accuracy"]  # doctest: +SKIP
        0.863
    """
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"Test metrics are not valid JSON: {path} ({exc})") from None
    if not isinstance(metrics, dict) or "confusion_matrix" not in metrics:
        raise ValueError(f"Test metrics have no 'confusion_matrix': {path}")
    return metrics


def best_row(rows: list[dict]) -> dict:
    """The first epoch with the highest validation accuracy (EarlyStopping's choice).

    Example:
        >>> best_row([{"epoch": 0, "val_accuracy": 0.5}, {"epoch": 1, "val_accuracy": 0.4}])
        {'epoch': 0, 'val_accuracy': 0.5}
    """
    return max(rows, key=lambda row: -math.inf if math.isnan(row[MONITOR]) else row[MONITOR])


def training_complete(rows: list[dict], config: TrainConfig, epochs: int | None = None) -> bool:
    """Whether history rows already reach the last epoch or the stopping point.

    EarlyStopping stops at epoch ``e`` when ``e - best_epoch >= patience``. ``epochs`` is
    the number of epochs the run trains for, where ``max_steps`` makes it fewer than
    ``config.epochs``.

    Example:
        >>> training_complete([], TrainConfig())
        False
    """
    if not rows:
        return False
    last_epoch = rows[-1]["epoch"]
    if last_epoch + 1 >= (epochs or config.epochs):
        return True
    return last_epoch - best_row(rows)["epoch"] >= config.resolved_patience


def environment(source: str) -> dict:
    """Where and with what a run trains: backend, data format, versions, data, platform,
    the device and the machine (CPU model and flags: ``hardware.machine_record``).

    Example:
        >>> environment("synthetic")["data_source"]  # doctest: +SKIP
        'synthetic'
    """
    import keras  # here, so that plotting a run folder imports no backend

    versions = {"python": platform.python_version(), "keras": keras.__version__}
    for module in ("numpy", "tensorflow", "jax", "torch"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "unknown")
    return {
        "backend": keras.backend.backend(),
        "image_data_format": keras.config.image_data_format(),
        "versions": versions,
        "data_source": source,
        "platform": platform.platform(),
        "device": hardware.training_device(),
        "machine": hardware.machine_record(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def prepare_run_dir(
    config: TrainConfig, *, resume: bool = False, overwrite: bool = False, create: bool = True
):
    """The run folder for ``config``, and whether it already holds a finished run.

    ``create=False`` checks a folder another process made (the processes of a
    multi-process run besides process 0, which prepares it): it must exist here.

    Example:
        >>> run_dir, finished = prepare_run_dir(TrainConfig(synthetic=True))  # doctest: +SKIP
    """
    run_dir = Path(config.output_dir) / config.resolved_run_name()
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    config_path = run_dir / CONFIG_FILE
    if resume and not config_path.exists():
        raise RunFolderError(
            f"Nothing to resume: {run_dir} holds no run. Start it without --resume."
        )
    if config_path.exists():
        stored = read_json_object(config_path, "fingerprint")
        if stored.get("fingerprint") != config.fingerprint():
            raise RunFolderError(
                f"{run_dir} holds a run with another config (fingerprint "
                f"{stored.get('fingerprint')} != {config.fingerprint()}). Use another "
                "--run-name, or --overwrite to discard it."
            )
    if not create:
        if not run_dir.is_dir():
            raise RunFolderError(
                f"The run folder {run_dir}, which process 0 prepared, is not here: every "
                "process of a run must see the same run folder. Put --output-dir on a "
                "filesystem every host shares, at the same path on each."
            )
        return run_dir, (run_dir / METRICS_FILE).exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(
            f"Cannot create the run folder {run_dir}: {error.strerror or error}. Choose an "
            f"--output-dir that can be written. Received: output_dir={config.output_dir!r}"
        ) from None
    finished = (run_dir / METRICS_FILE).exists()
    if config_path.exists() and not finished:
        check_resumable(run_dir)
    return run_dir, finished


def damaged_error(path: Path, problem: str) -> RunFolderError:
    """The error for a run folder's damaged file: its path, the problem, the way out.

    Example:
        >>> str(damaged_error(Path("run/config.json"), "it is empty")).split(". ")[0]
        'run/config.json is damaged: it is empty'
    """
    return RunFolderError(f"{path} is damaged: {problem}. {DAMAGED_WAY_OUT}")


def read_json_object(path: Path, key: str | None = None) -> dict:
    """``path``'s JSON object (holding ``key`` if given); a RunFolderError naming it if not.

    Example:
        >>> read_json_object(Path("runs/x/config.json"), "fingerprint")  # doctest: +SKIP
    """
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise damaged_error(path, f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise damaged_error(path, f"a JSON {type(value).__name__}, not an object")
    if key is not None and key not in value:
        raise damaged_error(path, f"it has no {key!r}")
    return value


def check_resumable(run_dir: str | os.PathLike) -> None:
    """Check the files an unfinished run resumes from, before any data is loaded.

    ``history.csv`` must be readable, ``best.keras`` a Keras zip archive, the backup's
    metadata a JSON object with an epoch count and its weights an HDF5 file: Keras would
    otherwise fail on them only after the data has loaded, or mid-run. A missing file is
    fine (a run killed early).

    Raises:
        RunFolderError: naming the damaged file, and the way out.

    Example:
        >>> check_resumable("runs/resnet20-seed42-1d90e43b")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    history = run_dir / HISTORY_FILE
    if history.exists():
        try:
            read_history(history)
        except UnicodeDecodeError:
            raise damaged_error(history, "not text") from None
        except ValueError as error:
            problem = "it is empty" if "empty" in str(error) else "no 'epoch' column"
            raise damaged_error(history, problem) from None
    best = run_dir / BEST_MODEL_FILE
    if best.exists() and not _is_keras_archive(best):
        raise damaged_error(best, "not a Keras archive (a zip with config.json)")
    metadata = run_dir / BACKUP_DIR / BACKUP_METADATA_FILE
    if metadata.exists():
        epoch = read_json_object(metadata, "epoch")["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise damaged_error(metadata, f"its epoch is not a count of epochs: {epoch!r}")
    weights = run_dir / BACKUP_DIR / BACKUP_WEIGHTS_FILE
    if weights.exists():
        with weights.open("rb") as f:
            if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                raise damaged_error(weights, "not an HDF5 weights file")


def _is_keras_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Draw a run folder's figures beside its data (``python -m keras_resnet.plots``).

    ``training_curves.png`` from ``history.csv`` and, once ``test_metrics.json`` exists,
    ``confusion_matrix.png`` (row-normalized); the test accuracy is drawn in the curves.

    Raises:
        FileNotFoundError: the folder or its ``history.csv`` does not exist.
        ValueError: a file in it is empty or malformed.

    Example:
        >>> [path.name for path in plot_run("runs/x")]  # doctest: +SKIP
        ['training_curves.png', 'confusion_matrix.png']
    """
    from keras_resnet import plots

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run folder not found: {run_dir}")
    rows = read_history(run_dir / HISTORY_FILE)
    if not rows:
        raise ValueError(f"Training history has a header but no rows: {run_dir / HISTORY_FILE}")
    metrics_path = run_dir / METRICS_FILE
    metrics = read_test_metrics(metrics_path) if metrics_path.exists() else None
    name = run_dir.resolve().name
    paths = [
        plots.plot_history(
            history_columns(rows),
            run_dir / CURVES_FILE,
            title=f"Training curves: {name}",
            test_accuracy=None if metrics is None else metrics.get("test_accuracy"),
        )
    ]
    if metrics is not None:
        paths.append(
            plots.plot_confusion_matrix(
                metrics["confusion_matrix"],
                metrics.get("class_names"),
                run_dir / CONFUSION_FILE,
                title=f"Test confusion matrix: {name}",
            )
        )
    return paths


def time_and_accuracy(run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A run's cumulative training minutes and validation accuracy after each epoch.

    Example:
        >>> minutes, accuracy = time_and_accuracy("runs/x")  # doctest: +SKIP
    """
    path = Path(run_dir) / HISTORY_FILE
    columns = history_columns(read_history(path))
    for column in ("epoch_seconds", MONITOR):
        if column not in columns or not np.isfinite(columns[column]).any():
            raise ValueError(f"{path} has no {column!r} values to plot against time.")
    return np.cumsum(np.nan_to_num(columns["epoch_seconds"])) / 60, columns[MONITOR]
