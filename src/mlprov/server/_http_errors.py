"""One map from errors to HTTP answers (server) and from HTTP answers back to errors (client).

The server answers every error as ``{"error": {"status", "type", "message",
"hint", "exitCode"}}`` (plus ``"result"`` for a policy denial): the message is
the error's own one line, never a stack trace; an unexpected exception is a
bare 500 ("internal error", logged on the server with its traceback). The
client turns the answer back into the error class named by ``type`` when it is
one of a fixed set, else into the family its exit code names, so the CLI exits
as it would against a local registry.
"""

from __future__ import annotations

from typing import Any

from mlprov.errors import (
    EXIT_CHECK_FAILED,
    EXIT_ERROR,
    EXIT_USAGE,
    ArgumentError,
    InputError,
    MlprovError,
    VerificationError,
)
from mlprov.registry import (
    ArchivedVersionError,
    NotFoundError,
    PolicyDeniedError,
    RegistrationRefusedError,
    RegistryBusyError,
    RegistryError,
    RegistryIntegrityError,
)
from mlprov.server._errors import (
    AuthenticationError,
    MalformedResponseError,
    PermissionDeniedError,
    ServerError,
    ServerUnavailableError,
)

__all__ = ["answer_of", "denial_from_answer", "error_from_answer", "redact_paths", "status_of",
           "unexpected"]


def status_of(exc: MlprovError) -> int:
    """The HTTP status for an error the server raised on purpose."""
    from mlprov.registry.interface import StoreConflictError
    from mlprov.server._upload import UploadError

    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, UploadError):
        return 400
    if isinstance(exc, RegistryBusyError):
        return 503
    if isinstance(exc, StoreConflictError):
        return 409
    if isinstance(exc, VerificationError):
        return 422
    if isinstance(exc, InputError):
        return 400
    return 409  # another refusal by the registry (an alias already there, a no-op)


#: Error classes a client re-raises by the ``type`` a server names.
_KNOWN: dict[str, type[MlprovError]] = {cls.__name__: cls for cls in (
    NotFoundError, ArchivedVersionError, RegistrationRefusedError, RegistryBusyError,
    RegistryIntegrityError, PermissionDeniedError, AuthenticationError, ArgumentError,
    InputError, VerificationError, RegistryError)}


def error_from_answer(status: int, document: Any, *, what: str) -> MlprovError:
    """The error a server's error answer stands for (see the module docstring).

    ``what`` names the request in messages. A 5xx answer becomes a
    :class:`ServerError`; a document that is not an error document, a
    :class:`MalformedResponseError`.
    """
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        if status >= 500:
            return ServerUnavailableError(f"{what}: the server answered HTTP {status}")
        return MalformedResponseError(f"{what}: the server answered HTTP {status} without an "
                                      "error document")
    message = _printable(error["message"])
    hint = error.get("hint") if isinstance(error.get("hint"), str) else None
    hint = _printable(hint) if hint else None
    kind = error.get("type")
    if status == 401:
        return AuthenticationError(message, hint=hint)
    if status == 403:
        return PermissionDeniedError(message, hint=hint)
    if status == 429:
        return ServerUnavailableError(f"{what}: rate limited by the server: {message}",
                                      hint="slow down, or ask the server's admin to raise "
                                           "the rate limit")
    if status >= 500 and status != 503:
        return ServerError(f"{what}: the server failed: {message}", hint=hint)
    if status == 503:
        return RegistryBusyError(message, hint=hint)
    cls = _KNOWN.get(kind) if isinstance(kind, str) else None
    if cls is None and status in (400, 413):
        cls = InputError
    if cls is None:
        code = error.get("exitCode")
        cls = {EXIT_CHECK_FAILED: VerificationError, EXIT_USAGE: ArgumentError,
               EXIT_ERROR: RegistryError}.get(code if isinstance(code, int) else EXIT_ERROR,
                                              RegistryError)
    return cls(message, hint=hint)


def _printable(text: str) -> str:
    """A server's text, bounded and without control characters (it reaches a terminal)."""
    text = text[:2000]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100
                   else f"\\u{ord(c):04x}" for c in text)


def denial_from_answer(message: str, hint: str | None, result: Any) -> PolicyDeniedError:
    """A :class:`PolicyDeniedError` carrying the (already verified) denied result."""
    return PolicyDeniedError(_printable(message), result=result,
                             hint=_printable(hint) if hint else None)


def unexpected(exc: BaseException) -> dict[str, Any]:
    """The answer to an exception that is not an :class:`MlprovError` (no details)."""
    del exc
    return {"error": {"status": 500, "type": "InternalError",
                      "message": "internal error (the server logged it)",
                      "hint": "tell the server's admin the time of the request",
                      "exitCode": 4}}


def redact_paths(text: str, private: tuple[str, ...]) -> str:
    """``text`` with each of the server's own directories (longest first) named ``<server>``.

    Errors raised deep in the registry name files by their full path (a blob
    that failed its digest check, an upload being unpacked); a client needs the
    part inside the model or the digest, never where the server keeps its data.
    """
    for path in private:
        if path in text:
            text = text.replace(path, "<server>")
    return text


def answer_of(exc: MlprovError, private: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """The status and document for an error the server raised on purpose.

    ``private``: the server's directories, replaced in the message and hint
    (:func:`redact_paths`).
    """
    status = status_of(exc)
    hint = exc.diagnostics()
    document: dict[str, Any] = {"error": {
        "status": status, "type": type(exc).__name__,
        "message": redact_paths(str(exc), private),
        "hint": redact_paths(hint, private) if hint else hint, "exitCode": exc.exit_code}}
    if isinstance(exc, PolicyDeniedError):
        document["result"] = exc.result.to_json_dict()
    return status, document
