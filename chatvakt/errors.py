"""Errors that cross the RPC boundary.

Registered with nameko so the gateway receives instances of these classes
(not a bare RemoteError) and can turn them into status codes in one table.
Arguments must stay JSON-serialisable: they travel in the reply message.
Messages are for a person and must never contain a child's text.
"""

from nameko.exceptions import deserialize_to_instance


class ChatvaktError(Exception):
    code = "error"

    def __init__(self, message="", fields=None):
        super().__init__(message, fields or {})
        self.message = message
        self.fields = fields or {}

    def __str__(self):
        return self.message


@deserialize_to_instance
class NotFound(ChatvaktError):
    code = "not_found"


@deserialize_to_instance
class Forbidden(ChatvaktError):
    code = "forbidden"


@deserialize_to_instance
class Conflict(ChatvaktError):
    code = "conflict"


@deserialize_to_instance
class NotAvailable(Conflict):
    """A 409 of its own code: the caller is offline or away, so the console can
    offer to go available instead of showing a generic conflict."""

    code = "not_available"


@deserialize_to_instance
class Invalid(ChatvaktError):
    code = "invalid"


@deserialize_to_instance
class TooLarge(ChatvaktError):
    code = "too_large"


@deserialize_to_instance
class Unavailable(ChatvaktError):
    code = "service_unavailable"


@deserialize_to_instance
class Unauthorized(ChatvaktError):
    code = "unauthorized"


@deserialize_to_instance
class Malformed(ChatvaktError):
    code = "malformed"


@deserialize_to_instance
class RateLimited(ChatvaktError):
    code = "rate_limited"

    def __init__(self, message="", fields=None, retry_after=1):
        super().__init__(message, fields)
        self.retry_after = retry_after
        # The wait crosses the RPC boundary too: nameko rebuilds the error from
        # its args (the chat service keeps a chat's limits, the gateway answers).
        self.args = (message, self.fields, retry_after)
