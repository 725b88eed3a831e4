"""`receiver certs`: write a development CA and server certificate."""

from __future__ import annotations

import argparse
from pathlib import Path

from receiver.certs import default_hostnames, write_dev_certificates

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `certs` command."""
    parser = sub.add_parser(
        "certs",
        help="write a development CA and server certificate",
        description="Write ca.pem, server.pem and server-key.pem (mode 0600) for the given "
        "host names. Senders trust ca.pem; the receiver serves server.pem.",
    )
    parser.add_argument(
        "hostnames", nargs="*", help="names and addresses (default: localhost, loopback, hostname)"
    )
    parser.add_argument(
        "--certs-dir",
        dest="certs_dir",
        type=Path,
        default=Path("certs"),
        help="output folder, as `serve --certs-dir` reads it (default certs/)",
    )
    # The first spelling, kept so existing scripts keep working.
    parser.add_argument(
        "--dir", dest="certs_dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the files, refusing to overwrite without --force."""
    directory: Path = args.certs_dir
    existing = [p for p in ("ca.pem", "server.pem", "server-key.pem") if (directory / p).exists()]
    if existing and not args.force:
        print(f"receiver: {directory}/ already holds {', '.join(existing)}; use --force to replace")
        return 1
    names = args.hostnames or default_hostnames()
    paths = write_dev_certificates(directory, names)
    print(f"certificate for {', '.join(names)}: {paths.cert}")
    print(f"private key (0600): {paths.key}")
    print(f"CA to trust: {paths.ca.resolve()}")
    return 0
