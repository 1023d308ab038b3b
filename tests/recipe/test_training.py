"""train(config): the split, the run folder, resuming after SIGKILL, the CLI.

The expensive part is shared: one short synthetic run through the CLI, killed with
SIGKILL mid-run and resumed by the same command (two subprocesses), is the run folder
that the other checks read. The split and overwrite checks stop before any training.
The callbacks that make resuming exact are checked on their own in test_callbacks.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest
from processes import command_env, load_script, sigkill_when

from keras_resnet.recipe import data, run_folder, training
from keras_resnet.recipe.config import QUICK, TrainConfig
from keras_resnet.recipe.optimizers import TorchSGD
from keras_resnet.recipe.run_folder import RunFolderError, read_history
from keras_resnet.recipe.schedules import step_decay
from keras_resnet.recipe.training import train

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_SCRIPT = REPO_ROOT / "experiments" / "cifar10.py"
CIFAR10_JPEG_DIR = Path(
    os.environ.get("CIFAR10_JPEG_DIR", REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg")
)

# The short synthetic recipe: ResNet-20, 256 training images (204 fit + 52 validation),
# 64 test images, 3 epochs with a learning-rate drop after every epoch.
SYNTHETIC = dict(
    model="resnet20",
    synthetic=True,
    epochs=3,
    step_size=1,
    batch_size=64,
    train_subset=256,
    test_subset=64,
)
SYNTHETIC_FLAGS = [
    "--synthetic",
    "--model=resnet20",
    "--epochs=3",
    "--step-size=1",
    "--batch-size=64",
    "--train-subset=256",
    "--test-subset=64",
]
NUM_FIT, NUM_VAL = 204, 52  # int(256 * 0.8) and the rest
HISTORY_COLUMNS = {"epoch", "accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"}
RUN_FILES = {
    "config.json",
    "history.csv",
    "best.keras",
    "test_metrics.json",
    "training_curves.png",
    "confusion_matrix.png",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_config(output_dir, **overrides) -> TrainConfig:
    return TrainConfig(**{**SYNTHETIC, "verbose": 0, "output_dir": str(output_dir), **overrides})


def expected_synthetic_split(seed=42):
    """The shuffled training arrays train() should split: subset, then one seeded shuffle."""
    small = data.subset(data.make_synthetic(), 256, 64, seed=seed)
    x, y = data.shuffle_once(small.x_train, small.y_train, seed)
    return small, x, y


def _is_count_over(value: float, total: int) -> bool:
    """Whether a logged accuracy is k / total for a whole k (float32 rounding allowed)."""
    return abs(value * total - round(value * total)) < 1e-3


def stand_in_model(config, mean, std, num_classes, image_size=32) -> keras.Model:
    """A stand-in for ``training.build_training_model``'s ResNet, for checks of what
    surrounds it: building a ResNet is slow on JAX and not the point there."""
    channels_first = keras.config.image_data_format() == "channels_first"
    shape = (3, image_size, image_size) if channels_first else (image_size, image_size, 3)
    inputs = keras.Input(shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


# --------------------------------------------------------------------------- the split


class _StopBeforeTrainingError(Exception):
    pass


def test_split_fit_sees_the_first_80_percent_of_one_seeded_shuffle(tmp_path, monkeypatch):
    """What train() hands to fit, recorded in-process; nothing is trained."""
    shuffles, fits = [], []
    real_shuffle = data.shuffle_once

    def shuffle_spy(x, y, seed):
        shuffles.append({"n": len(x), "seed": seed})
        return real_shuffle(x, y, seed)

    def fit_spy(self, x=None, y=None, **kwargs):
        fits.append({"x": np.array(x.images), "y": np.array(x.labels), "batches": x, **kwargs})
        raise _StopBeforeTrainingError

    def build_spy(config, mean, std, num_classes, image_size=32):
        builds.append({"mean": np.asarray(mean), "std": np.asarray(std), "classes": num_classes})
        return stand_in_model(config, mean, std, num_classes, image_size)

    builds = []
    monkeypatch.setattr(data, "shuffle_once", shuffle_spy)
    monkeypatch.setattr(training, "build_training_model", build_spy)
    monkeypatch.setattr(keras.Model, "fit", fit_spy)
    config = synthetic_config(tmp_path)
    with pytest.raises(_StopBeforeTrainingError):
        train(config)

    assert shuffles == [{"n": 256, "seed": 42}]  # once, with the config's seed
    (fit,) = fits
    _, x_shuffled, y_shuffled = expected_synthetic_split()
    if keras.config.image_data_format() == "channels_first":
        x_shuffled = x_shuffled.transpose(0, 3, 1, 2)
    if fit.get("validation_data") is not None:
        x_val, y_val = (np.asarray(a) for a in fit["validation_data"])
        x_fit, y_fit = fit["x"], fit["y"]
    else:  # validation_split takes the last fraction of the arrays as given
        split = int(len(fit["x"]) * (1 - fit["validation_split"]))
        x_fit, y_fit = fit["x"][:split], fit["y"][:split]
        x_val, y_val = fit["x"][split:], fit["y"][split:]
    # fit trains on the first 0.8 N of the shuffled images and validates on the rest.
    assert (len(x_fit), len(x_val)) == (NUM_FIT, NUM_VAL)
    np.testing.assert_array_equal(x_fit, x_shuffled[:NUM_FIT])
    np.testing.assert_array_equal(y_fit, y_shuffled[:NUM_FIT])
    np.testing.assert_array_equal(x_val, x_shuffled[NUM_FIT:])
    np.testing.assert_array_equal(y_val, y_shuffled[NUM_FIT:])
    # Batches of 64 in an order of (seed, epoch); fit itself shuffles nothing.
    batches = fit["batches"]
    assert (batches.batch_size, batches.seed, fit["epochs"]) == (64, 42, 3)
    assert fit["shuffle"] is False and fit["validation_batch_size"] == 64
    record = json.loads((tmp_path / config.resolved_run_name() / "config.json").read_text())
    assert (record["train_images"], record["validation_images"]) == (NUM_FIT, NUM_VAL)
    assert record["test_images"] == 64
    # The model normalizes with statistics of the fit part only, not the validation part.
    (build,) = builds
    pixels = expected_synthetic_split()[1][:NUM_FIT].reshape(-1, 3).astype("float64")
    np.testing.assert_allclose(build["mean"], pixels.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(build["std"], pixels.std(axis=0), rtol=1e-9)
    assert build["classes"] == 10


# --------------------------------------------------------------------------- kill and resume


def _history_epochs(path: Path) -> list[int]:
    try:
        return [row["epoch"] for row in read_history(path, missing_ok=True)]
    except (OSError, ValueError, KeyError):
        return []


def _backed_up_epochs(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """The CLI on synthetic data, SIGKILLed mid-run, then the same command to the end.

    The first process is killed as soon as epoch 0 is finished *and backed up*, that is
    while epoch 1 (or, on a slow machine, 2) of 3 trains. The deadlines are generous:
    process start and compilation are slow on a busy 2-core machine.
    """
    work = tmp_path_factory.mktemp("cli")
    config = synthetic_config(work / "runs")
    run_dir = work / "runs" / config.resolved_run_name()
    command = [
        sys.executable,
        str(CLI_SCRIPT),
        *SYNTHETIC_FLAGS,
        "--verbose=2",
        "--output-dir=runs",
    ]
    env = command_env()
    if keras.backend.backend() == "jax":
        # The second process reuses what the first compiled (model build, train step):
        # about 30 s less on a busy 2-core machine. Nothing else changes.
        env["JAX_COMPILATION_CACHE_DIR"] = str(work / "jax-cache")
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    epochs = config.epochs

    returncode = sigkill_when(
        command,
        lambda: _backed_up_epochs(run_dir) >= 1,
        cwd=work,
        env=env,
        log=work / "first.log",
        waiting_for="backed-up epoch",
    )
    killed = types.SimpleNamespace(
        returncode=returncode,
        backed_up=_backed_up_epochs(run_dir),
        history=_history_epochs(run_dir / "history.csv"),
        finished=(run_dir / "test_metrics.json").exists() or not (run_dir / "backup").is_dir(),
    )
    if killed.finished:
        pytest.fail("the first run finished before the kill: make its epochs longer")

    second = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if second.returncode != 0:
        pytest.fail(f"the resumed run failed ({second.returncode}):\n{second.stderr[-3000:]}")
    return types.SimpleNamespace(
        config=config,
        output_dir=work / "runs",
        run_dir=run_dir,
        epochs=epochs,
        killed=killed,
        second=second,
        result=train(config),  # the stored result: nothing is trained here
        record=json.loads((run_dir / "config.json").read_text()),
        metrics=json.loads((run_dir / "test_metrics.json").read_text()),
        rows=read_history(run_dir / "history.csv"),
    )


def test_sigkill_mid_run_then_the_same_command_resumes(resumed_run):
    killed, epochs = resumed_run.killed, resumed_run.epochs
    assert killed.returncode == -signal.SIGKILL
    assert 1 <= killed.backed_up < epochs, "the kill did not land after epoch 0 and before the end"
    assert killed.history[: killed.backed_up] == list(range(killed.backed_up))
    # The second process resumed after the last backed-up epoch ("Epoch k/N" is 1-based)
    # instead of starting over at "Epoch 1/N", and trained only the epochs left.
    stdout = resumed_run.second.stdout
    started = [int(k) for k, n in re.findall(r"^Epoch (\d+)/(\d+)$", stdout, re.M)]
    assert started, stdout[-3000:]
    assert started[0] == killed.backed_up + 1 > 1
    assert started == list(range(killed.backed_up + 1, epochs + 1))
    # And the run ends as an uninterrupted one would: every epoch once, all files.
    assert [row["epoch"] for row in resumed_run.rows] == list(range(epochs))
    assert resumed_run.metrics["epochs_completed"] == epochs
    assert resumed_run.result.epochs_completed == epochs
    assert sum(map(sum, resumed_run.metrics["confusion_matrix"])) == 64


def test_run_folder_holds_exactly_the_documented_files(resumed_run):
    names = {p.name for p in resumed_run.run_dir.iterdir()}
    # No backup/ left behind, and no temporary ".partial" files from the atomic writes.
    assert names == RUN_FILES
    for name in ("training_curves.png", "confusion_matrix.png"):
        content = (resumed_run.run_dir / name).read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 1000


def test_config_json_records_backend_versions_seed_and_source(resumed_run):
    record, config = resumed_run.record, resumed_run.config
    # The CLI's flags made the same config as the Python one (same folder name too).
    assert record["config"] == dataclasses.replace(config, verbose=2, output_dir="runs").to_dict()
    assert record["config"]["seed"] == 42
    assert record["fingerprint"] == config.fingerprint()
    assert record["backend"] == keras.backend.backend()
    assert record["versions"]["keras"] == keras.__version__
    assert record["versions"]["numpy"] == np.__version__
    assert record["versions"]["python"]
    assert record["data_source"].startswith("synthetic")
    assert record["patience"] == config.resolved_patience
    assert (record["train_images"], record["validation_images"]) == (NUM_FIT, NUM_VAL)


def test_normalization_statistics_come_from_the_fit_part_of_the_seeded_shuffle(resumed_run):
    # Only the first 80% of shuffle_once(seed=42) gives these statistics: another seed,
    # a second shuffle or the validation images would change them.
    _, x_shuffled, _ = expected_synthetic_split()
    pixels = x_shuffled[:NUM_FIT].reshape(-1, 3).astype("float64")
    stats = resumed_run.record["normalization"]
    np.testing.assert_allclose(stats["mean"], pixels.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], pixels.std(axis=0), rtol=1e-9)


def test_logged_accuracies_count_the_split_images(resumed_run):
    # Keras accuracies are counts over the images seen: k/204 in training, k/52 in
    # validation, before and after the resume.
    for row in resumed_run.rows:
        assert _is_count_over(row["accuracy"], NUM_FIT), row
        assert _is_count_over(row["val_accuracy"], NUM_VAL), row


def test_history_has_one_row_per_epoch_and_the_scheduled_learning_rate(resumed_run):
    rows = resumed_run.rows
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert HISTORY_COLUMNS <= set(row)
        assert all(math.isfinite(row[key]) for key in ("accuracy", "loss", "learning_rate"))
    # step_size=1: a drop after every epoch, resumed epochs included.
    schedule = step_decay(0.1, 1, 0.1)
    np.testing.assert_allclose(
        [row["learning_rate"] for row in rows], [schedule(e) for e in range(3)], rtol=1e-6
    )
    columns = run_folder.history_columns(rows)
    assert columns["epoch"].tolist() == [0, 1, 2]


def test_test_metrics_json(resumed_run):
    metrics, rows = resumed_run.metrics, resumed_run.rows
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10)
    assert confusion.sum() == 64
    assert (confusion.sum(axis=1) > 0).all()  # the test subset is class-balanced
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion) / 64)
    assert metrics["test_loss"] > 0
    assert metrics["class_names"] == [f"class_{k}" for k in range(10)]
    best_row = max(rows, key=lambda row: row["val_accuracy"])  # first of equal values
    assert metrics["best_epoch"] == best_row["epoch"] + 1
    assert metrics["best_val_accuracy"] == pytest.approx(best_row["val_accuracy"])
    result = resumed_run.result
    assert result.run_dir == resumed_run.run_dir
    assert (result.test_accuracy, result.test_loss) == (
        metrics["test_accuracy"],
        metrics["test_loss"],
    )


def _predict_synthetic_test_set(model):
    small, _, _ = expected_synthetic_split()
    x_test = small.x_test
    if keras.config.image_data_format() == "channels_first":
        x_test = x_test.transpose(0, 3, 1, 2)
    return small.y_test, model.predict(x_test.astype("float32"), verbose=0)


def test_best_model_loads_without_custom_objects_and_takes_raw_images(resumed_run):
    model = keras.saving.load_model(resumed_run.run_dir / "best.keras")
    assert isinstance(model.optimizer, TorchSGD)
    assert model.optimizer.l2 == pytest.approx(5e-4)
    # Raw 0-255 images in (normalization is inside the model), probabilities out.
    labels, probabilities = _predict_synthetic_test_set(model)
    assert probabilities.shape == (64, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    # It is the model that produced test_metrics.json.
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, probabilities.argmax(axis=1)), 1)
    assert confusion.tolist() == resumed_run.metrics["confusion_matrix"]


def _no_training(*args, **kwargs):
    raise AssertionError("training started")


def test_rerun_returns_the_stored_result_without_training(resumed_run, monkeypatch):
    monkeypatch.setattr(training, "_train", _no_training)
    monkeypatch.setattr(keras.Model, "fit", _no_training)
    run_dir = resumed_run.run_dir
    files = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    history = (run_dir / "history.csv").read_bytes()
    again = train(resumed_run.config)
    # verbose is an execution field: still the same run.
    louder = train(dataclasses.replace(resumed_run.config, verbose=2))
    assert again == resumed_run.result == louder
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == files
    assert (run_dir / "history.csv").read_bytes() == history


def test_cli_rerun_returns_the_stored_result(resumed_run, cli, monkeypatch):
    monkeypatch.setattr(training, "_train", _no_training)
    metrics = cli.main([*SYNTHETIC_FLAGS, "--verbose=0", f"--output-dir={resumed_run.output_dir}"])
    assert metrics == dataclasses.asdict(resumed_run.result)


def test_kill_after_the_last_epoch_evaluates_without_refitting(resumed_run, tmp_path, monkeypatch):
    # A run killed after its last epoch but before test_metrics.json: the next start
    # must not fit again (there is nothing left to fit) and must report the best epoch.
    output_dir = tmp_path / "runs"
    run_dir = output_dir / resumed_run.run_dir.name
    shutil.copytree(resumed_run.run_dir, run_dir)
    for name in ("test_metrics.json", "training_curves.png", "confusion_matrix.png"):
        (run_dir / name).unlink()
    monkeypatch.setattr(keras.Model, "fit", _no_training)
    result = train(dataclasses.replace(resumed_run.config, output_dir=str(output_dir)))
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    for key in ("confusion_matrix", "best_epoch", "best_val_accuracy", "epochs_completed"):
        assert metrics[key] == resumed_run.metrics[key], key
    assert result.test_accuracy == resumed_run.result.test_accuracy
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES


def test_another_config_with_the_same_run_name_is_refused(resumed_run):
    other = dataclasses.replace(resumed_run.config, epochs=2, run_name=resumed_run.run_dir.name)
    before = (resumed_run.run_dir / "config.json").read_bytes()
    with pytest.raises(RunFolderError, match="another config"):
        train(other)
    assert (resumed_run.run_dir / "config.json").read_bytes() == before


def test_resume_of_a_fresh_folder_is_refused(tmp_path):
    config = synthetic_config(tmp_path)
    with pytest.raises(RunFolderError, match="Nothing to resume"):
        train(config, resume=True)
    assert not (tmp_path / config.resolved_run_name()).exists()


def test_overwrite_discards_a_finished_run_and_trains_again(tmp_path, monkeypatch):
    config = synthetic_config(tmp_path)
    run_dir = tmp_path / config.resolved_run_name()
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"fingerprint": config.fingerprint()}))
    stale = {field.name: -1 for field in dataclasses.fields(training.TrainResult)[1:]}
    (run_dir / "test_metrics.json").write_text(json.dumps(stale))
    (run_dir / "stale-marker.txt").write_text("from the earlier run")
    calls = []

    def train_spy(config_arg, run_dir_arg, *args, **kwargs):
        calls.append(sorted(p.name for p in run_dir_arg.iterdir()))
        return "trained"

    monkeypatch.setattr(training, "_train", train_spy)
    # Without overwrite the finished run's stored result comes back, untrained.
    assert train(config).test_accuracy == -1 and calls == []
    # With it, the folder is emptied and training starts in it.
    assert train(config, overwrite=True) == "trained"
    assert calls == [[]]
    assert run_dir.is_dir() and not (run_dir / "stale-marker.txt").exists()


# --------------------------------------------------------------------------- real data


def _mini_image_folder(root: Path, train_per_class: int, test_per_class: int) -> Path:
    """A small copy of the CIFAR-10 JPEG folder: the first N files of each class."""
    if not (CIFAR10_JPEG_DIR / "train").is_dir():
        pytest.skip(f"CIFAR-10 JPEG folder not found at {CIFAR10_JPEG_DIR} (set CIFAR10_JPEG_DIR)")
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for class_dir in sorted((CIFAR10_JPEG_DIR / split).iterdir()):
            target = root / split / class_dir.name
            target.mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:count]:
                shutil.copyfile(image, target / image.name)
    return root


@pytest.mark.slow
def test_short_real_data_run_learns(tmp_path):
    # 3,000 training images (2,400 fit), 1,000 test images, 2 epochs of ResNet-20 at
    # batch 64: measured test accuracy 0.23-0.28 on the three backends (chance: 0.10).
    # About 45 s on TensorFlow, minutes on jax and torch on a busy 2-core machine.
    folder = _mini_image_folder(tmp_path / "cifar10-mini", 300, 100)
    config = TrainConfig(
        model="resnet20",
        data_dir=str(folder),
        cache_dir=str(tmp_path / "cache"),
        epochs=2,
        batch_size=64,
        learning_rate=0.05,
        output_dir=str(tmp_path / "runs"),
        verbose=0,
    )
    result = train(config)
    record = json.loads((result.run_dir / "config.json").read_text())
    assert record["data_source"] == f"folder:{folder.resolve()}"
    assert (record["train_images"], record["validation_images"]) == (2400, 600)
    metrics = json.loads((result.run_dir / "test_metrics.json").read_text())
    assert metrics["class_names"] == list(data.CIFAR10_CLASSES)
    assert np.array(metrics["confusion_matrix"]).sum() == 1000
    # Chance is 0.10 (standard error 0.01 on 1,000 images).
    assert result.test_accuracy > 0.16, result


# --------------------------------------------------------------------------- your own folders


def _own_folder(root: Path) -> Path:
    """Three classes of mixed sizes, formats and modes, 6 training and 2 test images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    formats = [("png", "RGB"), ("jpg", "L"), ("webp", "RGB"), ("bmp", "RGB"), ("png", "RGBA")]
    for split, count in (("train", 6), ("test", 2)):
        for label, name in enumerate(("ant", "bee", "moth")):
            for i in range(count):
                suffix, mode = formats[(i + label) % len(formats)]
                size = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
                pixels = rng.integers(0, 255, (size[1], size[0], 3)).astype("uint8")
                pixels[..., label] = 255  # the class is a colour channel
                path = root / split / name / f"{i}.{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).convert(mode).save(path)
    return root


