"""The edge that may import everything: the `chatvakt` command and the local
stack it runs. The kernel (`chatvakt/`) imports no service and no gateway;
this package ties them together."""

import warnings

# Filtered here, once, before anything imports eventlet: nameko 2 needs eventlet,
# which warns on import that it is deprecated (EventletDeprecationWarning, not a
# DeprecationWarning, so Python hides it nowhere). We know (DESIGN.md: eventlet
# stays at the edges until a move to another runtime); five copies of it, one
# per process, hid what matters in `make run`. Every process the launcher starts
# runs through launcher.nameko, so this filter is in each of them.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
# nameko's command imports pkg_resources (setuptools<81 is pinned for it), which
# says it is deprecated in each process too.
warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated")
# cryptography 51 deprecates DSA, and dnspython (which eventlet imports for its
# green DNS) builds its DSA classes at import: four warnings in every process,
# none about chatvakt's own use (Fernet and argon2 only).
warnings.filterwarnings("ignore", message=r"DSA is deprecated")
