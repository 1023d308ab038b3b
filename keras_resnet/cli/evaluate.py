"""Accuracy, per-class accuracy and the confusion matrix of a ``.keras`` model on an image
folder's test images.

    keras-resnet evaluate runs/RUN/best.keras --data-dir ../shared/datasets/cifar10-jpeg

The folder has the layout training reads (``train/<class>/*`` and ``test/<class>/*``,
``recipe.data.load_image_folder``); its test images are evaluated. Its class folders are
matched to the model's classes by name (the model's run folder names them); the
confusion-matrix plot goes to ``--plot``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_resnet.cli._common import (
    CommandError,
    OneLineParser,
    check_model_file,
    class_names,
    load_model,
)

PLOT_FILE = "confusion_matrix.png"


def per_class_accuracy(confusion) -> np.ndarray:
    """Each class's accuracy (recall): the diagonal over the row sums (NaN for no images).

    Example:
        >>> per_class_accuracy([[3, 1], [0, 2]])
        array([0.75, 1.  ])
    """
    confusion = np.asarray(confusion, dtype="float64")
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def model_labels(folder_names: Sequence[str], model_names: Sequence[str]) -> np.ndarray:
    """For each class folder, the model's index of that class; a folder the model does not
    know is a ``CommandError``.

    Example:
        >>> model_labels(["cat", "dog"], ["dog", "cat", "ship"])
        array([1, 0])
    """
    unknown = [name for name in folder_names if name not in model_names]
    if unknown:
        raise CommandError(
            f"class folders the model does not know: {', '.join(unknown)} "
            f"(its classes: {', '.join(model_names)})"
        )
    return np.array([list(model_names).index(name) for name in folder_names])


def build_parser() -> OneLineParser:
    """The command-line flags of ``keras-resnet evaluate``.

    Example:
        >>> build_parser().parse_args(["m.keras", "--data-dir", "d"]).plot
        'confusion_matrix.png'
    """
    parser = OneLineParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("model", help="a .keras model file, e.g. runs/RUN/best.keras")
    parser.add_argument(
        "--data-dir", required=True, help="an image folder with train/<class>/* and test/<class>/*"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="(default 256)")
    parser.add_argument(
        "--flip-average",
        action="store_true",
        help="average each image's prediction with its mirror image's (default: off)",
    )
    parser.add_argument(
        "--plot", default=PLOT_FILE, help=f"the confusion-matrix figure (default {PLOT_FILE})"
    )
    parser.add_argument(
        "--cache-dir", help="where the decoded folder is cached (default: as training)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the accuracy and per-class accuracy, write the confusion matrix; returns 0.

    Example:
        >>> main(["runs/x/best.keras", "--data-dir", "images"])  # doctest: +SKIP
        accuracy 0.8075 on 10000 test images
        0
    """
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1; got {args.batch_size}")
    check_model_file(args.model)
    from keras_resnet import plots
    from keras_resnet.models.data_format import channel_axis
    from keras_resnet.recipe import data
    from keras_resnet.recipe.evaluation import evaluate_test_set

    try:
        dataset = data.load_image_folder(args.data_dir, cache_dir=args.cache_dir, progress=True)
    except data.DataSourceError as error:
        raise CommandError(str(error)) from None
    model = load_model(args.model)
    names = class_names(args.model, model.output_shape[-1])
    labels = model_labels(dataset.class_names, names)[dataset.y_test]
    images = dataset.x_test.transpose(0, 3, 1, 2) if channel_axis() == 1 else dataset.x_test
    expected = tuple(model.input_shape[1:])
    if tuple(images.shape[1:]) != expected:
        raise CommandError(f"the images are {images.shape[1:]} and the model takes {expected}")
    try:
        metrics = evaluate_test_set(
            model, images, labels, batch_size=args.batch_size, flip=args.flip_average
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    accuracy = per_class_accuracy(metrics["confusion_matrix"])
    print(f"accuracy {metrics['test_accuracy']:.4f} on {len(labels)} test images")
    width = max(len(name) for name in names)
    counts = np.asarray(metrics["confusion_matrix"]).sum(axis=1)
    for name, value, count in zip(names, accuracy, counts, strict=True):
        if count:
            print(f"  {name:<{width}}  {value:.4f}  ({count} images)")
    path = plots.plot_confusion_matrix(
        metrics["confusion_matrix"], names, args.plot, title=f"Confusion matrix: {args.data_dir}"
    )
    print(f"confusion matrix: {path}")
    return 0
