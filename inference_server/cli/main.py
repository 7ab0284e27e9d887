"""The command line: `python -m inference_server serve | generate | batch | mesh | download | convert | bench`.

One module per command (its flags and what it runs); heavy imports (torch, the model) happen
inside the commands that need them, so `--help` and `download` start at once.
"""
import argparse
import sys

from ..errors import InputError, SetupError
from ..version import __version__
from . import batch, convert, download, generate, mesh, performance, serve

EXIT_INPUT = 2  # the person's input (an image, a parameter, an existing folder)
EXIT_SETUP = 3  # this machine (no checkpoint, no GPU, no network)

# in the order `--help` lists them
COMMANDS = {"serve": serve, "generate": generate, "batch": batch, "download": download, "convert": convert,
            "bench": performance, "mesh": mesh}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference_server",
        description="SyncDreamer for Glimpse3D: one image in, sixteen consistent views out.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except InputError as exc:
        _error(exc.message)
        return EXIT_INPUT
    except SetupError as exc:
        _error(exc.message)
        return EXIT_SETUP
    except KeyboardInterrupt:
        _error("interrupted; nothing half-written was kept")
        return 130


def _error(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)
