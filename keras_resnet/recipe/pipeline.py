"""Training batches and augmentation draws that are pure functions of (seed, epoch).

A run killed at any moment resumes from its last backed-up epoch. For the resumed epochs
to be those of the uninterrupted run, nothing they draw may depend on what the process
did before: batch ``i`` of epoch ``e`` holds the images ``epoch_order(seed, e, n)[i * b :
(i + 1) * b]`` (``EpochBatches``), and at the start of epoch ``e`` every random layer of the
model (the crops and flips inside it) restarts from a state derived from ``(seed, e)``
(``EpochSeeds``). Neither needs the process's history, so a resumed run, a rerun tuner
trial or another process given the same epoch reads the same batches and draws the same
augmentation.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_resnet.validation import check_integer

# Keras's SeedGenerator state is [seed, counter]; the seed part stays below 2**31 so that
# it fits every backend's seed dtype (int32 on torch, uint32 on jax and tensorflow).
_SEED_LIMIT = 2**31 - 1
# Mixed into the seed sequences so that the order and the augmentation draws never share
# a stream with each other or with ``data.shuffle_once(seed)``.
_ORDER_STREAM, _AUGMENT_STREAM = 1, 2


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of ``n`` training images in epoch ``epoch`` (0-based): a pure function.

    Example:
        >>> epoch_order(42, 3, 5).tolist() == epoch_order(42, 3, 5).tolist()
        True
        >>> sorted(epoch_order(42, 3, 5).tolist())
        [0, 1, 2, 3, 4]
    """
    check_integer(seed, "seed", minimum=0)
    check_integer(epoch, "epoch", minimum=0)
    return np.random.default_rng([_ORDER_STREAM, seed, epoch]).permutation(n)


class EpochBatches(keras.utils.PyDataset):
    """Shuffled training batches for ``model.fit``; batch ``i`` of epoch ``e`` is a pure
    function of ``(seed, e, i)``.

    ``images`` is a uint8 array or any object with ``len()`` whose ``[index]`` with an
    integer array returns the images (``data.ImageFiles`` decodes them from disk, in
    parallel threads). Leave ``workers`` at 1: under JAX, Keras 3.15's threaded reader
    (``workers`` > 1) trained on other batches than a single reader. The epoch is set by
    ``EpochSeeds`` (a callback) before Keras reads the epoch's first batch; fit the model
    with ``shuffle=False``, since the order is the dataset's. The last batch may be short,
    as with arrays. ``shuffle=False`` keeps the images' order (validation batches).

    ``shard=(k, n)``: process ``k`` of ``n`` in a multi-process run gets the ``k``-th of
    ``n`` equal, contiguous parts of each batch; Keras's JAX trainer puts the parts back
    together in process order (``jax.make_array_from_process_local_data``), so every
    process trains on the same global batches as one process would. Each batch must then
    split evenly, the last one too.

    Example:
        >>> batches = EpochBatches(np.zeros((10, 4, 4, 3), "uint8"), np.arange(10), 4, seed=0)
        >>> len(batches), batches[2][0].shape
        (3, (2, 4, 4, 3))
        >>> batches.set_epoch(1)
        >>> sorted(np.concatenate([batches[i][1] for i in range(3)]).tolist())[:3]
        [0, 1, 2]
        >>> EpochBatches(np.zeros((8, 1)), np.arange(8), 4, 0, shuffle=False, shard=(1, 2))[1][1]
        array([6, 7])
    """

    def __init__(
        self,
        images,
        labels,
        batch_size: int,
        seed: int,
        *,
        shuffle: bool = True,
        workers: int = 1,
        shard: tuple[int, int] = (0, 1),
        **kwargs,
    ):
        check_integer(batch_size, "batch_size", minimum=1)
        check_integer(workers, "workers", minimum=1)
        index, count = shard
        check_integer(count, "shard count", minimum=1)
        check_integer(index, "shard index", minimum=0)
        if index >= count:
            raise ValueError(
                f"The shard index must be below the shard count. Received: shard={shard}"
            )
        if len(images) != len(labels):
            raise ValueError(
                "images and labels must have the same length. "
                f"Received: len(images)={len(images)}, len(labels)={len(labels)}"
            )
        super().__init__(workers=workers, use_multiprocessing=False, **kwargs)
        self.images, self.labels = images, np.asarray(labels)
        self.batch_size, self.seed, self.shuffle = int(batch_size), int(seed), bool(shuffle)
        self.shard = (int(index), int(count))
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Make ``epoch`` (0-based) the epoch whose batches ``[i]`` returns."""
        self.epoch = int(epoch)
        n = len(self.labels)
        self._order = epoch_order(self.seed, self.epoch, n) if self.shuffle else np.arange(n)

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def batch_indices(self, index: int) -> np.ndarray:
        """The image indices of batch ``index`` of the current epoch."""
        if not 0 <= index < self.num_batches:
            raise IndexError(f"batch {index} of {self.num_batches}")
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index: int):
        indices = self.batch_indices(index)
        part, parts = self.shard
        if parts > 1:
            if len(indices) % parts:
                raise ValueError(
                    f"Batch {index} of {len(indices)} images does not split evenly over "
                    f"{parts} processes. Received: shard={self.shard}"
                )
            size = len(indices) // parts
            indices = indices[part * size : (part + 1) * size]
        return self.images[indices], self.labels[indices]


def seed_states(model: keras.Model) -> list:
    """The state variables of the model's random generators (its ``SeedGenerator``s), in
    the model's variable order.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.RandomFlip(seed=1)(inputs))
        >>> len(seed_states(model))
        1
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]


def reseed(model: keras.Model, seed: int, epoch: int) -> None:
    """Restart every random generator of ``model`` from a state derived from (seed, epoch).

    Example:
        >>> reseed(model, seed=42, epoch=0)  # doctest: +SKIP
    """
    for k, state in enumerate(seed_states(model)):
        rng = np.random.default_rng([_AUGMENT_STREAM, seed, epoch, k])
        value = np.array([rng.integers(_SEED_LIMIT), 0])
        state.assign(keras.ops.convert_to_tensor(value, dtype=state.dtype))


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start: the batches of ``EpochBatches`` and the model's augmentation
    draws become those of (seed, epoch), whatever ran before in the process.

    Put it first among the callbacks, so that a resumed fit (``BackupAndRestore`` sets the
    first epoch) starts each epoch from the same draws as an uninterrupted one.

    Example:
        >>> batches = EpochBatches(x, y, 128, seed=42)  # doctest: +SKIP
        >>> model.fit(batches, shuffle=False, callbacks=[EpochSeeds(42, batches)])  # doctest: +SKIP
    """

    def __init__(self, seed: int, batches: EpochBatches | None = None):
        super().__init__()
        check_integer(seed, "seed", minimum=0)
        self.seed, self.batches = int(seed), batches

    def on_epoch_begin(self, epoch, logs=None):
        if self.batches is not None:
            self.batches.set_epoch(epoch)
        reseed(self.model, self.seed, epoch)
