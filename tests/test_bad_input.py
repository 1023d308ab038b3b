"""The bad-input table of docs/errors.md: every refused input with its exact message.

Each command case runs ``keras-resnet`` in this process and must exit with status 2, its
message the last line on stderr; each Python case must raise its exception with the exact
message. A finished run sits in the output folder the commands are pointed at, and its files
must be byte-identical after every case; a damaged run folder must be too, after its refusal.

``python tests/test_bad_input.py`` prints the table as docs/errors.md holds it (a test checks
that it does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "errors.md"
# The run every command case is pointed at: tiny, so the module trains it in seconds.
TINY = (
    "--synthetic",
    "--model=resnet20",
    "--epochs=2",
    "--batch-size=64",
    "--train-subset=128",
    "--test-subset=32",
    "--verbose=0",
    "--seed=0",
)
# How the placeholders of a message read in the docs.
SHOWN = {
    "{dir}": "DIR",
    "{out}": "OUT",
    "{run}": "RUN",
    "{name}": "resnet20-seed0-FP",
    "{fingerprint}": "FP",
}
DAMAGED = "Restore the file, or use --overwrite to discard the run and train it again."
MODELS = (
    "resnet18, resnet34, resnet50, resnet101, resnet152, resnet20, resnet32, resnet44, "
    "resnet56, resnet110, resnet50_v1, resnet101_v1, resnet152_v1, resnet18_v2, resnet34_v2, "
    "resnet50_v2, resnet101_v2, resnet152_v2, resnet50d, resnet101d, resnet152d, "
    "preact_resnet110, preact_resnet164, preact_resnet1001, wrn16_8, wrn28_10, wrn40_4"
)
WEIGHTS_ARGUMENT = (
    "`weights` must be None, one of 'imagenet', 'imagenet_v2' (published weights), or the path "
    "of an existing weights file (.weights.h5, .keras, a torchvision .pth, or a "
    "keras.applications .h5)."
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One refused input: what the user gave, and the message that answers it.

    ``argv`` is a ``keras-resnet`` command line; ``call`` a Python call given the case's
    folder. ``setup(folder, templates)`` writes the files the case needs first. ``{dir}``
    (the case's folder), ``{out}`` (the finished run's output folder), ``{run}`` (the
    damaged run folder), ``{name}`` (the run folder's name) and ``{fingerprint}`` (its
    config's) stand for paths and names in ``argv`` and ``message``.
    """

    group: str
    given: str
    message: str
    argv: tuple[str, ...] = ()
    call: Callable[[Path], object] | None = None
    error: type[Exception] = ValueError
    setup: Callable[[Path, dict], None] | None = None
    damaged: bool = False  # the case's run folder must be unchanged by the refusal


def train(*flags: str) -> tuple[str, ...]:
    return ("train", *TINY, "--output-dir={out}", *flags)


def flag(given: str, message: str, *flags: str) -> Case:
    return Case("flags", given, f"keras-resnet train: error: {message}", argv=train(*flags))


