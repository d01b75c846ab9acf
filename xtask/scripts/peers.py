#!/usr/bin/env python3
"""Peer measurements for `cargo xtask bench`: the same load, and a comparable job, in Polars,
pyarrow and DuckDB. Prints one JSON object per measurement on stdout. A peer that is not
installed is reported as {"tool": ..., "skipped": "not installed"}.

Usage: peers.py load FILE [FILE.gz]   |   peers.py job FILE OUT_DIR
       peers.py write FILE OUT_DIR  (CSV -> one zstd Parquet file, as `tickpipe convert`)
       peers.py asof DIR OUT_DIR   (DIR holds trades_*.csv and quotes_*.csv, time-sorted)
       peers.py read NAME=PATH...  (DuckDB and Polars queries over finished outputs)
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


def write(tool, path, out_dir):
    """CSV -> Parquet (zstd), each tool's own fast path: the comparison for `tickpipe
    convert` (which also partitions by symbol and keeps each row's source line)."""
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{tool}_write.parquet")
    t = time.perf_counter()
    if tool == "polars":
        import polars as pl
        df = pl.read_csv(path, try_parse_dates=True)
        rows = df.height
        df.write_parquet(out, compression="zstd")
    elif tool == "pyarrow":
        import pyarrow.csv as pc
        import pyarrow.parquet as pq
        table = pc.read_csv(path)
        rows = table.num_rows
        pq.write_table(table, out, compression="zstd")
    elif tool == "duckdb":
        import duckdb
        con = duckdb.connect()
        con.execute(f"copy (select * from read_csv('{path}')) to '{out}' (format parquet, compression zstd)")
        rows = con.execute(f"select count(*) from read_parquet('{out}')").fetchall()[0][0]
    else:
        raise ValueError(tool)
    secs = time.perf_counter() - t
    os.remove(out)
    emit(tool, "write", path, rows, secs)


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


def asof(tool, d, out_dir):
    """Each trade matched to its symbol's last quote strictly before it (the raw quote rows:
    no NBBO across exchanges, no measures), written to Parquet: the peers' as-of join."""
    import glob
    trades = sorted(glob.glob(os.path.join(d, "trades_*.csv")))
    quotes = sorted(glob.glob(os.path.join(d, "quotes_*.csv")))
    size = sum(os.path.getsize(f) for f in trades + quotes)
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{tool}_asof.parquet")
    t0 = time.perf_counter()
    if tool == "polars":
        import polars as pl
        t = pl.concat([pl.read_csv(f, try_parse_dates=True) for f in trades]).set_sorted("ts")
        q = pl.concat([pl.read_csv(f, try_parse_dates=True) for f in quotes]).set_sorted("ts")
        rows = t.height + q.height
        j = t.join_asof(q.rename({"exchange": "quote_exchange"}), on="ts", by="symbol",
                        strategy="backward", allow_exact_matches=False)
        j.write_parquet(out, compression="zstd")
    elif tool == "duckdb":
        import duckdb
        con = duckdb.connect()
        tl = ", ".join(f"'{f}'" for f in trades)
        ql = ", ".join(f"'{f}'" for f in quotes)
        rows = con.execute(f"select (select count(*) from read_csv([{tl}])) + (select count(*) from read_csv([{ql}]))").fetchall()[0][0]
        t0 = time.perf_counter()
        con.execute(f"""copy (select t.*, q.bid, q.ask, q.bid_size, q.ask_size, q.ts as quote_ts
            from read_csv([{tl}]) t asof left join read_csv([{ql}]) q
            on t.symbol = q.symbol and t.ts > q.ts) to '{out}' (format parquet, compression zstd)""")
    else:
        raise ValueError(tool)
    secs = time.perf_counter() - t0
    print(json.dumps({
        "tool": tool, "task": "asof", "file": trades[0], "bytes": size, "rows": rows,
        "wall_seconds": secs, "rows_per_second": rows / secs, "mb_per_second": size / 1e6 / secs,
        "peak_rss_bytes": rss_bytes(),
    }), flush=True)


def read_queries(name, path):
    """Reading a finished output back, as a researcher would: a full scan (every row, three
    columns) and a one-symbol, one-month query (the partition and row-group statistics decide
    how much is read). Best of three runs each, from a warm page cache."""
    import glob
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
        size = sum(os.path.getsize(f) for f in files)
    else:
        files = [path]
        size = os.path.getsize(path)
    hive = os.path.isdir(path)
    results = []
    try:
        import duckdb
        con = duckdb.connect()
        src = (f"read_parquet('{path}/**/*.parquet', hive_partitioning=true)" if hive
               else f"read_parquet('{path}')")
        qs = {
            "read_full": f"select count(*), sum(price * size), avg(sma_20) from {src}",
            "read_symbol_month": f"""select count(*), avg(price) from {src} where symbol = 'MSFT'
                and ts >= '2019-03-01 00:00:00+00'::timestamptz and ts < '2019-04-01 00:00:00+00'::timestamptz""",
        }
        for task, q in qs.items():
            best, rows = None, None
            for _ in range(3):
                t = time.perf_counter()
                rows = con.execute(q).fetchall()[0][0]
                d = time.perf_counter() - t
                best = d if best is None else min(best, d)
            results.append(("duckdb", task, rows, best))
    except ImportError:
        print(json.dumps({"tool": "duckdb", "task": "read", "skipped": "not installed"}), flush=True)
    try:
        import polars as pl
        lf = (pl.scan_parquet(path, hive_partitioning=True) if hive else pl.scan_parquet(path))
        ts = lf.collect_schema()["ts"]
        tz = getattr(ts, "time_zone", None)
        lo = pl.datetime(2019, 3, 1, time_zone=tz) if tz else pl.datetime(2019, 3, 1)
        hi = pl.datetime(2019, 4, 1, time_zone=tz) if tz else pl.datetime(2019, 4, 1)
        qs = {
            "read_full": lambda: lf.select(pl.len(), (pl.col("price") * pl.col("size")).sum(),
                                           pl.col("sma_20").mean()).collect(),
            "read_symbol_month": lambda: lf.filter((pl.col("symbol") == "MSFT") & (pl.col("ts") >= lo)
                                                   & (pl.col("ts") < hi)).select(pl.len(), pl.col("price").mean()).collect(),
        }
        for task, q in qs.items():
            best, rows = None, None
            for _ in range(3):
                t = time.perf_counter()
                rows = q().item(0, 0)
                d = time.perf_counter() - t
                best = d if best is None else min(best, d)
            results.append(("polars", task, rows, best))
    except ImportError:
        print(json.dumps({"tool": "polars", "task": "read", "skipped": "not installed"}), flush=True)
    for tool, task, rows, secs in results:
        print(json.dumps({
            "tool": tool, "task": task, "dataset": name, "file": files[0] if files else path,
            "bytes": size, "files": len(files), "rows": rows, "wall_seconds": secs,
            "rows_per_second": rows / secs if secs > 0 else 0.0,
            "mb_per_second": size / 1e6 / secs if secs > 0 else 0.0, "peak_rss_bytes": 0,
        }), flush=True)


def main():
    mode = sys.argv[1]
    if mode in ("load", "write"):
        paths = sys.argv[2:] if mode == "load" else sys.argv[2:3]
        for path in paths:
            for tool in ("polars", "pyarrow", "duckdb"):
                try:
                    __import__({"polars": "polars", "pyarrow": "pyarrow.parquet", "duckdb": "duckdb"}[tool])
                except ImportError:
                    print(json.dumps({"tool": tool, "task": mode, "skipped": "not installed"}), flush=True)
                    continue
                # Each measurement in its own process so peak RSS is per tool.
                pid = os.fork()
                if pid == 0:
                    if mode == "load":
                        load(tool, path)
                    else:
                        write(tool, path, sys.argv[3])
                    os._exit(0)
                os.waitpid(pid, 0)
    elif mode == "job":
        try:
            import polars  # noqa: F401
        except ImportError:
            print(json.dumps({"tool": "polars", "task": "job", "skipped": "not installed"}))
            return
        job_polars(sys.argv[2], sys.argv[3])
    elif mode == "asof":
        for tool in ("polars", "duckdb"):
            try:
                __import__(tool)
            except ImportError:
                print(json.dumps({"tool": tool, "task": "asof", "skipped": "not installed"}), flush=True)
                continue
            pid = os.fork()
            if pid == 0:
                try:
                    asof(tool, sys.argv[2], sys.argv[3])
                except Exception as e:  # an out-of-memory error is a result too
                    print(json.dumps({"tool": tool, "task": "asof", "skipped": f"failed: {e}"}), flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
    elif mode == "read":
        for arg in sys.argv[2:]:
            name, _, path = arg.partition("=")
            read_queries(name, path)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
