"""Data-parallel training over the devices of one machine (``--distribute``)."""

from __future__ import annotations

import contextlib

import keras

from keras_resnet.recipe.config import TrainConfig


class UnsupportedSetupError(ValueError):
    """A valid config that this backend or machine cannot run (``distribute`` on torch)."""


def distribution_scope(config: TrainConfig):
    """The context a run trains in, yielding its number of data-parallel replicas.

    Without ``config.distribute`` it does nothing and yields 1. With it, every local
    accelerator (or every CPU device where there is none) holds a copy of the model and
    trains on an equal share of each batch:

    - JAX: ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``
      is the global distribution inside the context, so variables created there are
      replicated and each batch is sharded. Build the model inside it.
    - TensorFlow: a ``tf.distribute.MirroredStrategy`` scope over the local devices.
      XLA does not run with its per-replica variables, so ``jit_compile=True`` is refused
      (the default on TensorFlow is off). Each replica's BatchNormalization normalizes
      over its own share of the batch.
    - torch: an ``UnsupportedSetupError``, since released Keras has no data-parallel
      training on it.

    Only one machine's devices are used: multi-worker TensorFlow training is broken in
    Keras 3 (keras issue 20585). One device is not an error: the run then has a single
    replica, so the same command runs unchanged on a one-GPU machine. Every batch must
    split evenly over the replicas (JAX shards each batch; Keras on TensorFlow reduces
    the first batch of each fit and evaluation across replicas), so ``batch_size`` must
    be a multiple of the replica count and ``train`` keeps a multiple of it in the
    training and validation parts.

    The checks run when this function is called, before anything is loaded or written;
    the devices are taken and, when ``config.verbose``, printed on entering the context.

    Example:
        >>> with distribution_scope(TrainConfig(distribute=False)) as replicas:
        ...     replicas
        1
    """
    if not config.distribute:
        return contextlib.nullcontext(1)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise UnsupportedSetupError(
            "`distribute` needs the jax or tensorflow backend: released Keras has no "
            "data-parallel training on torch. Set KERAS_BACKEND=jax or tensorflow, or drop "
            f"--distribute. Received: distribute=True with backend={backend!r}"
        )
    if backend == "tensorflow" and config.jit_compile:
        raise UnsupportedSetupError(
            "`jit_compile=True` does not work with `distribute` on tensorflow: XLA cannot "
            "read MirroredStrategy's per-replica variables. Leave jit_compile unset (off "
            "on tensorflow) or drop --distribute. Received: distribute=True, jit_compile=True"
        )
    if backend == "jax":
        devices = keras.distribution.list_devices()
        engine = keras.distribution.DataParallel(devices=devices)
        name = "keras.distribution.DataParallel"
    else:
        import tensorflow as tf

        engine = tf.distribute.MirroredStrategy()
        devices = list(engine.extended.worker_devices)
        name = "tf.distribute.MirroredStrategy"
    if config.batch_size % len(devices):
        raise UnsupportedSetupError(
            f"`batch_size` must be a multiple of the {len(devices)} devices that "
            f"`distribute` splits each batch over ({', '.join(devices)}). "
            f"Received: batch_size={config.batch_size}"
        )
    return _replica_scope(engine.scope(), len(devices), f"{name} on {', '.join(devices)}", config)


@contextlib.contextmanager
def _replica_scope(scope, replicas: int, description: str, config: TrainConfig):
    with scope:
        if config.verbose:
            print(f"Data-parallel training: {replicas} replica(s), {description}")
        yield replicas
