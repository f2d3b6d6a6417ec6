"""Errors a person can act on. Anything else is a bug and is reported as one."""


class ValidationError(ValueError):
    """A request value the server refuses; `field` names it for the person who sent it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message

    def __reduce__(self):  # pickled whole (it crosses to and from a model process)
        return type(self), (self.field, self.message)


class AtelierError(RuntimeError):
    """A request that could not be done, with a message meant for the person who made it."""


class ModelUnavailable(AtelierError):
    """The model's weights are not on this machine and cannot be fetched now."""


class Cancelled(AtelierError):
    """The person stopped the job."""

    def __init__(self, message: str = "Stopped."):
        super().__init__(message)
