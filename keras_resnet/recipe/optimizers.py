"""SGD with PyTorch's weight decay, so a recipe quoted from PyTorch means the same thing here."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class TorchSGD(keras.optimizers.SGD):
    """SGD whose ``l2`` decay is added to the gradient before momentum, as in torch.optim.SGD.

    Keras's own ``weight_decay`` argument is decoupled: it shrinks the weights by
    ``learning_rate * weight_decay`` each step, outside the momentum buffer. With
    momentum 0.9 that is about ten times weaker than PyTorch's ``weight_decay`` of the
    same value, which passes ``weight_decay * w`` through momentum. CIFAR recipes quote
    PyTorch's value (5e-4), so this optimizer applies it PyTorch's way, to every
    trainable variable (batch-norm scale and offset included, as PyTorch does by default;
    ``decay_vectors=False`` exempts every one-dimensional variable: the batch-norm
    parameters and the biases).
    One difference remains: Keras's momentum buffer holds ``learning_rate * gradient``,
    PyTorch's the gradient alone, so after a learning-rate drop the old rate's momentum
    fades over the next few steps here; at a constant rate the updates are identical.

    Args:
        learning_rate: as for ``keras.optimizers.SGD``.
        momentum: as for ``keras.optimizers.SGD``.
        nesterov: as for ``keras.optimizers.SGD``.
        l2: coefficient added to the gradient as ``l2 * variable``.
        decay_vectors: whether ``l2`` applies to one-dimensional variables too.
        **kwargs: other ``keras.optimizers.SGD`` arguments (not ``weight_decay``).

    Example:
        >>> optimizer = TorchSGD(learning_rate=0.1, momentum=0.9, l2=5e-4)
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        l2=0.0,
        decay_vectors=True,
        **kwargs,
    ):
        if kwargs.get("weight_decay"):
            raise ValueError(
                "TorchSGD applies PyTorch-style decay through `l2`; do not also pass "
                f"`weight_decay`. Received: weight_decay={kwargs['weight_decay']!r}"
            )
        super().__init__(
            learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs
        )
        if l2 < 0:
            raise ValueError(f"`l2` must be non-negative. Received: l2={l2!r}")
        self.l2 = float(l2)
        self.decay_vectors = bool(decay_vectors)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2 and (self.decay_vectors or len(variable.shape) > 1):
            gradient = ops.add(
                ops.cast(gradient, variable.dtype),
                ops.multiply(ops.cast(self.l2, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2"] = self.l2
        config["decay_vectors"] = self.decay_vectors
        return config
