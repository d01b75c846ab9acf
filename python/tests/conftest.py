"""Shared fixtures: a small generated TAQ dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

import tickpipe


@pytest.fixture(scope="session")
def ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ticks")
    tickpipe.gen_data(d, rows=20_000, days=2)
    return d


def csvs(d: Path) -> list[str]:
    return [str(d / "*.csv")]
