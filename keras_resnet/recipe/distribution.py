"""Data-parallel training over the devices of one machine, or of several processes on JAX
(``--distribute``; ``recipe.cluster`` for several processes)."""

from __future__ import annotations

import contextlib

import keras

from keras_resnet.recipe import cluster as cluster_lib
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

    Several processes (``config.num_processes`` or Keras's ``KERAS_DISTRIBUTION_*``
    variables: ``recipe.cluster``) need JAX: the call starts JAX's distributed runtime, and
    the ``DataParallel`` spans every device of every process. Elsewhere only one machine's
    devices are used: multi-worker TensorFlow training is broken in Keras 3 (keras issue
    20585), and a multi-process setting there is an ``UnsupportedSetupError``. One device
    is not an error: the run then has a single replica, so the same command runs
    unchanged on a one-GPU machine. Every batch must split evenly over the replicas (JAX
    shards each batch; Keras on TensorFlow reduces the first batch of each fit and
    evaluation across replicas), so ``batch_size`` must be a multiple of the replica count
    and ``train`` keeps a multiple of it in the training and validation parts.

    The checks run when this function is called, before anything is loaded or written;
    the devices are taken and, when ``config.verbose``, printed on entering the context.

    Example:
        >>> with distribution_scope(TrainConfig(distribute=False)) as replicas:
        ...     replicas
        1
    """
    backend = keras.backend.backend()
    cluster = _check_cluster(config, backend)
    if not config.distribute:
        return contextlib.nullcontext(1)
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
        if cluster is not None:
            cluster_lib.start(cluster, config.heartbeat_timeout)
        devices = keras.distribution.list_devices()
        # Each process feeds its own rows of every batch (pipeline.EpochBatches' shard):
        # nothing for Keras to shard.
        engine = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        name = "keras.distribution.DataParallel"
        if cluster is not None:
            _check_equal_processes(cluster, len(devices))
            name += f" over {cluster.num_processes} processes"
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


def _check_cluster(config: TrainConfig, backend: str) -> cluster_lib.Cluster | None:
    """The run's cluster (None: one process), refused where it cannot run."""
    given = cluster_lib.settings_given(config)
    if not given:
        return None
    if backend != "jax":
        raise UnsupportedSetupError(
            f"Training over several processes needs the jax backend; on {backend} released "
            "Keras trains on one machine only. Set KERAS_BACKEND=jax, or drop "
            f"{', '.join(given)}. Received: backend={backend!r}"
        )
    if not config.distribute:
        raise UnsupportedSetupError(
            f"{', '.join(given)} configure --distribute over several processes: add "
            f"--distribute, or drop them. Received: distribute=False"
        )
    try:
        return cluster_lib.resolve(config)
    except ValueError as error:
        raise UnsupportedSetupError(str(error)) from None


def _check_equal_processes(cluster: cluster_lib.Cluster, devices: int) -> None:
    import jax

    local = jax.local_device_count()
    if devices != local * cluster.num_processes:
        raise UnsupportedSetupError(
            "Every process must have as many devices: each feeds an equal share of every "
            f"batch. Received: {devices} devices in all, {local} in process "
            f"{cluster.process_id} of {cluster.num_processes}"
        )


def local_scope(replicas: int = 1):
    """The context of work each process does alone (the test set's evaluation), yielding
    the number of replicas a predicted batch is split over there.

    In a multi-process run, a ``DataParallel`` over this process's own devices, so that
    predictions are arrays the process holds whole; every process then computes the same
    metrics. Otherwise nothing changes: the distribution in force, if any, stays and it
    yields ``replicas`` (training's).

    Example:
        >>> with local_scope(2) as replicas:
        ...     replicas
        2
    """
    if cluster_lib.current() is None:
        return contextlib.nullcontext(replicas)
    import jax

    devices = [f"{device.platform}:{device.id}" for device in jax.local_devices()]
    engine = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    return _yielding(engine.scope(), len(devices))


@contextlib.contextmanager
def _yielding(scope, value):
    with scope:
        yield value


@contextlib.contextmanager
def _replica_scope(scope, replicas: int, description: str, config: TrainConfig):
    with scope:
        if config.verbose:
            print(f"Data-parallel training: {replicas} replica(s), {description}")
        yield replicas
