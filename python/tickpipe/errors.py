"""The exceptions tickpipe raises: a :class:`TickpipeError` hierarchy.

Each keeps what the Rust error knows as attributes: ``file``, ``line`` and ``column`` for
input errors, ``key`` for configuration errors, ``path`` for I/O errors. Attributes an error
does not have are ``None``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TickpipeError",
    "InputError",
    "ParseError",
    "MalformedError",
    "CorruptInputError",
    "FormatError",
    "SchemaError",
    "DisorderError",
    "QuarantineLimitError",
    "ConfigError",
    "UsageError",
    "TickpipeIOError",
    "BusyError",
    "CancelledError",
    "ArrowError",
    "InternalError",
]


class TickpipeError(Exception):
    """Base class of every tickpipe error; ``str(e)`` is the Rust message."""

    file: str | None = None
    line: int | None = None
    column: str | None = None

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in fields.items():
            setattr(self, name, value)


class InputError(TickpipeError):
    """Something is wrong with an input file (its rows, compression or format)."""


class ParseError(InputError):
    """A field could not be parsed (strict mode): ``file``, ``line``, ``column``,
    ``expected``, ``found``."""

    expected: str | None = None
    found: str | None = None


class MalformedError(InputError):
    """A row is structurally malformed (strict mode): ``file``, ``line``."""


class CorruptInputError(InputError):
    """A compressed input is truncated or corrupt: ``file``, ``codec``."""

    codec: str | None = None


class FormatError(InputError):
    """An input is not in a format tickpipe reads: ``file``."""


class SchemaError(TickpipeError):
    """The input's columns do not fit what the run needs."""


class DisorderError(InputError):
    """The input is too far out of time order (run with ``sort=True``)."""


class QuarantineLimitError(TickpipeError):
    """More rows were quarantined than ``pipeline.max_quarantine_fraction`` allows."""

    quarantined: int | None = None
    read: int | None = None


class ConfigError(TickpipeError, ValueError):
    """A configuration key has a bad value or is unknown: ``key`` is its dotted path."""

    key: str | None = None


class UsageError(TickpipeError, ValueError):
    """The request cannot be done (no input, options that contradict each other)."""


class TickpipeIOError(TickpipeError, OSError):
    """Reading or writing ``path`` failed (``kind`` is the Rust I/O error kind)."""

    path: str | None = None
    kind: str | None = None


class BusyError(TickpipeError):
    """The output folder is being written by another run."""


class CancelledError(TickpipeError):
    """The run was stopped before it finished (``Scan.stop()``)."""


class ArrowError(TickpipeError):
    """An Arrow or Parquet library error."""


class InternalError(TickpipeError):
    """A bug in tickpipe; please report it."""
