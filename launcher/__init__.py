"""The edge that may import everything: the `chatvakt` command and the local
stack it runs. The kernel (`chatvakt/`) imports no service and no gateway;
this package ties them together."""
