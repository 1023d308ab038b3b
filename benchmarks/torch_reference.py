"""A plain PyTorch ResNet, written from the architecture, as the benchmark's reference.

It is the network keras_resnet builds (see ``keras_resnet/blocks.py``), in idiomatic
PyTorch: BasicBlock or Bottleneck (v1.5, the stride on the 3x3), a 1x1 projection
shortcut only where the shape changes (option B), batch norm with epsilon 1e-5 and momentum
0.1, the CIFAR stem (3x3/1, no pool) or the ImageNet stem (7x7/2, 3x3/2 max-pool). It
imports neither Keras nor keras_resnet, so it runs where only PyTorch is installed; a test
checks that its parameter and multiply-accumulate counts equal the Keras models'.

Timed as PyTorch users train: channels_last memory format, SGD with momentum 0.9 and
``weight_decay`` 5e-4 (the recipe's), cross-entropy, eager mode, ``torch.autocast`` for
bf16/fp16 (with a ``GradScaler`` for fp16).
"""

from __future__ import annotations

import torch
from torch import nn

# name -> (block, blocks per stage, stem); widths 64, 128, 256, 512 as in keras_resnet.models.specs.
ARCHITECTURES = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
WIDTHS = (64, 128, 256, 512)
EXPANSION = {"basic": 1, "bottleneck": 4}
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _conv_bn(in_channels, out_channels, kernel_size, stride=1, relu=True) -> nn.Sequential:
    layers = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Block(nn.Module):
    """A residual block: ``relu(residual(x) + shortcut(x))``."""

    def __init__(self, kind: str, in_channels: int, width: int, stride: int):
        super().__init__()
        out_channels = width * EXPANSION[kind]
        if kind == "basic":
            self.residual = nn.Sequential(
                _conv_bn(in_channels, width, 3, stride),
                _conv_bn(width, width, 3, relu=False),
            )
        else:
            self.residual = nn.Sequential(
                _conv_bn(in_channels, width, 1),
                _conv_bn(width, width, 3, stride),
                _conv_bn(width, out_channels, 1, relu=False),
            )
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = (
            _conv_bn(in_channels, out_channels, 1, stride, relu=False)
            if changes_shape
            else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.residual(x) + self.shortcut(x))


def resnet(name: str, num_classes: int = 10, stem: str = "cifar") -> nn.Module:
    """The reference network ``name`` ("resnet18" ... "resnet152") with the given stem.

    Example:
        >>> model = resnet("resnet18", num_classes=10, stem="cifar")
    """
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown model. Available: {', '.join(ARCHITECTURES)}. Received: name={name!r}"
        )
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"`stem` must be 'cifar' or 'imagenet'. Received: stem={stem!r}")
    kind, blocks_per_stage = ARCHITECTURES[name]
    if stem == "cifar":
        layers = [_conv_bn(3, WIDTHS[0], 3)]
    else:
        layers = [_conv_bn(3, WIDTHS[0], 7, 2), nn.MaxPool2d(3, 2, 1)]
    channels = WIDTHS[0]
    for index, (width, num_blocks) in enumerate(zip(WIDTHS, blocks_per_stage, strict=True)):
        for block in range(num_blocks):
            stride = 2 if index > 0 and block == 0 else 1
            layers.append(Block(kind, channels, width, stride))
            channels = width * EXPANSION[kind]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics excluded).

    Example:
        >>> parameter_count(resnet("resnet18"))
        11173962
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def multiply_accumulates(model: nn.Module, image_size: int) -> int:
    """Multiply-accumulates of one image's forward pass through convolutions and Linear layers,
    counted as ``keras_resnet.models.statistics.multiply_accumulates`` counts them.

    Example:
        >>> multiply_accumulates(resnet("resnet18", stem="cifar"), 32) / 1e6
        555.4...
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output[0].numel() * kernel * module.in_channels // module.groups
        else:
            total += module.in_features * module.out_features

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [layer.register_forward_hook(count) for layer in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def make_steps(
    name: str,
    *,
    stem: str,
    batch_size: int,
    image_size: int,
    num_classes: int = 10,
    precision: str = "fp32",
    device: str | None = None,
    seed: int = 0,
):
    """A training step and an inference step on one fixed random batch, channels_last.

    Each step waits for its result (``loss.item()``, a copy of the logits to the host), as
    Keras's ``train_on_batch`` and ``predict_on_batch`` do, so a step's wall time is its cost.

    Returns:
        ``(train_step, inference_step, model)``; the steps take no arguments.

    Example:
        >>> train_step, inference_step, _ = make_steps(
        ...     "resnet18", stem="cifar", batch_size=4, image_size=32
        ... )
        >>> loss = train_step()
    """
    if precision not in ("fp32", *AUTOCAST_DTYPES):
        raise ValueError(f"`precision` must be fp32, bf16 or fp16. Received: {precision=!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    model = resnet(name, num_classes, stem).to(device, memory_format=torch.channels_last)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device)  # normalized-like
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    enabled = precision != "fp32"
    dtype = AUTOCAST_DTYPES.get(precision)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")

    def train_step() -> float:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype, enabled=enabled):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.item()

    def inference_step():
        model.eval()
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=enabled):
            return model(x).float().cpu()

    return train_step, inference_step, model
