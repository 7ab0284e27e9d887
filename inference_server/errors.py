"""The two kinds of error that a person, not a programmer, has to act on.

Both carry a message that says what is wrong and what to do. The HTTP server turns an
`InputError` into a 4xx answer with `http_status`, and a `SetupError` into a 5xx answer;
the command line prints the message and exits. `describe_failure` is how a failed job or batch
item reports any error.
"""
from __future__ import annotations

from .protocol import ErrorCode


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


def describe_failure(exc: BaseException) -> dict:
    """The `error` field of a failed job: a code and a message a person can act on."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return {"code": code, "message": str(exc)}
    return {
        "code": ErrorCode.INTERNAL_ERROR,
        "message": f"{type(exc).__name__}: {exc}. This is a bug or an unexpected setup problem; "
        "the server log has the details.",
    }
