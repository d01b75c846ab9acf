"""Type stubs of the tickpipe package (kept in step with ``__init__.py`` by
``tests/test_stubs.py``)."""

import os
from typing import Any, Iterator, Sequence, Union

import pandas
import pyarrow

from .config import Config as Config
from .config import Section as Section
from .errors import ArrowError as ArrowError
from .errors import BusyError as BusyError
from .errors import CancelledError as CancelledError
from .errors import ConfigError as ConfigError
from .errors import CorruptInputError as CorruptInputError
from .errors import DisorderError as DisorderError
from .errors import FormatError as FormatError
from .errors import InputError as InputError
from .errors import InternalError as InternalError
from .errors import MalformedError as MalformedError
from .errors import ParseError as ParseError
from .errors import QuarantineLimitError as QuarantineLimitError
from .errors import SchemaError as SchemaError
from .errors import TickpipeError as TickpipeError
from .errors import TickpipeIOError as TickpipeIOError
from .errors import UsageError as UsageError
from .report import RunReport as RunReport

PathLike = Union[str, os.PathLike[str]]

__version__: str
__all__: list[str]

def run(
    inputs: PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    config: Config | PathLike | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    bars: str | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> RunReport:
    """Runs the pipeline into ``out`` (a dataset folder, a file, or ``None`` to discard);
    Ctrl-C raises ``KeyboardInterrupt`` after the run stopped cleanly."""

def validate(
    inputs: PathLike | Sequence[PathLike],
    config: Config | PathLike | None = None,
    *,
    rules: PathLike | None = None,
    report: PathLike | None = None,
    history: PathLike | None = None,
    quarantine: PathLike | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> RunReport:
    """The data-quality rules alone on the rows as read (``tickpipe validate``)."""

class Scan:
    """The output batches of a running pipeline; an Arrow PyCapsule stream."""

    def __init__(self, native: Any) -> None: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The remaining batches as an Arrow C stream (a PyCapsule)."""
    def __iter__(self) -> Iterator[pyarrow.RecordBatch]: ...
    def to_reader(self) -> pyarrow.RecordBatchReader:
        """A ``pyarrow.RecordBatchReader`` over the remaining batches."""
    def to_arrow(self) -> pyarrow.Table:
        """All remaining batches as a ``pyarrow.Table``."""
    def to_pandas(self) -> pandas.DataFrame:
        """All remaining batches as a pandas DataFrame with ``pd.ArrowDtype`` columns."""
    def stop(self) -> None:
        """Stops the run early."""
    def finish(self) -> RunReport:
        """Waits for the run to end and returns its report."""
    def __enter__(self) -> Scan: ...
    def __exit__(self, *exc: object) -> None: ...

def scan(
    inputs: PathLike | Sequence[PathLike],
    config: Config | PathLike | None = None,
    *,
    out: PathLike | None = None,
    bars: str | None = None,
    **overrides: Any,
) -> Scan:
    """Starts the pipeline and streams its output batches instead of writing them."""

def inspect(
    path: PathLike | Sequence[PathLike],
    config: Config | PathLike | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """What each input is, as ``tickpipe inspect --json`` prints it."""

def gen_data(
    out: PathLike,
    *,
    rows: int = 1_000_000,
    symbols: int = 5,
    years: int = 5,
    days: int | None = None,
    layout: str = "single",
    compression: str = "none",
    seed: int = 42,
) -> dict[str, Any]:
    """Generates synthetic TAQ ticks with labelled anomalies into ``out``."""

def cache_stats(path: PathLike) -> dict[str, Any]:
    """The statistics of the cache of a run's output folder or a cache folder."""
