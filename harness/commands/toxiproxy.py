"""``harness toxiproxy [install]``: where the Toxiproxy server is found; ``install`` builds it with Go
(``go install``, the version the harness is tested with) into the user cache, where the harness
looks after PATH — no checkout and no ``make setup`` needed."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

from harness.cli import CliError

MODULE = "github.com/Shopify/toxiproxy/v2"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["where", "install"], default="where",
                   help="where (default): print the server the harness would start; install: build it")
    p.add_argument("--force", action="store_true", help="install even when one is found already")


def go_install_argv(version: str) -> list[str]:
    return ["go", "install", "-ldflags", f"-X {MODULE}.Version={version}", f"{MODULE}/cmd/server@v{version}"]


def install(force: bool = False) -> str:
    from harness.proxy.toxiproxy_server import BINARY, VERSION, ToxiproxyNotFound, cache_dir, find_server_binary
    if not force:
        try:
            return find_server_binary()
        except ToxiproxyNotFound:
            pass
    argv = go_install_argv(VERSION)
    if shutil.which("go") is None:
        raise CliError(f"go not found: install Go (https://go.dev/dl/) and run `harness toxiproxy install`, or put "
                       f"a toxiproxy-server {VERSION} binary (github.com/Shopify/toxiproxy/releases) in {cache_dir()}")
    dest = cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as gobin:
        print(f"building toxiproxy-server {VERSION} into {dest} ({' '.join(argv)})", flush=True)
        proc = subprocess.run(argv, env={**os.environ, "GOBIN": gobin}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            last = (proc.stdout.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise CliError(f"`{' '.join(argv)}` failed: {last}")
        os.replace(os.path.join(gobin, "server"), dest / BINARY)
    return str(dest / BINARY)


def main(args: argparse.Namespace) -> int:
    from harness.proxy.toxiproxy_server import ToxiproxyNotFound, find_server_binary
    if args.action == "install":
        print(install(args.force))
        return 0
    try:
        print(find_server_binary())
    except ToxiproxyNotFound as e:
        raise CliError(str(e)) from None
    return 0
