"""The training recipe as one dataclass: defaults, their sources, and validation.

``TrainConfig()`` is the ``step`` recipe: a ResNet-18 StepLR recipe for CIFAR-10 reported
at 93.88% test accuracy. SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.1
divided by 10 every 30 epochs (PyTorch's ``StepLR(step_size=30, gamma=0.1)``), batch 128,
pad-4 random crop and horizontal flip, a 20% validation split, early stopping that
restores the best epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os

from keras_resnet.models.specs import MODEL_SPECS, SHORTCUTS
from keras_resnet.recipe.cluster import check_settings
from keras_resnet.validation import check_integer, check_number

PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# "step": StepLR, set per epoch; "multistep": drops at ``milestones`` and "one_cycle":
# ``schedules.OneCycle``, both set per step.
SCHEDULES = ("step", "multistep", "one_cycle")
MILESTONE_UNITS = ("epoch", "step")
# Named presets of recipe fields, applied under explicit values (``--recipe``): "step" is the
# defaults themselves; "fast" trades them for fewer, larger steps.
RECIPES = {
    "step": {},
    "fast": {
        "epochs": 30,
        "batch_size": 512,
        "learning_rate": 0.4,  # 0.1 at batch 128, scaled linearly with the batch
        "schedule": "one_cycle",
        "nesterov": True,
        "label_smoothing": 0.1,
        "flip_test": True,
    },
    # He et al. 2016, section 4.2: a 45k/5k split, the rate divided by 10 at 32k and 48k
    # iterations, training stopped at 64k (182 epochs of 352 steps, the last cut short).
    # The paper trains to the end: patience never fires before it.
    "paper": {
        "epochs": 182,
        "batch_size": 128,
        "learning_rate": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "multistep",
        "milestones": (32000, 48000),
        "milestone_unit": "step",
        "max_steps": 64000,
        "validation_fraction": 0.1,
        "patience": 182,
    },
}
# Preset values for one model only, applied with the preset: the paper warms ResNet-110 up
# at 0.01 "until the training error is below 80% (about 400 iterations)".
MODEL_RECIPES = {("paper", "resnet110"): {"warmup_steps": 400, "warmup_learning_rate": 0.01}}
# Epochs the learning rate gets after a drop before early stopping may fire: the
# default patience is step_size + PATIENCE_AFTER_DROP (see TrainConfig.resolved_patience).
PATIENCE_AFTER_DROP = 10
# --quick: a small model on a subset for a few epochs, about two minutes on 2 CPU cores.
QUICK = {
    "model": "resnet20",
    "epochs": 4,
    "step_size": 3,
    "train_subset": 5000,
    "test_subset": 1000,
}
# Fields that change only how a run executes or reports, not what it computes; they are
# left out of the run's fingerprint, so changing them resumes the same run.
EXECUTION_FIELDS = (
    "output_dir",
    "run_name",
    "cache_dir",
    "verbose",
    "jit_compile",
    "memory_budget_mb",  # arrays or streamed files: the same images, the same batches
    "allow_emulated_precision",
    "tensorboard",
    # Processes share out each global batch: the same run with any number of them.
    "job_addresses",
    "num_processes",
    "process_id",
    "heartbeat_timeout",
)
# Fields added after run folders existed, with the default that reproduces the earlier
# behaviour: left out of the fingerprint at that default, so earlier runs keep theirs.
LATER_FIELDS = {
    "schedule": "step",
    "nesterov": False,
    "label_smoothing": 0.0,
    "flip_test": False,
    "image_size": None,
    "milestones": None,
    "milestone_unit": "epoch",
    "warmup_steps": 0,
    "warmup_learning_rate": 0.01,
    "max_steps": None,
    "ema": False,
    "ema_momentum": 0.99,
    "decay_norm_and_bias": True,
    "test_translate": 0,
    "zero_init_residual": False,
}


# The argument groups of the generated command-line flags, in ``--help`` order.
FLAG_GROUPS = ("model", "recipe", "data", "run")


def _field(default, help: str, *, group: str, flag=None, choices=None, default_text=None):
    """A field whose metadata is what its command-line flag needs (``recipe.flags``).

    ``help`` describes the field without its default (``--help`` adds it); ``flag`` is the
    flag's name where it is not ``--field-name``; ``choices`` a closed set of values (shown,
    checked by ``validate``); ``default_text`` what ``--help`` shows as the default where the
    value alone would not say (None).
    """
    if group not in FLAG_GROUPS:
        raise ValueError(f"`group` must be one of {', '.join(FLAG_GROUPS)}. Received: {group=}")
    if default is None and default_text is None:
        raise ValueError(f"A None default needs a `default_text`. Received: {help=}")
    metadata = {"help": help, "group": group, "flag": flag, "choices": choices}
    return dataclasses.field(default=default, metadata={**metadata, "default_text": default_text})


@dataclasses.dataclass
class TrainConfig:
    """Everything a CIFAR-10 training run depends on.

    Each field is described by its ``help`` metadata (``dataclasses.fields(TrainConfig)``),
    which is also its flag's ``--help`` line; comments above fields give their defaults'
    sources.

    Example:
        >>> config = TrainConfig(model="resnet56", epochs=164, step_size=82)
        >>> config.resolved_patience
        92
    """

    # The descriptions live in the metadata only, not also in an Attributes section: the
    # flags are generated from them, so a second copy would be the one left behind.
    model: str = _field(
        "resnet18",
        "a registered model (keras_resnet.list_models())",
        group="model",
        choices=MODEL_SPECS,
    )
    shortcut: str | None = _field(
        None,
        "the blocks' shortcut; none: a plain network",
        group="model",
        choices=SHORTCUTS,
        default_text="the model's",
    )
    # 100 epochs: three StepLR drops, at 30, 60 and 90, then 1e-4 to the end.
    zero_init_residual: bool = _field(
        False,
        "start each residual branch's last batch-norm scale at 0 (torchvision's option)",
        group="model",
    )
    epochs: int = _field(100, "maximum epochs", group="recipe")
    # 128, as in the step recipe and the ResNet paper's CIFAR runs.
    batch_size: int = _field(128, "images per training step", group="recipe")
    # 0.1, the paper's CIFAR value.
    learning_rate: float = _field(
        0.1, "initial SGD learning rate (one_cycle: its peak)", group="recipe", flag="--lr"
    )
    # 0.9, the paper's and the step recipe's.
    momentum: float = _field(0.9, "SGD momentum", group="recipe")
    # The paper used 1e-4 for its CIFAR ResNets; CIFAR ResNet-18 recipes use 5e-4.
    weight_decay: float = _field(
        5e-4, "L2 weight decay, applied PyTorch's way (optimizers.TorchSGD)", group="recipe"
    )
    # PyTorch's StepLR(step_size=30, gamma=0.1).
    step_size: int = _field(30, "epochs between StepLR learning-rate drops", group="recipe")
    gamma: float = _field(0.1, "factor of each StepLR drop", group="recipe")
    schedule: str = _field(
        "step",
        "step: StepLR per epoch (step size, gamma); multistep: the rate times gamma at each "
        "of the milestones; one_cycle: per step up to the learning rate and down to 0 at "
        "the last epoch (schedules.OneCycle)",
        group="recipe",
        choices=SCHEDULES,
    )
    milestones: tuple[int, ...] | None = _field(
        None,
        "comma-separated epochs (or steps, see --milestone-unit) at which the multistep "
        "schedule multiplies the rate by gamma; given alone, it selects that schedule",
        group="recipe",
        default_text="none",
    )
    milestone_unit: str = _field(
        "epoch", "what the milestones count", group="recipe", choices=MILESTONE_UNITS
    )
    warmup_steps: int = _field(
        0, "multistep: train the first steps at the warm-up rate", group="recipe"
    )
    warmup_learning_rate: float = _field(
        0.01, "multistep: the rate of the warm-up steps", group="recipe"
    )
    max_steps: int | None = _field(
        None,
        "stop after this many training steps, mid-epoch if need be (the paper's 64k)",
        group="recipe",
        default_text="epochs only",
    )
    nesterov: bool = _field(False, "Nesterov momentum", group="recipe")
    ema: bool = _field(
        False,
        "validate, keep and test an exponential moving average of the weights (Keras's use_ema)",
        group="recipe",
    )
    ema_momentum: float = _field(0.99, "the moving average's momentum", group="recipe")
    decay_norm_and_bias: bool = _field(
        True,
        "apply the weight decay to batch-norm parameters and biases too (PyTorch's default)",
        group="recipe",
    )
    label_smoothing: float = _field(
        0.0, "share of each label's probability spread over all classes", group="recipe"
    )
    flip_test: bool = _field(
        False,
        "evaluate the test set on each image and its mirror image, averaging the two "
        "predicted distributions",
        group="recipe",
    )
    test_translate: int = _field(
        0,
        "also average the test predictions over each image shifted by this many pixels "
        "(up-left and down-right, edges reflected)",
        group="recipe",
    )
    # The default (resolved_patience) never cuts a plateau short before the next drop has
    # had PATIENCE_AFTER_DROP epochs to improve on it.
    patience: int | None = _field(
        None,
        "early-stopping patience in epochs, on validation accuracy",
        group="recipe",
        default_text=f"step size + {PATIENCE_AFTER_DROP}",
    )
    validation_fraction: float = _field(
        0.2, "last share of the shuffled training images held out for validation", group="recipe"
    )
    seed: int = _field(
        42, "seeds Python, NumPy and the backend, the shuffle and the augmentation", group="recipe"
    )
    deterministic: bool = _field(
        False, "ask the backend for deterministic kernels (slower)", group="recipe"
    )
    data_dir: str | None = _field(
        None,
        "an image folder with train/<class>/* and test/<class>/*",
        group="data",
        default_text="tfds cifar10",
    )
    # None: data.default_image_size, which says why (32 for 32x32 images, else 128).
    image_size: int | None = _field(
        None,
        "the side images are scaled and centre-cropped to; the model's stem and "
        "augmentation follow it (docs/own_data.md)",
        group="data",
        default_text="32 for a folder of 32x32 images, else 128",
    )
    # 2048 MiB: CIFAR-10 (176 MiB) and folders of some 40,000 images at 128x128 fit.
    memory_budget_mb: int = _field(
        2048,
        "MiB the decoded images may take; a larger image folder streams from disk",
        group="data",
    )
    synthetic: bool = _field(False, "use small generated data instead (smoke tests)", group="data")
    train_subset: int | None = _field(
        None, "use this many training images (class-balanced)", group="data", default_text="all"
    )
    test_subset: int | None = _field(
        None, "use this many test images", group="data", default_text="all"
    )
    precision: str = _field(
        "fp32",
        "bf16 and fp16: mixed precision (the classifier stays float32)",
        group="run",
        choices=PRECISIONS,
    )
    # Off: a precision the CPU would emulate is refused before training (hardware.py).
    allow_emulated_precision: bool = _field(
        False,
        "train in bf16 or fp16 even on a CPU that would emulate it (many times slower than fp32)",
        group="run",
    )
    distribute: bool = _field(
        False,
        "data-parallel over all local devices (jax, tensorflow), or over every device of "
        "several processes (jax: --num-processes)",
        group="run",
    )
    # None: Keras's KERAS_DISTRIBUTION_* variables (recipe.cluster reads them).
    job_addresses: str | None = _field(
        None,
        "--distribute over several processes: comma-separated host:port of the processes, "
        "the first the coordinator (process 0), or the coordinator's alone (docs/multi_host.md)",
        group="run",
        default_text="$KERAS_DISTRIBUTION_JOB_ADDRESSES, else one process",
    )
    num_processes: int | None = _field(
        None,
        "--distribute over several processes: how many (jax only)",
        group="run",
        default_text="$KERAS_DISTRIBUTION_NUM_PROCESSES, else one process",
    )
    process_id: int | None = _field(
        None,
        "--distribute over several processes: this one's, from 0 (0 writes the run folder)",
        group="run",
        default_text="$KERAS_DISTRIBUTION_PROCESS_ID",
    )
    # 60 s: JAX's default is 100 s (and 300 s at shutdown); a dead peer costs at most this.
    heartbeat_timeout: int = _field(
        60,
        "several processes: seconds without a peer's heartbeat before the others stop",
        group="run",
    )
    output_dir: str = _field("runs", "parent folder of run folders", group="run")
    run_name: str | None = _field(
        None,
        "the run folder's name",
        group="run",
        default_text="{model}-seed{seed}-{recipe hash}",
    )
    cache_dir: str | None = _field(
        None,
        "where decoded image folders are cached",
        group="data",
        default_text="$KERAS_RESNET_CACHE, else the user's cache folder",
    )
    # None: training.default_jit_compile, which says why.
    jit_compile: bool | None = _field(
        None,
        "XLA/jit compile the train step",
        group="run",
        default_text="on for jax, off otherwise",
    )
    verbose: int = _field(1, "0 silent, 1 progress bar, 2 one line per epoch", group="run")
    tensorboard: bool = _field(
        False,
        "write TensorBoard logs into the run folder (tensorboard/): the epoch scalars and the "
        "learning rate, no histograms",
        group="run",
    )

    def __post_init__(self):
        # Folders may be given as os.PathLike (pathlib.Path); keep them as str so that
        # to_dict() stays JSON-ready for the run folder's config.json.
        for name in ("data_dir", "output_dir", "cache_dir"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        # A list (from config.json) and a tuple are the same milestones.
        if isinstance(self.milestones, list):
            self.milestones = tuple(self.milestones)
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid field and the value received."""
        check_integer(self.epochs, "epochs", minimum=1)
        check_integer(self.batch_size, "batch_size", minimum=1)
        check_integer(self.step_size, "step_size", minimum=1)
        check_integer(self.seed, "seed", minimum=0)
        check_integer(self.verbose, "verbose", minimum=0)
        check_integer(self.warmup_steps, "warmup_steps", minimum=0)
        check_integer(self.test_translate, "test_translate", minimum=0)
        for name in ("patience", "train_subset", "test_subset", "max_steps"):
            if getattr(self, name) is not None:
                check_integer(getattr(self, name), name, minimum=1)
        if self.image_size is not None:
            check_integer(self.image_size, "image_size", minimum=8)
        check_integer(self.memory_budget_mb, "memory_budget_mb", minimum=0)
        check_integer(self.heartbeat_timeout, "heartbeat_timeout", minimum=1)
        check_settings(self.job_addresses, self.num_processes, self.process_id)
        check_number(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        check_number(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        check_number(self.weight_decay, "weight_decay", low=0.0)
        check_number(self.gamma, "gamma", low=0.0, high=1.0, low_open=True)
        check_number(self.label_smoothing, "label_smoothing", low=0.0, high=1.0, high_open=True)
        check_number(self.warmup_learning_rate, "warmup_learning_rate", low=0.0, low_open=True)
        check_number(self.ema_momentum, "ema_momentum", low=0.0, high=1.0, high_open=True)
        for name in (
            "nesterov",
            "flip_test",
            "ema",
            "decay_norm_and_bias",
            "allow_emulated_precision",
            "tensorboard",
            "zero_init_residual",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"`{name}` must be True or False. Received: {name}={getattr(self, name)!r}"
                )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {', '.join(SCHEDULES)}. "
                f"Received: schedule={self.schedule!r}"
            )
        self._validate_milestones()
        fraction = self.validation_fraction
        if not isinstance(fraction, numbers.Real) or not 0.0 < fraction < 1.0:
            raise ValueError(
                "`validation_fraction` must be strictly between 0 and 1. "
                f"Received: validation_fraction={fraction!r}"
            )
        if self.model not in MODEL_SPECS:
            raise ValueError(
                f"Unknown `model`. Available: {', '.join(MODEL_SPECS)}. "
                f"Received: model={self.model!r}"
            )
        if self.shortcut is not None and self.shortcut not in SHORTCUTS:
            raise ValueError(
                f"`shortcut` must be one of {', '.join(SHORTCUTS)}. "
                f"Received: shortcut={self.shortcut!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {', '.join(PRECISIONS)}. "
                f"Received: precision={self.precision!r}"
            )
        if self.data_dir is not None and self.synthetic:
            raise ValueError(
                "Choose one data source: `data_dir` or `synthetic`. "
                f"Received: data_dir={self.data_dir!r}, synthetic=True"
            )
        if self.data_dir is not None and not os.path.isdir(self.data_dir):
            raise ValueError(
                "`data_dir` must be an existing folder with train/<class>/* and "
                f"test/<class>/* images. Received: data_dir={self.data_dir!r}"
            )

    def _validate_milestones(self) -> None:
        if self.milestone_unit not in MILESTONE_UNITS:
            raise ValueError(
                f"`milestone_unit` must be one of {', '.join(MILESTONE_UNITS)}. "
                f"Received: milestone_unit={self.milestone_unit!r}"
            )
        if self.schedule != "multistep":
            if self.milestones is not None or self.warmup_steps:
                raise ValueError(
                    "`milestones` and `warmup_steps` apply to schedule='multistep' only. "
                    f"Received: schedule={self.schedule!r}, milestones={self.milestones!r}, "
                    f"warmup_steps={self.warmup_steps!r}"
                )
            return
        milestones = self.milestones
        if (
            not isinstance(milestones, tuple)
            or not milestones
            or not all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)
            or any(m < 1 for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ValueError(
                "schedule='multistep' needs `milestones`: increasing positive integers, "
                f"e.g. milestones=(30, 60, 90). Received: milestones={milestones!r}"
            )

    @property
    def resolved_patience(self) -> int:
        """The early-stopping patience in effect (see ``patience``).

        Example:
            >>> TrainConfig().resolved_patience
            40
        """
        if self.patience is not None:
            return self.patience
        return self.step_size + PATIENCE_AFTER_DROP

    def fingerprint(self) -> str:
        """A short hash of every field that changes what the run computes.

        Example:
            >>> TrainConfig(verbose=2).fingerprint() == TrainConfig().fingerprint()
            True
        """
        recipe = {
            key: value
            for key, value in dataclasses.asdict(self).items()
            if key not in EXECUTION_FIELDS
            and not (key in LATER_FIELDS and value == LATER_FIELDS[key])
        }
        if recipe["data_dir"] is not None:
            recipe["data_dir"] = os.path.abspath(recipe["data_dir"])
        text = json.dumps(recipe, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @classmethod
    def from_recipe(cls, recipe: str, **overrides) -> TrainConfig:
        """A config from a named preset (``recipe_values``); ``overrides`` win over it.

        Example:
            >>> TrainConfig.from_recipe("fast", epochs=10).schedule
            'one_cycle'
        """
        model = overrides.get("model", RECIPES.get(recipe, {}).get("model", cls.model))
        return cls(**{**recipe_values(recipe, model), **overrides})

    def resolved_run_name(self) -> str:
        """The run folder's name: ``run_name``, or ``{model}-seed{seed}-{fingerprint}``.

        Example:
            >>> TrainConfig().resolved_run_name().startswith("resnet18-seed42-")
            True
        """
        return self.run_name or f"{self.model}-seed{self.seed}-{self.fingerprint()}"

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict.

        Example:
            >>> TrainConfig().to_dict()["step_size"]
            30
        """
        return dataclasses.asdict(self)


def recipe_values(recipe: str, model: str) -> dict:
    """The fields a named preset sets for ``model``: ``RECIPES`` and ``MODEL_RECIPES``.

    Example:
        >>> recipe_values("paper", "resnet110")["warmup_steps"]
        400
        >>> "warmup_steps" in recipe_values("paper", "resnet56")
        False
    """
    if recipe not in RECIPES:
        raise ValueError(
            f"`recipe` must be one of {', '.join(RECIPES)}. Received: recipe={recipe!r}"
        )
    return {**RECIPES[recipe], **MODEL_RECIPES.get((recipe, model), {})}
