"""TorchSGD: PyTorch's coupled weight decay (through the momentum buffer), checked by hand."""

import keras
import numpy as np
import pytest

from keras_resnet.recipe.optimizers import TorchSGD

W0 = np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")
GRADIENTS = [
    np.array([0.1, 0.2, -0.3, 0.0], dtype="float32"),
    np.array([-0.05, 0.4, 0.1, 0.0], dtype="float32"),
]
LR, MOMENTUM, L2 = 0.1, 0.9, 0.05


def torch_sgd_by_hand(w, gradients, lr, momentum, l2, nesterov=False):
    """torch.optim.SGD(lr, momentum, weight_decay=l2, dampening=0), step by step."""
    w = w.astype("float64")
    buffer = None
    for g in gradients:
        d = g + l2 * w  # weight decay joins the gradient ...
        buffer = d.copy() if buffer is None else momentum * buffer + d  # ... before momentum
        step = d + momentum * buffer if nesterov else buffer
        w = w - lr * step
    return w


def apply_steps(optimizer, w, gradients):
    variable = keras.Variable(w, dtype="float32")
    for g in gradients:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    return keras.ops.convert_to_numpy(variable)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_pytorch_sgd_by_hand(steps, nesterov):
    gradients = GRADIENTS[:steps]
    expected = torch_sgd_by_hand(W0, gradients, LR, MOMENTUM, L2, nesterov)
    got = apply_steps(
        TorchSGD(learning_rate=LR, momentum=MOMENTUM, nesterov=nesterov, l2=L2), W0, gradients
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # The last coordinate has zero gradient: only the decay moves it.
    assert got[-1] < W0[-1]


def test_hand_reference_agrees_with_torch():
    torch = pytest.importorskip("torch")
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = torch.optim.SGD([w], lr=LR, momentum=MOMENTUM, weight_decay=L2)
    for g in GRADIENTS:
        w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
    np.testing.assert_allclose(
        w.detach().numpy(), torch_sgd_by_hand(W0, GRADIENTS, LR, MOMENTUM, L2), rtol=1e-12
    )


def test_differs_from_keras_decoupled_weight_decay():
    ours = apply_steps(TorchSGD(learning_rate=LR, momentum=MOMENTUM, l2=L2), W0, GRADIENTS)
    keras_sgd = apply_steps(
        keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM, weight_decay=L2),
        W0,
        GRADIENTS,
    )
    # Step two: PyTorch's decay also acts through the momentum buffer (0.9 * lr * l2 * w).
    assert np.abs(ours - keras_sgd).max() > 1e-3
    # Keras's own rule is decay first, w -= lr * wd * w, then plain momentum SGD.
    w = W0.astype("float64")
    velocity = np.zeros_like(w)
    for g in GRADIENTS:
        w = w - LR * L2 * w
        velocity = MOMENTUM * velocity - LR * g
        w = w + velocity
    np.testing.assert_allclose(keras_sgd, w, rtol=1e-6, atol=1e-6)


def test_zero_l2_is_plain_keras_sgd():
    ours = apply_steps(TorchSGD(learning_rate=LR, momentum=MOMENTUM, l2=0.0), W0, GRADIENTS)
    plain = apply_steps(keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM), W0, GRADIENTS)
    np.testing.assert_allclose(ours, plain, rtol=1e-7)


def test_get_config_round_trip():
    optimizer = TorchSGD(learning_rate=0.05, momentum=0.8, nesterov=True, l2=1e-3)
    config = optimizer.get_config()
    assert config["l2"] == 1e-3
    clone = TorchSGD.from_config(config)
    assert clone.get_config() == config
    assert clone.l2 == 1e-3 and clone.momentum == 0.8 and clone.nesterov is True


def test_serializes_by_registered_name():
    optimizer = TorchSGD(learning_rate=0.05, momentum=0.9, l2=5e-4)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is TorchSGD
    assert restored.l2 == 5e-4
    np.testing.assert_allclose(
        apply_steps(restored, W0, GRADIENTS), apply_steps(optimizer, W0, GRADIENTS), rtol=1e-7
    )


def test_weight_decay_argument_is_refused():
    with pytest.raises(ValueError, match=r"Received: weight_decay=0\.0005$"):
        TorchSGD(learning_rate=0.1, weight_decay=5e-4)


def test_negative_l2_is_refused():
    with pytest.raises(ValueError, match=r"Received: l2=-0\.1$"):
        TorchSGD(l2=-0.1)
