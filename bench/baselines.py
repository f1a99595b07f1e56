"""Baselines measured on the same broker in the same run.

`python -m bench.baselines pika AMQP_URI` runs the raw pika round trip in a
process of its own, without eventlet: persistent messages to a durable queue,
publisher confirms, a consumer that acks each message. Prints JSON.
"""

import json
import sys
import threading
import time
import uuid

from chatvakt.numbers import percentile


def _ms(value):
    return None if value is None else round(value * 1000, 3)


def pika_round_trip(uri, count=1000, burst=5000):
    import pika

    params = pika.URLParameters(uri)
    queue = f"bench.pika.{uuid.uuid4().hex[:8]}"
    setup = pika.BlockingConnection(params)
    channel = setup.channel()
    channel.queue_declare(queue, durable=True)
    arrived = {}
    done = threading.Event()
    expected = [count]

    def consume():
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=100)

        def on_message(ch, method, properties, body):
            arrived[body] = time.perf_counter()
            ch.basic_ack(method.delivery_tag)
            if len(arrived) >= expected[0]:
                done.set()

        ch.basic_consume(queue, on_message)
        while not stopping.is_set():
            conn.process_data_events(time_limit=0.05)
        conn.close()

    stopping = threading.Event()
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    time.sleep(0.5)
    pub = pika.BlockingConnection(params)
    pch = pub.channel()
    pch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)

    # Round trip: one message at a time, publish (confirmed) to consumed.
    rtts = []
    for n in range(count):
        body = f"rt-{n}".encode()
        started = time.perf_counter()
        pch.basic_publish("", queue, body, props)
        while body not in arrived:
            time.sleep(0.0001)
        rtts.append(arrived[body] - started)

    # Throughput: publish back to back, each confirmed, until all are consumed.
    arrived.clear()
    done.clear()
    expected[0] = burst
    started = time.perf_counter()
    for n in range(burst):
        pch.basic_publish("", queue, f"tp-{n}".encode(), props)
    done.wait(60)
    elapsed = time.perf_counter() - started
    stopping.set()
    consumer.join(5)
    channel.queue_delete(queue)
    setup.close()
    pub.close()
    return {
        "count": count,
        "p50_ms": _ms(percentile(rtts, 50)),
        "p99_ms": _ms(percentile(rtts, 99)),
        "p999_ms": _ms(percentile(rtts, 99.9)),
        "rate_per_s": round(len(arrived) / elapsed, 1),
    }


def pika_at_half_rate(uri):
    """Raw pika as bench/relay_bench.py measures it (the figure issue 16's
    "8 times a raw pika round trip" is against): persistent messages,
    confirms, acks; the maximum rate with 4 and 16 publishing threads, then
    the p50/p99 of each message, publish to consume, at half that rate."""
    from bench import relay_bench

    raw = relay_bench.Raw(uri)
    try:
        best = raw.max_rate()
        time.sleep(relay_bench.SETTLE_S)
        times = raw.latency(best / 2)
    finally:
        raw.close()
    return {
        "max_rate_per_s": round(best, 1),
        "half_rate_per_s": round(best / 2, 1),
        "samples": len(times),
        "p50_ms": _ms(percentile(times, 50)),
        "p99_ms": _ms(percentile(times, 99)),
    }


if __name__ == "__main__":
    if sys.argv[1] == "pika":
        print(json.dumps(pika_round_trip(sys.argv[2])))
    elif sys.argv[1] == "pika-half":
        print(json.dumps(pika_at_half_rate(sys.argv[2])))