FLAG_CASES = [
    flag("an unknown flag", "unrecognized arguments: --epoks=3", "--epoks=3"),
    flag(
        "zero epochs",
        "`epochs` must be an integer of at least 1. Received: epochs=0",
        "--epochs=0",
    ),
    flag(
        "a batch size that is not a number",
        "argument --batch-size: invalid int value: 'big'",
        "--batch-size=big",
    ),
    flag(
        "a negative learning rate",
        "`learning_rate` must be a number > 0.0. Received: learning_rate=-0.1",
        "--lr=-0.1",
    ),
    flag(
        "a learning rate of NaN",
        "`learning_rate` must be a number > 0.0. Received: learning_rate=nan",
        "--lr=nan",
    ),
    flag(
        "an unknown precision",
        "`precision` must be one of fp32, bf16, fp16. Received: precision='fp8'",
        "--precision=fp8",
    ),
    flag(
        "an unknown model",
        f"Unknown `model`. Available: {MODELS}. Received: model='resnet19'",
        "--model=resnet19",
    ),
    flag(
        "an unknown shortcut",
        "`shortcut` must be one of zero_pad, projection, projection_all, none, avg_projection, "
        "projection_subsample. Received: shortcut='bogus'",
        "--shortcut=bogus",
    ),
    flag(
        "an unknown recipe",
        "argument --recipe: invalid choice: 'turbo' (choose from 'step', 'fast', 'paper')",
        "--recipe=turbo",
    ),
    flag(
        "an unknown schedule",
        "`schedule` must be one of step, multistep, one_cycle. Received: schedule='cosine'",
        "--schedule=cosine",
    ),
    flag(
        "milestones that decrease",
        "schedule='multistep' needs `milestones`: increasing positive integers, e.g. "
        "milestones=(30, 60, 90). Received: milestones=(30, 10)",
        "--milestones=30,10",
    ),
    flag(
        "milestones that are not numbers",
        "argument --milestones: expected comma-separated integers, e.g. 30,60,90; received 'a,b'",
        "--milestones=a,b",
    ),
    flag(
        "a step size under the one-cycle schedule",
        "--step-size has no effect with schedule='one_cycle': it belongs to the step schedule. "
        "Drop it, or choose that --schedule. Received: step_size=5",
        "--recipe=fast",
        "--step-size=5",
    ),
    flag(
        "a validation fraction of 1.5",
        "`validation_fraction` must be strictly between 0 and 1. Received: validation_fraction=1.5",
        "--validation-fraction=1.5",
    ),
    flag(
        "a 4-pixel image size",
        "`image_size` must be an integer of at least 8. Received: image_size=4",
        "--image-size=4",
    ),
    flag(
        "label smoothing of 1.5",
        "`label_smoothing` must be a number >= 0.0 and < 1.0. Received: label_smoothing=1.5",
        "--label-smoothing=1.5",
    ),
    flag(
        "--resume with --overwrite",
        "--resume continues a run and --overwrite discards it: choose one. "
        "Received: --resume --overwrite",
        "--resume",
        "--overwrite",
    ),
    Case(
        "flags",
        "--resume where there is no run",
        "error: Nothing to resume: {out}/gone holds no run. Start it without --resume.",
        argv=train("--resume", "--run-name=gone"),
    ),
    Case(
        "flags",
        "an output folder under a file",
        "error: Cannot create the run folder {dir}/file/{name}: Not a directory. "
        "Choose an --output-dir that can be written. Received: output_dir='{dir}/file'",
        argv=("train", *TINY, "--output-dir={dir}/file"),
        setup=lambda folder, _: (folder / "file").write_text("not a folder"),
    ),
    Case(
        "flags",
        "a data folder that does not exist",
        "keras-resnet train: error: `data_dir` must be an existing folder with train/<class>/* "
        "and test/<class>/* images. Received: data_dir='/nonexistent'",
        argv=("train", "--data-dir=/nonexistent", "--output-dir={out}"),
    ),
    flag(
        "a data folder and --synthetic",
        "Choose one data source: `data_dir` or `synthetic`. Received: data_dir='{dir}', "
        "synthetic=True",
        "--data-dir={dir}",
    ),
]


