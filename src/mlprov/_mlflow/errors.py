"""mlprov's errors as MLflow's: one ``MlflowException`` per refusal, with mlprov's one line.

MLflow turns an exception's ``error_code`` into an HTTP status behind ``mlflow
server`` and decides from it whether a client retries: a 5xx is retried with backoff
for minutes, so every refusal that would fail again the same way is a 4xx.

==============================================  ==========================  ====
mlprov                                          MLflow error code           HTTP
==============================================  ==========================  ====
a policy denial, a registration refused,        ``PERMISSION_DENIED``       403
any failed verification (digest, signature,
decision, a rewritten audit log)
an unknown model, version or alias              ``RESOURCE_DOES_NOT_EXIST`` 404
a registry server's token missing or refused    ``UNAUTHENTICATED``         401
an alias or stage leading to an Archived        ``RESOURCE_CONFLICT``       409
version; a concurrent writer won
a bad name, alias, version, filter, value       ``INVALID_PARAMETER_VALUE`` 400
the registry's write lock held too long, or     ``TEMPORARILY_UNAVAILABLE`` 503
a registry server unreachable
the storage failed (I/O, database)              ``INTERNAL_ERROR``          500
any other mlprov error (keys, signing)          ``BAD_REQUEST``             400
what the plugin does not map yet                ``NOT_IMPLEMENTED``         501
==============================================  ==========================  ====
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    NOT_IMPLEMENTED,
    PERMISSION_DENIED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_CONFLICT,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
)

from mlprov.errors import InputError, MlprovError, VerificationError
from mlprov.registry import ArchivedVersionError, NotFoundError, RegistryBusyError
from mlprov.registry.interface import StoreConflictError, StoreError

__all__ = ["already_exists", "invalid", "mapped", "message", "not_supported", "refused"]

PREFIX = "mlprov: "


def message(error: MlprovError) -> str:
    """The one line an MLflow user sees: mlprov's message, and its hint when specific."""
    text = f"{PREFIX}{error}"
    hint = error.diagnostics()
    if hint and hint != type(error).hint and hint not in text:
        text += f" (hint: {hint})"
    return text


def code_for(error: MlprovError) -> int:
    """The MLflow error code of an mlprov error (see the module docstring)."""
    if isinstance(error, VerificationError):
        return PERMISSION_DENIED
    server = _server_code(error)
    if server is not None:
        return server
    if isinstance(error, NotFoundError):
        return RESOURCE_DOES_NOT_EXIST
    if isinstance(error, (ArchivedVersionError, StoreConflictError)):
        return RESOURCE_CONFLICT
    if isinstance(error, RegistryBusyError):
        return TEMPORARILY_UNAVAILABLE
    if isinstance(error, StoreError):
        return INTERNAL_ERROR
    if isinstance(error, InputError):
        return INVALID_PARAMETER_VALUE
    return BAD_REQUEST


def _server_code(error: MlprovError) -> int | None:
    """The code of a registry server client's own error (``mlprov+https://``), if it is one."""
    from mlprov.server._errors import AuthenticationError, ServerUnavailableError

    if isinstance(error, AuthenticationError):
        return UNAUTHENTICATED
    if isinstance(error, ServerUnavailableError):
        return TEMPORARILY_UNAVAILABLE
    return None


def as_mlflow(error: MlprovError) -> MlflowException:
    """``error`` as the ``MlflowException`` MLflow's callers and server understand."""
    return MlflowException(message(error), error_code=code_for(error))


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    """Raise every mlprov error inside as its MlflowException (``from`` the original)."""
    try:
        yield
    except MlprovError as exc:
        raise as_mlflow(exc) from exc


def not_supported(what: str, hint: str) -> NoReturn:
    """Refuse what the plugin does not map (yet): ``NOT_IMPLEMENTED``, HTTP 501."""
    raise MlflowException(f"{PREFIX}{what} is not supported by the mlprov registry yet "
                          f"({hint})", error_code=NOT_IMPLEMENTED)


def refused(text: str) -> NoReturn:
    """A refusal that is not an mlprov error (no evidence to verify): ``PERMISSION_DENIED``."""
    raise MlflowException(f"{PREFIX}{text}", error_code=PERMISSION_DENIED)


def invalid(text: str) -> NoReturn:
    """A request value mlprov cannot take: ``INVALID_PARAMETER_VALUE``."""
    raise MlflowException(f"{PREFIX}{text}", error_code=INVALID_PARAMETER_VALUE)


def already_exists(text: str) -> NoReturn:
    """``RESOURCE_ALREADY_EXISTS``: ``mlflow.register_model`` goes on to add a version."""
    raise MlflowException(f"{PREFIX}{text}", error_code=RESOURCE_ALREADY_EXISTS)
