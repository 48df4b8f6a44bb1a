"""The ingestion benchmark runs end to end (on a tiny video here) and reports its figures."""

from __future__ import annotations

from ekya.bench import ingest


def test_bench_ingest_small():
    args = ["--seconds", "4", "--width", "320", "--height", "240", "--video-fps", "10"]
    figures = ingest.main(args)
    assert figures["video_seconds"] == 4.0 and figures["crops"] > 0
    # the figures describe what was ingested: the same video gives the same crops every time
    assert ingest.main(args)["crops"] == figures["crops"]
