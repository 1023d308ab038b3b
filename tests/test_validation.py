"""keras_resnet.validation: which values pass, and the exact message of those that do not."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from keras_resnet.validation import check_integer, check_number


def refused(check, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        check(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("value", [0, 1, 7, np.int64(3), np.uint8(2)])
def test_check_integer_returns_an_integer_unchanged(value):
    assert check_integer(value, "n", minimum=0) is value


def test_check_integer_minimum_is_inclusive():
    assert check_integer(1, "epochs", minimum=1) == 1
    assert refused(check_integer, 0, "epochs", minimum=1) == (
        "`epochs` must be an integer of at least 1. Received: epochs=0"
    )
    assert check_integer(-5, "offset") == -5  # no minimum: any integer


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_check_integer_refuses_bools(value):
    assert refused(check_integer, value, "seed", minimum=0) == (
        f"`seed` must be an integer of at least 0. Received: seed={value!r}"
    )
    assert refused(check_integer, value, "seed") == (
        f"`seed` must be an integer. Received: seed={value!r}"
    )


@pytest.mark.parametrize("value", [2.0, 2.5, "3", None, math.nan])
def test_check_integer_refuses_other_types(value):
    assert refused(check_integer, value, "batch_size", minimum=1) == (
        f"`batch_size` must be an integer of at least 1. Received: batch_size={value!r}"
    )


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), np.int64(1)])
def test_check_number_returns_a_real_number_unchanged(value):
    assert check_number(value, "x", low=0.0, high=1.0) is value


@pytest.mark.parametrize(
    "low_open, high_open, at_low, at_high, bounds",
    [
        (False, False, True, True, ">= 0.0 and <= 1.0"),
        (True, False, False, True, "> 0.0 and <= 1.0"),
        (False, True, True, False, ">= 0.0 and < 1.0"),
        (True, True, False, False, "> 0.0 and < 1.0"),
    ],
)
def test_check_number_bounds_are_open_or_closed(low_open, high_open, at_low, at_high, bounds):
    kwargs = dict(low=0.0, high=1.0, low_open=low_open, high_open=high_open)
    message = f"`momentum` must be a number {bounds}. Received: momentum="
    for value, accepted in ((0.0, at_low), (1.0, at_high)):
        if accepted:
            assert check_number(value, "momentum", **kwargs) == value
        else:
            assert refused(check_number, value, "momentum", **kwargs) == f"{message}{value!r}"
    assert check_number(0.5, "momentum", **kwargs) == 0.5
    for outside in (-1e-9, 1.0 + 1e-9):
        assert refused(check_number, outside, "momentum", **kwargs) == f"{message}{outside!r}"


def test_check_number_with_one_bound():
    assert check_number(1e6, "learning_rate", low=0.0, low_open=True) == 1e6
    assert refused(check_number, 0.0, "learning_rate", low=0.0, low_open=True) == (
        "`learning_rate` must be a number > 0.0. Received: learning_rate=0.0"
    )
    assert refused(check_number, 2, "gamma", high=1) == (
        "`gamma` must be a number <= 1. Received: gamma=2"
    )


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "0.1", None, 1j])
def test_check_number_refuses_bools_non_finite_and_non_real_values(value):
    message = refused(check_number, value, "weight_decay", low=0.0)
    assert message == f"`weight_decay` must be a number >= 0.0. Received: weight_decay={value!r}"


def test_messages_name_the_argument_and_end_with_the_value():
    for message in (
        refused(check_integer, -2, "verbose", minimum=0),
        refused(check_number, -2, "verbose", low=0),
    ):
        assert re.fullmatch(r"`verbose` must be .+\. Received: verbose=-2", message)
