"""`make bench-compare REV=<git revision>`: the CPU per relayed message of this
checkout against another revision's, measured in turns (issue 16).

One full `make bench` differs from the next by a fifth on a shared 2-core
machine, and so do its baselines: a change of a few per cent cannot be read
from two benches an hour apart. Here the other revision is checked out beside
this one (a git worktree on the same venv) and both run `BENCH_ONLY=cpu` one
after the other, ROUNDS times, so the machine's slow and fast minutes fall on
both. Printed per process: the mean, the range and the change; also written to
results/bench-compare.md. The other revision must have `BENCH_ONLY=cpu`
(2026-12-05 on).

Settings: BENCH_COMPARE_ROUNDS (3), and the cpu mode's own BENCH_CPU_RATE (170
here), BENCH_SECONDS (8) and BENCH_RUNS (3 per turn).
"""

import ast
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"cpu run \d+ at [\d.]+/s: .*?cpu ms per message (\{[^}]*\}) \(total ([\d.]+)")


def parse(output):
    """The runs a `BENCH_ONLY=cpu` bench printed: {process: ms, ..., "total": ms} each."""
    runs = []
    for match in LINE.finditer(output):
        run = ast.literal_eval(match.group(1))
        run["total"] = float(match.group(2))
        runs.append(run)
    return runs


def summarise(before, now):
    """Rows of (process, before mean, before range, now mean, now range, change %)."""
    rows = []
    names = sorted({k for r in before + now for k in r if k != "total"}) + ["total"]
    for name in names:
        old = [r[name] for r in before if name in r]
        new = [r[name] for r in now if name in r]
        if not old or not new:
            continue
        mean_old, mean_new = statistics.mean(old), statistics.mean(new)
        change = 100 * (mean_new / mean_old - 1) if mean_old else 0.0
        rows.append((name, mean_old, (min(old), max(old)), mean_new, (min(new), max(new)), change))
    return rows


def render(revision, rows, before, now, rate):
    lines = [
        f"CPU ms per relayed message at {rate}/s, {revision} against this checkout, "
        f"measured in turns ({len(before)} and {len(now)} runs):",
        "",
        f"| process | {revision} | range | now | range | change |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, old, old_range, new, new_range, change in rows:
        lines.append(
            f"| {name} | {old:.2f} | {old_range[0]}–{old_range[1]} | {new:.2f} | "
            f"{new_range[0]}–{new_range[1]} | {change:+.1f} % |"
        )
    return "\n".join(lines)


def _turn(tree, env):
    run = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-W", "ignore", "-m", "bench"],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    runs = parse(run.stdout + run.stderr)
    if not runs:
        raise RuntimeError(f"no cpu run from {tree}: {(run.stdout + run.stderr)[-1500:]}")
    return runs


def main(revision):
    rounds = int(os.environ.get("BENCH_COMPARE_ROUNDS", "3"))
    rate = os.environ.get("BENCH_CPU_RATE", "170")
    env = dict(
        os.environ,
        BENCH_ONLY="cpu",
        BENCH_CPU_RATE=rate,
        BENCH_SECONDS=os.environ.get("BENCH_SECONDS", "8"),
        BENCH_RUNS=os.environ.get("BENCH_RUNS", "3"),
    )
    tree = Path(tempfile.mkdtemp(prefix="chatvakt-compare-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True)
    try:
        # The same venv: only the code differs (it comes first on PYTHONPATH).
        (tree / ".venv").symlink_to(ROOT / ".venv")
        before, now = [], []
        for n in range(1, rounds + 1):
            before += _turn(tree, env)
            now += _turn(ROOT, env)
            print(f"[compare] round {n} of {rounds}: {len(before)} and {len(now)} runs", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    text = render(revision, summarise(before, now), before, now, rate)
    print("\n" + text)
    out = ROOT / "results" / "bench-compare.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"\nWrote {out}.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.compare <git revision>")
    main(sys.argv[1])
