"""The bare baseline for the gateway's websockets: nameko's websocket rpc on
the same hardened server (gateway/sockets.py), answering `echo` and nothing else."""

from gateway.sockets import HubProvider, rpc


class EchoService:
    name = "bench_echo"
    hub = HubProvider()

    @rpc
    def echo(self, socket_id, value=None):
        return value
