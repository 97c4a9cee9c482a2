"""Everything scrubbot raises on purpose, as one exception tree.

    Exception
    ├── ScrubError             a file we will not send back; `.message` is safe to show a user
    │   ├── UnsupportedFormat  not a photo or video format we can clean (names what it is)
    │   ├── DamagedImage       truncated, corrupt or structurally impossible
    │   ├── TooLarge           over the byte or pixel limit (checked before any decoding)
    │   ├── Unavailable        the network would not give the bot the file, even after retrying
    │   └── NotClean           our own output still holds data we cannot remove: fail closed
    ├── ConfigError            a setting is missing or wrong (`scrubbot run` exits 2)
    │   └── (a network's own)  its server refused the settings at start, e.g. a rejected token
    │                          or login (adapters.matrix_session.MatrixStartError); exit 2
    ├── StartError             a network did not start for another reason (exit 1, logged)
    └── StoreError             the database cannot be used (bot/store.py; exit 1)

Messages never contain metadata values, file names or secrets, so they can be shown and logged
as they are.
"""


class ScrubError(Exception):
    """Base of every refusal; `message` is a short, human sentence."""

    message = "This file could not be cleaned."
    reason = "other"  # a label for operators' metrics: which kind of refusal, never details

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class UnsupportedFormat(ScrubError):
    reason = "unsupported"

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is not a photo or video format I can clean.")


class DamagedImage(ScrubError):
    reason = "damaged"
    message = "The file is damaged or incomplete, so it could not be cleaned."


class TooLarge(ScrubError):
    reason = "too_large"
    message = "The file is too large to clean."


class Unavailable(ScrubError):
    message = "The file could not be downloaded."


class NotClean(ScrubError):
    reason = "not_clean"
    message = "Hidden data could not be removed completely, so no file is sent back."


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variables and is safe to print."""


class StartError(Exception):
    """A network did not start; the message names it and is safe to print (no secrets)."""
