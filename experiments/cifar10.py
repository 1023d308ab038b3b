"""Train a ResNet on CIFAR-10 with the project's recipe.

    python experiments/cifar10.py --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --quick --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/cifar10.py --model resnet56 --shortcut zero_pad --epochs 164
    python experiments/cifar10.py --recipe fast --data-dir ../shared/datasets/cifar10-jpeg

Every default is the step recipe, a ResNet-18 StepLR recipe (keras_resnet/recipe/config.py
has each value and its source); ``--recipe fast`` is a preset of fewer, larger steps.
Running the same command again resumes an interrupted run from its last finished epoch; a
finished run is reported, not retrained (--overwrite retrains).
Regenerate a run's plots with ``python -m keras_resnet.plots RUN_DIR``.

Exit status: 0 a finished run; 2 the command or its setup refused before training (a bad
flag, a precision the CPU would emulate, a run folder that cannot be used); 3 training
diverged (a NaN or infinite loss: the run folder keeps its last good epoch and best model).

This script is ``keras-resnet train`` (keras_resnet/cli/train.py holds the code).
"""

import sys

from keras_resnet.cli import _common
from keras_resnet.cli.train import EXIT_DIVERGED, build_parser, main, parse_config  # noqa: F401

if __name__ == "__main__":
    _common.quiet_backends(sys.argv[1:])
    main()
