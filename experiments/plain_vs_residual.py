"""Plain versus residual networks on CIFAR-10: gradient flow and the degradation effect.

    python experiments/plain_vs_residual.py --data-dir ../shared/datasets/cifar10-jpeg
    python experiments/plain_vs_residual.py --quick --synthetic
    python experiments/plain_vs_residual.py --full --data-dir ../shared/datasets/cifar10-jpeg

Trains plain-20, plain-56, ResNet-20 and ResNet-56 (option A; the plain networks are the
same builders with ``shortcut="none"``) with the package's recipe, ``train(TrainConfig)``,
and probes the loss gradient of every convolution at initialization and after training.
The default is a subset and a short schedule sized for a 2-core CPU (the README's "Why
residuals work" gives its time); ``--full`` is the paper's schedule on all 50,000 images,
922 times the default's training images times epochs.

Everything lands in ``OUTPUT_DIR/plain_vs_residual-<settings hash>/``: ``results.json``
(settings and, per network, error curves, test error, gradient norms), written
atomically after each network, ``gradient_flow.png``, ``degradation.png``, and each
network's own ``train`` run folder under ``training/``. Rerunning the same command skips
the networks already in ``results.json`` and resumes an interrupted one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keras_resnet.recipe.config import TrainConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The affordable default, sized for a 2-core CPU: 1,250 images (1,000 fit, 250
# validation), 8 epochs of 16 steps (128 steps) with one learning-rate drop after epoch 6,
# the paper's weight decay 1e-4. Batch 64 gives twice the steps of the paper's 128 for the
# same compute, with the learning rate scaled down alike (0.05 for the paper's 0.1 at 128:
# the linear scaling rule).
SETTINGS = {
    "depths": (20, 56),
    "train_subset": 1250,
    "test_subset": 500,
    "validation_fraction": 0.2,
    "epochs": 8,
    "step_size": 6,
    "learning_rate": 0.05,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "probe_images": 128,
    "seed": 42,
}
# --full: the paper's CIFAR-10 runs (section 4.2) on all 50,000 images with its 45k/5k
# split and 164 epochs (64k iterations). The recipe's StepLR drops every step_size epochs,
# so the paper's drops at 82 and 123 become one drop at 82.
FULL = {
    "learning_rate": 0.1,
    "batch_size": 128,
    "train_subset": None,
    "test_subset": None,
    "validation_fraction": 0.1,
    "epochs": 164,
    "step_size": 82,
}
# --quick: an end-to-end smoke run of one depth (ResNet-20 is the smallest registered).
QUICK = {
    "depths": (20,),
    "train_subset": 160,
    "test_subset": 32,
    "epochs": 1,
    "batch_size": 32,
    "probe_images": 16,
}
SHORTCUTS = {"plain": "none", "resnet": "zero_pad"}  # label prefix -> shortcut

RESULTS_FILE = "results.json"
GRADIENT_FLOW_FILE = "gradient_flow.png"
DEGRADATION_FILE = "degradation.png"
# Keras, its backend and matplotlib are imported inside the functions that use them, so
# that importing this script and its --help stay instant.


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags; each overrides one entry of ``SETTINGS``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    parser.add_argument("--full", action="store_true", help=f"the paper's schedule: {FULL}")
    parser.add_argument("--depths", type=int, nargs="+", help=f"(default {SETTINGS['depths']})")
    for flag in ("train-subset", "test-subset", "epochs", "step-size", "batch-size"):
        key = flag.replace("-", "_")
        parser.add_argument(f"--{flag}", type=int, dest=key, help=f"(default {SETTINGS[key]})")
    for flag in ("learning-rate", "weight-decay", "validation-fraction"):
        key = flag.replace("-", "_")
        parser.add_argument(f"--{flag}", type=float, dest=key, help=f"(default {SETTINGS[key]})")
    parser.add_argument("--probe-images", type=int, help="images in the gradient probe's batch")
    parser.add_argument("--seed", type=int, help=f"(default {SETTINGS['seed']})")
    parser.add_argument("--data-dir", help="image folder with train/<class>/* and test/<class>/*")
    parser.add_argument("--synthetic", action="store_true", help="generated data (smoke tests)")
    parser.add_argument("--cache-dir", help="cache for decoded image folders")
    parser.add_argument("--output-dir", default="runs", help="parent of the run folder")
    parser.add_argument("--verbose", type=int, default=2, help="0 silent, 2 one line per epoch")
    return parser


def resolve_settings(args: argparse.Namespace) -> dict:
    """``SETTINGS``, then ``--full`` or ``--quick``, then explicit flags."""
    settings = dict(SETTINGS)
    if args.full:
        settings.update(FULL)
    if args.quick:
        settings.update(QUICK)
    settings.update(
        {key: value for key, value in vars(args).items() if key in SETTINGS and value is not None}
    )
    settings["depths"] = list(settings["depths"])  # as results.json stores it
    settings["data"] = "synthetic" if args.synthetic else os.path.abspath(args.data_dir or "tfds")
    return settings


def main(argv=None) -> dict:
    """Train and probe every network not yet recorded; returns the results JSON's content.

    Example:
        >>> results = main(["--quick", "--synthetic", "--output-dir=/tmp/runs"])
        >>> sorted(results["networks"])
        ['plain-20', 'resnet-20']
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = resolve_settings(args)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    run_dir = Path(args.output_dir) / f"plain_vs_residual-{digest}"

    from keras_resnet.recipe.config import TrainConfig

    results_path = run_dir / RESULTS_FILE
    configs = {}
    try:
        for depth in settings["depths"]:
            for prefix, shortcut in SHORTCUTS.items():
                configs[f"{prefix}-{depth}"] = TrainConfig(
                    model=f"resnet{depth}",
                    shortcut=shortcut,
                    epochs=settings["epochs"],
                    step_size=settings["step_size"],
                    batch_size=settings["batch_size"],
                    learning_rate=settings["learning_rate"],
                    weight_decay=settings["weight_decay"],
                    validation_fraction=settings["validation_fraction"],
                    train_subset=settings["train_subset"],
                    test_subset=settings["test_subset"],
                    seed=settings["seed"],
                    data_dir=args.data_dir,
                    synthetic=args.synthetic,
                    cache_dir=args.cache_dir,
                    output_dir=str(run_dir / "training"),
                    run_name=f"{prefix}-{depth}",
                    verbose=args.verbose,
                )
    except ValueError as error:
        parser.error(str(error))

    run_dir.mkdir(parents=True, exist_ok=True)
    results = read_results(results_path)
    for label, config in configs.items():
        if label in results.get("networks", {}):
            print(f"{label}: already in {results_path}")
            continue
        print(f"{label}: training {config.model} with shortcut={config.shortcut!r}")
        entry = train_and_probe(config, settings["probe_images"])
        results = record_network(results_path, settings, label, entry)
    plot_results(run_dir)
    print(summary_table(results["networks"]))
    print(f"run folder: {run_dir}")
    return results