def test_a_streamed_folder_trains_exactly_as_its_decoded_arrays(tmp_path):
    folder = _own_folder(tmp_path / "bugs")
    results = {}
    for name, budget in (("arrays", 2048), ("streamed", 0)):
        config = TrainConfig(
            model="resnet20",
            data_dir=str(folder),
            image_size=16,
            memory_budget_mb=budget,
            cache_dir=str(tmp_path / "cache"),
            epochs=2,
            batch_size=4,
            output_dir=str(tmp_path / name),
            verbose=0,
        )
        result = train(config)
        record = json.loads((result.run_dir / "config.json").read_text())
        assert (record["image_size"], record["streamed"]) == (16, name == "streamed")
        metrics = json.loads((result.run_dir / "test_metrics.json").read_text())
        assert metrics["class_names"] == ["ant", "bee", "moth"]
        assert np.array(metrics["confusion_matrix"]).sum() == 6
        rows = [
            {k: v for k, v in r.items() if k != "epoch_seconds"}
            for r in read_history(result.run_dir / "history.csv")
        ]
        results[name] = rows, metrics["test_loss"]
    # The same batches of the same images, whether decoded up front or while training.
    (rows, loss), (streamed_rows, streamed_loss) = results["arrays"], results["streamed"]
    assert len(rows) == 2
    for want, have in zip(rows, streamed_rows, strict=True):
        assert have == pytest.approx(want, rel=1e-5)
    assert streamed_loss == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize(
    "size, stem, crop", [(32, "cifar", "random_pad_crop"), (128, "imagenet", "random_resized_crop")]
)
def test_the_stem_and_the_augmentation_follow_the_image_size(size, stem, crop):
    model = training.build_training_model(TrainConfig(), (120,) * 3, (60,) * 3, 5, size)
    names = {layer.name for layer in model.layers}
    backbone = model.get_layer("resnet18")
    has_pool = any(layer.name == "pool1_pool" for layer in backbone.layers)
    assert crop in names and has_pool == (stem == "imagenet")
    assert model.output.shape == (None, 5)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli():
    return load_script(CLI_SCRIPT, "cifar10_cli")


