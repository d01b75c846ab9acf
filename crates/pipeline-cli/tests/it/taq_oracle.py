"""Oracle for `tickpipe run --trades ... --quotes ...` (see taq.rs).

argv: trades_glob quotes_glob tickpipe_data_dir daily_parquet horizon_ns delay_ns
Prints JSON with mismatch counts. The NBBO is a plain replay of the quotes (each exchange's
latest quote per symbol; a side with price or size <= 0 withdrawn; a quote with bid > ask on
its own exchange ignored; best bid max, best ask min, sizes at the best summed); each trade
gets the NBBO strictly before `ts - delay` via pandas' merge_asof(by="symbol",
allow_exact_matches=False), and the midpoint strictly before `ts - delay + horizon` the same
way.
"""
import glob
import json
import sys

import numpy as np
import pandas as pd

trades_glob, quotes_glob, data_dir, daily_path, horizon, delay = sys.argv[1:7]
horizon, delay = int(horizon), int(delay)

trades = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(trades_glob))], ignore_index=True)
quotes = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(quotes_glob))], ignore_index=True)
trades["ts"] = pd.to_datetime(trades["ts"], utc=True)
quotes["ts"] = pd.to_datetime(quotes["ts"], utc=True)

# The plain NBBO replay.
books = {}
rows = []
for q in quotes.itertuples(index=False):
    bid = q.bid if q.bid > 0 and q.bid_size > 0 else None
    ask = q.ask if q.ask > 0 and q.ask_size > 0 else None
    if bid is not None and ask is not None and bid > ask:
        continue
    book = books.setdefault(q.symbol, {})
    book[q.exchange] = (bid, q.bid_size, ask, q.ask_size)
    bids = [(b, s) for (b, s, _, _) in book.values() if b is not None]
    asks = [(a, s) for (_, _, a, s) in book.values() if a is not None]
    bb = max((b for b, _ in bids), default=np.nan)
    ba = min((a for a, _ in asks), default=np.nan)
    bs = sum(s for b, s in bids if b == bb) if bids else np.nan
    asz = sum(s for a, s in asks if a == ba) if asks else np.nan
    rows.append((q.ts, q.symbol, bb, ba, bs, asz))
nbbo = pd.DataFrame(rows, columns=["qts", "symbol", "nbid", "nask", "nbid_size", "nask_size"])
nbbo["quote_ts_ref"] = nbbo["qts"]
nbbo["mid_ref"] = np.where(nbbo["nbid"] <= nbbo["nask"], (nbbo["nbid"] + nbbo["nask"]) / 2, np.nan)
# An NBBO with no side at all matches as "no quote".
nbbo.loc[nbbo["nbid"].isna() & nbbo["nask"].isna(), "quote_ts_ref"] = pd.NaT
nbbo = nbbo.sort_values("qts", kind="stable")

t = trades.copy()
t["key"] = t["ts"] - pd.Timedelta(delay, "ns")
t["later"] = t["key"] + pd.Timedelta(horizon, "ns")
t = t.reset_index().rename(columns={"index": "row"})
m = pd.merge_asof(t.sort_values("key", kind="stable"), nbbo, left_on="key", right_on="qts",
                  by="symbol", allow_exact_matches=False)
later = pd.merge_asof(t.sort_values("later", kind="stable"), nbbo[["qts", "symbol", "mid_ref"]]
                      .rename(columns={"mid_ref": "mid_later"}),
                      left_on="later", right_on="qts", by="symbol", allow_exact_matches=False)
m = m.sort_values("row").reset_index(drop=True)
m["mid_later"] = later.sort_values("row")["mid_later"].to_numpy()

out = pd.concat([pd.read_parquet(f) for f in glob.glob(data_dir + "/**/*.parquet", recursive=True)],
                ignore_index=True)
out["symbol"] = out["symbol"].astype(str)
out["exchange"] = out["exchange"].astype(str)
key = ["symbol", "ts", "price", "size", "exchange"]
a = m.sort_values(key, kind="stable").reset_index(drop=True)
b = out.sort_values(key, kind="stable").reset_index(drop=True)


def differ(x, y, tol=1e-9):
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    both_nan = np.isnan(x) & np.isnan(y)
    return int((~both_nan & ~(np.abs(x - y) <= tol)).sum())


res = {"trades": len(a), "out": len(b)}
if len(a) == len(b):
    # A trade whose NBBO has no side gets nulls.
    gone = a["quote_ts_ref"].isna()
    res["bid"] = differ(a["nbid"].where(~gone), b["bid"])
    res["ask"] = differ(a["nask"].where(~gone), b["ask"])
    res["bid_size"] = differ(a["nbid_size"].where(~gone & a["nbid"].notna()), b["bid_size"])
    res["ask_size"] = differ(a["nask_size"].where(~gone & a["nask"].notna()), b["ask_size"])
    qa = a["quote_ts_ref"].astype("int64", errors="ignore")
    res["quote_ts"] = int(((a["quote_ts_ref"].isna() != b["quote_ts"].isna())
                           | (a["quote_ts_ref"].notna() & (a["quote_ts_ref"] != b["quote_ts"]))).sum())
    sign = b["sign"].astype("float64")
    mid = a["mid_ref"].where(~gone)
    res["effective_spread"] = differ(2 * sign * (a["price"] - mid), b["effective_spread"], 1e-6)
    h = [c for c in b.columns if c.startswith("realized_spread_")][0]
    realized = (2 * sign * (a["price"] - a["mid_later"])).where(mid.notna())
    res["realized_spread"] = differ(realized, b[h], 1e-6)
    res["matched"] = int(b["bid"].notna().sum())

# Per symbol-day VWAP and volume, days in New York.
trades["date"] = trades["ts"].dt.tz_convert("America/New_York").dt.date
g = trades.assign(pv=trades["price"] * trades["size"]).groupby(["symbol", "date"])
ref = pd.DataFrame({"trades": g.size(), "volume": g["size"].sum(), "vwap": g["pv"].sum() / g["size"].sum()}).reset_index()
daily = pd.read_parquet(daily_path)
daily["date"] = pd.to_datetime(daily["date"]).dt.date
j = ref.merge(daily, on=["symbol", "date"], how="outer", suffixes=("_ref", ""), indicator=True)
res["daily_rows"] = len(daily)
res["daily_missing"] = int((j["_merge"] != "both").sum())
res["daily_trades"] = int((j["trades_ref"] != j["trades"]).sum())
res["daily_vwap"] = differ(j["vwap_ref"], j["vwap"], 1e-6)
print(json.dumps(res))
