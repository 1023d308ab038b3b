"""Several processes, one run: JAX's multi-process runtime for ``--distribute``.

The same command runs on every host, each with its own process id: Keras's settings
(``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``KERAS_DISTRIBUTION_NUM_PROCESSES``,
``KERAS_DISTRIBUTION_PROCESS_ID``, or the flags ``--job-addresses``, ``--num-processes``,
``--process-id``, which win over them) name the coordinator (the first address, process
0), the number of processes and this one. ``start`` starts the runtime; then
``keras.distribution.list_devices()`` lists every process's devices and one
``DataParallel`` trains over all of them (``distribution.distribution_scope``).

What the recipe does with it (``training.train``):

- every process feeds its own rows of the same global batch (``pipeline.EpochBatches``'
  ``shard``), so the run computes what one process would with that batch;
- only process 0 writes the run folder; the others read it. The folder must therefore be
  the same folder on every host (a shared filesystem mounted at the same path):
  ``check_same_file`` refuses a run whose processes see different ``config.json`` files.
  Sharing the folder keeps one reader and one writer for the backup, the history and the
  best model; broadcasting each of them from process 0 would be a second path to keep
  exact;
- when a process dies the others leave within ``heartbeat_timeout`` seconds: at once with
  ``EXIT_PROCESS_LOST`` and a one-line error when a collective fails (a killed peer's
  connections close), else when JAX's coordination service misses the peer's heartbeats
  (status 134, JAX's own message). Rerunning the command on every host resumes the run.

Nothing here imports JAX or Keras at module level.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from keras_resnet.validation import check_integer

ENV_JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# The exit status of a process whose peer died or became unreachable (2 is a refused
# command, 3 a diverged run).
EXIT_PROCESS_LOST = 4
# How long JAX waits at start for every process to connect (jax.distributed's default).
INITIALIZATION_TIMEOUT_S = 300
# Words in the errors a collective raises when a peer's connection is gone.
_LOST_PEER_MARKS = ("gloo", "connection reset", "connection closed", "coordination service")

_current: Cluster | None = None


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One process's view of a multi-process run.

    Example:
        >>> Cluster("10.0.0.1:1234", 2, 1).is_writer
        False
    """

    coordinator: str
    num_processes: int
    process_id: int

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run folder (process 0 only)."""
        return self.process_id == 0


def check_job_addresses(text: str, name: str = "job_addresses") -> list[str]:
    """The comma-separated ``host:port`` addresses in ``text``; a ValueError if malformed.

    Example:
        >>> check_job_addresses("10.0.0.1:1234,10.0.0.2:2345")
        ['10.0.0.1:1234', '10.0.0.2:2345']
        >>> check_job_addresses("10.0.0.1")
        Traceback (most recent call last):
        ...
        ValueError: `job_addresses` must be comma-separated host:port addresses, the first the coordinator's (process 0), e.g. 10.0.0.1:1234. Received: job_addresses='10.0.0.1'
    """  # noqa: E501
    addresses = text.split(",") if isinstance(text, str) else [None]
    for address in addresses:
        host, _, port = (address or "").strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"`{name}` must be comma-separated host:port addresses, the first the "
                "coordinator's (process 0), e.g. 10.0.0.1:1234. "
                f"Received: {name}={text!r}"
            )
    return [address.strip() for address in addresses]


def check_settings(
    job_addresses: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """Check the settings that are given (None: not given), each alone and together.

    Example:
        >>> check_settings(None, 2, 2)
        Traceback (most recent call last):
        ...
        ValueError: `process_id` must be in [0, num_processes - 1] = [0, 1]. Received: process_id=2
    """
    if num_processes is not None:
        check_integer(num_processes, "num_processes", minimum=1)
    if process_id is not None:
        check_integer(process_id, "process_id", minimum=0)
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise ValueError(
            f"`process_id` must be in [0, num_processes - 1] = [0, {num_processes - 1}]. "
            f"Received: process_id={process_id}"
        )
    if job_addresses is not None:
        addresses = check_job_addresses(job_addresses)
        if num_processes is not None and len(addresses) > 1 and len(addresses) != num_processes:
            raise ValueError(
                "`job_addresses` must list one address per process, or the coordinator's "
                f"alone. Received: {len(addresses)} addresses with num_processes={num_processes}"
            )


def settings_given(config, environ: Mapping[str, str] | None = None) -> list[str]:
    """The multi-process settings a config or the environment gives, by name.

    Example:
        >>> from keras_resnet.recipe.config import TrainConfig
        >>> settings_given(TrainConfig(num_processes=2), environ={})
        ['--num-processes']
    """
    environ = os.environ if environ is None else environ
    flags = [
        f"--{name.replace('_', '-')}"
        for name in ("job_addresses", "num_processes", "process_id")
        if getattr(config, name) is not None
    ]
    return flags + [
        name for name in (ENV_JOB_ADDRESSES, ENV_NUM_PROCESSES, ENV_PROCESS_ID) if name in environ
    ]


def resolve(config, environ: Mapping[str, str] | None = None) -> Cluster | None:
    """The run's cluster: the config's settings, else Keras's environment variables, read
    as ``keras.distribution.initialize`` reads them; None when neither gives any.

    Raises:
        ValueError: a setting missing or malformed, naming it and its flag or variable.

    Example:
        >>> from keras_resnet.recipe.config import TrainConfig
        >>> resolve(TrainConfig(), environ={}) is None
        True
        >>> env = {ENV_JOB_ADDRESSES: "10.0.0.1:1234", ENV_NUM_PROCESSES: "2"}
        >>> resolve(TrainConfig(process_id=1), environ=env)
        Cluster(coordinator='10.0.0.1:1234', num_processes=2, process_id=1)
    """
    environ = os.environ if environ is None else environ
    if not settings_given(config, environ):
        return None
    values = {}
    for name, variable in (
        ("job_addresses", ENV_JOB_ADDRESSES),
        ("num_processes", ENV_NUM_PROCESSES),
        ("process_id", ENV_PROCESS_ID),
    ):
        value = getattr(config, name)
        if value is None and variable in environ:
            value = environ[variable]
            if name != "job_addresses":
                try:
                    value = int(value)
                except ValueError:
                    raise ValueError(
                        f"{variable} must be an integer. Received: {variable}={value!r}"
                    ) from None
        values[name] = value
    for (name, value), variable in zip(
        values.items(), (ENV_JOB_ADDRESSES, ENV_NUM_PROCESSES, ENV_PROCESS_ID), strict=True
    ):
        if value is None:
            raise ValueError(
                f"A multi-process run needs `{name}`: give --{name.replace('_', '-')} or set "
                f"{variable} (the same on every host, except the process id). "
                f"Received: {name}=None"
            )
    check_settings(**values)
    coordinator = check_job_addresses(values["job_addresses"])[0]
    return Cluster(coordinator, values["num_processes"], values["process_id"])


def start(cluster: Cluster, heartbeat_timeout: int) -> None:
    """Start JAX's distributed runtime for ``cluster`` (once per process), before any JAX
    computation, with gloo's CPU collectives (JAX's default) where there is no accelerator.

    ``keras.distribution.initialize`` wraps ``jax.distributed.initialize`` but passes it
    no timeouts, so a process whose peer died would wait JAX's default 100 s heartbeat
    timeout, and up to 300 s at shutdown; this calls it directly with
    ``heartbeat_timeout`` for both. Keras's wrapper also agrees on a random seed across the
    processes; the recipe sets its own seed on every process instead.

    Example:
        >>> start(Cluster("127.0.0.1:1234", 2, 0), heartbeat_timeout=60)  # doctest: +SKIP
    """
    global _current
    if _current is not None:
        if _current != cluster:
            raise ValueError(
                f"This process already runs in {_current}; a process joins one cluster. "
                f"Received: {cluster}"
            )
        return
    import jax

    jax.distributed.initialize(
        coordinator_address=cluster.coordinator,
        num_processes=cluster.num_processes,
        process_id=cluster.process_id,
        initialization_timeout=INITIALIZATION_TIMEOUT_S,
        heartbeat_timeout_seconds=heartbeat_timeout,
        shutdown_timeout_seconds=heartbeat_timeout,
    )
    _current = cluster


def current() -> Cluster | None:
    """The cluster this process runs in (``start``), or None for a one-process run.

    Example:
        >>> current() is None
        True
    """
    return _current


def is_writer() -> bool:
    """Whether this process writes files: a one-process run, or process 0 of several.

    Example:
        >>> is_writer()
        True
    """
    return _current is None or _current.is_writer


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing in a one-process run).

    Example:
        >>> barrier("run folder prepared")
    """
    if _current is not None:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def check_same_file(path: str | os.PathLike) -> None:
    """Refuse to go on unless every process reads the same bytes at ``path`` as process 0,
    which wrote it: the processes must share the run folder.

    Example:
        >>> check_same_file("runs/x/config.json")  # doctest: +SKIP
    """
    if _current is None:
        return
    import numpy as np
    from jax.experimental import multihost_utils

    path = Path(path)
    digest = hashlib.sha256(path.read_bytes() if path.is_file() else b"").digest()
    theirs = multihost_utils.broadcast_one_to_all(np.frombuffer(digest, np.uint8))
    if bytes(np.asarray(theirs, np.uint8)) != digest:
        from keras_resnet.recipe.run_folder import RunFolderError

        what = "another" if path.is_file() else "no"
        raise RunFolderError(
            f"Process {_current.process_id} sees {what} {path} than process 0, which wrote "
            "it: every process of a run must see the same run folder. Put --output-dir on "
            "a filesystem every host shares, at the same path on each."
        )


