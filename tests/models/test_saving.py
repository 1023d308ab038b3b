"""Saved-then-loaded models give the same outputs, on one backend and across backends."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from save_reference import CASES, randomize_batch_norm_statistics, save

BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_file_round_trip_gives_identical_predictions(tmp_path, case):
    model = CASES[case]()
    randomize_batch_norm_statistics(model)
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 32, 32, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_model_saved_under_another_backend_loads_with_the_same_outputs(tmp_path):
    here = keras.backend.backend()
    other = BACKENDS[(BACKENDS.index(here) + 1) % len(BACKENDS)]
    script = Path(__file__).with_name("save_reference.py")
    env = dict(os.environ, KERAS_BACKEND=other)
    subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        check=True,
        cwd=Path(__file__).resolve().parents[2],  # the repository root
        timeout=300,
    )
    x = np.load(tmp_path / "inputs.npy")
    for case in CASES:
        # No custom_objects: importing keras_resnet registers its layers.
        loaded = keras.saving.load_model(tmp_path / f"{case}.keras")
        expected = np.load(tmp_path / f"{case}.npy")
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_reference_script_writes_every_case(tmp_path):
    save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["inputs.npy"] + [f"{c}.keras" for c in CASES] + [f"{c}.npy" for c in CASES]
    )
