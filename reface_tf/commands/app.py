"""``python app.py``: find the exports, load each once, and serve the page on this machine.

The app writes only inside one private temporary folder, gradio's file folder, deleted when the app stops:
uploads arrive there and each handler deletes its upload before it returns; the pictures the page shows are
cached there for the browser to fetch and swept every minute once over ``RESULT_MAX_AGE_S`` old.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from reface_tf.cli import ArgumentParser, setup_logging
from reface_tf.errors import ConfigError, RefaceError

log = logging.getLogger("reface_tf.app")

RESULT_MAX_AGE_S = 300

APP_EXAMPLES = """examples:
  python app.py                                   # the exports under export/ (README: commands that make them)
  python app.py --models export --port 8080
  python app.py --models /srv/models --host 0.0.0.0   # reachable from other machines: put it behind auth
"""


def app_main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(description="Serve a web page with one tab per kind of exported model found under --models.",
                            epilog=APP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None,
                        help="folder of exports (BASE/<version>/ as export.py writes them; default: export/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--landmarker", default=None, help="MediaPipe face_landmarker.task (default: pinned, cached)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, help="larger uploads are refused (default 20)")
    parser.add_argument("--max-megapixels", type=float, default=40.0, help="larger pictures are refused (default 40)")
    parser.add_argument("--no-preload", action="store_true", help="load each model on first use instead of at start")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: use a port between 1 and 65535")
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise ConfigError("--max-upload-mb and --max-megapixels must be positive")
    models = Path(args.models or "export")
    if args.models is not None and not models.is_dir():
        raise ConfigError(f"--models {models}: no such folder; pass the folder export.py --out wrote into "
                          "(e.g. export), or leave --models out")
    setup_logging(args.verbose)
    from reface_tf.app.catalog import missing_tabs_help, scan_exports

    entries = scan_exports(models)
    shown = [e for e in entries if e.tab]
    print(f"models: {len(shown)} export(s) to show under {models}" + (":" if shown else ""))
    for entry in entries:
        print(f"  {entry.name} ({entry.task})" + ("" if entry.tab else f": not shown, {entry.reason}"))
    missing = missing_tabs_help(entries)
    if missing:
        print("tabs without a model; these commands make one:")
        for line in missing:
            print(f"  {line}")

    workdir = Path(tempfile.mkdtemp(prefix="reface_app_"))
    files = workdir / "files"
    files.mkdir()
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(files)  # uploads and the pictures shown; read when gradio starts
    # SIGTERM (a service manager, a test) stops the server as Ctrl-C does, so the folder above is deleted
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _serve(args, models, entries, files)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _serve(args, models: Path, entries, files: Path) -> int:
    from reface_tf.app.actions import Limits
    from reface_tf.app.models import ModelStore, SharedLandmarker

    landmarker = SharedLandmarker(args.landmarker)
    store = ModelStore(entries, landmarker)
    if not args.no_preload:
        for entry in [e for e in entries if e.tab]:
            start = time.perf_counter()
            try:
                store.get(entry.name, entry.tab)
            except RefaceError as err:
                entry.tab, entry.reason = None, f"cannot be loaded ({err})"
                store.entries.pop(entry.name, None)
                print(f"  {entry.name}: not shown, {entry.reason}", file=sys.stderr)
                continue
            print(f"  loaded {entry.name} in {time.perf_counter() - start:.1f} s")
    from reface_tf.app.ui import build_page, offline_theme

    limits = Limits(int(args.max_upload_mb * 2**20), int(args.max_megapixels * 1e6))
    page = build_page(entries, store, files, limits, str(models), delete_cache=(60, RESULT_MAX_AGE_S))
    print(f"starting the page on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        page.queue(default_concurrency_limit=2).launch(
            server_name=args.host, server_port=args.port, max_file_size=int(args.max_upload_mb * 2**20), show_error=False,
            theme=offline_theme(), ssr_mode=False, quiet=False, footer_links=["settings"])
    except OSError as err:  # gradio: "Cannot find empty port in range", or an address this machine does not have
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there ({str(err).splitlines()[0][:120]}); "
                          "pick a free port with --port") from None
    landmarker.close()
    return 0
