"""The tickpipe Python package: run and ledger, the zero-copy stream into Polars, pyarrow,
DuckDB and pandas, bounded memory, error mapping, Ctrl-C, and stubs in step."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tickpipe

from conftest import csvs


def test_run_writes_dataset_and_ledger_holds(ticks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = tickpipe.run(csvs(ticks), out, progress=False)
    removed = sum(r.rows_removed.values())
    assert r.rows_read == 20_000
    assert r.rows_read == r.rows_written + r.rows_quarantined + removed
    assert r.ledger.startswith("read 20000")
    assert r.outputs and all(p.exists() for p in r.outputs)
    assert (out / "_SUCCESS").exists()
    assert r.files == {"ok": 1, "failed": []}
    assert r.metrics["rows_per_second"] > 0
    assert r.to_dict()["rows_written"] == r.rows_written
    import polars as pl

    assert pl.scan_parquet(str(out / "data" / "**" / "*.parquet")).collect().height == r.rows_written


def test_stream_into_polars_pyarrow_duckdb_pandas(ticks: Path) -> None:
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    s = tickpipe.scan(csvs(ticks))
    df = pl.DataFrame(s)
    written = s.finish().rows_written
    assert df.height == written > 0
    before = pa.total_allocated_bytes()
    t = pa.table(tickpipe.scan(csvs(ticks)))
    assert t.num_rows == written
    # Imported buffers are the Rust ones: pyarrow's pool allocated nothing for them.
    assert pa.total_allocated_bytes() - before < t.nbytes // 10
    n = duckdb.from_arrow(tickpipe.scan(csvs(ticks))).aggregate("count(*)").fetchall()[0][0]
    assert n == written
    p = tickpipe.scan(csvs(ticks)).to_pandas()
    assert isinstance(p, pd.DataFrame) and len(p) == written
    batches = list(tickpipe.scan(csvs(ticks)))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sum(b.num_rows for b in batches) == written


def test_stream_serves_a_requested_schema(ticks: Path) -> None:
    import pyarrow as pa

    # The consumer asks for two columns, reordered and narrowed: the stream casts them.
    want = pa.schema([("price", pa.float32()), ("symbol", pa.string())])
    s = tickpipe.scan(csvs(ticks))
    t = pa.RecordBatchReader._import_from_c_capsule(
        s.__arrow_c_stream__(want.__arrow_c_schema__())
    ).read_all()
    written = s.finish().rows_written
    assert t.schema == want
    assert t.num_rows == written > 0
    assert set(t.column("symbol").to_pylist()) == {"AAPL", "MSFT", "GOOG", "AMZN", "META"}
    # pyarrow's own entry point asks the same way.
    t2 = pa.RecordBatchReader.from_stream(tickpipe.scan(csvs(ticks)), schema=want).read_all()
    assert t2.schema == want and t2.num_rows == written
    # A column the stream does not have: it keeps its own schema (the protocol lets the
    # consumer decide what to do then).
    s = tickpipe.scan(csvs(ticks))
    own = pa.RecordBatchReader._import_from_c_capsule(
        s.__arrow_c_stream__(pa.schema([("nope", pa.int64())]).__arrow_c_schema__())
    )
    assert "price" in own.schema.names and "nope" not in own.schema.names
    assert own.read_all().num_rows == written
    # One batch (the Arrow PyCapsule array interface) serves it too.
    s = tickpipe.scan(csvs(ticks))
    b = pa.record_batch(s._native.next_batch(), schema=want)
    assert b.schema == want and b.num_rows > 0
    s.stop()


def test_stream_memory_is_bounded(tmp_path: Path) -> None:
    # More output than the run's memory limit (128 MiB) streams through a process whose
    # peak RSS grows by less than that limit: holding the output would take more.
    script = textwrap.dedent(
        """
        import resource, sys, tickpipe
        tickpipe.gen_data(sys.argv[1], rows=1_000_000, days=3)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        total = 0
        for b in tickpipe.scan([sys.argv[1] + "/*.csv"], memory_limit="128MiB", workers=1):
            total += b.nbytes
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(total, peak - base)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big")],
        capture_output=True, text=True, timeout=600, check=True,
    )
    total, grown = map(int, out.stdout.split())
    assert total > 128 << 20, "the stream must be larger than the memory limit"
    assert grown < 128 << 20, (total, grown)


