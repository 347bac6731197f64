"""The error guard: whatever goes wrong in a page reaches the user as one plain message, never a stack trace."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import streamlit as st

from ecgviz.dashboard.text import plain
from ecgviz.errors import USER_ERRORS


@contextlib.contextmanager
def errors_shown() -> Iterator[None]:
    """Turn any error in the block into st.error, so no traceback reaches the page."""
    try:
        yield
    except USER_ERRORS as exc:
        st.error(plain(str(exc) or type(exc).__name__), icon=":material/error:")
    except Exception as exc:  # the last line of defence: a message, never a stack trace
        st.error(plain(f"Something went wrong ({type(exc).__name__}): {exc}"), icon=":material/error:")


def shows_errors(fn: Callable) -> Callable:
    """errors_shown() around a function: for fragments, whose reruns skip the app's own guard."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        with errors_shown():
            return fn(*args, **kwargs)

    return guarded
