"""The model table: every registered ResNet variant is one row here.

Adding a variant (say ResNet-200) is one entry in ``MODEL_SPECS``; the builders,
``list_models()``, ``get_model()`` and the parametrized tests pick it up. The families
differ only in the table's columns:

- ``resnet18``..``resnet152``: torchvision's layout (ResNet "v1.5": the bottleneck strides
  on its 3x3), so torchvision's ImageNet weights load by name;
- ``resnet50_v1``..``resnet152_v1``: keras.applications' ``ResNet50/101/152`` layer for layer
  (the paper's bottleneck: stride on the first 1x1; every convolution with a bias; BN
  epsilon 1.001e-5);
- ``resnet18_v2``..``resnet152_v2``: pre-activation blocks in keras.applications'
  ``ResNet50V2/101V2/152V2`` layout (the 18/34 rows in the same style);
- ``resnet50d``..``resnet152d``: ResNet-D (He et al. 2019): the deep stem and an average
  pool before the 1x1 projection;
- ``resnet20``..``resnet110``: the paper's CIFAR family (6n+2 layers, option A);
- ``preact_resnet110/164/1001``: the pre-activation paper's CIFAR networks (He et al. 2016b);
- ``wrn16_8``, ``wrn28_10``, ``wrn40_4``: Wide ResNets WRN-d-k (Zagoruyko & Komodakis 2016).
"""

from __future__ import annotations

import dataclasses

