"""The server's version, reported in the ready line, /v1/health and cameras.json."""
__version__ = "0.1.0"
