"""The gateway: HTTP and WebSocket edge of chatvakt (the one composition point).

Maps API.md's HTTP calls to RPC on the services (with deadlines), holds the
accounts and tokens, and pushes the services' events to the sockets that may
see them. Each area's routes live in their own mixin.
"""

from chatvakt import events as ev

from .base import GatewayBase
from .push import Push
from .routes_auth import AuthRoutes
from .routes_chat import ChatRoutes
from .routes_coding import CodingRoutes
from .routes_escalation import EscalationRoutes
from .routes_ops import OpsRoutes
from .routes_queue import QueueRoutes
from .sessions import Sessions


class GatewayService(
    AuthRoutes, ChatRoutes, QueueRoutes, CodingRoutes, EscalationRoutes, OpsRoutes, Push, Sessions, GatewayBase
):
    name = ev.GATEWAY
