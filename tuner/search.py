"""Search the learning rate (and StepLR's step size) of the CIFAR-10 recipe with KerasTuner.

    python tuner/search.py --tuner random --max-trials 12 --epochs 10 --model resnet20 \\
        --data-dir ../shared/datasets/cifar10-jpeg --train-subset 10000
    python tuner/search.py --tuner grid --lr-step 3.1623 --step-size-min 5 --epochs 10 ...
    python tuner/search.py --recipe fast --epochs 10 ...  # the one-cycle peak rate only
    python tuner/search.py ... --retrain-best --retrain-epochs 30

The model, recipe and data flags are those of experiments/cifar10.py; the recipe's
learning rate and step size become the searched values' defaults. Trials are compared on
their best validation accuracy; the test set is only used by --retrain-best, which trains
the winner as a normal run (run folder, test accuracy). Running the same command again
resumes the search: finished trials are kept, an interrupted one is run again.

Distributed (KerasTuner's chief/worker mode): start the same command once with
KERASTUNER_TUNER_ID=chief and once per worker with KERASTUNER_TUNER_ID=tuner0, tuner1, ...,
all with KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT naming the chief's address; the
--directory must be one folder all of them see. The chief hands out trials and, when all
are done, writes the summary; workers train.

A trial whose loss becomes NaN or infinite stops at that step and is recorded as FAILED,
with the reason in summary.csv's ``failure`` column; the search goes on. Exit status: 0
done; 2 a refused command or setup (a bad flag, a precision the CPU would emulate, a
--directory that cannot be created, a project that cannot be resumed); 3 --retrain-best
found nothing to retrain (every trial failed) or the retrained winner diverged.

This script is ``keras-resnet search`` (keras_resnet/cli/search.py holds the code).
"""

import sys

from keras_resnet.cli import _common
from keras_resnet.cli.search import (  # noqa: F401
    EXIT_DIVERGED,
    _parse_fixed,
    build_parser,
    main,
    parse_search,
)

if __name__ == "__main__":
    _common.quiet_backends(sys.argv[1:], uses_tensorflow=True)
    main()
