"""The training recipe as one dataclass: defaults, their sources, and validation.

``TrainConfig()`` is the recipe of the project's notes for ResNet-18 on CIFAR-10, which
reached 93.88% test accuracy: SGD with momentum 0.9 and weight decay 5e-4, learning rate
0.1 divided by 10 every 30 epochs (PyTorch's ``StepLR(step_size=30, gamma=0.1)``), batch
128, pad-4 random crop and horizontal flip, a 20% validation split, early stopping that
restores the best epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os

from keras_resnet.specs import MODEL_SPECS, SHORTCUTS

PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# "step": the notes' StepLR, set per epoch; "one_cycle": ``schedules.one_cycle``, set per step.
SCHEDULES = ("step", "one_cycle")
# Named presets of recipe fields, applied under explicit values (``--recipe``). "fast" is a
# starting point for fewer, larger steps; its values are not yet measured on CIFAR-10 here.
RECIPES = {
    "notes": {},
    "fast": {
        "epochs": 30,
        "batch_size": 512,
        "learning_rate": 0.4,  # 0.1 at batch 128, scaled linearly with the batch
        "schedule": "one_cycle",
        "nesterov": True,
        "label_smoothing": 0.1,
        "flip_test": True,
    },
}
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
EXECUTION_FIELDS = ("output_dir", "run_name", "cache_dir", "verbose", "jit_compile")
# Fields added after run folders existed, with the default that reproduces the earlier
# behaviour: left out of the fingerprint at that default, so earlier runs keep theirs.
LATER_FIELDS = {"schedule": "step", "nesterov": False, "label_smoothing": 0.0, "flip_test": False}


@dataclasses.dataclass
class TrainConfig:
    """Everything a CIFAR-10 training run depends on.

    Attributes:
        model: a registered model name (``keras_resnet.list_models()``).
        shortcut: "zero_pad", "projection", "projection_all", "none" (a plain network),
            or None for the model's.
        epochs: maximum epochs (100: three StepLR decays at 30/60/90, then 1e-4).
        batch_size: 128, as in the notes and the ResNet paper's CIFAR runs.
        learning_rate: initial SGD learning rate, 0.1 (the paper's CIFAR value).
        momentum: 0.9 (paper and notes).
        weight_decay: 5e-4, applied PyTorch's way (see ``optimizers.TorchSGD``); the
            paper used 1e-4 for its CIFAR ResNets, CIFAR ResNet-18 recipes use 5e-4.
        step_size: epochs between learning-rate drops (StepLR step_size=30).
        gamma: factor of each drop (0.1).
        schedule: "step" (StepLR per epoch, from ``step_size`` and ``gamma``) or
            "one_cycle" (per step up to ``learning_rate`` and down to 0 at the last epoch).
        nesterov: Nesterov momentum.
        label_smoothing: share of each label's probability spread over all classes (0).
        flip_test: evaluate the test set on each image and its mirror image, averaging the
            two predicted distributions.
        patience: early-stopping patience on validation accuracy; None gives
            ``step_size + PATIENCE_AFTER_DROP``, so a plateau is never cut short before
            the next drop has had ``PATIENCE_AFTER_DROP`` epochs to improve on it.
        validation_fraction: last fraction of the shuffled training set held out (0.2).
        seed: seeds Python, NumPy and the backend, the shuffle and the augmentation.
        deterministic: ask the backend for deterministic kernels (slower).
        data_dir: an image folder (train/<class>/*, test/<class>/*); None uses tfds.
        synthetic: use small generated data instead (smoke tests).
        train_subset: use this many training images (class-balanced), None for all.
        test_subset: use this many test images, None for all.
        precision: "fp32", "bf16" or "fp16" (mixed precision; the classifier stays fp32).
        distribute: data-parallel over all local devices (JAX and TensorFlow).
        output_dir: parent folder of run folders.
        run_name: the run folder's name; None derives one from the fingerprint.
        cache_dir: where decoded image folders are cached; None uses the default.
        jit_compile: None picks per backend (see ``training.default_jit_compile``).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Example:
        >>> config = TrainConfig(model="resnet56", epochs=164, step_size=82)
        >>> config.resolved_patience
        92
    """

    model: str = "resnet18"
    shortcut: str | None = None
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    step_size: int = 30
    gamma: float = 0.1
    schedule: str = "step"
    nesterov: bool = False
    label_smoothing: float = 0.0
    flip_test: bool = False
    patience: int | None = None
    validation_fraction: float = 0.2
    seed: int = 42
    deterministic: bool = False
    data_dir: str | None = None
    synthetic: bool = False
    train_subset: int | None = None
    test_subset: int | None = None
    precision: str = "fp32"
    distribute: bool = False
    output_dir: str = "runs"
    run_name: str | None = None
    cache_dir: str | None = None
    jit_compile: bool | None = None
    verbose: int = 1

    def __post_init__(self):
        # Folders may be given as os.PathLike (pathlib.Path); keep them as str so that
        # to_dict() stays JSON-ready for the run folder's config.json.
        for name in ("data_dir", "output_dir", "cache_dir"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid field and the value received."""
        _check_int(self.epochs, "epochs", minimum=1)
        _check_int(self.batch_size, "batch_size", minimum=1)
        _check_int(self.step_size, "step_size", minimum=1)
        _check_int(self.seed, "seed", minimum=0)
        _check_int(self.verbose, "verbose", minimum=0)
        if self.patience is not None:
            _check_int(self.patience, "patience", minimum=1)
        for name in ("train_subset", "test_subset"):
            if getattr(self, name) is not None:
                _check_int(getattr(self, name), name, minimum=1)
        _check_number(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        _check_number(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        _check_number(self.weight_decay, "weight_decay", low=0.0)
        _check_number(self.gamma, "gamma", low=0.0, high=1.0, low_open=True)
        _check_number(self.label_smoothing, "label_smoothing", low=0.0, high=1.0, high_open=True)
        for name in ("nesterov", "flip_test"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"`{name}` must be True or False. Received: {name}={getattr(self, name)!r}"
                )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {', '.join(SCHEDULES)}. "
                f"Received: schedule={self.schedule!r}"
            )
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
        """A config from a named preset in ``RECIPES``; ``overrides`` win over the preset.

        Example:
            >>> TrainConfig.from_recipe("fast", epochs=10).schedule
            'one_cycle'
        """
        if recipe not in RECIPES:
            raise ValueError(
                f"`recipe` must be one of {', '.join(RECIPES)}. Received: recipe={recipe!r}"
            )
        return cls(**{**RECIPES[recipe], **overrides})

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


def _check_int(value, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer of at least {minimum}. Received: {name}={value!r}"
        )


def _check_number(value, name, low=None, high=None, low_open=False, high_open=False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        raise ValueError(
            f"`{name}` must be a number {' and '.join(bounds)}. Received: {name}={value!r}"
        )