def _images(folder: Path, classes=("cat", "dog"), splits=("train", "test"), count=2) -> None:
    import numpy as np
    from PIL import Image

    for split in splits:
        for name in classes:
            (folder / "data" / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                pixels = np.full((32, 32, 3), 60 * k, np.uint8)
                Image.fromarray(pixels).save(folder / "data" / split / name / f"{k}.png")


def _write(relative: str, content: bytes, **images) -> Callable[[Path, dict], None]:
    def setup(folder: Path, _) -> None:
        _images(folder, **images)
        path = folder / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def _remove(relative: str, *, then_make: bool = False, **images) -> Callable[[Path, dict], None]:
    def setup(folder: Path, _) -> None:
        _images(folder, **images)
        shutil.rmtree(folder / "data" / relative)
        if then_make:
            (folder / "data" / relative).mkdir()

    return setup


def data(given: str, message: str, setup) -> Case:
    argv = ("train", "--model=resnet20", "--verbose=0", "--data-dir={dir}/data")
    return Case(
        "data folders", given, f"error: {message}", argv=(*argv, "--output-dir={out}"), setup=setup
    )


DATA_CASES = [
    data(
        "no test split",
        "Image folder {dir}/data has no 'test' folder: expected {dir}/data/test/<class>/"
        "<image>.png|jpg. Received: root='{dir}/data'",
        _remove("test"),
    ),
    data(
        "no class folders",
        "Split folder {dir}/data/train contains no class folders; expected {dir}/data/train/"
        "<class>/<image>.png|jpg.",
        lambda folder, _: [(folder / "data" / s).mkdir(parents=True) for s in ("train", "test")],
    ),
    data(
        "an empty class folder",
        "Class folder {dir}/data/train/dog contains no image files. Add images or delete the "
        "folder from both train and test.",
        _remove("train/dog", then_make=True),
    ),
    data(
        "other classes in test than in train",
        "Train and test class folders differ in {dir}/data: missing from test: ['dog']; "
        "missing from train: ['fox']. Both splits need the same class folders. "
        "Received: root='{dir}/data'",
        lambda folder, _: (
            _images(folder),
            shutil.move(folder / "data" / "test" / "dog", folder / "data" / "test" / "fox"),
        ),
    ),
    data(
        "one class",
        "Image folder {dir}/data has 1 class folder(s) (cat): training a classifier needs at "
        "least 2. Add a folder per class to train and test. Received: root='{dir}/data'",
        lambda folder, _: _images(folder, classes=("cat",)),
    ),
    data(
        "an image that cannot be decoded",
        "Cannot decode image file {dir}/data/train/cat/0.png: UnidentifiedImageError: cannot "
        "identify image file '{dir}/data/train/cat/0.png'. Replace or delete the file.",
        _write("train/cat/0.png", b"not a PNG"),
    ),
    data(
        "a text file among the images",
        "Cannot decode image file {dir}/data/train/cat/notes.txt: UnidentifiedImageError: "
        "cannot identify image file '{dir}/data/train/cat/notes.txt'. Replace or delete the "
        "file.",
        _write("train/cat/notes.txt", b"labels to do"),
    ),
    data(
        "an image outside the class folders",
        "Unexpected file {dir}/data/train/loose.png: {dir}/data/train must contain only class "
        "folders (<class>/<image>). Move or delete the file.",
        _write("train/loose.png", b"\x89PNG"),
    ),
]


def _copy_run(template: str, relative: str | None = None, content: bytes = b"") -> Callable:
    """Copy the finished or the unfinished run into the case's output folder, and damage
    ``relative`` (a path in the run folder) with ``content``."""

    def setup(folder: Path, templates: dict) -> None:
        source = templates[template]
        shutil.copytree(source, folder / "out" / source.name)
        if relative is not None:
            (folder / "out" / source.name / relative).write_bytes(content)

    return setup


def damaged(given: str, template: str, relative: str, content: bytes, problem: str) -> Case:
    return Case(
        "run folders",
        given,
        f"error: {{run}}/{relative} is damaged: {problem}. {DAMAGED}",
        argv=("train", *TINY, "--output-dir={dir}/out"),
        setup=_copy_run(template, relative, content),
        damaged=True,
    )


RUN_FOLDER_CASES = [
    damaged(
        "an empty config.json",
        "unfinished",
        "config.json",
        b"",
        "not valid JSON (Expecting value: line 1 column 1 (char 0))",
    ),
    damaged(
        "a config.json that is a list",
        "finished",
        "config.json",
        b"[1, 2]",
        "a JSON list, not an object",
    ),
    Case(
        "run folders",
        "a config.json of another config",
        "error: {run} holds a run with another config (fingerprint 0000 != {fingerprint}). Use "
        "another --run-name, or --overwrite to discard it.",
        argv=("train", *TINY, "--output-dir={dir}/out"),
        setup=_copy_run("finished", "config.json", json.dumps({"fingerprint": "0000"}).encode()),
        damaged=True,
    ),
    damaged("an empty history.csv", "unfinished", "history.csv", b"", "it is empty"),
    damaged(
        "a history.csv without its header",
        "unfinished",
        "history.csv",
        b"0,0.5,0.1\n",
        "no 'epoch' column",
    ),
    damaged(
        "a best.keras that is not a Keras archive",
        "unfinished",
        "best.keras",
        b"PK\x03\x04 cut off",
        "not a Keras archive (a zip with config.json)",
    ),
    damaged(
        "a damaged backup metadata file",
        "unfinished",
        "backup/training_metadata.json",
        b'{"epoch": ',
        "not valid JSON (Expecting value: line 1 column 11 (char 10))",
    ),
    damaged(
        "a backup metadata file with a negative epoch",
        "unfinished",
        "backup/training_metadata.json",
        b'{"epoch": -1, "batch": 0}',
        "its epoch is not a count of epochs: -1",
    ),
    damaged(
        "damaged backup weights",
        "unfinished",
        "backup/latest.weights.h5",
        b"\x00" * 64,
        "not an HDF5 weights file",
    ),
    damaged(
        "a finished run's damaged test_metrics.json",
        "finished",
        "test_metrics.json",
        b"{",
        "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1))",
    ),
    damaged(
        "a finished run's test_metrics.json without its figures",
        "finished",
        "test_metrics.json",
        b'{"confusion_matrix": []}',
        "it has no 'test_accuracy', 'test_loss', 'best_epoch', 'best_val_accuracy', "
        "'epochs_completed', 'train_seconds'",
    ),
]


def _get_model(*args, **kwargs):
    from keras_resnet import get_model

    return get_model(*args, **kwargs)


def builder(given: str, message: str, *args, **kwargs) -> Case:
    return Case(
        "builder arguments",
        given,
        message,
        call=lambda folder: _get_model(*args, **kwargs),
    )


BUILDER_CASES = [
    builder(
        "an unknown model",
        f"Unknown model name. Available: {MODELS}. Received: name='resnet19'",
        "resnet19",
    ),
    builder(
        "zero classes",
        "`num_classes` must be an integer of at least 1. Received: num_classes=0",
        "resnet20",
        num_classes=0,
    ),
    builder(
        "an input shape without channels",
        "`input_shape` must be three positive integers (height, width, channels; channels "
        "first under channels_first); height and width may be None for a variable size. "
        "Received: input_shape=(32, 32)",
        "resnet20",
        input_shape=(32, 32),
    ),
    builder(
        "a variable input size without a stem",
        "`stem` must be given (one of imagenet, cifar, deep) when the input size is variable "
        "(a None in `input_shape`): the default stem is chosen by the input size. "
        "Received: stem=None",
        "resnet18",
        input_shape=(None, None, 3),
    ),
    builder(
        "an unknown stem",
        "`stem` must be one of imagenet, cifar, deep or None (chosen by input size). "
        "Received: stem='huge'",
        "resnet20",
        stem="huge",
    ),
    builder(
        "a dropout rate of 1",
        "`dropout_rate` must be a number >= 0.0 and < 1.0. Received: dropout_rate=1.0",
        "resnet20",
        dropout_rate=1.0,
    ),
    builder(
        "zero_init_residual as a string",
        "`zero_init_residual` must be True or False. Received: zero_init_residual='yes'",
        "resnet20",
        zero_init_residual="yes",
    ),
    builder(
        "ImageNet weights with 10 classes",
        "weights='imagenet' with include_top=True needs num_classes=1000 (ImageNet's classes); "
        "for another number of classes, build with include_top=False and add your own "
        "classifier. Received: num_classes=10",
        "resnet18",
        weights="imagenet",
        num_classes=10,
    ),
    builder(
        "ImageNet weights on one channel",
        "weights='imagenet' needs 3 input channels (RGB). Received: input_shape=(224, 224, 1)",
        "resnet18",
        weights="imagenet",
        input_shape=(224, 224, 1),
    ),
    builder(
        "an unknown weights tag",
        f"{WEIGHTS_ARGUMENT} Received: weights='imagenet_v9'",
        "resnet18",
        weights="imagenet_v9",
    ),
    builder(
        "ImageNet weights for a CIFAR model",
        "No published 'imagenet' weights for 'resnet20'. Models with them: resnet18, resnet34, "
        "resnet50, resnet101, resnet152, resnet50_v1, resnet101_v1, resnet152_v1, resnet50_v2, "
        "resnet101_v2, resnet152_v2. Pass weights=None, or the path of a weights file. "
        "Received: weights='imagenet'",
        "resnet20",
        weights="imagenet",
    ),
]


def _save_resnet20_weights(folder: Path, _) -> None:
    _get_model("resnet20", input_shape=(32, 32, 3)).save_weights(folder / "r20.weights.h5")


def weights_file(given: str, message: str, model: str, name: str, content=None) -> Case:
    def setup(folder: Path, _) -> None:
        if callable(content):
            content(folder, _)
        elif content is not None:
            (folder / name).write_bytes(content)

    return Case(
        "weights files",
        given,
        message,
        call=lambda folder: _get_model(model, weights=str(folder / name)),
        setup=setup,
    )


WEIGHTS_CASES = [
    weights_file(
        "a weights file that does not exist",
        f"{WEIGHTS_ARGUMENT} Received: weights='{{dir}}/gone.weights.h5'",
        "resnet20",
        "gone.weights.h5",
    ),
    Case(
        "weights files",
        "a text file named .weights.h5",
        "{dir}/notes.weights.h5 is not a Keras weights file: a .weights.h5 file is HDF5, and "
        "this one is not. Received: weights='{dir}/notes.weights.h5'",
        call=lambda folder: _get_model("resnet20", weights=str(folder / "notes.weights.h5")),
        setup=lambda folder, _: (folder / "notes.weights.h5").write_text("weights to come"),
    ),
    weights_file(
        "the weights of another depth",
        "{dir}/r20.weights.h5 holds the weights of resnet20, which do not fit resnet32: the "
        "first layer that differs is conv2_block4_1_conv (in the model, not in the file). "
        "Build the model the file was saved from, or pass another file. "
        "Received: weights='{dir}/r20.weights.h5'",
        "resnet32",
        "r20.weights.h5",
        _save_resnet20_weights,
    ),
    weights_file(
        "a cut-off torchvision .pth",
        "{dir}/resnet18.pth is a damaged or cut-off zip archive, not a readable torch.save "
        "file: download or save it again. Received: path='{dir}/resnet18.pth'",
        "resnet18",
        "resnet18.pth",
        b"PK\x03\x04 cut off",
    ),
    weights_file(
        "a .pth that is no torch file",
        "{dir}/resnet18.pth is not a torch.save file (neither torch's zip format nor its older "
        "pickle format). Received: path='{dir}/resnet18.pth'",
        "resnet18",
        "resnet18.pth",
        b"weights to come",
    ),
    weights_file(
        "a keras.applications .h5 that is not HDF5",
        "{dir}/resnet50.h5 is not a Keras HDF5 weights file. Received: weights='{dir}/resnet50.h5'",
        "resnet50_v1",
        "resnet50.h5",
        b"weights to come",
    ),
]


def command(given: str, message: str, *argv: str, setup=None) -> Case:
    return Case("commands", given, message, argv=argv, setup=setup)


def _not_an_image(folder: Path, _) -> None:
    (folder / "photo.png").write_bytes(b"not a PNG")


COMMAND_CASES = [
    command(
        "an unknown command",
        "keras-resnet: error: unknown command 'fly'; choose one of train, search, export, "
        "predict, evaluate, plots, summary, convert",
        "fly",
    ),
    command(
        "predict with a model file that does not exist",
        "keras-resnet predict: error: model file not found: {dir}/best.keras",
        "predict",
        "{dir}/best.keras",
        "{dir}/photo.png",
        setup=_not_an_image,
    ),
    command(
        "predict with a model that is not a .keras file",
        "keras-resnet predict: error: the model must be a .keras file; got {dir}/photo.png",
        "predict",
        "{dir}/photo.png",
        "{dir}/photo.png",
        setup=_not_an_image,
    ),
    command(
        "predict on an image that cannot be decoded",
        "keras-resnet predict: error: cannot decode image {dir}/photo.png: UnidentifiedImageError",
        "predict",
        "{out}/{name}/best.keras",
        "{dir}/photo.png",
        setup=_not_an_image,
    ),
    command(
        "predict on an image that does not exist",
        "keras-resnet predict: error: image file not found: {dir}/photo.png",
        "predict",
        "{out}/{name}/best.keras",
        "{dir}/photo.png",
    ),
    command(
        "predict with --top-k 0",
        "keras-resnet predict: error: --top-k must be at least 1; got 0",
        "predict",
        "{out}/{name}/best.keras",
        "{dir}/photo.png",
        "--top-k=0",
        setup=_not_an_image,
    ),
    command(
        "export to an unknown format",
        "keras-resnet export: error: unknown format 'tflite'; choose one of saved_model, onnx, "
        "litert",
        "export",
        "{out}/{name}/best.keras",
        "--format=tflite",
        "--output={dir}/model",
    ),
    command(
        "evaluate on a data folder that does not exist",
        "keras-resnet evaluate: error: Image folder not found: {dir}/data. Expected "
        "{dir}/data/train/<class>/* and {dir}/data/test/<class>/* (PNG, JPEG, WebP or BMP, any "
        "size); or use --synthetic for a smoke test. Received: root='{dir}/data'",
        "evaluate",
        "{out}/{name}/best.keras",
        "--data-dir={dir}/data",
    ),
    command(
        "plots of a run folder that does not exist",
        "keras-resnet plots: error: run folder not found: {dir}/run",
        "plots",
        "{dir}/run",
    ),
    command(
        "the summary of an unknown model",
        f"keras-resnet summary: error: 'resnet19' is neither a registered model ({MODELS}) nor "
        "a .keras file",
        "summary",
        "resnet19",
    ),
    command(
        "convert a .pth that does not exist",
        "keras-resnet convert: error: No such file: pass the path of a torchvision state dict "
        "saved with torch.save. Received: path='{dir}/resnet18.pth'",
        "convert",
        "resnet18",
        "{dir}/resnet18.pth",
        "{dir}/resnet18.keras",
    ),
]

CASES = [
    *FLAG_CASES,
    *DATA_CASES,
    *RUN_FOLDER_CASES,
    *BUILDER_CASES,
    *WEIGHTS_CASES,
    *COMMAND_CASES,
]


def _fill(template: str, **values) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def _cli(argv: list[str]) -> tuple[int, list[str]]:
    from keras_resnet.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's errors, and train's refusals
            status = exit_.code
    return status, err.getvalue().strip().splitlines()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file's digest and every folder under ``folder``: a folder left behind counts."""
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        )
        for path in sorted(folder.rglob("*"))
    }


