#!/usr/bin/env python3
"""Peer measurements for `cargo xtask bench`: the same load, and a comparable job, in Polars,
pyarrow and DuckDB. Prints one JSON object per measurement on stdout. A peer that is not
installed is reported as {"tool": ..., "skipped": "not installed"}.

Usage: peers.py load FILE [FILE.gz]   |   peers.py job FILE OUT_DIR
"""
import json
import os
import resource
import sys
import time


def rss_bytes():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(tool, task, path, rows, secs):
    size = os.path.getsize(path)
    print(json.dumps({
        "tool": tool, "task": task, "file": path, "rows": rows, "wall_seconds": secs,
        "rows_per_second": rows / secs, "mb_per_second": size / 1e6 / secs,
        "peak_rss_bytes": rss_bytes(),
    }), flush=True)


def load(tool, path):
    t = time.perf_counter()
    if tool == "polars":
        import polars as pl
        rows = pl.read_csv(path).height
    elif tool == "pyarrow":
        import pyarrow.csv as pc
        rows = pc.read_csv(path).num_rows
    elif tool == "duckdb":
        import duckdb
        con = duckdb.connect()
        # Materialise the table (a bare count(*) could skip parsing most columns).
        con.execute(f"create table t as select * from read_csv('{path}')")
        rows = con.execute("select count(*) from t").fetchall()[0][0]
    else:
        raise ValueError(tool)
    emit(tool, "load", path, rows, time.perf_counter() - t)


def job_polars(path, out_dir):
    """load -> dedupe -> drop bad rows -> per-symbol z-score outlier filter -> returns,
    SMA/EMA(20), rolling std, VWAP(100), mid, spread, time and lag features -> Parquet."""
    import polars as pl
    t = time.perf_counter()
    df = pl.read_csv(path, try_parse_dates=True)
    n = df.height
    df = df.unique(maintain_order=True)
    df = df.filter((pl.col("price") > 0) & (pl.col("size") > 0) & (pl.col("bid") <= pl.col("ask")))
    df = df.drop_nulls(["price", "size", "bid", "ask"])
    med = pl.col("price").rolling_median(101).over("symbol")
    dev = (pl.col("price") - med).abs()
    df = df.with_columns(dev.alias("_dev"), pl.col("price").rolling_std(100).over("symbol").alias("_sd"))
    df = df.filter(pl.col("_dev").is_null() | (pl.col("_dev") <= 10 * pl.col("_sd").fill_null(1e9) + 1e-12)).drop("_dev", "_sd")
    p = pl.col("price")
    df = df.with_columns(
        (p / p.shift(1) - 1).over("symbol").alias("ret"),
        (p.log() - p.log().shift(1)).over("symbol").alias("log_ret"),
        p.rolling_mean(20).over("symbol").alias("sma_20"),
        p.ewm_mean(span=20, adjust=False).over("symbol").alias("ema_20"),
        p.rolling_std(20).over("symbol").alias("std_20"),
        ((p * pl.col("size")).rolling_sum(100) / pl.col("size").rolling_sum(100)).over("symbol").alias("vwap_100"),
        ((pl.col("bid") + pl.col("ask")) / 2).alias("mid"),
        (pl.col("ask") - pl.col("bid")).alias("spread"),
        pl.col("ts").dt.hour().alias("hour"),
        pl.col("ts").dt.minute().alias("minute"),
        pl.col("ts").dt.weekday().alias("dow"),
        *[p.shift(k).over("symbol").alias(f"price_lag_{k}") for k in (1, 5, 10, 20)],
    )
    os.makedirs(out_dir, exist_ok=True)
    df.write_parquet(os.path.join(out_dir, "polars_job.parquet"), compression="zstd")
    emit("polars", "job", path, n, time.perf_counter() - t)


def main():
    mode = sys.argv[1]
    if mode == "load":
        for path in sys.argv[2:]:
            for tool in ("polars", "pyarrow", "duckdb"):
                try:
                    __import__({"polars": "polars", "pyarrow": "pyarrow.csv", "duckdb": "duckdb"}[tool])
                except ImportError:
                    print(json.dumps({"tool": tool, "task": "load", "skipped": "not installed"}), flush=True)
                    continue
                # Each measurement in its own process so peak RSS is per tool.
                pid = os.fork()
                if pid == 0:
                    load(tool, path)
                    os._exit(0)
                os.waitpid(pid, 0)
    elif mode == "job":
        try:
            import polars  # noqa: F401
        except ImportError:
            print(json.dumps({"tool": "polars", "task": "job", "skipped": "not installed"}))
            return
        job_polars(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
