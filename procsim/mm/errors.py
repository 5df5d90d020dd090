"""The one error type of the simulated kernel."""


class MMError(Exception):
    """A failed mm operation: errno (from the errno module) and a message for the user."""

    def __init__(self, errno: int, message: str):
        super().__init__(message)
        self.errno, self.message = errno, message
