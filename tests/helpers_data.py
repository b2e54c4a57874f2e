"""Helpers shared by the data-loader tests (tests/test_data_*.py): checking one-line usage errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from toolkit.errors import UsageError


def one_line_error(func: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call ``func``, expect a UsageError whose message is a single line, and return that message."""
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message
