"""The ingestion benchmark runs end to end (on a tiny video here) and reports its figures."""

from __future__ import annotations

from ekya.bench import ingest


def test_bench_ingest_small():
    figures = ingest.main(["--seconds", "4", "--width", "320", "--height", "240", "--video-fps", "10"])
    assert figures["video_seconds"] == 4.0 and figures["crops"] > 0
    ratio = figures["video_seconds"] / figures["wall_seconds"]
    assert abs(figures["realtime_factor"] - ratio) <= 0.02 * ratio
