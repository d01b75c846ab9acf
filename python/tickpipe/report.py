""":class:`RunReport`: what one run did (the ``summary.json`` keys as attributes)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

__all__ = ["RunReport"]


class RunReport:
    """The report of one run. ``rows_read == rows_written + rows_quarantined +
    sum(rows_removed.values())`` always holds; ``ledger`` says it as text.

    Every key of the run summary (see the README, "The run summary") is an attribute;
    :attr:`files`, :attr:`metrics` group the file counts and the performance figures, and
    :meth:`to_dict` gives the whole report.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data", {})
        if name in data:
            return data[name]
        if name in _OPTIONAL:
            return None
        raise AttributeError(f"RunReport has no attribute `{name}`")

    @property
    def ledger(self) -> str:
        """The ledger equation, e.g. ``read 100 = written 97 + quarantined 1 + removed 2``."""
        return str(self._data["ledger"])

    @property
    def outputs(self) -> list[Path]:
        """The data files written."""
        return [Path(p) for p in self._data.get("outputs", [])]

    @property
    def reports(self) -> list[Path]:
        """The report files written (quarantine, quality, run report)."""
        return [Path(p) for p in self._data.get("reports", [])]

    @property
    def files(self) -> dict[str, Any]:
        """``{"ok": n, "failed": [{"file": ..., "error": ...}, ...]}``."""
        return {"ok": self._data.get("files_ok", 0), "failed": self._data.get("files_failed", [])}

    @property
    def metrics(self) -> dict[str, Any]:
        """Throughput and resources: wall seconds, rows and MB per second, bytes, peak RSS,
        per-stage figures and the performance summary (when the monitor ran)."""
        keys = (
            "wall_seconds",
            "rows_per_second",
            "mb_per_second",
            "bytes_read",
            "bytes_written",
            "peak_rss_bytes",
            "stages",
            "performance",
            "performance_headline",
            "cache",
        )
        return {k: copy.deepcopy(self._data.get(k)) for k in keys}

    @property
    def succeeded(self) -> bool:
        """Every file processed and the quarantine within its limit."""
        return not self._data.get("files_failed") and not self._data.get("quarantine_limit")

    def to_dict(self) -> dict[str, Any]:
        """The whole report as a dict (the ``summary.json`` format)."""
        return copy.deepcopy(self._data)

    def __dir__(self) -> list[str]:
        return [*object.__dir__(self), *self._data]

    def __repr__(self) -> str:
        return f"<tickpipe.RunReport {self._data.get('command', 'run')}: {self.ledger}>"


# Keys the summary leaves out when they do not apply.
_OPTIONAL = (
    "bars_written",
    "validation",
    "performance",
    "performance_headline",
    "cache",
    "quarantine_limit",
)