# --- one network: train, probe, record -------------------------------------------------


def read_results(path: str | os.PathLike) -> dict:
    """The results JSON of an experiment run folder, or ``{}`` when there is none yet.

    Example:
        >>> read_results("runs/plain_vs_residual-1a2b3c4d/results.json").get("networks", {})
        {}
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def train_and_probe(config: TrainConfig, num_probe_images: int) -> dict:
    """Train one network with ``train(config)``, then probe its gradients before and after.

    "init" is the network ``train`` started from, rebuilt from the same seed (the same
    initial weights: nothing draws from Keras's random state between seeding and
    building; the quick-mode test checks it); "trained" is the model that ``train``
    keeps, the best validation epoch's (``best_epoch`` and ``steps_to_best_epoch``).
    Returns the run's error curves, test error, gradient norms and first-to-last ratios.

    Example:
        >>> entry = train_and_probe(TrainConfig(model="resnet20", shortcut="none"), 128)
        >>> sorted(entry["gradient_norms"])
        ['init', 'trained']
    """
    import keras

    from keras_resnet.models.specs import MODEL_SPECS
    from keras_resnet.recipe import training
    from keras_resnet.recipe.gradients import backbone_gradient_norms, first_to_last_ratio
    from keras_resnet.recipe.run_folder import BEST_MODEL_FILE, CONFIG_FILE, HISTORY_FILE

    result = training.train(config)
    stored = json.loads((result.run_dir / CONFIG_FILE).read_text())
    norm = stored["normalization"]
    x, y = probe_images(config, num_probe_images)
    trained = keras.saving.load_model(result.run_dir / BEST_MODEL_FILE)
    keras.utils.set_random_seed(config.seed)
    initial = training.build_training_model(
        config, norm["mean"], norm["std"], trained.output.shape[-1]
    )
    norms = {
        "init": backbone_gradient_norms(initial, x, y),
        "trained": backbone_gradient_norms(trained, x, y),
    }
    steps_per_epoch = -(-stored["train_images"] // config.batch_size)
    return {
        "model": config.model,
        "depth": MODEL_SPECS[config.model].depth,
        "shortcut": config.shortcut,
        "residual": config.shortcut != "none",
        "run_dir": str(result.run_dir),
        "train_images": stored["train_images"],
        "validation_images": stored["validation_images"],
        "best_epoch": result.best_epoch,
        "steps_to_best_epoch": result.best_epoch * steps_per_epoch,
        "test_error": 1.0 - result.test_accuracy,
        "train_seconds": result.train_seconds,
        **error_curves(result.run_dir / HISTORY_FILE),
        "gradient_norms": norms,
        "first_to_last_ratio": {moment: first_to_last_ratio(n) for moment, n in norms.items()},
    }


def probe_images(config: TrainConfig, count: int):
    """The first ``count`` training images of the run's seeded shuffle (all in its fit part)
    and their labels, as ``train(config)`` loads them, in the current data format.

    Example:
        >>> x, y = probe_images(TrainConfig(synthetic=True), 64)
    """
    from keras_resnet.recipe.training import prepare_split

    split = prepare_split(config)
    return split.x_train[:count], split.y_train[:count]


def error_curves(history_path: str | os.PathLike) -> dict[str, list[float]]:
    """Per-epoch training error (1 - accuracy), held-out error and learning rate of a run.

    Training error is measured as ``model.fit`` logs it: the running accuracy over each
    epoch's augmented batches, as in the paper's curves.

    Example:
        >>> error_curves("runs/x/history.csv")["train_error"][:2]
        [0.81, 0.64]
    """
    from keras_resnet.recipe.run_folder import read_history

    rows = read_history(history_path, missing_ok=True)
    if not rows:
        raise ValueError(f"No finished epoch in the history. Received: {history_path}")
    return {
        "train_error": [1.0 - row["accuracy"] for row in rows],
        "val_error": [1.0 - row["val_accuracy"] for row in rows],
        "learning_rate": [row.get("learning_rate", float("nan")) for row in rows],
    }


def record_network(path: str | os.PathLike, settings: dict, label: str, entry: dict) -> dict:
    """Add one finished network's numbers to the results JSON, atomically; returns it all.

    Each network is written as soon as it finishes, so a kill loses at most the network
    in progress, and a rerun can skip what is already recorded. Keys keep their order
    (not ``atomic.write_json``'s sorted keys): the gradient norms are in depth order, and
    sorting would put ``conv2_block10_1_conv`` before ``conv2_block1_1_conv``.

    Example:
        >>> record_network("runs/x/results.json", {"epochs": 2}, "plain-20", {"depth": 20})
        {'settings': {'epochs': 2}, 'networks': {'plain-20': {'depth': 20}}}
    """
    from keras_resnet import atomic

    results = read_results(path)
    results["settings"] = settings
    results.setdefault("networks", {})[label] = entry
    atomic.write_text(path, json.dumps(results, indent=2))
    return results


# --- the figures and the table ----------------------------------------------------------

_DEPTH_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")


def plot_results(run_dir: str | os.PathLike) -> list[Path]:
    """Both figures of an experiment run folder, from its ``results.json``.

    Example:
        >>> plot_results("runs/plain_vs_residual-1a2b3c4d")
        [PosixPath('.../gradient_flow.png'), PosixPath('.../degradation.png')]
    """
    run_dir = Path(run_dir)
    networks = read_results(run_dir / RESULTS_FILE).get("networks")
    if not networks:
        raise ValueError(f"No finished network in {run_dir / RESULTS_FILE}.")
    return [
        plot_gradient_flow(networks, run_dir / GRADIENT_FLOW_FILE),
        plot_degradation(networks, run_dir / DEGRADATION_FILE),
    ]


def _colors(networks: Mapping[str, dict]) -> dict[int, str]:
    depths = sorted({entry["depth"] for entry in networks.values()})
    return {depth: _DEPTH_COLORS[i % len(_DEPTH_COLORS)] for i, depth in enumerate(depths)}


def plot_gradient_flow(networks: Mapping[str, dict], path: str | os.PathLike) -> Path:
    """Gradient norm per convolution against depth (log scale), at init and after training.

    One panel per moment (``entry["gradient_norms"]`` keys, "init" then "trained");
    colour per depth, solid for residual and dashed for plain networks.

    Example:
        >>> plot_gradient_flow(read_results("runs/x/results.json")["networks"], "g.png")
        PosixPath('g.png')
    """
    import numpy as np
    from matplotlib.figure import Figure

    from keras_resnet.plots import save_figure

    moments = [
        m for m in ("init", "trained") if any(m in e["gradient_norms"] for e in networks.values())
    ]
    titles = {"init": "at initialization", "trained": "after training"}
    colors = _colors(networks)
    fig = Figure(figsize=(5.0 * len(moments), 4.0))
    axes = fig.subplots(1, len(moments), squeeze=False)[0]
    for ax, moment in zip(axes, moments, strict=True):
        for label, entry in networks.items():
            norms = entry["gradient_norms"].get(moment)
            if not norms:
                continue
            ax.plot(
                np.arange(1, len(norms) + 1),
                list(norms.values()),
                color=colors[entry["depth"]],
                linestyle="-" if entry["residual"] else "--",
                marker=".",
                markersize=3,
                label=label,
            )
        ax.set_yscale("log")
        ax.set_xlabel("convolution (1 = stem, input side)")
        ax.set_ylabel("‖d loss / d kernel‖₂")
        ax.set_title(f"Gradient norm per layer, {titles[moment]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_degradation(networks: Mapping[str, dict], path: str | os.PathLike) -> Path:
    """The paper's Fig. 6: error per epoch, plain networks left and ResNets right.

    Dashed lines are training error, bold lines held-out (validation) error; colour
    per depth. Both panels share the y axis.

    Example:
        >>> plot_degradation(read_results("runs/x/results.json")["networks"], "d.png")
        PosixPath('d.png')
    """
    import numpy as np
    from matplotlib.figure import Figure

    from keras_resnet.plots import save_figure

    colors = _colors(networks)
    fig = Figure(figsize=(10.0, 4.0))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, residual, title in zip(axes, (False, True), ("plain", "ResNet"), strict=True):
        for label, entry in networks.items():
            if entry["residual"] != residual:
                continue
            epochs = np.arange(1, len(entry["train_error"]) + 1)
            color = colors[entry["depth"]]
            ax.plot(epochs, 100 * np.array(entry["train_error"]), "--", color=color, linewidth=1)
            ax.plot(
                epochs,
                100 * np.array(entry["val_error"]),
                "-",
                color=color,
                linewidth=2.2,
                label=f"{label}",
            )
        ax.set_title(f"{title} (dashed: training, bold: validation)")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    return save_figure(fig, path)


def summary_table(networks: Mapping[str, dict]) -> str:
    """A Markdown table of the numbers the README quotes, one row per network.

    Example:
        >>> print(summary_table(read_results("runs/x/results.json")["networks"]))
    """
    lines = [
        "| network | final training error | final validation error | test error "
        "| first/last conv gradient, init | first/last conv gradient, trained |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, entry in networks.items():
        ratio = entry["first_to_last_ratio"]
        lines.append(
            f"| {label} | {entry['train_error'][-1]:.2%} | {entry['val_error'][-1]:.2%} "
            f"| {entry['test_error']:.2%} | {ratio['init']:.3g} | {ratio['trained']:.3g} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
