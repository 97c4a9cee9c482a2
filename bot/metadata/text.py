"""Small helpers shared by the readers: making found values safe and short to carry around."""

MAX_VALUE = 200


def readable(value: str | bytes, limit: int = MAX_VALUE) -> str:
    """Decode, drop control characters and NULs, collapse whitespace, cap the length."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    printable = "".join(ch if ch.isprintable() or ch in " \t\n" else " " for ch in value)
    text = " ".join(printable.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
