"""The search space and the HyperModel: a trial is the recipe with a few fields chosen.

The space is the initial learning rate (log scale) and, where the schedule is StepLR, its
step size; gamma, weight decay, the shortcut type, the depth, label smoothing and the
weights' moving average (``ema``) can be added. Everything
else is the ``TrainConfig`` the training command uses, and every piece of a trial (data
split, model, optimizer, schedule, callbacks) comes from ``keras_resnet.recipe``: a trial
is the same ``model.fit`` as a training run with a few config fields changed. With the
one-cycle schedule (``--recipe fast``) the learning rate searched is its peak.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping

import keras
import numpy as np

from keras_resnet import extras
from keras_resnet.models.specs import MODEL_SPECS
from keras_resnet.recipe.callbacks import (
    StopAtStep,
    StopOnDivergence,
    TrainingDivergedError,
    ema_callbacks,
    learning_rate_callback,
)
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.data import ImageFiles
from keras_resnet.recipe.pipeline import EpochBatches, EpochSeeds
from keras_resnet.recipe.run_folder import MONITOR
from keras_resnet.recipe.training import Split, build_training_model, compile_model

kt = extras.require("keras_tuner", "A hyperparameter search")

OBJECTIVE = MONITOR  # "val_accuracy"
# Hyperparameters searched by default, then those a search may add (SearchSpace.extra).
DEFAULT_HYPERPARAMETERS = ("learning_rate", "step_size")
OPTIONAL_HYPERPARAMETERS = ("gamma", "weight_decay", "shortcut", "model", "label_smoothing", "ema")


def boolean(text: str) -> bool:
    """A true/false value given as text (``--fixed ema=true``).

    Example:
        >>> boolean("true"), boolean("off")
        (True, False)
    """
    value = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}.get(
        text.strip().lower()
    )
    if value is None:
        raise ValueError(f"expected true or false. Received: {text!r}")
    return value


# The value type of each hyperparameter (for hp.Fixed overrides given as text).
HYPERPARAMETER_TYPES = {
    "learning_rate": float,
    "step_size": int,
    "gamma": float,
    "weight_decay": float,
    "shortcut": str,
    "model": str,
    "label_smoothing": float,
    "ema": boolean,
}
# The shortcuts a search may choose between (option C only adds parameters to option B).
SEARCHED_SHORTCUTS = ("zero_pad", "projection")
GAMMA_RANGE = (0.05, 0.5)  # log scale
WEIGHT_DECAY_RANGE = (1e-5, 1e-3)  # log scale
LABEL_SMOOTHING_RANGE = (0.0, 0.3, 0.05)  # low, high, step


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The ranges searched; the defaults suit a run of ``epochs`` epochs.

    Attributes:
        learning_rate: (low, high) of the initial learning rate, sampled on a log scale.
        learning_rate_step: multiplicative grid step of the learning rate (e.g. ``10**0.5``);
            None samples it continuously (a grid search then takes 10 log-spaced values).
        step_size: (low, high) of the StepLR step size in epochs; None gives
            ``(max(1, epochs // 4), epochs)``: from four drops to none in the run.
        step_size_step: spacing of the step sizes tried; None gives ``max(1, epochs // 4)``.
        extra: optional hyperparameters to search as well (``OPTIONAL_HYPERPARAMETERS``):
            gamma in [0.05, 0.5] (log), weight decay in [1e-5, 1e-3] (log), the shortcut
            ("zero_pad" or "projection"), the model among those of the same family
            (block type and stem) as the config's, label smoothing in 0, 0.05, ..., 0.3,
            and ``ema`` (on or off).

    Example:
        >>> SearchSpace().resolved_step_size(epochs=100)
        (25, 100, 25)
    """

    learning_rate: tuple[float, float] = (1e-3, 1.0)
    learning_rate_step: float | None = None
    step_size: tuple[int, int] | None = None
    step_size_step: int | None = None
    extra: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "learning_rate", tuple(self.learning_rate))
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", tuple(self.step_size))
        low, high = self.learning_rate
        if not (0 < low < high and math.isfinite(high)):
            raise ValueError(
                "`learning_rate` must be a range (low, high) with 0 < low < high. "
                f"Received: learning_rate={self.learning_rate!r}"
            )
        if self.learning_rate_step is not None and not self.learning_rate_step > 1:
            raise ValueError(
                "`learning_rate_step` is a factor between grid values and must be above 1. "
                f"Received: learning_rate_step={self.learning_rate_step!r}"
            )
        if self.step_size is not None:
            low, high = self.step_size
            if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
                raise ValueError(
                    "`step_size` must be a range (low, high) of integers with 1 <= low <= "
                    f"high. Received: step_size={self.step_size!r}"
                )
        if self.step_size_step is not None and not (
            isinstance(self.step_size_step, int) and self.step_size_step >= 1
        ):
            raise ValueError(
                "`step_size_step` must be an integer of at least 1. "
                f"Received: step_size_step={self.step_size_step!r}"
            )
        unknown = [name for name in self.extra if name not in OPTIONAL_HYPERPARAMETERS]
        if unknown:
            raise ValueError(
                f"`extra` may hold {', '.join(OPTIONAL_HYPERPARAMETERS)}. "
                f"Received: extra={self.extra!r}"
            )

    def resolved_step_size(self, epochs: int) -> tuple[int, int, int]:
        """(low, high, spacing) of the step sizes for a run of ``epochs`` epochs.

        Example:
            >>> SearchSpace(step_size=(2, 8)).resolved_step_size(epochs=8)
            (2, 8, 2)
        """
        spacing = self.step_size_step or max(1, epochs // 4)
        low, high = self.step_size or (max(1, epochs // 4), epochs)
        return low, high, spacing

    def hyperparameters(self, schedule: str = "step") -> tuple[str, ...]:
        """The names searched: learning rate, step size (StepLR only), then ``extra``.

        Example:
            >>> SearchSpace(extra=("gamma",)).hyperparameters()
            ('learning_rate', 'step_size', 'gamma')
            >>> SearchSpace().hyperparameters(schedule="one_cycle")
            ('learning_rate',)
        """
        defaults = DEFAULT_HYPERPARAMETERS if schedule == "step" else ("learning_rate",)
        return (*defaults, *self.extra)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict.

        Example:
            >>> SearchSpace().to_dict()["learning_rate"]
            [0.001, 1.0]
        """
        return json.loads(json.dumps(dataclasses.asdict(self)))


def same_family(model: str) -> tuple[str, ...]:
    """The registered models whose row equals ``model``'s but for the number of blocks.

    Example:
        >>> same_family("resnet20")
        ('resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110')
    """
    spec = MODEL_SPECS[model]
    return tuple(
        name
        for name, other in MODEL_SPECS.items()
        if dataclasses.replace(
            other, blocks_per_stage=spec.blocks_per_stage, nominal_depth=spec.nominal_depth
        )
        == spec
    )


class ResNetHyperModel(kt.HyperModel):
    """The training recipe with some of its fields chosen by KerasTuner.

    ``build`` makes the model of ``recipe.training.build_training_model`` and compiles it
    with ``compile_model`` (a one-cycle rate over the trial's steps); ``fit`` adds the
    recipe's schedule callback and early stopping and calls ``model.fit`` with the
    config's batch size and epochs. Pass the training and validation arrays of a
    ``recipe.training.Split`` to ``tuner.search``.

    Args:
        config: the recipe; its learning rate and step size are the defaults of the
            searched values.
        split: gives the normalization statistics and the classes (the arrays go to
            ``search``).
        space: the ranges searched.

    Example:
        >>> config = TrainConfig(model="resnet20", epochs=8, synthetic=True, verbose=0)
        >>> split = keras_resnet.recipe.training.prepare_split(config)
        >>> hypermodel = ResNetHyperModel(config, split)
        >>> hypermodel.trial_config(kt.HyperParameters()).step_size
        8
    """

    def __init__(self, config: TrainConfig, split: Split, space: SearchSpace | None = None):
        super().__init__(name=f"cifar10_{config.model}")
        self.config = config
        self.space = space or SearchSpace()
        self.mean, self.std = split.mean, split.std
        self.num_classes = split.num_classes
        self.image_size = split.x_train.shape[2]  # square images: a side in either layout
        # A per-step schedule spans the run's steps: ceil(training images / batch size).
        self.steps_per_epoch = -(-len(split.x_train) // config.batch_size)

    def trial_config(self, hp: kt.HyperParameters) -> TrainConfig:
        """The config of a trial: the base config with the hyperparameters' values.

        Registers the hyperparameters in ``hp`` on first use (that is how KerasTuner
        learns the space); a value fixed in ``hp`` (``hp.Fixed``) is taken as is.

        Example:
            >>> hp = kt.HyperParameters()  # doctest: +SKIP
            >>> hp.Fixed("learning_rate", 0.05)  # doctest: +SKIP
            >>> hypermodel.trial_config(hp).learning_rate  # doctest: +SKIP
            0.05
        """
        config, space = self.config, self.space
        low, high = space.learning_rate
        values = {
            "learning_rate": hp.Float(
                "learning_rate",
                low,
                high,
                step=space.learning_rate_step,
                sampling="log",
                default=_clip(config.learning_rate, (low, high)),
            )
        }
        if config.schedule == "step":  # a per-step schedule has no step size
            low, high, spacing = space.resolved_step_size(config.epochs)
            values["step_size"] = hp.Int(
                "step_size",
                low,
                high,
                step=spacing,
                default=_nearest_on_grid(config.step_size, low, high, spacing),
            )
        if "gamma" in space.extra:
            values["gamma"] = hp.Float(
                "gamma", *GAMMA_RANGE, sampling="log", default=_clip(config.gamma, GAMMA_RANGE)
            )
        if "weight_decay" in space.extra:
            values["weight_decay"] = hp.Float(
                "weight_decay",
                *WEIGHT_DECAY_RANGE,
                sampling="log",
                default=_clip(config.weight_decay, WEIGHT_DECAY_RANGE),
            )
        if "shortcut" in space.extra:
            shortcut = config.shortcut or MODEL_SPECS[config.model].shortcut
            values["shortcut"] = hp.Choice(
                "shortcut",
                SEARCHED_SHORTCUTS,
                default=shortcut if shortcut in SEARCHED_SHORTCUTS else SEARCHED_SHORTCUTS[0],
            )
        if "model" in space.extra:
            values["model"] = hp.Choice("model", same_family(config.model), default=config.model)
        if "label_smoothing" in space.extra:
            low, high, step = LABEL_SMOOTHING_RANGE
            values["label_smoothing"] = hp.Float(
                "label_smoothing",
                low,
                high,
                step=step,
                default=round(_clip(config.label_smoothing, (low, high)) / step) * step,
            )
        if "ema" in space.extra:
            values["ema"] = hp.Boolean("ema", default=config.ema)
        return dataclasses.replace(config, **values)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The recipe's compiled model for the trial's config.

        Example:
            >>> model = hypermodel.build(kt.HyperParameters())  # doctest: +SKIP
        """
        config = self.trial_config(hp)
        model = build_training_model(config, self.mean, self.std, self.num_classes, self.image_size)
        compile_model(model, config, steps_per_epoch=self.steps_per_epoch)
        return model

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        """``model.fit`` with the trial's schedule callback and the recipe's early stopping.

        A trial whose loss becomes NaN or infinite stops at that step and raises
        ``keras_tuner.errors.FailedTrialError`` with the reason: KerasTuner marks it FAILED
        and the search goes on (see ``tuners.make_tuner``).

        Example:
            >>> history = hypermodel.fit(hp, model, x, y, validation_data=val)  # doctest: +SKIP
        """
        config = self.trial_config(hp)
        # Arrays become batches whose order, like the augmentation draws, is a function of
        # (seed, epoch): a trial rerun after a kill trains on what the first attempt did.
        batch_size = kwargs.pop("batch_size", None) or config.batch_size
        batches = None
        if len(args) >= 2 and isinstance(args[0], (np.ndarray, ImageFiles)):
            batches = EpochBatches(args[0], args[1], batch_size, config.seed)
            args = (batches, *args[2:])
            validation = kwargs.get("validation_data")
            if isinstance(args[0].images, ImageFiles) and validation is not None:
                # A streamed split streams both parts.
                kwargs["validation_data"] = EpochBatches(
                    *validation, batch_size, config.seed, shuffle=False
                )
            else:
                kwargs.setdefault("validation_batch_size", batch_size)
        # The divergence check first, so that no later callback (KerasTuner's checkpoint,
        # the trial's history) sees a diverged epoch; the seeds next; then the schedule: it
        # adds the epoch's learning rate to the logs the others see. KerasTuner's own
        # callbacks come last, when the model holds the training weights.
        average_in, training_back = ema_callbacks(config)
        callbacks = [
            StopOnDivergence(config.learning_rate),
            EpochSeeds(config.seed, batches),
            learning_rate_callback(config),
            *([StopAtStep(config.max_steps)] if config.max_steps else []),
            *average_in,
            keras.callbacks.EarlyStopping(
                monitor=OBJECTIVE, mode="max", patience=config.resolved_patience
            ),
            *training_back,
            *callbacks,
        ]
        kwargs.setdefault("epochs", config.epochs)  # Hyperband passes its own
        kwargs.setdefault("verbose", config.verbose)
        if batches is None:
            kwargs["batch_size"] = batch_size
        try:
            return model.fit(*args, shuffle=batches is None, callbacks=callbacks, **kwargs)
        except TrainingDivergedError as error:
            # KerasTuner records the trial as FAILED (not retried) and goes on searching.
            raise kt.errors.FailedTrialError(str(error)) from None


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _nearest_on_grid(value: int, low: int, high: int, spacing: int) -> int:
    """The value of ``low, low + spacing, ... <= high`` nearest to ``value``."""
    index = round((min(max(value, low), high) - low) / spacing)
    return min(low + index * spacing, low + (high - low) // spacing * spacing)


def fixed_hyperparameters(values: Mapping[str, object]) -> kt.HyperParameters:
    """``hp.Fixed`` for each of ``values``: those are not searched.

    Example:
        >>> fixed_hyperparameters({"step_size": 30}).values
        {'step_size': 30}
    """
    hp = kt.HyperParameters()
    for name, value in values.items():
        if name not in HYPERPARAMETER_TYPES:
            raise ValueError(
                f"Only {', '.join(HYPERPARAMETER_TYPES)} can be fixed. Received: {name}={value!r}"
            )
        hp.Fixed(name, value)
    return hp
