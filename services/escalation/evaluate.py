"""Evaluate the risk screen on the labelled set ``data/risk_eval.jsonl``.

Usage::

    python -m services.escalation.evaluate [--split dev|test|all] [--show-errors]
                                           [--lexicon PATH] [--data PATH]

Prints, per split: overall recall on at-risk messages (detected = the screen
returned any finding), overall false-positive rate on not-at-risk messages,
per category recall (messages labelled with the category that got a finding of
that category) and per category FPR (not-at-risk messages that got a finding
of that category), the counts, and the per-message screening time (median,
p99; each message timed three times, fastest kept, to filter scheduler noise).
``--show-errors`` prints the misclassified messages. It always exits 0: it
reports, it does not gate (the pytest guard does that).

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
only 24 of their 43 at-risk messages and flagged 5 of their 27 negatives. Before
relying on the figures, have counsellors label real (anonymised, consented) messages.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .risk import CATEGORIES, LexiconRiskScreen, RiskScreen, default_screen

BLIND_DATA = Path(__file__).resolve().parent / "data" / "risk_eval_blind.jsonl"
DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "risk_eval.jsonl"


def load(path: Path = DEFAULT_DATA) -> list[dict]:
    from .learned import jsonl

    rows = []
    for n, row in jsonl(path):
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
    p(
        f"   overall   recall {_pct(res['recall'])} ({res['tp']}/{res['n_pos']})"
        f"   FPR {_pct(res['fpr'])} ({res['fp']}/{res['n_neg']})"
    )
    for cat, c in res["per_category"].items():
        p(
            f"   {cat:<15} recall {_pct(c['recall'])} ({c['detected']}/{c['n']})"
            f"   FPR {_pct(c['fpr'])} ({c['fp']}/{res['n_neg']})"
        )
    p(
        f"   time per message (best of 3): median {res['median_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms,"
        f" max {res['max_ms']:.3f} ms"
    )
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


def legacy_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m services.escalation.evaluate --legacy", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--split",
        choices=("dev", "test", "all", "blind_dev", "blind_test"),
        default=None,
        help="which split to report (default: dev and test separately)",
    )
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


# =========================================================================== the corpus evaluation
#
# `make eval` (no arguments): train the learned screen on the TRAINING split of
# the training authors' corpus only (thresholds by cross-validation on that
# split), then report the lexicon alone and the combined screen on the test
# split, on the blind sets (each by an author who wrote nothing else; never used for
# tuning), and on the two older sets, with 95% Wilson intervals; then the load
# time of the exported model file and the screening time per message. It also
# says whether the committed model file equals this fresh training.

CORPUS_DIR = Path(__file__).resolve().parent / "data" / "corpus"
BLIND_FILE = "blind_b1.jsonl"
# The blind sets in the order they arrived, and what each has been through.
BLIND_SETS = (
    (
        "blind_b1.jsonl",
        "seen once before this retraining (read by the first model's final `make eval`); not used for tuning",
    ),
    ("blind_b2.jsonl", "first look: never used for tuning, read only here"),
)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of k successes in n."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(k: int, n: int) -> str:
    if n <= 0:
        return "n/a"
    lo, hi = wilson(k, n)
    return f"{k / n * 100:5.1f}% [{lo * 100:4.1f}–{hi * 100:5.1f}] ({k}/{n})"


def corpus_files(corpus: Path) -> tuple[list[Path], Path | None]:
    train = sorted(p for p in corpus.glob("a*.jsonl"))
    blind = corpus / BLIND_FILE
    return train, (blind if blind.exists() else None)


def screen_rows(screen, rows: list[dict]) -> list[tuple[dict, set[str]]]:
    """(row, categories found) for every row; the child's messages read together."""
    from .learned import example_text

    out = []
    for row in rows:
        if hasattr(screen, "screen_messages"):
            found = screen.screen_messages(row["messages"])
        else:
            found = screen.screen(example_text(row["messages"]))
        out.append((row, {f.category for f in found}))
    return out


