"""What the subcommands share: errors that exit 2, quiet backends, model and image loading.

Nothing here imports a backend at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from keras_resnet import extras, serialization
from keras_resnet.recipe import run_folder

# TensorFlow's native log lines that a CPU-only run prints at import, before its own log
# level applies (absl's pre-init messages go to stderr whatever TF_CPP_MIN_LOG_LEVEL says).
NATIVE_NOISE = (
    b"All log messages before absl::InitializeLog() is called are written to STDERR",
    b"Could not find cuda drivers on your machine",
    b"oneDNN custom operations are on",
    b"This TensorFlow binary is optimized to use available CPU instructions",
    b"To enable the following instructions:",
)


class CommandError(Exception):
    """Bad input to a command: printed as one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage), exit status 2.

    Example:
        >>> OneLineParser(prog="keras-resnet x").parse_args(["--nope"])  # doctest: +SKIP
        keras-resnet x: error: unrecognized arguments: --nope
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


@contextlib.contextmanager
def program_name(prog: str) -> Iterator[None]:
    """Make ``sys.argv[0]`` ``prog`` (argparse's default program name) while inside.

    Example:
        >>> with program_name("keras-resnet train"):
        ...     sys.argv[0]
        'keras-resnet train'
    """
    saved = sys.argv[:1]
    sys.argv[:1] = [prog]
    try:
        yield
    finally:
        sys.argv[:1] = saved


def quiet_backends(
    argv: Sequence[str] = (), uses_tensorflow: bool = False, loads_keras: bool = True
) -> None:
    """Quiet TensorFlow's native logs for a normal CPU run, unless the user set them.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (only fatal errors; at 2 a CPU machine still prints
    "failed call to cuInit") and, on the TensorFlow backend, imports TensorFlow with the
    lines it prints before its log level applies (``NATIVE_NOISE``) filtered out; so too on
    another backend where the command ``uses_tensorflow`` (exporters, KerasTuner and the
    TensorBoard callback import it). Not when ``argv`` asks for ``--help``, nor for a
    command that ``loads_keras`` not at all (``plots``): they need not wait for TensorFlow.
    A user's own ``TF_CPP_MIN_LOG_LEVEL`` is kept and nothing is filtered then.

    Example:
        >>> quiet_backends(sys.argv[1:])  # doctest: +SKIP
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    wanted = uses_tensorflow or _backend_name() == "tensorflow" or "--tensorboard" in argv
    wanted = wanted and loads_keras and not {"-h", "--help"} & set(argv)
    if wanted and importlib.util.find_spec("tensorflow"):
        import_tensorflow_quietly()


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with ``NATIVE_NOISE`` filtered from stderr (once per process).

    Example:
        >>> import_tensorflow_quietly()  # doctest: +SKIP
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        return
    with filtered_stderr(NATIVE_NOISE):
        import tensorflow  # noqa: F401


def _backend_name() -> str:
    # What Keras will pick, without importing it: $KERAS_BACKEND, else keras.json, else TF.
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        return json.loads(Path(home, "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


@contextlib.contextmanager
def filtered_stderr(patterns: Sequence[bytes]) -> Iterator[None]:
    """Drop the lines written to file descriptor 2 (native code too) that hold a pattern.

    The other lines pass through unchanged, in order, when the block ends.

    Example:
        >>> with filtered_stderr([b"noise"]):
        ...     os.write(2, b"noise from C\\n")  # doctest: +SKIP
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, captured)
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    kept: list[bytes] = []

    def drain():
        with os.fdopen(read_end, "rb") as pipe:
            kept.extend(line for line in pipe if not any(p in line for p in patterns))

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the reader sees its end
        thread.join(timeout=10)
        os.close(saved)
        for line in kept:
            os.write(2, line)


