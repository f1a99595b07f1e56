"""bench/compare.py reads what `BENCH_ONLY=cpu` prints and sets two revisions
side by side (issue 16: a change of a few per cent is measured in turns)."""

from bench.compare import parse, render, summarise

LINE = (
    "[bench 05:52:43] cpu run {n} at 170.0/s: relayed 1360/1360, p50 4.66 ms, p99 49.44 ms (POST to 201: p50 4.3, "
    "p99 40.1 ms), cpu ms per message {{'queue-1': 0.07, 'chat-1': {chat}, 'gateway-1': 2.7}} (total {total}; "
    "outside the stack {{'load generator': 0.9, 'rabbitmq': 1.1}}); load average 1.4"
)


def test_runs_are_read_and_compared_per_process():
    before = parse("\n".join(LINE.format(n=n, chat=c, total=t) for n, c, t in ((1, 2.4, 5.2), (2, 2.2, 5.0))))
    now = parse(LINE.format(n=1, chat=1.9, total=4.6) + "\nnoise\n")
    assert before[0] == {"queue-1": 0.07, "chat-1": 2.4, "gateway-1": 2.7, "total": 5.2}
    rows = {row[0]: row for row in summarise(before, now)}
    assert list(rows)[-1] == "total"
    name, old, old_range, new, new_range, change = rows["chat-1"]
    assert (round(old, 2), old_range, new, new_range, round(change, 1)) == (2.3, (2.2, 2.4), 1.9, (1.9, 1.9), -17.4)
    table = render("81fe312", summarise(before, now), before, now, "170")
    assert "| chat-1 | 2.30 | 2.2–2.4 | 1.90 | 1.9–1.9 | -17.4 % |" in table
    assert "(2 and 1 runs)" in table


def test_output_without_a_cpu_run_gives_none():
    assert parse("Traceback (most recent call last): ...") == []
