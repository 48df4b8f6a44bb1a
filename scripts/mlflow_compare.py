"""Screenshot the MLflow UI comparing a sweep's schedulers (the picture docs/analysis.md shows).

    python scripts/mlflow_compare.py --experiment synthetic [--backend-store-uri sqlite:///mlflow.db]
        [--out docs/mlflow_compare.png] [--port P] [--window-size 1600,1000] [--max-runs 8]

Starts `mlflow server` on 127.0.0.1 (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false, one worker), finds
the experiment's finished parent runs through the REST API, and stores a shared view of its runs page
(an experiment tag ``mlflow.sharedViewState.<key>``, what the UI's Share button writes): only the
chosen runs, a bar chart of each run's ``mean_accuracy`` beside a line chart of its per-window
``accuracy``. It opens that view in headless Chromium (Debian's `chromium` package), writes the PNG,
prints the link (which works as long as a server serves the store) and stops the server by its process
id. The server's log goes to a temporary folder, deleted afterwards unless an error names it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from ekya.analysis.ui import (
    compare_view_state,
    experiment_id,
    mlflow_server,
    parent_runs,
    run_tags,
    screenshot,
    share_view,
    shared_view_url,
    side_by_side,
)
from ekya.errors import EkyaError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, serve, shoot; a user error is one line and exit status 2."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", required=True, help="the sweep's MLflow experiment")
    ap.add_argument("--backend-store-uri", default="sqlite:///mlflow.db")
    ap.add_argument("--artifacts", type=Path, default=None, help="artifact folder of the store (default: MLflow's)")
    ap.add_argument("--out", type=Path, default=Path("docs/mlflow_compare.png"))
    ap.add_argument("--port", type=int, default=None, help="default: a free port")
    ap.add_argument("--window-size", default="1600,1000", help="browser window WIDTH,HEIGHT in pixels")
    ap.add_argument("--wait-s", type=float, default=45.0,
                    help="seconds of page time the UI gets to fetch and draw the charts before the shot")
    ap.add_argument("--max-runs", type=int, default=8,
                    help="compare at most this many cells (fewest streams, accelerators and seed first, "
                         "schedulers adjacent)")
    args = ap.parse_args(argv)
    try:
        width, height = (int(v) for v in args.window_size.split(","))
    except ValueError:
        print(f"error: --window-size {args.window_size!r}: pass WIDTH,HEIGHT, e.g. 1600,1000", file=sys.stderr)
        return 2
    uri = args.backend_store_uri
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        print(f"error: --backend-store-uri {uri}: no store there; run the sweep first", file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="ekya-mlflow-compare-"))
    log = logs / "server.log"
    kept = False
    try:
        with mlflow_server(uri, log, port=args.port, artifacts=args.artifacts) as srv:
            exp = experiment_id(srv, args.experiment)
            runs = side_by_side(parent_runs(srv, exp))[:args.max_runs]
            if not runs:
                raise EkyaError(f"--experiment {args.experiment}: no finished runs to compare")
            metrics = sorted({m["key"] for r in runs for m in r.get("data", {}).get("metrics", [])})
            key = share_view(srv, exp, compare_view_state([r["info"]["run_id"] for r in runs], metrics))
            url = shared_view_url(srv, exp, key)
            shot = screenshot(url, args.out, (width, height), wait_ms=int(args.wait_s * 1000))
            print(f"shared view {key} (kept in the store): on any server of it, open "
                  f"#/experiments/{exp}/runs?viewStateShareKey={key}&compareRunsMode=CHART")
            for r in runs:
                t = run_tags(r)
                print(f"  {r['info']['run_name']}: scheduler={t.get('scheduler')} accelerators={t.get('accelerators')} "
                      f"streams={t.get('streams')} seed={t.get('seed')}")
    except EkyaError as e:
        kept = str(log) in str(e)  # a server that failed to start: its log says why
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if not kept:
            shutil.rmtree(logs, ignore_errors=True)
    print(f"wrote {shot} ({len(runs)} runs compared; server stopped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