def is_lost_peer_error(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because a peer is gone.

    Example:
        >>> is_lost_peer_error(ValueError("UNKNOWN: Gloo all-reduce failed: Connection reset"))
        True
    """
    text = str(error).lower()
    return any(mark in text for mark in _LOST_PEER_MARKS)


def lost_peer_message(cluster: Cluster, error: BaseException) -> str:
    """The one line a process prints when its peers are lost: who, why, what to do.

    Example:
        >>> print(lost_peer_message(Cluster("h:1", 2, 0), ValueError("Gloo: reset")))
        error: process 0 of 2 lost process 1 (Gloo: reset). Rerun the same command on every host to resume the run from its last finished epoch.
    """  # noqa: E501
    others = [k for k in range(cluster.num_processes) if k != cluster.process_id]
    lost = f"process {others[0]}" if len(others) == 1 else f"one of processes {others}"
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"error: process {cluster.process_id} of {cluster.num_processes} lost {lost} "
        f"({cause}). Rerun the same command on every host to resume the run from its last "
        "finished epoch."
    )


def exit_if_peer_lost(error: BaseException) -> None:
    """In a multi-process run, leave at once with ``EXIT_PROCESS_LOST`` and one line when
    ``error`` is a lost peer; otherwise return (the caller re-raises).

    ``os._exit``: a normal exit would wait at JAX's shutdown barrier for the dead peer.

    Example:
        >>> exit_if_peer_lost(ValueError("not a lost peer"))
    """
    if _current is None or not is_lost_peer_error(error):
        return
    print(lost_peer_message(_current, error), file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(EXIT_PROCESS_LOST)
