"""Search the learning rate (and StepLR's step size) of the CIFAR-10 recipe with KerasTuner.

    keras-resnet search --tuner random --max-trials 12 --epochs 10 --model resnet20 ...
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
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from keras_resnet.recipe.flags import add_config_arguments, config_from_args

EXIT_DIVERGED = 3  # as keras-resnet train


# The recipe's fields a search has no flag for.
SEARCH_OMITS = frozenset(
    {
        "distribute",
        "run_name",
        "flip_test",
        "job_addresses",
        "num_processes",
        "process_id",
        "heartbeat_timeout",
    }
)


def build_parser() -> argparse.ArgumentParser:
    """The recipe's flags plus the search's own."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Trials are judged on validation, so the test-time flip has no flag here; a trial
    # trains in one process (KerasTuner's workers spread the trials instead).
    add_config_arguments(parser, omit=SEARCH_OMITS)
    search = parser.add_argument_group("search")
    search.add_argument(
        "--tuner",
        default="random",
        choices=("random", "bayesian", "hyperband", "grid"),
        help="the KerasTuner tuner (default random)",
    )
    search.add_argument(
        "--max-trials",
        type=int,
        help="trials to run (default 10; grid: the whole grid; hyperband: set by --epochs "
        "and --hyperband-factor, so not allowed)",
    )
    search.add_argument(
        "--executions-per-trial",
        type=int,
        default=1,
        help="train each trial this many times (seeds seed, seed+1, ...) and average",
    )
    search.add_argument("--hyperband-factor", type=int, default=3, help="(default 3)")
    search.add_argument("--directory", default="searches", help="parent of search projects")
    search.add_argument("--project-name", help="search project folder (default: <model>-<tuner>)")
    search.add_argument(
        "--overwrite", action="store_true", help="discard an existing project and start over"
    )
    space = parser.add_argument_group("search space")
    space.add_argument("--lr-min", type=float, default=1e-3, help="(default 1e-3, log scale)")
    space.add_argument("--lr-max", type=float, default=1.0, help="(default 1.0)")
    space.add_argument(
        "--lr-step",
        type=float,
        help="factor between learning rates tried (a grid); default: continuous",
    )
    space.add_argument(
        "--step-size-min", type=int, help="smallest step size (default max(1, epochs // 4))"
    )
    space.add_argument("--step-size-max", type=int, help="largest step size (default epochs)")
    space.add_argument(
        "--step-size-step", type=int, help="spacing of step sizes (default max(1, epochs // 4))"
    )
    space.add_argument(
        "--tune",
        default="",
        help="also search these, comma-separated: gamma, weight_decay, shortcut, model, "
        "label_smoothing, ema",
    )
    space.add_argument(
        "--fixed",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a hyperparameter instead of searching it, e.g. --fixed step_size=5",
    )
    best = parser.add_argument_group("the winner")
    best.add_argument(
        "--retrain-best",
        action="store_true",
        help="train the best trial's config as a full run and report its test accuracy",
    )
    best.add_argument(
        "--retrain-epochs", type=int, help="epochs of that run (default: the search's --epochs)"
    )
    return parser


def parse_search(argv=None):
    """Flags -> (base config, search space, the search's options); bad flags exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Only now: --help answers without importing KerasTuner and a backend.
    from keras_resnet.tuning import hypermodel, tuners

    config = config_from_args(parser, args)
    project_name = args.project_name or f"{config.model}-{args.tuner}"
    # The retrained winner's run folder goes inside the project unless --output-dir says.
    if args.output_dir is None:
        best_dir = os.path.join(args.directory, project_name, "best")
        config = dataclasses.replace(config, output_dir=best_dir)
    try:
        step_size = None
        if args.step_size_min is not None or args.step_size_max is not None:
            default_low, default_high, _ = hypermodel.SearchSpace().resolved_step_size(
                config.epochs
            )
            step_size = (
                default_low if args.step_size_min is None else args.step_size_min,
                default_high if args.step_size_max is None else args.step_size_max,
            )
        space = hypermodel.SearchSpace(
            learning_rate=(args.lr_min, args.lr_max),
            learning_rate_step=args.lr_step,
            step_size=step_size,
            step_size_step=args.step_size_step,
            extra=tuple(name.strip() for name in args.tune.split(",") if name.strip()),
        )
        fixed = dict(_parse_fixed(item) for item in args.fixed)
        step_flags = [
            flag
            for flag, value in (
                ("--step-size-min", args.step_size_min),
                ("--step-size-max", args.step_size_max),
                ("--step-size-step", args.step_size_step),
                ("--fixed step_size", fixed.get("step_size")),
            )
            if value is not None
        ]
        if config.schedule != "step" and step_flags:
            raise ValueError(
                f"{', '.join(step_flags)} only apply to the StepLR schedule; with "
                f"schedule={config.schedule!r} only the learning rate (its peak) is searched. "
                f"Drop them, or search with --schedule step. Received: {', '.join(step_flags)}"
            )
        if args.retrain_epochs is not None and args.retrain_epochs < 1:
            raise ValueError(
                "`--retrain-epochs` must be at least 1. "
                f"Received: retrain_epochs={args.retrain_epochs}"
            )
        role = tuners.search_role()
        if role == "worker" and args.overwrite:
            raise ValueError(
                "Only the chief may --overwrite a distributed search (a worker would delete "
                "the folder the others use). Received: --overwrite with "
                f"KERASTUNER_TUNER_ID={os.environ['KERASTUNER_TUNER_ID']}"
            )
    except ValueError as error:
        parser.error(str(error))
    return config, space, fixed, role, project_name, args


def _make_directory(directory: str) -> None:
    """Create the projects' parent folder, or raise a one-line ValueError saying why not."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the search folder {directory}: {error.strerror or error}. Choose "
            f"a --directory that can be written. Received: directory={directory!r}"
        ) from None


