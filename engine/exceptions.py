"""The one exception hierarchy. Each edge (REST, SOAP, CLI, mail) maps it once.

`code` is the stable, user-visible name: the SOAP fault-string prefix, the REST error code.
"""

from __future__ import annotations


class LiaisonError(Exception):
    """Base of every error a user may see. The message must be safe to show."""

    code = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(LiaisonError):
    """The request is malformed or a value is out of range (REST 422, SOAP Client)."""

    code = "InvalidInput"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(LiaisonError):
    code = "NotFound"


class TaskNotFound(NotFound):
    code = "TaskNotFound"


class NotAuthenticated(LiaisonError):
    code = "NotAuthenticated"


class NotAuthorized(LiaisonError):
    code = "NotAuthorized"


class Conflict(LiaisonError):
    code = "Conflict"


class TaskClosed(Conflict):
    code = "TaskClosed"


class ReferenceMismatch(Conflict):
    code = "ReferenceMismatch"


class MalformedRequest(InvalidInput):
    """The request body cannot be read at all (not JSON, not an object): REST 400."""

    code = "BadRequest"


class PayloadTooLarge(InvalidInput):
    code = "PayloadTooLarge"


class BpmnInvalid(InvalidInput):
    """An uploaded process model failed validation; `errors` lists each problem with its line."""

    code = "InvalidBpmn"

    def __init__(self, errors: list[dict]) -> None:
        first = errors[0]["message"] if errors else "invalid BPMN"
        super().__init__(first)
        self.errors = errors


class ConcurrentUpdate(LiaisonError):
    """Optimistic locking (or the database's serialization) lost every retry; nothing was
    applied, and the caller may try again."""

    code = "ConcurrentUpdate"


class Busy(LiaisonError):
    """The record is locked by other writers for too long (lock wait bound reached); nothing
    was applied, and the same request may be retried."""

    code = "Busy"


class DeliveryError(LiaisonError):
    """An outbound call to a provider failed. `retryable` says whether trying again may help;
    `retry_after` (seconds), when the provider said so (HTTP 429), is the earliest next try."""

    code = "DeliveryError"

    def __init__(self, message: str, retryable: bool = True,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