@pytest.mark.parametrize(
    "flags, reason",
    [
        (["--epochs", "-1"], "Received: epochs=-1"),
        (["--step-size", "0"], "Received: step_size=0"),
        (["--validation-fraction", "1.5"], "Received: validation_fraction=1.5"),
        (["--model", "resnet19"], "Received: model='resnet19'"),
        (["--data-dir", "/missing"], "Received: data_dir='/missing'"),
        (["--synthetic", "--data-dir", "."], "Received: data_dir='.', synthetic=True"),
        (["--precision", "fp8"], "Received: precision='fp8'"),
        (["--image-size", "4"], "Received: image_size=4"),
        (["--memory-budget-mb", "-1"], "Received: memory_budget_mb=-1"),
    ],
)
def test_cli_rejects_invalid_flags_with_status_2(cli, capsys, flags, reason):
    with pytest.raises(SystemExit) as info:
        cli.main(flags)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(reason), err
    assert err[-1].count("Received:") == 1


def test_cli_reports_run_folder_errors_with_status_2(cli, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        # Short-run flags, so that a regression trains for seconds, not hours.
        cli.main([*SYNTHETIC_FLAGS, "--epochs=1", "--resume", f"--output-dir={tmp_path}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("error: Nothing to resume")
    assert list(tmp_path.iterdir()) == []


def test_cli_help_lists_every_documented_flag(cli, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in [
        "--model",
        "--shortcut",
        "--epochs",
        "--batch-size",
        "--lr",
        "--momentum",
        "--weight-decay",
        "--step-size",
        "--gamma",
        "--patience",
        "--validation-fraction",
        "--seed",
        "--data-dir",
        "--synthetic",
        "--output-dir",
        "--precision",
        "--recipe",
        "--schedule",
        "--nesterov",
        "--label-smoothing",
        "--flip-test",
        "--quick",
        "--run-name",
        "--resume",
        "--overwrite",
    ]:
        assert re.search(rf"{re.escape(flag)}\b", text), flag


def test_cli_flags_map_onto_the_config(cli, tmp_path):
    config, _ = cli.parse_config(
        [
            "--model=resnet56",
            "--shortcut=projection",
            "--epochs=164",
            "--batch-size=64",
            "--lr=0.05",
            "--momentum=0.8",
            "--weight-decay=1e-4",
            "--step-size=82",
            "--gamma=0.2",
            "--patience=7",
            "--validation-fraction=0.1",
            "--seed=3",
            f"--data-dir={tmp_path}",
            "--train-subset=100",
            "--test-subset=50",
            "--precision=bf16",
            f"--output-dir={tmp_path / 'runs'}",
            "--verbose=2",
        ]
    )
    assert config == TrainConfig(
        model="resnet56",
        shortcut="projection",
        epochs=164,
        batch_size=64,
        learning_rate=0.05,
        momentum=0.8,
        weight_decay=1e-4,
        step_size=82,
        gamma=0.2,
        patience=7,
        validation_fraction=0.1,
        seed=3,
        data_dir=str(tmp_path),
        train_subset=100,
        test_subset=50,
        precision="bf16",
        output_dir=str(tmp_path / "runs"),
        verbose=2,
    )


def test_cli_without_flags_is_the_default_recipe(cli):
    config, _ = cli.parse_config([])
    assert config == TrainConfig()


def test_cli_quick_applies_the_quick_overrides(cli):
    config, _ = cli.parse_config(["--quick", "--synthetic"])
    assert config == TrainConfig(synthetic=True, **QUICK)


def test_cli_explicit_flags_win_over_quick(cli):
    # Even a flag that repeats the default (resnet18) wins over --quick's resnet20.
    config, _ = cli.parse_config(["--epochs=2", "--quick", "--model=resnet18", "--synthetic"])
    assert config.epochs == 2
    assert config.model == "resnet18"
    assert config.step_size == QUICK["step_size"]
    assert config.train_subset == QUICK["train_subset"]
    assert config.test_subset == QUICK["test_subset"]


def test_cli_main_trains_a_tiny_run_and_returns_its_test_metrics(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "build_training_model", stand_in_model)
    output_dir = tmp_path / "runs"
    flags = [
        "--synthetic",
        "--epochs=2",
        "--batch-size=16",
        "--train-subset=40",  # 32 to fit, 8 to validate
        "--test-subset=10",
        "--verbose=0",
        f"--output-dir={output_dir}",
    ]
    assert not output_dir.exists()  # loading the script (the fixture) ran nothing
    result = cli.main(flags)

    config, _ = cli.parse_config(flags)
    run_dir = output_dir / config.resolved_run_name()
    assert [p.name for p in output_dir.iterdir()] == [run_dir.name]
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    # main returns the run's TrainResult as a dict: what test_metrics.json and a rerun say.
    assert result == dataclasses.asdict(train(config))  # a rerun: the stored result
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert result == {
        "run_dir": run_dir,
        **{key: metrics[key] for key in result if key != "run_dir"},
    }
    rows = read_history(run_dir / "history.csv")
    assert result["epochs_completed"] == len(rows) == 2
    assert result["best_epoch"] == max(rows, key=lambda row: row["val_accuracy"])["epoch"] + 1
    assert _is_count_over(result["best_val_accuracy"], 8)
    assert _is_count_over(result["test_accuracy"], 10)
    assert sum(map(sum, metrics["confusion_matrix"])) == 10
    assert result["train_seconds"] == pytest.approx(sum(row["epoch_seconds"] for row in rows))


def test_history_rows_read_blank_cells_as_nan(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_accuracy,epoch_seconds\n0,1.5,0.4,\n1,1.2,0.5,3.0\n")
    rows = read_history(path)
    assert math.isnan(rows[0]["epoch_seconds"])
    assert rows[1] == {"epoch": 1, "loss": 1.2, "val_accuracy": 0.5, "epoch_seconds": 3.0}
