# The suite runs under eventlet's monkey patching, as the services do
# (nameko >= 2.14 no longer patches for plain pytest).
import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()
