#!/usr/bin/env python3
"""Cleaning quality for `cargo xtask bench`: scores a `tickpipe run`'s quarantine file
(every removed or quarantined row with its file, line and rule) against gen-data's ground
truth (`anomalies.jsonl`: file, line, kind). Prints one JSON object per anomaly kind the
default cleaning targets: rows labelled, rows the rule removed, true positives, precision and
recall. Needs pyarrow; prints {"skipped": ...} without it.

Usage: quality.py QUARANTINE.parquet ANOMALIES.jsonl
"""
import json
import os
import sys

# Anomaly kinds (gen-data's labels) and the default rule that should remove them.
TARGETS = [
    (("duplicate",), "dedupe_exact"),
    (("price_spike",), "outlier_zscore"),
    (("crossed_quote",), "crossed_quote"),
    (("zero_size", "negative_size"), "nonpositive_size"),
    (("zero_price", "negative_price"), "nonpositive_price"),
    (("missing_field",), "missing_value"),
    (("malformed_number",), "bad_number"),
    (("malformed_field_count",), "wrong_field_count"),
]


def main():
    quarantine, anomalies = sys.argv[1], sys.argv[2]
    try:
        import pyarrow.parquet as pq
    except ImportError:
        print(json.dumps({"skipped": "pyarrow not installed"}))
        return
    truth = {}
    with open(anomalies) as f:
        for line in f:
            a = json.loads(line)
            truth[(os.path.basename(a["file"]), a["line"])] = a["kind"]
    t = pq.read_table(quarantine, columns=["file", "line", "reason"]).to_pydict()
    by_rule = {}
    for file, line, reason in zip(t["file"], t["line"], t["reason"]):
        by_rule.setdefault(reason, []).append((os.path.basename(file), line))
    for kinds, rule in TARGETS:
        labelled = sum(1 for k in truth.values() if k in kinds)
        if labelled == 0:
            continue
        got = by_rule.get(rule, [])
        tp = sum(1 for key in got if truth.get(key) in kinds)
        print(json.dumps({
            "anomaly": "+".join(kinds), "rule": rule, "labelled": labelled,
            "removed": len(got), "true_positives": tp,
            "precision": tp / max(len(got), 1), "recall": tp / labelled,
        }), flush=True)


if __name__ == "__main__":
    main()
