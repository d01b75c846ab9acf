"""The tickpipe demo from Python: generate sample TAQ data, run the pipeline into a Parquet
dataset, stream it into Polars, and plot one symbol's price (a PNG when matplotlib is
installed, else a printed summary).

    python python/examples/demo.py [WORKDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import tickpipe


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "tickpipe-demo")
    ticks = work / "input"
    summary = tickpipe.gen_data(ticks, rows=200_000, days=5, layout="per-day")
    print(f"generated {summary['rows']:,} rows in {summary['files']} files under {ticks}")

    report = tickpipe.run([ticks / "*.csv"], work / "output", overwrite=True)
    print(report.ledger)
    print(f"{report.metrics['rows_per_second']:,.0f} rows/s; dataset in {work / 'output' / 'data'}")

    try:
        import polars as pl
    except ImportError:
        print("install polars to stream the output into a DataFrame")
        return
    df = pl.DataFrame(tickpipe.scan([ticks / "*.csv"]))
    symbol = df["symbol"][0]
    one = df.filter(pl.col("symbol") == symbol).sort("ts")
    print(f"streamed {df.height:,} rows, {df.width} columns; {symbol}: {one.height:,} rows")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(one.select("ts", "price").describe())
        return
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(one["ts"].to_list(), one["price"].to_list(), linewidth=0.5)
    ax.set_title(f"{symbol} price (cleaned by tickpipe)")
    png = work / "price.png"
    fig.savefig(png, dpi=100)
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
