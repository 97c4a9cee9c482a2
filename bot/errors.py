"""Everything the scrubber refuses, as one exception tree.

    ScrubError                 a file we will not send back; `.message` is safe to show a user
    ├── UnsupportedFormat      not a photo format we can clean (names what it is)
    ├── DamagedImage           truncated, corrupt or structurally impossible
    ├── TooLarge               over the byte or pixel limit (checked before any decoding)
    └── NotClean               our own output still holds data we cannot remove: fail closed

Messages never contain metadata values or file names, so adapters and logs can use them as is.
"""


class ScrubError(Exception):
    """Base of every refusal; `message` is a short, human sentence."""

    message = "This file could not be cleaned."

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class UnsupportedFormat(ScrubError):
    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is not a photo format I can clean.")


class DamagedImage(ScrubError):
    message = "The file is damaged or incomplete, so it could not be cleaned."


class TooLarge(ScrubError):
    message = "The file is too large to clean."


class NotClean(ScrubError):
    message = "Hidden data could not be removed completely, so no file is sent back."