BLOCK_TYPES = ("basic", "bottleneck")
# "zero_pad" is the paper's option A, "projection" option B, "projection_all" option C;
# "none" removes every shortcut: the paper's plain networks (section 4.2), with exactly
# option A's weights, since option A's shortcuts have none. "avg_projection" is ResNet-D's
# (a 2x2 average pool, then a stride-1 1x1 projection); "projection_subsample" is
# keras.applications V2's: a 1x1 projection where the channels change, and where only the
# resolution does, a strided 1x1 max-pool (parameter-free subsampling).
SHORTCUTS = (
    "zero_pad",
    "projection",
    "projection_all",
    "none",
    "avg_projection",
    "projection_subsample",
)
# "imagenet": 7x7/2 conv + 3x3/2 max-pool; "cifar": 3x3/1 conv; "deep": ResNet-D's three
# 3x3 convs (the first strided; widths half, half and all of the stem width) + the max-pool.
STEMS = ("imagenet", "cifar", "deep")
# Where a downsampling bottleneck strides: "3x3" (v1.5, torchvision) or "1x1" (the paper's
# original and keras.applications' v1).
BOTTLENECK_STRIDES = ("3x3", "1x1")
# Which block of a stage strides: "first" (the paper, torchvision) or "last"
# (keras.applications V2: the last block of every stage but the last one).
DOWNSAMPLES = ("first", "last")
# Which convolutions carry a bias: "none" (torchvision: every conv is followed by a batch
# norm whose offset makes a bias redundant), "all" (keras.applications v1, whose published
# weights have these biases), "unnormalized" (keras.applications V2: only those no batch
# norm follows: the stem of a pre-activation net, the projection, a branch's last conv).
# A table field rather than folding biases into the batch norm at load time: the layout is
# then exactly the publisher's, so loading its weights is a name-by-name copy and saving
# them back gives the same file.
CONV_BIASES = ("none", "all", "unnormalized")
# Expansion of a block's output width over its stage width (He et al. 2016, table 1).
BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}
# Batch-norm epsilon: PyTorch's (torchvision's weights) and keras.applications'.
TORCH_BN_EPSILON = 1e-5
KERAS_APPLICATIONS_BN_EPSILON = 1.001e-5


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """One ResNet variant.

    Attributes:
        block: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1, expansion 4).
        blocks_per_stage: number of residual blocks in each stage.
        widths: stage widths before expansion.
        shortcut: the default shortcut (see ``SHORTCUTS``).
        stem: the default stem, or None to pick by input size (see
            ``models.resolve_stem``).
        num_classes: the default number of classes.
        input_size: the default square input size.
        preact: pre-activation blocks (BN -> ReLU -> conv; He et al. 2016b): the stem is a
            bare convolution, each block starts with a BN + ReLU shared by the branch and a
            projection shortcut, and a final ``post_bn`` + ``post_relu`` precede the pooling.
        bottleneck_stride: "3x3" or "1x1" (see ``BOTTLENECK_STRIDES``).
        downsample: "first" or "last" (see ``DOWNSAMPLES``).
        conv_bias: "none", "all" or "unnormalized" (see ``CONV_BIASES``).
        bn_epsilon: the batch norms' epsilon.
        stem_width: the stem's output channels; None for ``widths[0]``.
        nominal_depth: the depth in the variant's name where it is counted otherwise than
            ``depth`` counts (Wide ResNets: 6n+4); None for ``depth``.

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
    preact: bool = False
    bottleneck_stride: str = "3x3"
    downsample: str = "first"
    conv_bias: str = "none"
    bn_epsilon: float = TORCH_BN_EPSILON
    stem_width: int | None = None
    nominal_depth: int | None = None

    def __post_init__(self):
        for field, allowed in (
            ("block", BLOCK_TYPES),
            ("shortcut", SHORTCUTS),
            ("bottleneck_stride", BOTTLENECK_STRIDES),
            ("downsample", DOWNSAMPLES),
            ("conv_bias", CONV_BIASES),
        ):
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(
                    f"`{field}` must be one of {', '.join(allowed)}. Received: {field}={value!r}"
                )
        if self.stem is not None and self.stem not in STEMS:
            raise ValueError(
                f"`stem` must be one of {', '.join(STEMS)} or None. Received: stem={self.stem!r}"
            )

    @property
    def depth(self) -> int:
        """Weighted layers: stem conv + convs in the residual branches + classifier."""
        if self.nominal_depth is not None:
            return self.nominal_depth
        convs_per_block = 2 if self.block == "basic" else 3
        return 1 + convs_per_block * sum(self.blocks_per_stage) + 1


IMAGENET_WIDTHS = (64, 128, 256, 512)


def _imagenet(block: str, blocks_per_stage: tuple[int, ...], **columns) -> ResNetSpec:
    """ImageNet variants: four stages of widths 64..512 (torchvision's layout by default)."""
    return ResNetSpec(block, blocks_per_stage, IMAGENET_WIDTHS, **columns)


def _keras_v1(blocks_per_stage: tuple[int, ...]) -> ResNetSpec:
    """keras.applications' ResNet50/101/152: the paper's bottleneck, biases, its epsilon."""
    return _imagenet(
        "bottleneck",
        blocks_per_stage,
        bottleneck_stride="1x1",
        conv_bias="all",
        bn_epsilon=KERAS_APPLICATIONS_BN_EPSILON,
    )


def _keras_v2(block: str, blocks_per_stage: tuple[int, ...]) -> ResNetSpec:
    """keras.applications' ResNet50V2/101V2/152V2 (and 18/34 in their style)."""
    return _imagenet(
        block,
        blocks_per_stage,
        shortcut="projection_subsample",
        preact=True,
        downsample="last",
        conv_bias="unnormalized",
        bn_epsilon=KERAS_APPLICATIONS_BN_EPSILON,
    )


def _resnet_d(blocks_per_stage: tuple[int, ...]) -> ResNetSpec:
    """ResNet-D (timm's resnet50d: stem_width=32, stem_type='deep', avg_down=True)."""
    return _imagenet("bottleneck", blocks_per_stage, shortcut="avg_projection", stem="deep")


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


def _preact_cifar(block: str, n: int) -> ResNetSpec:
    """He et al. 2016b's CIFAR networks: pre-activation, widths 16/32/64, 1x1 projections."""
    return ResNetSpec(
        block, (n, n, n), (16, 32, 64), stem="cifar", num_classes=10, input_size=32, preact=True
    )


def _wide(depth: int, k: int) -> ResNetSpec:
    """WRN-depth-k: pre-activation basic blocks, (depth-4)/6 per stage, widths 16k/32k/64k."""
    n = (depth - 4) // 6
    return ResNetSpec(
        "basic",
        (n, n, n),
        (16 * k, 32 * k, 64 * k),
        stem="cifar",
        num_classes=10,
        input_size=32,
        preact=True,
        stem_width=16,
        nominal_depth=depth,
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
    "resnet50_v1": _keras_v1((3, 4, 6, 3)),
    "resnet101_v1": _keras_v1((3, 4, 23, 3)),
    "resnet152_v1": _keras_v1((3, 8, 36, 3)),
    "resnet18_v2": _keras_v2("basic", (2, 2, 2, 2)),
    "resnet34_v2": _keras_v2("basic", (3, 4, 6, 3)),
    "resnet50_v2": _keras_v2("bottleneck", (3, 4, 6, 3)),
    "resnet101_v2": _keras_v2("bottleneck", (3, 4, 23, 3)),
    "resnet152_v2": _keras_v2("bottleneck", (3, 8, 36, 3)),
    "resnet50d": _resnet_d((3, 4, 6, 3)),
    "resnet101d": _resnet_d((3, 4, 23, 3)),
    "resnet152d": _resnet_d((3, 8, 36, 3)),
    "preact_resnet110": _preact_cifar("basic", 18),
    "preact_resnet164": _preact_cifar("bottleneck", 18),
    "preact_resnet1001": _preact_cifar("bottleneck", 111),
    "wrn16_8": _wide(16, 8),
    "wrn28_10": _wide(28, 10),
    "wrn40_4": _wide(40, 4),
}
