"""`python -m launcher.nameko run …`: nameko's own command, after the warning
filters in launcher/__init__.py (the package is imported first), with the
queue declarations of chatvakt/broker.py (CHATVAKT_QUEUE_TYPE) installed."""

import nameko.cli.main

from chatvakt import broker

if __name__ == "__main__":
    broker.install()
    nameko.cli.main.main()
