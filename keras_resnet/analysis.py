"""Why residuals work: gradient norms per convolution, and plain-versus-residual curves.

``conv_gradient_norms(model, x, y)`` is the gradient probe: the L2 norm of the loss
gradient with respect to every Conv2D kernel, in depth order, with batch norm in
training mode (batch statistics), as in a training step. Keras 3 has no
backend-neutral gradient API, so ``_loss_gradients`` holds the one place where each
backend's autodiff is called: ``tf.GradientTape``, ``jax.grad`` over
``model.stateless_call``, ``torch.autograd.grad``.

The rest turns runs of ``experiments/plain_vs_residual.py`` into numbers and figures:
error curves from a run's history, the first-to-last gradient ratio, the gradient-flow
figure and the paper's Fig. 6 (training error dashed, held-out error bold, plain
networks left, ResNets right).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from keras_resnet.config import TrainConfig
from keras_resnet.plots import HISTORY_FILE, save_figure
from keras_resnet.specs import MODEL_SPECS
from keras_resnet.training import (
    BEST_MODEL_FILE,
    CONFIG_FILE,
    build_training_model,
    prepare_split,
    read_history_rows,
    train,
    write_json_atomic,
)

GRADIENT_FLOW_FILE = "gradient_flow.png"
DEGRADATION_FILE = "degradation.png"
RESULTS_FILE = "results.json"


def conv_layers(model: keras.Model) -> list[keras.layers.Conv2D]:
    """Every Conv2D layer of ``model`` in depth (topological) order, nested models included.

    Example:
        >>> [layer.name for layer in conv_layers(keras_resnet.ResNet20())][:2]
        ['conv1_conv', 'conv2_block1_1_conv']
    """
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(conv_layers(layer))
    return found


def conv_gradients(model: keras.Model, x, y, loss=None) -> dict[str, np.ndarray]:
    """d(loss)/d(kernel) for every Conv2D layer, in depth order, batch norm in training mode.

    The loss is the batch mean of ``loss`` (default sparse categorical cross-entropy on
    the model's probabilities). The model is left as it was: the batch-norm moving
    statistics that a training-mode call updates on TensorFlow and torch are restored.

    Args:
        model: a Keras model whose outputs ``loss`` compares with ``y``.
        x: a batch of inputs (NumPy).
        y: its integer labels.
        loss: a Keras loss; None gives ``SparseCategoricalCrossentropy()``.

    Example:
        >>> grads = conv_gradients(keras_resnet.ResNet20(), x, y)
        >>> grads["conv1_conv"].shape
        (3, 3, 3, 16)
    """
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"`model` has no Conv2D layer. Received: model={model.name!r}")
    loss = loss or keras.losses.SparseCategoricalCrossentropy()
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    try:
        grads = _loss_gradients(model, [layer.kernel for layer in layers], x, y, loss)
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)
    return {layer.name: grad for layer, grad in zip(layers, grads, strict=True)}


def conv_gradient_norms(model: keras.Model, x, y, loss=None) -> dict[str, float]:
    """The L2 norm of d(loss)/d(kernel) for every Conv2D layer, in depth order.

    See ``conv_gradients`` for the loss and the training-mode batch norm.

    Example:
        >>> norms = conv_gradient_norms(keras_resnet.ResNet20(shortcut="none"), x, y)
        >>> list(norms)[0], len(norms)
        ('conv1_conv', 19)
    """
    return {
        name: float(np.linalg.norm(grad.astype("float64")))
        for name, grad in conv_gradients(model, x, y, loss).items()
    }


def _loss_gradients(model, variables, x, y, loss) -> list[np.ndarray]:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        grads = tape.gradient(value, variables)
    elif backend == "jax":
        import jax

        trainable = model.trainable_variables
        fixed = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            outputs, _ = model.stateless_call(values, fixed, x, training=True)
            return loss(y, outputs)

        all_grads = jax.grad(loss_of)([v.value for v in trainable])
        position = {id(v): i for i, v in enumerate(trainable)}
        grads = [all_grads[position[id(v)]] for v in variables]
    elif backend == "torch":
        import torch

        value = loss(y, model(x, training=True))
        grads = torch.autograd.grad(value, [v.value for v in variables])
    else:
        raise ValueError(
            "The gradient probe supports the tensorflow, jax and torch backends. "
            f"Received: backend={backend!r}"
        )
    return [keras.ops.convert_to_numpy(g) for g in grads]


def backbone_gradient_norms(training_model: keras.Model, images, labels) -> dict[str, float]:
    """``conv_gradient_norms`` of the ResNet inside a ``build_training_model`` model.

    The raw 0-255 ``images`` go through the model's own normalization layer but not its
    augmentation, so the probe sees the same batch on every call.

    Example:
        >>> norms = backbone_gradient_norms(model, data.x_train[:128], data.y_train[:128])
    """
    backbone = training_model.layers[-1]
    x = training_model.get_layer("normalization")(images.astype("float32"))
    return conv_gradient_norms(backbone, keras.ops.convert_to_numpy(x), labels)


def probe_images(config: TrainConfig, count: int):
    """The first ``count`` training images of the run's seeded shuffle (all in its fit part)
    and their labels, as ``train(config)`` loads them, in the current data format.

    Example:
        >>> x, y = probe_images(TrainConfig(synthetic=True), 64)
    """
    split = prepare_split(config)
    return split.x_train[:count], split.y_train[:count]


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
    result = train(config)
    stored = json.loads((result.run_dir / CONFIG_FILE).read_text())
    norm = stored["normalization"]
    x, y = probe_images(config, num_probe_images)
    trained = keras.saving.load_model(result.run_dir / BEST_MODEL_FILE)
    keras.utils.set_random_seed(config.seed)
    initial = build_training_model(config, norm["mean"], norm["std"], trained.output.shape[-1])
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


def first_to_last_ratio(norms: Mapping[str, float]) -> float:
    """The first convolution's gradient norm over the last one's (depth order).

    Below 1, the gradient shrinks on its way back to the shallow layers.

    Example:
        >>> first_to_last_ratio({"conv1_conv": 0.2, "conv2_block1_1_conv": 0.5})
        0.4
    """
    values = list(norms.values())
    if len(values) < 2:
        raise ValueError(f"`norms` needs at least two layers. Received: norms={dict(norms)!r}")
    return values[0] / values[-1]


def error_curves(history_path: str | os.PathLike) -> dict[str, list[float]]:
    """Per-epoch training error (1 - accuracy), held-out error and learning rate of a run.

    Training error is measured as ``model.fit`` logs it: the running accuracy over each
    epoch's augmented batches, as in the paper's curves.

    Example:
        >>> error_curves("runs/x/history.csv")["train_error"][:2]
        [0.81, 0.64]
    """
    rows = read_history_rows(Path(history_path))
    if not rows:
        raise ValueError(f"No finished epoch in the history. Received: {history_path}")
    return {
        "train_error": [1.0 - row["accuracy"] for row in rows],
        "val_error": [1.0 - row["val_accuracy"] for row in rows],
        "learning_rate": [row.get("learning_rate", float("nan")) for row in rows],
    }


def read_results(path: str | os.PathLike) -> dict:
    """The results JSON of an experiment run folder, or ``{}`` when there is none yet.

    Example:
        >>> read_results("runs/plain_vs_residual-1a2b3c4d/results.json").get("networks", {})
        {}
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def record_network(path: str | os.PathLike, settings: dict, label: str, entry: dict) -> dict:
    """Add one finished network's numbers to the results JSON, atomically; returns it all.

    Each network is written as soon as it finishes, so a kill loses at most the network
    in progress, and a rerun can skip what is already recorded.

    Example:
        >>> record_network("runs/x/results.json", {"epochs": 2}, "plain-20", {"depth": 20})
        {'settings': {'epochs': 2}, 'networks': {'plain-20': {'depth': 20}}}
    """
    results = read_results(path)
    results["settings"] = settings
    results.setdefault("networks", {})[label] = entry
    write_json_atomic(Path(path), results)
    return results


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


# --- figures ------------------------------------------------------------------------------

_DEPTH_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")


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
