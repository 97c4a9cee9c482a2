"""Summaries rendered for a chat: plain text and HTML (Telegram `parse_mode=HTML`, Matrix
`formatted_body`), within a network's length limit. Every value is escaped; only our own
markup (bold labels) stays markup."""

import html
from dataclasses import replace

from bot.summary import Summary


def fit(summary: Summary, limit: int) -> Summary:
    """Drop the least serious lines until the plain text fits `limit` characters."""
    lines = summary.lines
    while lines and len(replace(summary, lines=lines).text) > limit:
        lines = lines[:-1]
    return replace(summary, lines=lines)


def plain(summary: Summary, note: str = "", limit: int | None = None) -> str:
    """The summary, then `note` after a blank line, cut at `limit` characters."""
    text = f"{summary.text}\n\n{note}".strip()
    return text if limit is None else text[:limit]


def as_html(summary: Summary, note: str = "") -> str:
    """The same as `plain`, in HTML: labels in bold, every value escaped."""
    parts = [html.escape(summary.verdict)]
    if summary.lines:
        parts.append("")
        parts += [
            f"<b>{html.escape(line.label)}:</b> {html.escape(line.text)}" for line in summary.lines
        ]
    if note:
        parts += ["", html.escape(note)]
    return "\n".join(parts)
