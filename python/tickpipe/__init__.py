"""tickpipe: tick CSV (trades, quotes) to cleaned, validated, feature-rich Parquet.

The engine is the Rust ``tickpipe`` library; this package drives it from Python::

    import polars as pl
    import tickpipe

    tickpipe.gen_data("ticks", rows=100_000, days=5)          # sample TAQ data
    report = tickpipe.run(["ticks/*.csv"], "out")              # -> out/data (Parquet)
    print(report.ledger)
    df = pl.DataFrame(tickpipe.scan(["ticks/*.csv"]))          # stream, no copy

:func:`run` releases the GIL; Ctrl-C stops it cleanly with ``KeyboardInterrupt`` (the
output folder is left resumable). :func:`scan` implements the Arrow PyCapsule interface, so
Polars, pyarrow, DuckDB and pandas read its batches without a copy, in bounded memory.
Errors are :class:`TickpipeError` subclasses that keep file, line and column.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union

from . import _native, errors
from ._progress import Display, interactive
from .config import Config, Section
from .errors import (
    ArrowError,
    BusyError,
    CancelledError,
    ConfigError,
    CorruptInputError,
    DisorderError,
    FormatError,
    InputError,
    InternalError,
    MalformedError,
    ParseError,
    QuarantineLimitError,
    SchemaError,
    TickpipeError,
    TickpipeIOError,
    UsageError,
)
from .report import RunReport

if TYPE_CHECKING:
    import pandas
    import pyarrow

__version__: str = _native.__version__

__all__ = [
    "__version__",
    "run",
    "scan",
    "validate",
    "inspect",
    "gen_data",
    "cache_stats",
    "Config",
    "Section",
    "RunReport",
    "Scan",
    *errors.__all__,
]

PathLike = Union[str, "os.PathLike[str]"]

# Keyword shortcuts for the keys set most often (the CLI's flags); any key can also be set
# as SECTION__KEY=value, e.g. pipeline__chunk_size=65536.
_SHORTCUTS = {
    "workers": "pipeline.max_workers",
    "memory_limit": "pipeline.memory_limit",
    "chunk_size": "pipeline.chunk_size",
    "strict": "pipeline.strict",
    "sort": "input.sort",
    "timezone": "input.timezone",
    "date": "input.date",
    "symbol": "input.symbol",
    "layout": "input.layout",
    "file_pattern": "input.file_pattern",
    "format": "output.format",
    "partition_by": "output.partition_by",
}


def _inputs(inputs: PathLike | Sequence[PathLike]) -> list[str]:
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    return [os.fspath(i) for i in inputs]


def _path(p: PathLike | None) -> str | None:
    return None if p is None else os.fspath(p)


def _config(config: Config | PathLike | None, overrides: dict[str, Any]) -> str:
    """The run's configuration as JSON: ``config`` (an object or a TOML file's path, default
    ``Config()``) with the keyword overrides applied."""
    if config is None:
        cfg = Config.default()
    elif isinstance(config, Config):
        cfg = config.copy()
    elif isinstance(config, (str, os.PathLike)):
        cfg = Config.load(config)
    else:
        raise TypeError(f"config must be a tickpipe.Config or a path, not {type(config).__name__}")
    for name, value in overrides.items():
        if name in _SHORTCUTS:
            key = _SHORTCUTS[name]
        elif "__" in name:
            key = name.replace("__", ".")
        else:
            raise TypeError(
                f"unexpected keyword argument `{name}`: use one of {', '.join(_SHORTCUTS)} or "
                "SECTION__KEY=value (e.g. pipeline__chunk_size=65536)"
            )
        if key == "output.partition_by" and isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip() and p.strip() != "none"]
        if key == "pipeline.memory_limit" and isinstance(value, int):
            value = f"{value}B"
        cfg.set(key, value)
    return cfg.to_json()


def _progress(progress: bool | None) -> Display | None:
    if progress is None:
        progress = interactive()
    return Display() if progress else None


def _run(progress: bool | None, call: Any) -> RunReport:
    display = _progress(progress)
    try:
        text = call(display)
    finally:
        if display is not None:
            display.close()
    return RunReport(json.loads(text))


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
    """Runs the pipeline: read ``inputs`` (files, folders, globs), clean, validate, compute
    features, and write ``out``: a dataset folder (``out/data``, Hive-partitioned Parquet,
    plus quarantine, quality and run reports), a single file (``.parquet``, ``.csv``,
    ``.arrow``), or nothing when ``out`` is ``None`` (the CLI's ``--discard``).

    ``config`` is a :class:`Config` or a TOML file's path; keyword ``overrides`` set keys on
    top of it: ``workers``, ``memory_limit``, ``chunk_size``, ``strict``, ``sort``,
    ``timezone``, ``date``, ``symbol``, ``layout``, ``file_pattern``, ``format``,
    ``partition_by``, or any ``SECTION__KEY=value``. ``bars`` (``"time:1m"``,
    ``"tick:1000"``, ...) computes bars instead of features; ``overwrite`` replaces a previous
    run's output; ``resume`` continues an interrupted one; ``shard=(k, n)`` processes only
    shard k of n.

    The GIL is released while the run works. Ctrl-C (or an interrupt in a notebook) cancels
    it, waits for it to stop, and raises ``KeyboardInterrupt``; the output folder is left
    resumable (``resume=True``). ``progress`` shows a progress line on stderr (default: when
    interactive). Errors raise :class:`TickpipeError` subclasses.
    """
    cfg = _config(config, overrides)
    return _run(
        progress,
        lambda display: _native.run(
            _inputs(inputs),
            _path(out),
            cfg,
            overwrite=overwrite,
            resume=resume,
            bars=bars,
            shard=shard,
            progress=display,
        ),
    )


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
    """The data-quality rules alone on the rows as read (``tickpipe validate``). ``rules``
    replaces ``[validation] rules_file``; ``report`` (``.json`` or ``.html``) receives the
    quality report; ``history`` keeps the metrics history; ``quarantine`` receives the
    rejected rows. The verdict is ``result.validation["summary"]["verdict"]`` and
    ``result.validation["exit_code"]`` (0 pass, 1 fail)."""
    cfg = _config(config, overrides)
    return _run(
        progress,
        lambda display: _native.run(
            _inputs(inputs),
            None,
            cfg,
            validate=True,
            rules=_path(rules),
            report=_path(report),
            history=_path(history),
            quarantine=_path(quarantine),
            progress=display,
        ),
    )


class Scan:
    """The output batches of a running pipeline (:func:`scan`).

    It implements the Arrow PyCapsule interface (``__arrow_c_stream__``), so
    ``pl.DataFrame(s)``, ``pa.table(s)``, ``pa.RecordBatchReader.from_stream(s)`` and
    ``duckdb.from_arrow(s)`` read it without a copy; iterating it yields
    ``pyarrow.RecordBatch`` objects one at a time. The run holds a few batches at most: memory
    stays bounded however large the input, as long as the consumer does not collect
    everything. A stream is read once. :meth:`finish` returns the :class:`RunReport`; as a
    context manager it stops the run on leaving early.
    """

    def __init__(self, native: Any) -> None:
        self._native = native

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The remaining batches as an Arrow C stream (a PyCapsule).

        A ``requested_schema`` (a capsule named ``arrow_schema``) whose fields are columns of
        the stream, by name, with types they cast to, is served: those columns in that order,
        cast. Any other request leaves the stream's own schema, as the protocol allows.
        """
        return self._native.__arrow_c_stream__(requested_schema)

    def __iter__(self) -> Iterator["pyarrow.RecordBatch"]:
        import pyarrow as pa

        while True:
            batch = self._native.next_batch()
            if batch is None:
                return
            yield pa.record_batch(batch)

    def to_reader(self) -> "pyarrow.RecordBatchReader":
        """A ``pyarrow.RecordBatchReader`` over the remaining batches."""
        import pyarrow as pa

        return pa.RecordBatchReader.from_stream(self)

    def to_arrow(self) -> "pyarrow.Table":
        """All remaining batches as a ``pyarrow.Table`` (collects them)."""
        import pyarrow as pa

        return pa.table(self)

    def to_pandas(self) -> "pandas.DataFrame":
        """All remaining batches as a pandas DataFrame backed by the Arrow buffers
        (``pd.ArrowDtype`` columns: no conversion copy)."""
        import pandas as pd

        return self.to_arrow().to_pandas(types_mapper=pd.ArrowDtype)

    def stop(self) -> None:
        """Stops the run early; :meth:`finish` then raises :class:`CancelledError`."""
        self._native.stop()

    def finish(self) -> RunReport:
        """Waits for the run to end and returns its report (batches not read are dropped)."""
        return RunReport(json.loads(self._native.finish()))

    def __enter__(self) -> "Scan":
        return self

    def __exit__(self, *exc: object) -> None:
        self._native.stop()
        try:
            self._native.finish()
        except (CancelledError, UsageError):
            pass


def scan(
    inputs: PathLike | Sequence[PathLike],
    config: Config | PathLike | None = None,
    *,
    out: PathLike | None = None,
    bars: str | None = None,
    **overrides: Any,
) -> Scan:
    """Starts the pipeline on ``inputs`` and streams its output batches instead of writing
    them (see :class:`Scan`). ``config`` and ``overrides`` as in :func:`run`; ``out``, when
    given, is a folder that receives the quarantine file (rejected rows), otherwise they are
    only counted; ``bars`` streams bars instead of features."""
    cfg = _config(config, overrides)
    return Scan(_native.scan(_inputs(inputs), cfg, out=_path(out), bars=bars))


def inspect(
    path: PathLike | Sequence[PathLike], config: Config | PathLike | None = None, **overrides: Any
) -> dict[str, Any]:
    """What each input is, as ``tickpipe inspect --json`` prints it: ``files`` (format,
    compression, encoding, layout, rows, time range, symbols, schema of each), ``totals``,
    ``outputs`` (the state of tickpipe output folders given) and ``errors``."""
    cfg = _config(config, overrides)
    result: dict[str, Any] = json.loads(_native.inspect(_inputs(path), cfg))
    return result


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
    """Generates synthetic TAQ ticks with labelled anomalies into the folder ``out`` (the
    ground truth in ``out/anomalies.jsonl``). ``layout``: ``single``, ``per-day`` or
    ``per-symbol-day``; ``compression``: ``none``, ``gzip``, ``bzip2``, ``xz``, ``zstd``;
    ``days`` limits the trading days. Returns rows, bytes, files and anomalies by kind."""
    result: dict[str, Any] = json.loads(
        _native.gen_data(
            os.fspath(out),
            rows=rows,
            symbols=symbols,
            years=years,
            days=days,
            layout=layout,
            compression=compression,
            seed=seed,
        )
    )
    return result


def cache_stats(path: PathLike) -> dict[str, Any]:
    """The statistics of the cache of a run's output folder (``OUT/_cache``) or of a cache
    folder, as ``tickpipe cache stats --json`` prints them."""
    result: dict[str, Any] = json.loads(_native.cache_stats(os.fspath(path)))
    return result
