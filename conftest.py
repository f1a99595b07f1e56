# The suite runs under eventlet's monkey patching, as the services do
# (nameko >= 2.14 no longer patches for plain pytest).
import warnings

# The message starts with a newline, which ".*" does not cross.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()
