"""The two kinds of error that a person, not a programmer, has to act on.

Both carry a message that says what is wrong and what to do. The HTTP server turns an
`InputError` into a 4xx answer with `http_status`, and a `SetupError` into a 5xx answer;
the command line prints the message and exits.
"""
from __future__ import annotations


class InputError(ValueError):
    """The image or a parameter that the user sent cannot be used.

    `http_status` is 400 by default, 413 when the input is too large, 415 when it is not an
    image that we can read. `code` is the short machine-readable name of the problem.
    """

    def __init__(self, message: str, http_status: int = 400, code: str = "bad_input"):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code


class SetupError(RuntimeError):
    """Something on this machine is missing or misconfigured (a model file, a package).

    Nothing the request could change; the message says what to install or where to put it.
    """

    def __init__(self, message: str, code: str = "setup_error"):
        super().__init__(message)
        self.message = message
        self.code = code
