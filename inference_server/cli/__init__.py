"""The command line, one module per command (main.py puts them together)."""
