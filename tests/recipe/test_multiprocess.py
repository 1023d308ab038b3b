"""Several processes, one run: ``--distribute`` over JAX's multi-process runtime.

Two processes on 127.0.0.1 (a free port), one CPU device each, JAX's gloo collectives:
process 0 takes its cluster from the flags, process 1 from Keras's ``KERAS_DISTRIBUTION_*``
variables. They train a tiny model (``multiprocess_run.py``) beside a one-process run with
the same global batch and seed; then a pair is SIGKILLed mid-epoch and rerun. These run
only under ``KERAS_BACKEND=jax`` (the CI runs the suite once per backend); the refusals on
TensorFlow and torch, and of malformed settings, run on every backend.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from processes import REPO_ROOT, command_env, tail

from keras_resnet.recipe import cluster
from keras_resnet.recipe.config import TrainConfig
from keras_resnet.recipe.distribution import UnsupportedSetupError, distribution_scope
from keras_resnet.recipe.run_folder import read_history
from keras_resnet.recipe.training import train

BACKEND = keras.backend.backend()
DRIVER = Path(__file__).parent / "multiprocess_run.py"
CLI_SCRIPT = REPO_ROOT / "experiments" / "cifar10.py"
EPOCHS = 3
# The bound the test sets; a peer's death must be noticed within it (plus start-up slack).
HEARTBEAT_S = 10
# 100 generated images: 80 to fit in 5 batches of 16 (8 rows per process), 20 to validate.
FLAGS = [
    "--distribute",
    "--synthetic",
    f"--epochs={EPOCHS}",
    "--batch-size=16",
    "--train-subset=100",
    "--test-subset=20",
    "--verbose=2",
    f"--heartbeat-timeout={HEARTBEAT_S}",
]
CLUSTER_VARIABLES = (cluster.ENV_JOB_ADDRESSES, cluster.ENV_NUM_PROCESSES, cluster.ENV_PROCESS_ID)
jax_only = pytest.mark.skipif(
    BACKEND != "jax", reason="starts its own jax processes: runs once, under KERAS_BACKEND=jax"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(**extra) -> dict:
    env = command_env(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    for name in CLUSTER_VARIABLES:  # only those a test gives
        env.pop(name, None)
    return {**env, **extra}


def start_pair(work: Path, output_dir: str, tag: str, **env) -> list[subprocess.Popen]:
    """Processes 0 and 1 of a run: 0 configured by flags, 1 by Keras's variables."""
    port = free_port()
    processes = []
    for process_id in (0, 1):
        command = [sys.executable, str(DRIVER), str(work / f"{tag}{process_id}.npz"), *FLAGS]
        command.append(f"--output-dir={output_dir}")
        extra = dict(env)
        if process_id == 0:
            command += [f"--job-addresses=127.0.0.1:{port}", "--num-processes=2", "--process-id=0"]
        else:
            extra.update(
                {
                    cluster.ENV_JOB_ADDRESSES: f"127.0.0.1:{port}",
                    cluster.ENV_NUM_PROCESSES: "2",
                    cluster.ENV_PROCESS_ID: "1",
                }
            )
        log = open(work / f"{tag}{process_id}.log", "w")  # noqa: SIM115 (closed by the OS)
        processes.append(
            subprocess.Popen(
                command, cwd=work, env=_env(**extra), stdout=log, stderr=subprocess.STDOUT
            )
        )
    return processes


def wait_all(processes, timeout_s: float = 400) -> list[int]:
    deadline = time.monotonic() + timeout_s
    try:
        return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as stored:
        return [stored[f"arr_{k}"] for k in range(len(stored.files))]