def table(results: list[tuple[dict, set[str]]], categories, by_hard: bool = False) -> list[tuple[str, str, str]]:
    """Rows of (group, recall, false positives): overall, per category, per language."""
    pos = [(r, f) for r, f in results if r["labels"]]
    neg = [(r, f) for r, f in results if not r["labels"]]
    lines = [("overall", _rate(sum(1 for _, f in pos if f), len(pos)), _rate(sum(1 for _, f in neg if f), len(neg)))]
    for cat in categories:
        labelled = [f for r, f in pos if cat in r["labels"]]
        if not labelled:
            continue
        lines.append(
            (
                cat,
                _rate(sum(1 for f in labelled if cat in f), len(labelled)),
                _rate(sum(1 for _, f in neg if cat in f), len(neg)),
            )
        )
    langs = sorted({r.get("lang") or "?" for r, _ in results})
    for lang in langs:
        p = [f for r, f in pos if (r.get("lang") or "?") == lang]
        n = [f for r, f in neg if (r.get("lang") or "?") == lang]
        lines.append((f"lang {lang}", _rate(sum(1 for f in p if f), len(p)), _rate(sum(1 for f in n if f), len(n))))
    if by_hard:
        kinds = sorted({r.get("hard") for r, _ in neg if r.get("hard")})
        for kind in kinds:
            n = [f for r, f in neg if r.get("hard") == kind]
            lines.append((f"hard {kind}", "", _rate(sum(1 for f in n if f), len(n))))
    return lines


def print_table(title: str, screens: dict, rows: list[dict], categories, out=sys.stdout, by_hard=False) -> dict:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    n_pos = sum(1 for r in rows if r["labels"])
    p(f"### {title}: {len(rows)} examples ({n_pos} at risk, {len(rows) - n_pos} not)")
    p("")
    names = list(screens)
    header = "| group | " + " | ".join(f"{n}: recall [95% CI] | {n}: false positives [95% CI]" for n in names) + " |"
    p(header)
    p("|" + " --- |" * (1 + 2 * len(names)))
    per = {name: table(screen_rows(screen, rows), categories, by_hard) for name, screen in screens.items()}
    for i, (group, _, _) in enumerate(per[names[0]]):
        cells = []
        for name in names:
            _, rec, fp = per[name][i]
            cells += [rec, fp]
        p(f"| {group} | " + " | ".join(cells) + " |")
    p("")
    return per


def _timing(screen, rows: list[dict], repeats: int = 3) -> tuple[float, float, float]:
    msgs = [r["messages"] for r in rows]
    for m in msgs[:30]:
        screen.screen_messages(m)
    best = []
    for m in msgs:
        b = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            screen.screen_messages(m)
            b = min(b, time.perf_counter() - t0)
        best.append(b)
    best.sort()
    return (statistics.median(best) * 1000, best[int(round(0.99 * (len(best) - 1)))] * 1000, best[-1] * 1000)


