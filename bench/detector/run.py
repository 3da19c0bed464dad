"""Prompt-injection detector throughput and latency on one core, for 2 KB prompts.

    PYTHONPATH=. python bench/detector/run.py [--n 1000] [--cpu 0]

Prompts are built from the shipped test split (jobs/detector/data/test.jsonl): texts are joined
until each prompt is 2048 characters, so every timing is a full 2 KB scan (normalisation,
decoding, chunks and windows, scoring). The process is pinned to one CPU. The goal in issue 11
is p99 <= 10 ms per 2 KB prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from services.ingest.injection import Detector, shipped_model

TEST = Path(__file__).resolve().parents[2] / "jobs" / "detector" / "data" / "test.jsonl"
SIZE = 2048


def prompts(n: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in TEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    out, i = [], 0
    while len(out) < n:
        parts, size = [], 0
        while size < SIZE:
            parts.append(texts[i % len(texts)])
            size += len(parts[-1]) + 1
            i += 1
        out.append("\n".join(parts)[:SIZE])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--cpu", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    start = time.perf_counter()
    detector = Detector(shipped_model(), memo=0)  # every timing a full scan, none from the memo
    load_ms = (time.perf_counter() - start) * 1000
    batch = prompts(args.n)
    for text in batch[:50]:  # warm caches and the regex engine
        detector.assess(text)
    times, cpu = [], []
    begin = time.perf_counter()
    for text in batch:
        t0, c0 = time.perf_counter(), time.thread_time()
        detector.assess(text)
        cpu.append((time.thread_time() - c0) * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - begin
    times.sort()
    cpu.sort()

    def p(q: float, values: list[float] = times) -> float:
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    print(f"model load        {load_ms:.1f} ms")
    print(f"prompts           {len(batch)} x {SIZE} chars, one core (cpu {args.cpu})")
    print(f"throughput        {len(batch) / wall:.0f} prompts/s, {len(batch) * SIZE / 1024 / wall:.0f} KB/s")
    print(
        f"latency           min {times[0]:.2f} ms, p50 {p(50):.2f} ms, mean {statistics.fmean(times):.2f} ms, "
        f"p99 {p(99):.2f} ms, max {times[-1]:.2f} ms"
    )
    # CPU time of this thread: what one core spends per prompt, whatever else the machine runs.
    print(f"cpu time          p50 {p(50, cpu):.2f} ms, p99 {p(99, cpu):.2f} ms, max {cpu[-1]:.2f} ms")
    print(
        f"load average      {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine inflates tails)"
    )


if __name__ == "__main__":
    main()
