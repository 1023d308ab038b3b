"""Export a ``.keras`` model for serving, and check the artifact against the model.

    keras-resnet export runs/RUN/best.keras --format saved_model --output served/
    keras-resnet export runs/RUN/best.keras --format onnx --output model.onnx
    keras-resnet export runs/RUN/best.keras --format litert --output model.tflite

The artifact is the model as it predicts (``serving_model``): raw 0-255 images in,
probabilities out, the augmentation layers the identity, float32 throughout (a model
trained in bf16 or fp16 exports its float32 weights). Before the artifact is moved to
``--output`` it is run on a batch of images with the format's own runtime (TensorFlow for a
SavedModel, onnxruntime for ONNX, the LiteRT interpreter for LiteRT) and its probabilities
are compared with the Keras model's; a difference above ``--tolerance`` (1e-4) fails the
command (exit status 1) and writes nothing. docs/serving.md has which backend exports which
format, and why not the others.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_resnet import atomic
from keras_resnet.cli._common import (
    CommandError,
    OneLineParser,
    check_model_file,
    filtered_stderr,
    import_tensorflow_quietly,
    input_size,
    load_model,
    to_model_layout,
)

# The command's format names -> Keras's (``model.export(format=...)``).
FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
# Backends on which each format exports and passes the parity check here; the reasons for
# the others are in UNSUPPORTED (and docs/serving.md).
SUPPORTED = {
    "saved_model": ("tensorflow", "jax"),
    "onnx": ("tensorflow", "jax", "torch"),
    "litert": ("tensorflow",),
}
UNSUPPORTED = {
    ("saved_model", "torch"): "Keras's SavedModel export from torch is experimental and fails "
    "on these models (torch.export rejects the input signature); export from tensorflow or jax",
    ("litert", "jax"): "Keras exports LiteRT from the tensorflow and torch backends only",
    ("litert", "torch"): "LiteRT from torch needs the litert-torch package (it pulls "
    "transformers and more, so the export extra leaves it out); export from tensorflow",
}
# The modules each format needs on each backend (the `export` extra installs them).
NEEDS = {
    ("saved_model", "tensorflow"): ("tensorflow",),
    ("saved_model", "jax"): ("tensorflow",),
    ("onnx", "tensorflow"): ("tf2onnx", "onnx", "onnxruntime"),
    ("onnx", "jax"): ("jax2onnx", "onnx", "onnxruntime"),
    ("onnx", "torch"): ("onnx", "onnxscript", "onnxruntime"),
    ("litert", "tensorflow"): ("tensorflow",),
}
TOLERANCE = 1e-4
PARITY_IMAGES = 32


def serving_model(model):
    """The model as it predicts, as a new float32 model that needs no ``training`` flag.

    Each layer is rebuilt in float32 (a mixed-precision model's weights are float32
    already), the augmentation layers (``RandomPadCrop``, ``RandomFlip``) become identities,
    a ``Normalization`` with a given mean and variance becomes the equal ``Rescaling``
    (exporters turn the former's stored tensors into extra inputs), and the whole runs
    with ``training=False`` (exporters trace the model without the flag, and ``RandomFlip``
    flips then). The input stays raw 0-255 images.

    Example:
        >>> from keras_resnet.recipe import TrainConfig
        >>> from keras_resnet.recipe.training import build_training_model
        >>> model = build_training_model(TrainConfig(model="resnet20"), (120,) * 3, (60,) * 3, 10)
        >>> served = serving_model(model)
        >>> x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
        >>> bool(np.abs(served.predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5)
        True
    """
    import keras

    from keras_resnet.recipe.augment import RandomPadCrop

    def rebuild(layer):
        if isinstance(layer, (RandomPadCrop, keras.layers.RandomFlip)):
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Normalization) and config.get("mean") is not None:
            # From the config: the layer's own tensors are in its compute dtype (bf16).
            mean = np.asarray(config["mean"], "float64").reshape(-1)
            std = np.maximum(
                np.sqrt(np.asarray(config["variance"], "float64").reshape(-1)),
                keras.config.epsilon(),
            )
            if config.get("invert"):
                return keras.layers.Rescaling(std.tolist(), mean.tolist(), name=layer.name)
            return keras.layers.Rescaling(
                (1 / std).tolist(), (-mean / std).tolist(), name=layer.name
            )
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    rebuilt = keras.models.clone_model(model, clone_function=rebuild, recursive=True)
    weights = model.get_weights()
    if [w.shape for w in rebuilt.get_weights()] != [w.shape for w in weights]:
        raise CommandError("the model's weights do not map onto its float32 copy")
    rebuilt.set_weights([w.astype("float32") for w in weights])
    inputs = keras.Input(model.input_shape[1:], name="images", dtype="float32")
    served = keras.Model(inputs, rebuilt(inputs, training=False), name=f"{model.name}_serving")
    served(np.zeros((1, *model.input_shape[1:]), "float32"))  # exporters want it called
    return served


def check_supported(format: str, backend: str) -> None:
    """A ``CommandError`` saying why, where ``format`` does not export from ``backend``
    here, or a module it needs is missing.

    Example:
        >>> check_supported("litert", "jax")
        Traceback (most recent call last):
        ...
        keras_resnet.cli._common.CommandError: cannot export litert from the jax backend: ...
    """
    if format not in FORMATS:
        raise CommandError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if backend not in SUPPORTED[format]:
        reason = UNSUPPORTED.get((format, backend), "not supported by Keras")
        raise CommandError(f"cannot export {format} from the {backend} backend: {reason}")
    missing = [m for m in NEEDS[(format, backend)] if importlib.util.find_spec(m) is None]
    if missing:
        raise CommandError(
            f"exporting {format} from {backend} needs {', '.join(missing)}: "
            "pip install 'keras3-resnet[export]'"
        )


def export_model(served, path: str | os.PathLike, format: str) -> Path:
    """``served.export`` in ``format`` to ``path``, quietly (exporters log a lot).

    Example:
        >>> export_model(serving_model(model), "model.onnx", "onnx")  # doctest: +SKIP
        PosixPath('model.onnx')
    """
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        served.export(str(path), format=FORMATS[format], verbose=False)
    return Path(path)


def run_artifact(path: str | os.PathLike, format: str, images: np.ndarray) -> np.ndarray:
    """The artifact's probabilities for float32 ``images``, from the format's own runtime:
    TensorFlow for a SavedModel, onnxruntime for ONNX, the LiteRT interpreter for LiteRT.

    Example:
        >>> run_artifact("model.onnx", "onnx", images)  # doctest: +SKIP
    """
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.asarray(session.run(None, {name: images})[0])
    import_tensorflow_quietly()
    import tensorflow as tf

    if format == "saved_model":
        loaded = tf.saved_model.load(str(path))  # kept: serve() needs its variables alive
        return loaded.serve(tf.constant(images)).numpy()
    interpreter = _litert_interpreter(str(path))
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], images.shape)
    with filtered_stderr([b"Created TensorFlow Lite XNNPACK delegate"]):
        interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], images)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _litert_interpreter(path: str):
    # ai-edge-litert is LiteRT's own runtime; TensorFlow's tf.lite.Interpreter is the same
    # interpreter, deprecated in its favour.
    if importlib.util.find_spec("ai_edge_litert"):
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter(model_path=path)
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=path)


def parity_images(size: tuple[int, int], count: int = PARITY_IMAGES, data_dir=None) -> np.ndarray:
    """uint8 channels-last images to compare on: ``count`` test images of an image folder
    (spread over its classes), else generated ones (``data.make_synthetic``: striped hues
    with noise), resized to ``size``.

    Example:
        >>> parity_images((16, 16), 4).shape
        (4, 16, 16, 3)
    """
    from keras_resnet.recipe import data

    if data_dir is not None:
        try:
            images = data.load_image_folder(data_dir, progress=False).x_test
        except data.DataSourceError as error:
            raise CommandError(str(error)) from None
        images = images[np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)]
    else:
        images = data.make_synthetic(num_train=1, num_test=count, seed=1).x_test
    if images.shape[1:3] != tuple(size):
        from PIL import Image

        images = np.stack(
            [
                np.asarray(Image.fromarray(im).resize(size[::-1], Image.Resampling.BILINEAR))
                for im in images
            ]
        )
    return images


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference between two arrays of probabilities.

    Example:
        >>> round(max_difference(np.array([[0.5, 0.5]]), np.array([[0.4, 0.6]])), 6)
        0.1
    """
    return float(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64")).max())


def build_parser() -> OneLineParser:
    """The command-line flags of ``keras-resnet export``.

    Example:
        >>> build_parser().parse_args(["m.keras", "--format", "onnx", "--output", "m.onnx"]).format
        'onnx'
    """
    parser = OneLineParser(
        description=__doc__.splitlines()[0],
        epilog="SavedModel: tensorflow, jax; ONNX: tensorflow, jax, torch; LiteRT: tensorflow "
        "(KERAS_BACKEND picks the backend).",
    )
    parser.add_argument("model", help="a .keras model file, e.g. runs/RUN/best.keras")
    parser.add_argument(
        "--format", required=True, metavar="{" + ",".join(FORMATS) + "}", help="the artifact"
    )
    parser.add_argument(
        "--output", required=True, help="the artifact's path (a folder for saved_model)"
    )
    parser.add_argument(
        "--data-dir",
        help="compare on test images of this folder (test/<class>/*) instead of generated ones",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=f"largest allowed probability difference (default {TOLERANCE:g})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output (default: off)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Export, check parity, and move the artifact into place; 0 if it matches, else 1.

    Example:
        >>> main(["runs/x/best.keras", "--format", "onnx", "--output", "m.onnx"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    check_model_file(args.model)
    if args.format not in FORMATS:
        raise CommandError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    output = Path(args.output)
    if args.format == "litert" and output.suffix != ".tflite":
        raise CommandError(f"a litert artifact's name must end in .tflite; got {output}")
    if output.exists() and not args.overwrite:
        raise CommandError(f"{output} exists; pass --overwrite to replace it")
    import keras

    backend = keras.backend.backend()
    check_supported(args.format, backend)
    model = load_model(args.model)
    images = to_model_layout(parity_images(input_size(model), data_dir=args.data_dir))
    served = serving_model(model)
    own = model.predict(images, verbose=0)
    # A float32 model is compared with itself; a mixed-precision one with its float32 weights.
    mixed = {layer.dtype_policy.name for layer in model.layers} - {"float32"}
    expected = served.predict(images, verbose=0) if mixed else own
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = atomic.partial_path(output)
    try:
        try:
            export_model(served, partial, args.format)
            got = run_artifact(partial, args.format, images)
        except Exception as error:  # the exporters' and runtimes' errors vary by format
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            print(
                f"error: the {args.format} export failed: {type(error).__name__}: {message}",
                file=sys.stderr,
            )
            return 1
        difference = max_difference(got, expected)
        print(
            f"{args.format} from {backend}: max |artifact - keras| = {difference:.3g} on "
            f"{len(images)} images (tolerance {args.tolerance:g})"
        )
        if mixed:
            print(
                f"the model computes in {', '.join(sorted(mixed))}; the artifact is float32 "
                f"(it differs from that model's output by {max_difference(got, own):.3g})"
            )
        if not difference <= args.tolerance:
            print(
                f"error: the artifact differs from the model by more than {args.tolerance:g}",
                file=sys.stderr,
            )
            return 1
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        os.replace(partial, output)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial)
        elif partial.exists():
            partial.unlink()
    print(f"wrote {output}")
    return 0
