"""The `warehouse` console command. `warehouse client ...` (the scanning station's client) is sent on
before any of the server's code is imported, so a station runs it with nothing of the server set up."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["client"]:
        from warehouse.client.cli import main as client

        return client(args[1:])
    from warehouse.cli import main as server

    return server(args)
