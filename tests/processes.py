"""Running the project's commands as users do: their scripts imported, or real subprocesses
killed with SIGKILL."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import keras
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str):
    """Import a script (``experiments/*.py``, ``tuner/*.py``) as a module; nothing runs."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file ("" if there is none)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def command_env(**extra: str) -> dict:
    """This process's environment for a child command: the same Keras backend, this
    checkout first on the import path, unbuffered output, TensorFlow's logs quiet."""
    pythonpath = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "KERAS_BACKEND": keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join(filter(None, pythonpath)),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }


def sigkill_when(
    command: list[str],
    ready: Callable[[], bool],
    *,
    cwd: Path,
    env: dict,
    log: Path,
    waiting_for: str,
    timeout_s: float = 480,
) -> int:
    """Start ``command``, SIGKILL it as soon as ``ready()`` holds, and return its status.

    Output goes to ``log``. The test fails, naming ``waiting_for`` and showing the log,
    if the command exits first or ``ready()`` does not hold within ``timeout_s`` (generous:
    process start and compilation are slow on a busy 2-core machine).
    """
    with open(log, "w") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready():
                if process.poll() is not None:
                    pytest.fail(
                        f"the command exited ({process.returncode}) while waiting for "
                        f"{waiting_for}:\n{tail(log)}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"no {waiting_for} within {timeout_s:.0f} s:\n{tail(log)}")
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return process.returncode
