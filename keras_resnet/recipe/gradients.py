"""The gradient probe: how the loss gradient reaches each convolution of a network.

``conv_gradient_norms(model, x, y)`` is the L2 norm of the loss gradient with respect to
every Conv2D kernel, in depth order, with batch norm in training mode (batch statistics),
as in a training step. Keras 3 has no backend-neutral gradient API, so ``_loss_gradients``
holds the one place where each backend's autodiff is called: ``tf.GradientTape``,
``jax.grad`` over ``model.stateless_call``, ``torch.autograd.grad``.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np


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
        >>> x, y = np.zeros((2, 32, 32, 3), "float32"), np.array([0, 1])
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
        >>> x, y = np.zeros((2, 32, 32, 3), "float32"), np.array([0, 1])
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
        >>> norms = backbone_gradient_norms(model, images, labels)  # doctest: +SKIP
    """
    backbone = training_model.layers[-1]
    x = training_model.get_layer("normalization")(images.astype("float32"))
    return conv_gradient_norms(backbone, keras.ops.convert_to_numpy(x), labels)


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