def corpus_main(args) -> int:
    import tempfile

    from . import learned as L

    corpus = Path(args.corpus)
    train_files, blind_file = corpus_files(corpus)
    if not train_files:
        print(f"no training corpus in {corpus} (a*.jsonl); nothing to evaluate")
        return 0
    train_rows, test_rows, names = L.corpus_splits(corpus, with_old=not args.no_old)
    lexicon = default_screen()
    print("# Risk screen evaluation\n")
    print(
        f"training data: {', '.join(names)} -> train {len(train_rows)} / test {len(test_rows)}"
        " (the corpus split by a stable hash of the text, 1 in 5 to test)"
    )
    t0 = time.perf_counter()
    trained = L.train(train_rows, lexicon=lexicon, log=lambda s: print("model: " + s))
    print(
        f"model: training with 5-fold cross-validation took {time.perf_counter() - t0:.1f} s; thresholds "
        + ", ".join(f"{k} {v:.3f}" for k, v in trained.thresholds.items())
    )
    rule = "highest probability of any label" if trained.rule == "max" else "at-risk probability"
    print(
        f"model: at risk when the {rule}"
        f" reaches {trained.thresholds['any']:.3f} (chosen for at most {trained.info['target_fpr']:.0%} false"
        f" positives in cross-validation on the training split); features {trained.feature_opts}, "
        f"C={trained.info['C']}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = L.export(trained, Path(tmp) / L.MODEL_FILE)
        size = path.stat().st_size
        loads = []
        for _ in range(5):
            t0 = time.perf_counter()
            model = L.LearnedModel.load(path)
            loads.append(time.perf_counter() - t0)
    combined = L.CombinedRiskScreen(model, lexicon)
    print(
        f"model file: {size / 1024:.0f} KiB, {len(model._vocab_list)} features; load time best "
        f"{min(loads) * 1000:.0f} ms, worst {max(loads) * 1000:.0f} ms (target < 1000 ms)"
    )
    shipped = Path(args.model)
    if shipped.exists():
        committed = L.LearnedModel.load(shipped)
        texts = [L.example_text(r["messages"]) for r in test_rows]
        same = (
            committed._vocab_list == model._vocab_list
            and committed.rule == model.rule
            and committed.feature_opts == model.feature_opts
            and all(abs(committed.thresholds[k] - model.thresholds[k]) < 1e-6 for k in model.thresholds)
            and all(np.allclose(committed.decision(t, lexicon), model.decision(t, lexicon), atol=1e-5) for t in texts)
        )
        verdict = (
            "equals this fresh training"
            if same
            else ("DIFFERS from this fresh training (python -m services.escalation.evaluate --write-model)")
        )
        print(f"committed model {shipped.name}: {verdict}")
        if args.write_model and not same:
            L.export(trained, shipped)
            print(f"committed model {shipped} rewritten")
    elif args.write_model:
        L.export(trained, shipped)
        print(f"committed model {shipped} written")
    print("")
    if args.train_only:
        print("--train-only: no tables (nothing but the training split was read)")
        return 0

    screens = {"lexicon": _LexiconMessages(lexicon), "combined": combined}
    cats = L.LEARNED_CATEGORIES
    print_table("test split (training authors, never trained on)", screens, test_rows, cats, by_hard=True)
    for name, note in BLIND_SETS:
        path = corpus / name
        if not path.exists():
            print(f"### BLIND set {name}: not present\n")
            continue
        print_table(
            f"BLIND set {name} (an author who wrote nothing else; {note})",
            screens,
            L.load_rows(path),
            cats,
            by_hard=True,
        )
    old = L.load_rows(DEFAULT_DATA)
    print_table(
        "old set risk_eval.jsonl, split test (the lexicon's author)",
        screens,
        [r for r in old if r.get("split") == "test"],
        CATEGORIES,
    )
    old_blind = L.load_rows(BLIND_DATA)
    print_table(
        "old set risk_eval_blind.jsonl, split blind_test",
        screens,
        [r for r in old_blind if r.get("split") == "blind_test"],
        CATEGORIES,
    )

    med, p99, mx = _timing(combined, test_rows)
    lmed, lp99, _ = _timing(screens["lexicon"], test_rows)
    print(
        f"screening time per example, one core (best of 3): combined median {med:.3f} ms, p99 {p99:.3f} ms,"
        f" max {mx:.3f} ms (target < 2 ms); lexicon alone median {lmed:.3f} ms, p99 {lp99:.3f} ms"
    )
    return 0


class _LexiconMessages:
    """The lexicon alone reading the first messages together (as the combined screen does)."""

    def __init__(self, lexicon):
        self.lexicon = lexicon

    def screen_messages(self, messages):
        from .learned import example_text

        return self.lexicon.screen(example_text(messages))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--legacy" in argv:
        argv.remove("--legacy")
        return legacy_main(argv)
    from .learned import SHIPPED_MODEL_PATH

    ap = argparse.ArgumentParser(
        prog="python -m services.escalation.evaluate",
        description="Train on the corpus' training split and report the screens "
        "(--legacy: the lexicon on the old sets, as before).",
    )
    ap.add_argument("--corpus", default=str(CORPUS_DIR), help="folder with a*.jsonl and the blind_b*.jsonl sets")
    ap.add_argument("--model", default=str(SHIPPED_MODEL_PATH), help="the committed model file to compare")
    ap.add_argument(
        "--write-model", action="store_true", help="write this training to --model when it differs (the shipped model)"
    )
    ap.add_argument(
        "--train-only",
        action="store_true",
        help="train (and --write-model) without reading the test split or any blind set",
    )
    ap.add_argument("--no-old", action="store_true", help="train without the older sets' tuning splits")
    args = ap.parse_args(argv)
    return corpus_main(args)


if __name__ == "__main__":
    main()
    sys.exit(0)
