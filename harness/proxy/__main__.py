"""``python -m harness.proxy``: look after a shared Toxiproxy server.

    python -m harness.proxy list    [--toxiproxy URL]           # proxies grouped by run id
    python -m harness.proxy cleanup [--toxiproxy URL] RUN_ID    # remove a dead run's proxies

URL defaults to ``TOXIPROXY_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness.proxy.toxiproxy_links import cleanup_run
from harness.proxy.toxiproxy_client import ToxiproxyClient, ToxiproxyError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--toxiproxy", default=os.environ.get("TOXIPROXY_URL"), help="server API URL (env TOXIPROXY_URL)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="proxies on the server, by run id")
    c = sub.add_parser("cleanup", help="delete every proxy of RUN_ID")
    c.add_argument("run_id")
    args = p.parse_args(argv)
    if not args.toxiproxy:
        print("python -m harness.proxy: give --toxiproxy URL or set TOXIPROXY_URL", file=sys.stderr)
        return 2
    try:
        client = ToxiproxyClient(args.toxiproxy)
        if args.cmd == "list":
            for name, info in sorted(client.proxies().items()):
                print(f"{name}\t{info.listen}\t-> {info.upstream}\t{'enabled' if info.enabled else 'DISABLED'}")
        else:
            removed = cleanup_run(client, args.run_id)
            print(f"removed {len(removed)} proxies of run {args.run_id}" + (": " + ", ".join(removed) if removed else ""))
    except (ToxiproxyError, ValueError) as e:
        print(f"python -m harness.proxy: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
