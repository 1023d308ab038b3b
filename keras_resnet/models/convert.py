"""Convert a torchvision ResNet state dict (``.pth``) into a ``.keras`` model file.

python -m keras_resnet.models.convert resnet50 resnet50-11ad3fa6.pth resnet50.keras
"""

from __future__ import annotations

import argparse
import sys

from keras_resnet.models.builders import get_model
from keras_resnet.models.specs import MODEL_SPECS
from keras_resnet.models.torchvision import load_torchvision_weights, read_state_dict


def main(argv=None) -> int:
    """Convert a torchvision ``.pth`` state dict into a ``.keras`` model file.

    Example:
        >>> main(["resnet50", "resnet50-11ad3fa6.pth", "resnet50.keras"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(
        # "keras-resnet convert" when the one command runs it.
        prog=sys.argv[0]
        if sys.argv[0].startswith("keras-resnet")
        else "python -m keras_resnet.models.convert",
        description="Convert a torchvision ResNet state dict (.pth) into a .keras model file.",
    )
    parser.add_argument("model", help="resnet18, resnet34, resnet50, resnet101 or resnet152")
    parser.add_argument("pth", help="the torchvision state dict, saved with torch.save")
    parser.add_argument("output", help="the .keras file to write")
    parser.add_argument("--input-size", type=int, default=224, help="square input size")
    parser.add_argument(
        "--logits", action="store_true", help="output logits instead of softmax probabilities"
    )
    args = parser.parse_args(argv)

    torchvision_names = [n for n, s in MODEL_SPECS.items() if s.widths == (64, 128, 256, 512)]
    problem = None
    if args.model not in torchvision_names:
        problem = f"model must be one of {', '.join(torchvision_names)}; got {args.model!r}"
    elif not args.output.endswith(".keras"):
        problem = f"the output file must end in .keras; got {args.output!r}"
    else:
        try:
            state_dict = read_state_dict(args.pth)
            classes = state_dict["fc.weight"].shape[0] if "fc.weight" in state_dict else 1000
            model = get_model(
                args.model,
                num_classes=classes,
                input_shape=(args.input_size, args.input_size, 3),
                stem="imagenet",
                shortcut="projection",
                classifier_activation=None if args.logits else "softmax",
            )
            load_torchvision_weights(model, state_dict)
        except (ValueError, ImportError) as error:
            problem = str(error)
    if problem is not None:
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    model.save(args.output)
    size = args.input_size
    print(f"wrote {args.output} ({args.model}, {classes} classes, input {size}x{size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
