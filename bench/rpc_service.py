"""The baseline for the relay's rate: an empty RPC on nameko as it ships.

Run by `python -m nameko run` (bench/__main__.py), not by launcher.nameko, so
none of chatvakt/broker.py's changes to nameko's publishing apply: its calls
per second are what the issue's goal compares the relay with ("an empty
nameko RPC"), however much cheaper chatvakt makes its own RPC."""

from nameko.rpc import rpc


class RpcBaseline:
    name = "bench_rpc"

    @rpc
    def ping(self):
        return {"service": self.name, "ok": True}