class _InterruptedError(Exception):
    """Raised after the first epoch's backup: the run is left as a kill would leave it."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The finished tiny run, and the same run stopped after its first epoch."""
    from keras_resnet import _compat

    out = tmp_path_factory.mktemp("out")
    status, lines = _cli([a.replace("{out}", str(out)) for a in train()])
    assert status == 0, lines
    unfinished_out = tmp_path_factory.mktemp("unfinished")
    original = _compat.AtomicBackupAndRestore.on_epoch_end

    def stop_after_the_backup(self, epoch, logs=None):
        original(self, epoch, logs)
        raise _InterruptedError

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_compat.AtomicBackupAndRestore, "on_epoch_end", stop_after_the_backup)
        with pytest.raises(_InterruptedError):
            _cli([a.replace("{out}", str(unfinished_out)) for a in train()])
    (finished,) = out.iterdir()
    (unfinished,) = unfinished_out.iterdir()
    assert (unfinished / "backup" / "latest.weights.h5").exists()
    return {"out": out, "finished": finished, "unfinished": unfinished}


def _case_id(case: Case) -> str:
    return f"{case.group}: {case.given}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_each_bad_input_gets_its_message_and_changes_no_run(case, runs, tmp_path):
    out = runs["out"]
    before = _snapshot(out)
    if case.setup:
        case.setup(tmp_path, runs)
    run = tmp_path / "out" / runs["finished"].name
    damaged_before = _snapshot(run) if case.damaged else None
    names = {"name": run.name, "fingerprint": run.name.rsplit("-", 1)[1]}
    expected = _fill(case.message, dir=tmp_path, out=out, run=run, **names)
    if case.argv:
        status, lines = _cli([_fill(arg, dir=tmp_path, out=out, **names) for arg in case.argv])
        assert status == 2, lines
        assert lines and lines[-1] == expected
    else:
        with pytest.raises(case.error) as error:
            case.call(tmp_path)
        assert str(error.value) == expected
    assert _snapshot(out) == before
    if case.damaged:
        assert _snapshot(run) == damaged_before


def test_the_table_covers_every_kind_of_input_with_at_least_40_cases():
    assert len(CASES) >= 40
    assert {case.group for case in CASES} == {
        "flags",
        "data folders",
        "run folders",
        "builder arguments",
        "weights files",
        "commands",
    }
    assert len({_case_id(case) for case in CASES}) == len(CASES)


def render_table() -> str:
    """The markdown table of every case, as docs/errors.md holds it."""
    lines = ["| kind | input | command or call | message |", "|---|---|---|---|"]
    for case in CASES:
        given = " ".join(case.argv) if case.argv else "Python"
        if case.argv and case.argv[0] == "train" and case.argv[1 : len(TINY) + 1] == TINY:
            given = "keras-resnet train TINY " + " ".join(case.argv[len(TINY) + 1 :])
        elif case.argv:
            given = "keras-resnet " + given
        shown = case.message
        for placeholder, name in SHOWN.items():
            shown = shown.replace(placeholder, name)
            given = given.replace(placeholder, name)
        cells = [case.group, case.given, f"`{given}`", shown.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def test_docs_errors_holds_the_table():
    assert render_table() in DOC.read_text(), "regenerate it: python tests/test_bad_input.py"


if __name__ == "__main__":
    sys.stdout.write(render_table())
