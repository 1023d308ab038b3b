"""The model table: every registered ResNet variant is one row here.

Adding a variant (say ResNet-200) is one entry in ``MODEL_SPECS``; the builders,
``list_models()``, ``get_model()`` and the parametrized tests pick it up.
"""

from __future__ import annotations

import dataclasses

BLOCK_TYPES = ("basic", "bottleneck")
# "zero_pad" is the paper's option A, "projection" option B, "projection_all" option C;
# "none" removes every shortcut: the paper's plain networks (section 4.2), with exactly
# option A's weights, since option A's shortcuts have none.
SHORTCUTS = ("zero_pad", "projection", "projection_all", "none")
STEMS = ("imagenet", "cifar")
# Expansion of a block's output width over its stage width (He et al. 2016, table 1).
BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """One ResNet variant.

    Attributes:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1, expansion 4).
        blocks_per_stage: number of residual blocks in each stage.
        widths: stage widths before expansion; the stem has ``widths[0]`` channels.
        shortcut: the default shortcut (see ``SHORTCUTS``).
        stem: the default stem, or None to pick by input size (see
            ``models.resolve_stem``).
        num_classes: the default number of classes.
        input_size: the default square input size.

    Example:
        >>> MODEL_SPECS["resnet20"].blocks_per_stage
        (3, 3, 3)
    """

    block: str
    blocks_per_stage: tuple[int, ...]
    widths: tuple[int, ...]
    shortcut: str = "projection"
    stem: str | None = None
    num_classes: int = 1000
    input_size: int = 224

    @property
    def depth(self) -> int:
        """Weighted layers: stem conv + convs in the residual branches + classifier."""
        convs_per_block = 2 if self.block == "basic" else 3
        return 1 + convs_per_block * sum(self.blocks_per_stage) + 1


def _imagenet(block: str, blocks_per_stage: tuple[int, ...]) -> ResNetSpec:
    """torchvision/He et al. ImageNet variants: four stages of widths 64..512."""
    return ResNetSpec(block, blocks_per_stage, (64, 128, 256, 512))


def _cifar(n: int) -> ResNetSpec:
    """The paper's CIFAR-10 family (section 4.2): 6n+2 layers, widths 16/32/64, option A."""
    return ResNetSpec(
        "basic",
        (n, n, n),
        (16, 32, 64),
        shortcut="zero_pad",
        stem="cifar",
        num_classes=10,
        input_size=32,
    )


MODEL_SPECS: dict[str, ResNetSpec] = {
    "resnet18": _imagenet("basic", (2, 2, 2, 2)),
    "resnet34": _imagenet("basic", (3, 4, 6, 3)),
    "resnet50": _imagenet("bottleneck", (3, 4, 6, 3)),
    "resnet101": _imagenet("bottleneck", (3, 4, 23, 3)),
    "resnet152": _imagenet("bottleneck", (3, 8, 36, 3)),
    "resnet20": _cifar(3),
    "resnet32": _cifar(5),
    "resnet44": _cifar(7),
    "resnet56": _cifar(9),
    "resnet110": _cifar(18),
}
