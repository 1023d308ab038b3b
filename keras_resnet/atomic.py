"""The one way this package writes a file: beside its target, flushed to disk, renamed over it.

A run killed at any instant leaves each file either whole and old or whole and new, never
cut short, which is what makes every run folder and search project resumable.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

PARTIAL_MARK = ".partial."


def partial_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path`` that keeps its full suffix (``.weights.h5``).

    Example:
        >>> partial_path("runs/x/best.keras").name.endswith(".partial.best.keras")
        True
    """
    path = Path(path)
    return path.with_name(f".{secrets.token_hex(4)}{PARTIAL_MARK}{path.name}")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, fsync the file, then rename it over ``path``.

    ``write`` gets a path in the same folder with the same suffix, so writers that insist
    on a suffix (``model.save`` wants ``.keras``) work unchanged. On any error the
    temporary file is removed and ``path`` is left as it was.

    Example:
        >>> write_atomic("runs/x/best.keras", model.save)  # doctest: +SKIP
        PosixPath('runs/x/best.keras')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def discarded_write(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary path with ``path``'s name, then delete what it wrote.

    What a process besides 0 of a multi-process run does in place of writing a model file
    (``recipe.cluster``): Keras's saving makes tensors, which under a multi-process
    ``DataParallel`` are collective operations (JAX checks that every process puts the
    same value), so every process must save alike, though only process 0 keeps the file.

    Example:
        >>> discarded_write("runs/x/best.keras", model.save)  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory(prefix="keras_resnet-") as folder:
        write(Path(folder) / Path(path).name)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically.

    Example:
        >>> import tempfile; folder = tempfile.mkdtemp()
        >>> write_text(f"{folder}/note.txt", "hello").read_text()
        'hello'
    """
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | os.PathLike, payload) -> Path:
    """Write ``payload`` as indented JSON with sorted keys, atomically.

    Example:
        >>> import tempfile; folder = tempfile.mkdtemp()
        >>> write_json(f"{folder}/m.json", {"test_accuracy": 0.9}).read_text()
        '{\\n  "test_accuracy": 0.9\\n}'
    """
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True))


def write_csv(
    path: str | os.PathLike, rows: Iterable[Mapping], columns: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as CSV with a header, atomically; a missing cell is left blank.

    ``columns`` defaults to every key in first-seen order.

    Example:
        >>> import tempfile; folder = tempfile.mkdtemp()
        >>> write_csv(f"{folder}/t.csv", [{"a": 1}, {"a": 2, "b": 3}]).read_text().split()
        ['a,b', '1,', '2,3']
    """
    rows = list(rows)
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    return write_atomic(path, write)


def remove_stale_partials(folder: str | os.PathLike, older_than_s: float) -> None:
    """Delete temporary files that a killed writer left in ``folder``.

    Example:
        >>> remove_stale_partials("runs/x", older_than_s=600)  # doctest: +SKIP
    """
    now = time.time()
    for entry in Path(folder).glob(f".*{PARTIAL_MARK}*"):
        try:
            if now - entry.stat().st_mtime > older_than_s:
                entry.unlink()
        except OSError:
            pass
