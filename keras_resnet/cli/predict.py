"""The top classes of image files, by a ``.keras`` model.

    keras-resnet predict runs/RUN/best.keras cat.png dog.jpg
    keras-resnet predict runs/RUN/best.keras photos/*.jpg --top-k 3 --flip-average

The model takes raw 0-255 RGB images (the run folder's ``best.keras`` does); an image of
another size is resized to the model's input size, with a note on stderr. Class names come
from the model's run folder (its test metrics, else the data it trained on).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from keras_resnet.cli._common import (
    CommandError,
    OneLineParser,
    check_model_file,
    class_names,
    input_size,
    load_model,
    read_image,
    to_model_layout,
)


def predict_probabilities(model, images: np.ndarray, flip_average: bool = False) -> np.ndarray:
    """Probabilities for uint8 channels-last ``images``; with ``flip_average`` the mean of
    each image's and its mirror image's.

    Example:
        >>> model = keras_resnet.ResNet20(input_shape=(16, 16, 3))
        >>> predict_probabilities(model, np.zeros((2, 16, 16, 3), np.uint8), True).shape
        (2, 10)
    """
    probabilities = model.predict(to_model_layout(images), verbose=0).astype("float64")
    if flip_average:
        mirrored = model.predict(to_model_layout(images[:, :, ::-1]), verbose=0)
        probabilities = (probabilities + mirrored) / 2
    return probabilities


def top_k(probabilities: np.ndarray, names: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one image, most probable first.

    Example:
        >>> top_k(np.array([0.1, 0.7, 0.2]), ["cat", "dog", "ship"], 2)
        [('dog', 0.7), ('ship', 0.2)]
    """
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(names[i], float(probabilities[i])) for i in order]


def build_parser() -> OneLineParser:
    """The command-line flags of ``keras-resnet predict``.

    Example:
        >>> build_parser().parse_args(["m.keras", "a.png", "--top-k", "3"]).top_k
        3
    """
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .keras model file, e.g. runs/RUN/best.keras")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per image (default 5)")
    parser.add_argument(
        "--flip-average",
        action="store_true",
        help="average each image's prediction with its mirror image's (default: off)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print each image's top classes with their probabilities; returns 0.

    Example:
        >>> main(["runs/x/best.keras", "cat.png"])  # doctest: +SKIP
        cat.png
          1. cat          0.8123
        0
    """
    args = build_parser().parse_args(argv)
    if args.top_k < 1:
        raise CommandError(f"--top-k must be at least 1; got {args.top_k}")
    check_model_file(args.model)
    model = load_model(args.model)
    size = input_size(model)
    images = []
    for path in args.images:
        image, note = read_image(path, size)
        if note:
            print(f"note: {note}", file=sys.stderr)
        images.append(image)
    probabilities = predict_probabilities(model, np.stack(images), args.flip_average)
    names = class_names(args.model, probabilities.shape[1])
    width = max(len(name) for name in names)
    for path, row in zip(args.images, probabilities, strict=True):
        print(path)
        for rank, (name, probability) in enumerate(top_k(row, names, args.top_k), start=1):
            print(f"  {rank}. {name:<{width}}  {probability:.4f}")
    return 0
