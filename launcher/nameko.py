"""`python -m launcher.nameko run …`: nameko's own command, after the warning
filters in launcher/__init__.py (the package is imported first)."""
import nameko.cli.main

if __name__ == "__main__":
    nameko.cli.main.main()
