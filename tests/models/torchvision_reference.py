"""Write torchvision reference models and logits for the parity test.

Runs in an environment with torchvision (``torch==2.14.1 torchvision==0.29.1``), not in
the main test environment, and imports nothing from keras_resnet:
``python tests/models/torchvision_reference.py OUT_DIR``. For each depth it writes
``OUT_DIR/resnetXX.pth`` (the state dict of a seeded, randomly initialized torchvision
model) and ``OUT_DIR/resnetXX.npz`` (``inputs``, NCHW float32, and the model's eval-mode
``logits``), then ``OUT_DIR/manifest.json`` last, so a complete folder has a manifest.

The batch norm parameters must be non-trivial (torchvision starts them at scale 1, offset
0, mean 0 and variance 1, which a loader that dropped them would also pass), yet the random
network must stay well-conditioned: a random ResNet amplifies float32 rounding with depth,
and with scales drawn from [0.5, 1.5] torchvision's own float32 logits of ResNet-152 differ
from its float64 logits by 1e-3, above the parity test's 1e-4. So the scales and offsets are
drawn at random, the last batch norm of each residual branch gets a small scale (as in
zero_init_residual, but not zero), which brought that float32 drift to 6e-6, and the running
statistics are measured on a calibration batch in training mode (a cumulative average,
``momentum=None``), which keeps every layer's output near unit scale in eval mode.
"""

import json
import sys
from pathlib import Path

import numpy as np

DEPTHS = (18, 34, 50, 101, 152)
# Non-square, and strided convolutions meet odd sizes (80x96 is 20x24 after the stem, then
# 10x12, 5x6 and 3x3), so a swapped axis or misaligned padding shows.
INPUT_SHAPE = (2, 3, 80, 96)
CALIBRATION_BATCH = 8
SEED = 2026


def reference_model(depth: int):
    """A seeded torchvision ResNet with random BN scales/offsets and measured statistics."""
    import torch
    import torchvision

    torch.manual_seed(SEED + depth)
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    branch_ends = {
        block.bn3 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.bn2
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
        for block in stage
    }
    with torch.no_grad():
        for bn in batch_norms:
            bn.weight.uniform_(*((0.1, 0.3) if bn in branch_ends else (0.5, 1.5)))
            bn.bias.normal_(0.0, 0.2)
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        model(torch.randn(CALIBRATION_BATCH, *INPUT_SHAPE[1:]))
    for bn in batch_norms:
        bn.momentum = 0.1
    return model.eval()


def write(out_dir: Path) -> None:
    import torch
    import torchvision

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)
    for depth in DEPTHS:
        model = reference_model(depth)
        inputs = torch.randn(*INPUT_SHAPE, generator=torch.Generator().manual_seed(depth))
        with torch.no_grad():
            logits = model(inputs)
        torch.save(model.state_dict(), out_dir / f"resnet{depth}.pth")
        np.savez(out_dir / f"resnet{depth}.npz", inputs=inputs.numpy(), logits=logits.numpy())
    manifest = {
        "depths": list(DEPTHS),
        "input_shape": list(INPUT_SHAPE),
        "seed": SEED,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    write(Path(sys.argv[1]))
