#!/usr/bin/env python3
"""Writes the TA-Lib reference fixtures used by pipeline-prep's indicator tests.

Run from the repository root (needs `pip install ta-lib numpy`):

    python3 crates/pipeline-prep/scripts/talib_fixtures.py

It builds three fixed, seeded OHLCV series of 300 rows and writes one CSV per series into
`crates/pipeline-prep/tests/data/talib/`: the inputs (open, high, low, close, volume) followed
by one column per indicator output, named as tickpipe names them (`sma_20`, `macd_12_26_9`, ...).
Values inside an indicator's lookback are TA-Lib's NaN, written as an empty field. Floats are
written with 17 significant digits so they round-trip exactly.

* `ohlcv.csv`: a random walk with bar-like high/low around open/close.
* `flat.csv`: like `ohlcv.csv` but rows 120..=179 are one constant price with high = low =
  close (exercises TA-Lib's zero-range and zero-variance branches).
* `tick.csv`: tick data as tickpipe feeds it, high = low = close = price.
"""

import os

import numpy as np
import talib

N = 300
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "talib")


def random_walk(seed):
    rng = np.random.default_rng(seed)
    close = np.round(100.0 + np.cumsum(rng.normal(0.0, 0.5, N)), 2)
    open_ = np.round(np.concatenate([[100.0], close[:-1]]) + rng.normal(0.0, 0.1, N), 2)
    high = np.round(np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.3, N)), 2)
    low = np.round(np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.3, N)), 2)
    volume = np.round(rng.uniform(100.0, 10000.0, N))
    return open_, high, low, close, volume


def indicators(o, h, l, c, v):
    cols = {}
    cols["sma_20"] = talib.SMA(c, 20)
    cols["ema_20"] = talib.EMA(c, 20)
    cols["wma_20"] = talib.WMA(c, 20)
    cols["dema_20"] = talib.DEMA(c, 20)
    cols["tema_20"] = talib.TEMA(c, 20)
    cols["rsi_14"] = talib.RSI(c, 14)
    m, s, hist = talib.MACD(c, 12, 26, 9)
    cols["macd_12_26_9"] = m
    cols["macd_signal_12_26_9"] = s
    cols["macd_hist_12_26_9"] = hist
    up, mid, lo = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    cols["bb_upper_20_2"] = up
    cols["bb_middle_20_2"] = mid
    cols["bb_lower_20_2"] = lo
    cols["atr_14"] = talib.ATR(h, l, c, 14)
    k, d = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
    cols["stoch_k_14_3_3"] = k
    cols["stoch_d_14_3_3"] = d
    cols["obv"] = talib.OBV(c, v)
    cols["adx_14"] = talib.ADX(h, l, c, 14)
    cols["cci_14"] = talib.CCI(h, l, c, 14)
    cols["roc_10"] = talib.ROC(c, 10)
    cols["mom_10"] = talib.MOM(c, 10)
    cols["willr_14"] = talib.WILLR(h, l, c, 14)
    # Extra parameterisations, to test that spec parameters are honoured.
    cols["sma_5"] = talib.SMA(c, 5)
    cols["ema_3"] = talib.EMA(c, 3)
    cols["rsi_7"] = talib.RSI(c, 7)
    m, s, hist = talib.MACD(c, 5, 13, 4)
    cols["macd_5_13_4"] = m
    cols["macd_signal_5_13_4"] = s
    cols["macd_hist_5_13_4"] = hist
    return cols


def fmt(x):
    return "" if np.isnan(x) else repr(float(x))


def write(name, o, h, l, c, v):
    cols = {"open": o, "high": h, "low": l, "close": c, "volume": v}
    cols.update(indicators(o, h, l, c, v))
    names = list(cols)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(",".join(names) + "\n")
        for i in range(N):
            f.write(",".join(fmt(cols[k][i]) for k in names) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("ohlcv.csv", *random_walk(20260101))

    o, h, l, c, v = random_walk(20260102)
    flat = slice(120, 180)
    price = c[119]
    for a in (o, h, l, c):
        a[flat] = price
    write("flat.csv", o, h, l, c, v)

    _, _, _, c, v = random_walk(20260103)
    write("tick.csv", c.copy(), c.copy(), c.copy(), c.copy(), v)


if __name__ == "__main__":
    main()
