"""A stand-in for Hugging Face's ``spaces`` package, for tests only (``tests/test_space.py`` puts this folder on
``sys.path``). ``GPU(duration=...)`` records every function it decorates and every call with the seconds the call
would ask for, and runs the function in this process. Like the real ZeroGPU worker, the arguments and every result
(or yielded item) cross a pickle boundary, so a call that would fail to reach the worker fails here too."""

from __future__ import annotations

import functools
import inspect
import pickle

DECORATED: list[tuple[str, object]] = []  # (function name, duration as given: seconds or a callable)
CALLS: list[tuple[str, int]] = []  # (function name, seconds asked for by this call)


def _cross(obj):
    return pickle.loads(pickle.dumps(obj))


def GPU(task=None, *, duration=None, size=None):  # the real package's name and signature
    def decorate(fn):
        DECORATED.append((fn.__name__, duration))

        def asked(args, kwargs) -> int:
            return int(duration(*args, **kwargs) if callable(duration) else (duration or 60))

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream(*args, **kwargs):
                CALLS.append((fn.__name__, asked(args, kwargs)))
                args, kwargs = _cross((args, kwargs))
                for item in fn(*args, **kwargs):
                    yield _cross(item)
            return stream

        @functools.wraps(fn)
        def call(*args, **kwargs):
            CALLS.append((fn.__name__, asked(args, kwargs)))
            args, kwargs = _cross((args, kwargs))
            return _cross(fn(*args, **kwargs))
        return call

    return decorate(task) if callable(task) else decorate