def _parse_fixed(item: str) -> tuple[str, object]:
    from keras_resnet.tuning.hypermodel import HYPERPARAMETER_TYPES

    name, sep, text = item.partition("=")
    if not sep or name not in HYPERPARAMETER_TYPES:
        raise ValueError(
            f"`--fixed` takes NAME=VALUE with NAME one of {', '.join(HYPERPARAMETER_TYPES)}. "
            f"Received: --fixed {item}"
        )
    try:
        return name, HYPERPARAMETER_TYPES[name](text)
    except ValueError:
        raise ValueError(
            f"`--fixed {name}` needs a {HYPERPARAMETER_TYPES[name].__name__}. "
            f"Received: --fixed {item}"
        ) from None


def trial_tensorboard(log_dir: str, tuner):
    """The recipe's TensorBoard callback for a search: each trial logs in its own folder.

    KerasTuner gives each trial's copy of a TensorBoard callback the folder
    ``<log_dir>/<trial id>/execution<k>`` on the TensorFlow backend only; on the others
    this callback moves itself into ``<log_dir>/<trial id>`` when a trial's fit starts.

    Example:
        >>> callback = trial_tensorboard("searches/p/tensorboard", tuner)  # doctest: +SKIP
    """
    import keras

    from keras_resnet.recipe.callbacks import tensorboard_callback

    if keras.backend.backend() == "tensorflow":
        return tensorboard_callback(log_dir)

    class TrialTensorBoard(type(tensorboard_callback(log_dir))):
        def __deepcopy__(self, memo):  # KerasTuner copies callbacks per trial: not the tuner
            return trial_tensorboard(log_dir, tuner)

        def set_model(self, model):
            trial = getattr(tuner.oracle, "ongoing_trials", {}).get(tuner.tuner_id)
            if trial is not None:
                self.log_dir = os.path.join(log_dir, trial.trial_id)
            super().set_model(model)

    callback = TrialTensorBoard(
        log_dir=log_dir, histogram_freq=0, write_graph=False, update_freq="epoch"
    )
    return callback


def main(argv=None) -> dict:
    """Run (or resume) the search; returns the summary rows and the retrained result."""
    config, space, fixed, role, project_name, args = parse_search(argv)
    from keras_resnet import plots
    from keras_resnet.recipe import (
        DataSourceError,
        RunFolderError,
        TrainingDivergedError,
        UnsupportedSetupError,
        run_folder,
        training,
    )
    from keras_resnet.tuning import hypermodel, report, tuners

    try:
        training.check_precision(config)  # an UnsupportedSetupError, a ValueError
        _make_directory(args.directory)
        split = training.prepare_split(config)
        # Trials see the training and validation parts only.
        model_space = hypermodel.ResNetHyperModel(config, split, space)
        tuner = tuners.make_tuner(
            args.tuner,
            model_space,
            directory=args.directory,
            project_name=project_name,
            max_trials=args.max_trials,
            executions_per_trial=args.executions_per_trial,
            hyperband_factor=args.hyperband_factor,
            fixed=fixed,
            overwrite=args.overwrite,
        )
        logs = os.path.join(tuner.project_dir, run_folder.TENSORBOARD_DIR)
        with training.precision_policy(config):
            tuner.search(
                split.x_train,
                split.y_train,
                validation_data=(split.x_val, split.y_val),
                verbose=config.verbose,
                callbacks=[trial_tensorboard(logs, tuner)] if config.tensorboard else [],
            )
    except (DataSourceError, tuners.SearchFolderError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if role == "worker":
        print(f"worker {os.environ['KERASTUNER_TUNER_ID']}: no trials left")
        return {"role": role}

    project_dir = tuner.project_dir
    rows = report.summarize(tuner)
    report.write_summary(rows, os.path.join(project_dir, tuners.SUMMARY_FILE))
    print(report.format_summary(rows))
    searched = [name for name in space.hyperparameters(config.schedule) if name not in fixed]
    histories = report.trial_histories(tuner)
    figures = plots.plot_search(rows, histories, project_dir, searched or ["learning_rate"])
    print(f"summary: {os.path.join(project_dir, tuners.SUMMARY_FILE)}")
    print("plots: " + ", ".join(str(path) for path in figures))
    result = {"role": role, "summary": rows}
    if args.retrain_best:
        try:
            best = report.best_config(tuner)
        except tuners.SearchFolderError as error:  # every trial failed
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_DIVERGED) from None
        if args.retrain_epochs is not None:
            best = dataclasses.replace(best, epochs=args.retrain_epochs)
        print(
            "retraining the best trial: "
            + ", ".join(f"{name}={getattr(best, name)}" for name in searched)
        )
        run_dir = os.path.join(best.output_dir, best.resolved_run_name())
        if os.path.exists(os.path.join(run_dir, run_folder.METRICS_FILE)):
            print(f"already retrained in {run_dir} (delete that folder to train it again)")
            best = dataclasses.replace(best, verbose=0)  # train() only reports the stored run
        try:
            trained = training.train(best)
        except (RunFolderError, UnsupportedSetupError) as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        except TrainingDivergedError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_DIVERGED) from None
        result["retrained"] = dataclasses.asdict(trained)
        print(
            f"best trial retrained: test accuracy {trained.test_accuracy:.4f} "
            f"(best epoch {trained.best_epoch}); run folder {trained.run_dir}"
        )
    return result
