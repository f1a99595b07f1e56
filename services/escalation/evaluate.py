"""Evaluate the risk screen on the labelled set ``data/risk_eval.jsonl``.

Usage::

    python -m services.escalation.evaluate [--split dev|test|all] [--show-errors]
                                           [--lexicon PATH] [--data PATH]

Prints, per split: overall recall on at-risk messages (detected = the screen
returned any finding), overall false-positive rate on not-at-risk messages,
per category recall (messages labelled with the category that got a finding of
that category) and per category FPR (not-at-risk messages that got a finding
of that category), the counts, and the per-message screening time (median,
p99; each message timed three times, fastest kept, to filter scheduler noise). ``--show-errors`` prints the misclassified messages. It always exits 0:
it reports, it does not gate (the pytest guard does that).

About the data set (honesty note)
---------------------------------
Every line is a synthetic message written for this purpose in the way children
and young people (mostly 12–15) write in chat: bokmål, nynorsk, dialect and
youth spelling, and English; ``labels`` lists the risk categories (empty = not
at risk); there are many hard negatives (idioms, school topics, ordinary
worries) and indirect at-risk messages that avoid the obvious words.

The ``test`` split was written first, before the lexicon existed, and was not
used for tuning: the lexicon was tuned only against misses and false alarms on
the ``dev`` split. Report test figures as the estimate; dev figures are
optimistic by construction. When the lexicon is edited, keep doing the same:
look at ``--split dev --show-errors``, never at test errors; add new test
messages only before a tuning round, never after seeing how they score.
The same person wrote both splits and the lexicon, so test is still closer to
the lexicon's idea of language than real chats are: expect real recall to be
lower. A sharper hint: the last 70 dev lines were written after the first
version of the lexicon, to probe it; before tuning on them the screen caught
only 24 of their 43 at-risk messages and flagged 5 of their 27 negatives. Before relying on the figures, have counsellors label real (anonymised,
consented) messages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from .risk import CATEGORIES, LexiconRiskScreen, RiskScreen, default_screen

BLIND_DATA = Path(__file__).resolve().parent / "data" / "risk_eval_blind.jsonl"
DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "risk_eval.jsonl"


def load(path: Path = DEFAULT_DATA) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            if not isinstance(row.get("text"), str) or not isinstance(row.get("labels"), list):
                raise ValueError(f"{path}:{n}: needs text and labels")
            rows.append(row)
    return rows


def run(screen: RiskScreen, rows: list[dict], repeats: int = 3) -> dict:
    """Screen every row; return counts, rates, timings and errors.

    Each message is timed ``repeats`` times and the fastest run is kept: on a
    shared machine a single run mostly measures the scheduler.
    """
    for row in rows[:20]:  # warm up
        screen.screen(row["text"])
    times = []
    results = []
    for row in rows:
        best = float("inf")
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            findings = screen.screen(row["text"])
            best = min(best, time.perf_counter() - t0)
        times.append(best)
        results.append((row, findings))

    pos = [(r, f) for r, f in results if r["labels"]]
    neg = [(r, f) for r, f in results if not r["labels"]]
    tp = sum(1 for _, f in pos if f)
    fp = sum(1 for _, f in neg if f)
    per_cat = {}
    for cat in CATEGORIES:
        labelled = [(r, f) for r, f in pos if cat in r["labels"]]
        hit = sum(1 for _, f in labelled if any(x.category == cat for x in f))
        fpc = sum(1 for _, f in neg if any(x.category == cat for x in f))
        per_cat[cat] = {
            "n": len(labelled),
            "detected": hit,
            "recall": hit / len(labelled) if labelled else None,
            "fp": fpc,
            "fpr": fpc / len(neg) if neg else None,
        }
    times_sorted = sorted(times)
    p99 = times_sorted[min(len(times_sorted) - 1, int(round(0.99 * (len(times_sorted) - 1))))] if times else 0.0
    return {
        "n": len(rows),
        "n_pos": len(pos),
        "n_neg": len(neg),
        "tp": tp,
        "fp": fp,
        "recall": tp / len(pos) if pos else None,
        "fpr": fp / len(neg) if neg else None,
        "per_category": per_cat,
        "median_ms": statistics.median(times) * 1000 if times else 0.0,
        "p99_ms": p99 * 1000,
        "max_ms": max(times) * 1000 if times else 0.0,
        "misses": [r for r, f in pos if not f],
        "category_misses": [
            (r, sorted({x.category for x in f}))
            for r, f in pos
            if f and not set(r["labels"]) <= {x.category for x in f}
        ],
        "false_alarms": [(r, f) for r, f in neg if f],
    }


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{x * 100:5.1f}%"


def report(name: str, res: dict, show_errors: bool, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"== {name}: {res['n']} messages ({res['n_pos']} at risk, {res['n_neg']} not at risk)")
    p(f"   overall   recall {_pct(res['recall'])} ({res['tp']}/{res['n_pos']})"
      f"   FPR {_pct(res['fpr'])} ({res['fp']}/{res['n_neg']})")
    for cat, c in res["per_category"].items():
        p(f"   {cat:<15} recall {_pct(c['recall'])} ({c['detected']}/{c['n']})"
          f"   FPR {_pct(c['fpr'])} ({c['fp']}/{res['n_neg']})")
    p(f"   time per message (best of 3): median {res['median_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms,"
      f" max {res['max_ms']:.3f} ms")
    if show_errors:
        if res["misses"]:
            p("   -- missed (at risk, no finding):")
            for r in res["misses"]:
                p(f"      [{','.join(r['labels'])}] {r['text']}")
        if res["category_misses"]:
            p("   -- detected, but a labelled category missing:")
            for r, got in res["category_misses"]:
                p(f"      [{','.join(r['labels'])}] got [{','.join(got)}] {r['text']}")
        if res["false_alarms"]:
            p("   -- false alarms (not at risk, finding):")
            for r, f in res["false_alarms"]:
                p(f"      {r['text']}  ->  " + " | ".join(f"{x.severity} {x.reason}" for x in f))
    p("")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.escalation.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("dev", "test", "all", "blind_dev", "blind_test"), default=None,
                    help="which split to report (default: dev and test separately)")
    ap.add_argument("--show-errors", action="store_true", help="print misclassified messages")
    ap.add_argument("--lexicon", help="lexicon YAML (default: the screen's default)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="labelled JSONL file")
    args = ap.parse_args(argv)

    screen = LexiconRiskScreen.from_file(args.lexicon) if args.lexicon else default_screen()
    rows = load(Path(args.data))
    splits = [args.split] if args.split else ["dev", "test"]
    for split in splits:
        subset = rows if split == "all" else [r for r in rows if r.get("split") == split]
        report(split, run(screen, subset), args.show_errors)
    if args.split is None and args.data == str(DEFAULT_DATA) and BLIND_DATA.exists():
        # A second set written by another author who never saw the lexicon:
        # the honest estimate. Only blind_dev may be looked at while tuning.
        blind = load(BLIND_DATA)
        for split in ("blind_dev", "blind_test"):
            report(split, run(screen, [r for r in blind if r.get("split") == split]), False)
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
