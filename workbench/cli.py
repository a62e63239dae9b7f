"""The `workbench` command: `serve` starts the UI; more subcommands come with runs and RAG."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from workbench import config


def cmd_serve(args) -> int:
    from workbench import sample

    if not args.no_sample:
        loaded = sample.load_all()
        if any(loaded.values()):
            print(f"Loaded sample data: {loaded}")
    app = config.REPO_ROOT / "Home.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(args.port), "--server.address", args.address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]
    print(f"Prompt Workbench on http://{args.address}:{args.port}  (data in {config.home()})")
    return subprocess.call(command, env=os.environ.copy())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Prompt Workbench")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web UI")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--address", default="localhost")
    serve.add_argument("--no-sample", action="store_true", help="do not load the sample data")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