def test_errors_keep_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "ts,symbol,price,size\n2024-01-02T14:30:00Z,AAA,10.0,100\n2024-01-02T14:30:01Z,AAA,oops,100\n"
    )
    with pytest.raises(tickpipe.InputError) as e:
        tickpipe.run([bad], None, strict=True, progress=False)
    assert e.value.file is not None and e.value.file.endswith("bad.csv")
    assert e.value.line == 3
    with pytest.raises(tickpipe.ConfigError) as c:
        tickpipe.run([bad], None, pipeline__chunk_size=-1, progress=False)
    assert "pipeline.chunk_size" in c.value.key
    assert isinstance(c.value, ValueError)
    with pytest.raises(tickpipe.TickpipeError):
        tickpipe.run([tmp_path / "missing.csv"], None, progress=False)
    with pytest.raises(TypeError):
        tickpipe.run([bad], None, no_such_option=1)


def test_config_inspect_validate_cache(ticks: Path, tmp_path: Path) -> None:
    c = tickpipe.Config.development()
    assert c.pipeline.max_workers == 2
    c.pipeline.max_workers = 3
    c.save(tmp_path / "c.toml")
    assert tickpipe.Config.load(tmp_path / "c.toml") == c
    with pytest.raises(AttributeError):
        c.pipeline.max_wokers = 1
    assert tickpipe.Config.production().pipeline.memory_limit != tickpipe.Config().pipeline.memory_limit
    info = tickpipe.inspect(ticks / "taq.csv")
    assert info["files"][0]["rows"] == 20_000
    v = tickpipe.validate(csvs(ticks), progress=False)
    assert v.validation is not None and "verdict" in v.validation["summary"]
    out = tmp_path / "out"
    tickpipe.run(csvs(ticks), out, progress=False)
    assert isinstance(tickpipe.cache_stats(out), dict)


def test_ctrl_c_stops_the_run_cleanly(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, tickpipe
        tickpipe.gen_data(sys.argv[1], rows=3_000_000, days=5)
        print("ready", flush=True)
        try:
            tickpipe.run([sys.argv[1] + "/*.csv"], sys.argv[2], progress=False, workers=1)
            print("finished")
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "in"), str(tmp_path / "out")],
        stdout=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest = p.communicate(timeout=120)[0]
    assert "interrupted" in rest, rest
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    state = tickpipe.inspect(tmp_path / "out")["outputs"][0]["output"]["state"]
    assert state == "interrupted"


def test_ctrl_c_stops_a_scan(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time, tickpipe
        tickpipe.gen_data(sys.argv[1], rows=1_000_000, days=5)
        rows = 0
        try:
            for b in tickpipe.scan([sys.argv[1] + "/*.csv"], workers=1):
                if rows == 0:
                    print("streaming", flush=True)
                rows += b.num_rows
                time.sleep(0.2)  # a consumer doing work per batch
            print("finished", rows)
        except KeyboardInterrupt:
            print("interrupted", rows)
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "in")],
        stdout=subprocess.PIPE, text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "streaming"
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest = p.communicate(timeout=120)[0]
    assert rest.startswith("interrupted"), rest
    assert int(rest.split()[1]) < 1_000_000
    # The background run stops with the stream: the process exits promptly.
    assert time.monotonic() - started < 30
    assert p.returncode == 0


def test_stubs_match_the_package() -> None:
    stub = Path(tickpipe.__file__).with_name("__init__.pyi")
    tree = ast.parse(stub.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname for a in node.names if a.asname)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    for name in names - {"__all__"}:
        assert hasattr(tickpipe, name), f"{name} is in the stubs but not in the package"
    missing = set(tickpipe.__all__) - names
    assert not missing, f"public names without stubs: {missing}"
    native = ast.parse(Path(tickpipe.__file__).with_name("_native.pyi").read_text())
    for node in native.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            assert hasattr(tickpipe._native, node.name), node.name