def only_run(output_dir: Path) -> Path:
    (run_dir,) = [p for p in output_dir.iterdir() if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted two-process run and a one-process run, side by side."""
    work = tmp_path_factory.mktemp("multiprocess")
    pair = start_pair(work, "two", "pair")
    single = subprocess.Popen(
        [sys.executable, str(DRIVER), str(work / "single.npz"), *FLAGS, "--output-dir=one"],
        cwd=work,
        env=_env(),
        stdout=open(work / "single.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    codes = wait_all([*pair, single])
    logs = "\n".join(f"--- {name}\n{tail(work / name)}" for name in ("pair0.log", "pair1.log"))
    assert codes == [0, 0, 0], f"exit statuses {codes}:\n{logs}\n{tail(work / 'single.log')}"
    return work


@jax_only
def test_two_processes_train_the_one_process_run(reference):
    work = reference
    first, second = weights(work / "pair0.npz"), weights(work / "pair1.npz")
    alone = weights(work / "single.npz")
    assert len(first) == len(alone) > 0
    for mine, theirs, one in zip(first, second, alone, strict=True):
        np.testing.assert_array_equal(mine, theirs)  # identical across the processes
        np.testing.assert_allclose(mine, one, rtol=1e-5, atol=1e-5)  # to float tolerance
    two, one = only_run(work / "two"), only_run(work / "one")
    stored = json.loads((two / "config.json").read_text())
    assert (stored["num_processes"], stored["replicas"]) == (2, 2)
    alone_stored = json.loads((one / "config.json").read_text())
    assert (alone_stored["num_processes"], alone_stored["replicas"]) == (1, 1)
    assert stored["fingerprint"] == alone_stored["fingerprint"]  # the same run, computed
    rows, alone_rows = read_history(two / "history.csv"), read_history(one / "history.csv")
    assert len(rows) == EPOCHS
    for row, alone_row in zip(rows, alone_rows, strict=True):
        for key in ("accuracy", "val_accuracy", "learning_rate"):
            assert row[key] == pytest.approx(alone_row[key], abs=1e-6), key
    metrics = json.loads((two / "test_metrics.json").read_text())
    alone_metrics = json.loads((one / "test_metrics.json").read_text())
    assert metrics["confusion_matrix"] == alone_metrics["confusion_matrix"]
    assert np.sum(metrics["confusion_matrix"]) == 20  # every test image once
    assert not (two / "backup").exists()
    assert not [p for p in two.iterdir() if ".partial." in p.name]
    for name in ("pair0.log", "pair1.log"):
        assert "Process 0 of 2" in (work / name).read_text() or name == "pair1.log"


@jax_only
@pytest.mark.parametrize(
    "victim",
    [1, pytest.param(0, marks=pytest.mark.slow)],  # 0 too: the coordinator (80 s more)
)
def test_a_killed_process_stops_its_peer_and_both_resume(reference, tmp_path, victim):
    survivor = 1 - victim
    survivor_log = tmp_path / f"killed{survivor}.log"
    # Slowed batches: an epoch takes seconds, so the kill lands inside one.
    pair = start_pair(tmp_path, "runs", "killed", MULTIPROCESS_BATCH_DELAY_S="0.3")
    run_dir = None
    deadline = time.monotonic() + 300
    try:
        while True:  # until epoch 1 is backed up, then half a second into epoch 2
            if any(p.poll() is not None for p in pair):
                pytest.fail(f"a process exited early:\n{tail(tmp_path / 'killed0.log')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no backed-up epoch within 300 s:\n{tail(tmp_path / 'killed0.log')}")
            runs = tmp_path / "runs"
            run_dir = only_run(runs) if runs.is_dir() and any(runs.iterdir()) else None
            backup = run_dir / "backup" / "training_metadata.json" if run_dir else None
            if backup is not None and backup.exists():
                break
            time.sleep(0.05)
        time.sleep(0.5)
        pair[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        status = pair[survivor].wait(timeout=HEARTBEAT_S + 60)
        waited = time.monotonic() - killed_at
    finally:
        for p in pair:
            if p.poll() is None:
                p.kill()
                p.wait()
    log = survivor_log.read_text()
    print(f"process {survivor} exited {status} {waited:.1f} s after {victim} was SIGKILLed")
    assert status != 0, tail(survivor_log)
    assert waited < HEARTBEAT_S + 20, f"{waited:.1f} s:\n{tail(survivor_log)}"
    if status == cluster.EXIT_PROCESS_LOST:  # a failed collective: the one-line error
        assert f"error: process {survivor} of 2 lost process {victim}" in log
        assert "Rerun the same command on every host to resume" in log
    else:  # JAX's coordination service ended it (SIGABRT)
        assert "JAX distributed service detected fatal errors" in log
    assert not (run_dir / "test_metrics.json").exists()
    backed_up = json.loads((run_dir / "backup" / "training_metadata.json").read_text())["epoch"]

    resumed = start_pair(tmp_path, "runs", "resumed")
    codes = wait_all(resumed)
    assert codes == [0, 0], f"{codes}:\n{tail(tmp_path / 'resumed0.log')}"
    output = (tmp_path / "resumed0.log").read_text()
    assert f"Epoch {backed_up + 1}/{EPOCHS}" in output
    assert "Epoch 1/" not in output  # resumed, not restarted
    assert len(read_history(run_dir / "history.csv")) == EPOCHS
    assert (run_dir / "test_metrics.json").exists()
    want = weights(reference / "pair0.npz")
    for have in (weights(tmp_path / "resumed0.npz"), weights(tmp_path / "resumed1.npz")):
        for mine, theirs in zip(have, want, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- refusals


def _multi_process_config(tmp_path, **changes) -> TrainConfig:
    values = {
        "synthetic": True,
        "distribute": True,
        "job_addresses": "127.0.0.1:1234",
        "num_processes": 2,
        "process_id": 0,
        "output_dir": str(tmp_path),
        "verbose": 0,
        **changes,
    }
    return TrainConfig(**values)


@pytest.mark.skipif(BACKEND == "jax", reason="jax trains over several processes")
def test_other_backends_refuse_several_processes_before_writing(tmp_path):
    with pytest.raises(UnsupportedSetupError) as error:
        train(_multi_process_config(tmp_path))
    assert str(error.value) == (
        f"Training over several processes needs the jax backend; on {BACKEND} released "
        "Keras trains on one machine only. Set KERAS_BACKEND=jax, or drop --job-addresses, "
        f"--num-processes, --process-id. Received: backend='{BACKEND}'"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(BACKEND == "jax", reason="jax trains over several processes")
def test_other_backends_refuse_kerass_variables_too(tmp_path, monkeypatch):
    monkeypatch.setenv(cluster.ENV_NUM_PROCESSES, "2")
    config = TrainConfig(synthetic=True, output_dir=str(tmp_path), verbose=0)
    with pytest.raises(UnsupportedSetupError) as error:
        distribution_scope(config)
    assert f"Set KERAS_BACKEND=jax, or drop {cluster.ENV_NUM_PROCESSES}." in str(error.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(BACKEND == "jax", reason="jax trains over several processes")
def test_the_command_refuses_in_one_line_with_status_2(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(CLI_SCRIPT), "--synthetic", "--distribute", "--num-processes=2"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 2, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: Training over several processes needs the jax backend; on {BACKEND} "
        "released Keras trains on one machine only. Set KERAS_BACKEND=jax, or drop "
        f"--num-processes. Received: backend='{BACKEND}'"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(BACKEND != "jax", reason="the other backends refuse the backend first")
def test_settings_without_distribute_are_refused(tmp_path):
    with pytest.raises(UnsupportedSetupError) as error:
        distribution_scope(_multi_process_config(tmp_path, distribute=False))
    assert str(error.value) == (
        "--job-addresses, --num-processes, --process-id configure --distribute over several "
        "processes: add --distribute, or drop them. Received: distribute=False"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_processes": 0}, "`num_processes` must be an integer of at least 1. "
         "Received: num_processes=0"),
        ({"process_id": -1}, "`process_id` must be an integer of at least 0. "
         "Received: process_id=-1"),
        ({"process_id": 2}, "`process_id` must be in [0, num_processes - 1] = [0, 1]. "
         "Received: process_id=2"),
        ({"job_addresses": "127.0.0.1"}, "`job_addresses` must be comma-separated host:port "
         "addresses, the first the coordinator's (process 0), e.g. 10.0.0.1:1234. "
         "Received: job_addresses='127.0.0.1'"),
        ({"job_addresses": "a:1,b:x"}, "Received: job_addresses='a:1,b:x'"),
        ({"job_addresses": "a:1,b:2,c:3"}, "`job_addresses` must list one address per "
         "process, or the coordinator's alone. Received: 3 addresses with num_processes=2"),
        ({"heartbeat_timeout": 0}, "`heartbeat_timeout` must be an integer of at least 1. "
         "Received: heartbeat_timeout=0"),
    ],
)  # fmt: skip
def test_malformed_settings_are_refused_naming_them(tmp_path, changes, message):
    with pytest.raises(ValueError) as error:
        _multi_process_config(tmp_path, **changes)
    assert message in str(error.value)
    assert str(error.value).endswith(message.split("Received: ")[-1])


def test_kerass_variables_fill_the_settings_not_given():
    env = {
        cluster.ENV_JOB_ADDRESSES: "10.0.0.1:1234,10.0.0.2:2345",
        cluster.ENV_NUM_PROCESSES: "2",
        cluster.ENV_PROCESS_ID: "0",
    }
    resolved = cluster.resolve(TrainConfig(process_id=1), environ=env)
    assert resolved == cluster.Cluster("10.0.0.1:1234", 2, 1)  # the flag wins; 0 coordinates
    assert cluster.resolve(TrainConfig(), environ={}) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({cluster.ENV_NUM_PROCESSES: "two"}, "KERAS_DISTRIBUTION_NUM_PROCESSES must be an "
         "integer. Received: KERAS_DISTRIBUTION_NUM_PROCESSES='two'"),
        ({cluster.ENV_NUM_PROCESSES: "2", cluster.ENV_PROCESS_ID: "1"}, "A multi-process run "
         "needs `job_addresses`: give --job-addresses or set KERAS_DISTRIBUTION_JOB_ADDRESSES "
         "(the same on every host, except the process id). Received: job_addresses=None"),
        ({cluster.ENV_JOB_ADDRESSES: "h:1", cluster.ENV_NUM_PROCESSES: "2",
          cluster.ENV_PROCESS_ID: "5"}, "`process_id` must be in [0, num_processes - 1] = "
         "[0, 1]. Received: process_id=5"),
    ],
)  # fmt: skip
def test_malformed_variables_are_refused_naming_them(env, message):
    with pytest.raises(ValueError) as error:
        cluster.resolve(TrainConfig(), environ=env)
    assert str(error.value) == message


def test_a_collective_that_lost_its_peer_is_told_apart():
    assert cluster.is_lost_peer_error(
        ValueError("UNKNOWN: Gloo all-reduce failed: [pair.cc:538] Read error: Connection reset")
    )
    assert not cluster.is_lost_peer_error(ValueError("`batch_size` must be a multiple"))
    message = cluster.lost_peer_message(cluster.Cluster("h:1", 3, 1), ValueError("Gloo: x\ny"))
    assert message == (
        "error: process 1 of 3 lost one of processes [0, 2] (Gloo: x). Rerun the same "
        "command on every host to resume the run from its last finished epoch."
    )


def test_the_flags_reach_the_config():
    from keras_resnet.cli.train import parse_config

    config, _ = parse_config(
        ["--distribute", "--job-addresses=h:1", "--num-processes=2", "--process-id=1"]
    )
    assert (config.job_addresses, config.num_processes, config.process_id) == ("h:1", 2, 1)
    assert config.heartbeat_timeout == 60
    assert config.fingerprint() == TrainConfig(distribute=True).fingerprint()
    with pytest.raises(SystemExit) as exit_status:
        parse_config(["--num-processes=0"])
    assert exit_status.value.code == 2


def test_only_process_0_writes():
    assert cluster.Cluster("h:1", 2, 0).is_writer
    assert not cluster.Cluster("h:1", 2, 1).is_writer
    assert cluster.current() is None and cluster.is_writer()  # this process: one alone
