"""tickpipe.ray on a local multi-node Ray cluster writes what one machine writes. Skipped
when ray is not installed or no tickpipe binary is found (CI builds it before pytest)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tickpipe

from conftest import csvs

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

REPO = Path(__file__).resolve().parents[2]


def _binary() -> str | None:
    for c in (os.environ.get("TICKPIPE_BIN"), REPO / "target" / "debug" / "tickpipe"):
        if c and Path(c).is_file():
            return str(c)
    return None


def test_ray_job_equals_one_machine(ticks: Path, tmp_path: Path) -> None:
    import polars as pl

    import tickpipe.ray as tray

    exe = _binary()
    if exe is None:
        pytest.skip("no tickpipe binary: set TICKPIPE_BIN or run cargo build first")
    one = tickpipe.run(csvs(ticks), tmp_path / "one", progress=False)
    try:
        cluster = cluster_utils.Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1}
        )
        cluster.add_node(num_cpus=1)
    except Exception as e:  # the sandbox may forbid what Ray's processes need
        pytest.skip(f"a local Ray cluster could not start here: {e}")
    # A second job whose first day is a gzip file cut in half: it completes, and the failed
    # input comes back with the ledger, as a failed file does in one run.
    import gzip
    import shutil

    bad = tmp_path / "bad"
    bad.mkdir()
    days = sorted(ticks.glob("*.csv"))
    for d in days[1:]:
        shutil.copy(d, bad / d.name)
    packed = gzip.compress(days[0].read_bytes())
    (bad / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    try:
        ray.init(address=cluster.address)
        assert len(ray.nodes()) == 2
        job = tmp_path / "job"
        ledger = tray.run(csvs(ticks), job, map_tasks=2, reduce_tasks=2, binary=exe)
        cut = tray.run(
            [str(bad / "*.csv.gz"), str(bad / "*.csv")],
            tmp_path / "job_bad",
            map_tasks=2,
            reduce_tasks=2,
            binary=exe,
            shuffle_compression="lz4",
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert (tmp_path / "job_bad" / "_SUCCESS").exists()
    planned = json.loads((tmp_path / "job_bad" / "_plan.json").read_text())
    assert planned["shuffle_compression"] == "lz4"
    assert [f for f in cut["files_failed"] if "cut.csv.gz" in f], cut
    assert "files_failed" not in ledger
    assert (job / "_SUCCESS").exists()
    assert ledger["read"] == one.rows_read
    assert ledger["written"] == one.rows_written
    # The job's quality report, merged from the reduce tasks, has one run's verdict.
    assert ledger["quality"]["verdict"] == one.validation["summary"]["verdict"]
    assert ledger["quality"]["path"] == str(job / "quality.json")
    got = pl.read_parquet(str(job / "data" / "**" / "*.parquet"), hive_partitioning=True)
    want = pl.read_parquet(str(tmp_path / "one" / "data" / "**" / "*.parquet"), hive_partitioning=True)
    assert got.height == want.height == one.rows_written
    cols = sorted(c for c in want.columns if c != "_line")
    assert got.select(cols).sort(cols).equals(want.select(cols).sort(cols))