def check_model_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is an existing ``.keras`` file; else a ``CommandError``.

    Example:
        >>> check_model_file("no/such/best.keras")
        Traceback (most recent call last):
        ...
        keras_resnet.cli._common.CommandError: model file not found: no/such/best.keras
    """
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"model file not found: {path}")
    if path.suffix != ".keras":
        raise CommandError(f"the model must be a .keras file; got {path}")
    return path


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model (``compile=False``); a missing or unreadable file is a
    ``CommandError``.

    Example:
        >>> model = load_model("runs/x/best.keras")  # doctest: +SKIP
    """
    path = check_model_file(path)
    import keras

    # Explicitly: TensorFlow probes for Keras at its import, which spends the one-shot
    # import hook of ``serialization`` before Keras really loads.
    serialization.register_custom_objects()
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, ...
        raise CommandError(f"cannot load {path}: {type(error).__name__}: {error}") from None


def class_names(model_path: str | os.PathLike, num_classes: int) -> tuple[str, ...]:
    """The class names of a run folder's model: its test metrics, else the image folder
    it trained on, else CIFAR-10's for a 10-class model, else ``class_0 ...``.

    Example:
        >>> class_names("elsewhere/model.keras", 3)
        ('class_0', 'class_1', 'class_2')
    """
    run_dir = Path(model_path).parent
    names = None
    metrics_path = run_dir / run_folder.METRICS_FILE
    config_path = run_dir / run_folder.CONFIG_FILE
    with contextlib.suppress(OSError, ValueError):
        names = run_folder.read_test_metrics(metrics_path).get("class_names")
    if names is None and config_path.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            stored = json.loads(config_path.read_text())
            data_dir = stored["config"].get("data_dir")
            if stored["config"].get("synthetic"):
                names = [f"class_{k}" for k in range(num_classes)]
            elif data_dir and (Path(data_dir) / "train").is_dir():
                names = sorted(p.name for p in (Path(data_dir) / "train").iterdir() if p.is_dir())
            elif stored.get("data_source", "").startswith("tfds:"):
                from keras_resnet.recipe.data import CIFAR10_CLASSES

                names = list(CIFAR10_CLASSES)
    if names is None and num_classes == 10 and config_path.is_file():
        from keras_resnet.recipe.data import CIFAR10_CLASSES

        names = list(CIFAR10_CLASSES)
    if names is None or len(names) != num_classes:
        names = [f"class_{k}" for k in range(num_classes)]
    return tuple(str(name) for name in names)


def input_size(model) -> tuple[int, int]:
    """The (height, width) a model's image input takes.

    Example:
        >>> input_size(keras_resnet.ResNet20())  # doctest: +SKIP
        (32, 32)
    """
    from keras_resnet.models.data_format import channel_axis

    shape = tuple(model.input_shape[1:])
    spatial = shape[1:] if channel_axis() == 1 else shape[:2]
    if None in spatial:
        raise CommandError(f"the model's input size is not fixed: input shape {shape}")
    return int(spatial[0]), int(spatial[1])


def read_image(path: str | os.PathLike, size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """An image file as uint8 ``(height, width, 3)`` RGB at ``size``, and a note if it had
    to be resized (None otherwise); a file that cannot be decoded is a ``CommandError``.

    Example:
        >>> image, note = read_image("cat.png", (32, 32))  # doctest: +SKIP
    """
    pil_image = extras.require("PIL", "Reading images").Image
    try:
        with pil_image.open(path) as img:
            img = img.convert("RGB")
            note = None
            if img.size != (size[1], size[0]):
                note = (
                    f"{path} is {img.size[0]}x{img.size[1]}; resized to {size[1]}x{size[0]}, "
                    "the model's input size"
                )
                img = img.resize((size[1], size[0]), pil_image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8), note
    except FileNotFoundError:
        raise CommandError(f"image file not found: {path}") from None
    except Exception as error:  # Pillow raises UnidentifiedImageError, OSError, ...
        raise CommandError(f"cannot decode image {path}: {type(error).__name__}") from None


def to_model_layout(images: np.ndarray) -> np.ndarray:
    """Channels-last uint8 images -> float32 in the current image data format.

    Example:
        >>> to_model_layout(np.zeros((1, 4, 4, 3), np.uint8)).dtype
        dtype('float32')
    """
    from keras_resnet.models.data_format import channel_axis

    images = images.astype("float32")
    return images.transpose(0, 3, 1, 2) if channel_axis() == 1 else images
