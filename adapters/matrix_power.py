"""Who may do what in a Matrix room: the parts of `m.room.power_levels` (and, from room version
12 on, the creators in `m.room.create`) the bot needs, read from the server."""

from dataclasses import dataclass

from nio import AsyncClient, MatrixRoom

MODERATOR = 50  # the power level Element calls "Moderator"
CREATOR = 2**53  # from room version 12 on, a room's creators outrank every power level
ROOM_VERSION_WITH_CREATORS = 12


@dataclass(frozen=True)
class PowerLevels:
    """The parts of a room's m.room.power_levels the bot needs, as the server has them now."""

    users: dict[str, int]
    users_default: int = 0
    redact: int = MODERATOR
    creators: frozenset[str] = frozenset()  # room version 12: above every level
    post: int = 0  # to send the bot's messages (m.room.encrypted in an encrypted room)

    def user(self, user_id: str) -> int:
        if user_id in self.creators:
            return CREATOR
        return self.users.get(user_id, self.users_default)


async def power_levels(client: AsyncClient, room: MatrixRoom) -> PowerLevels:
    """Asked from the server (cached in `MatrixAdapter.power_levels` until the next change)."""
    response = await client.room_get_state(room.room_id)
    events = getattr(response, "events", None)
    if not isinstance(events, list):
        return PowerLevels({})
    state = {e.get("type"): e for e in events if isinstance(e, dict) and e.get("state_key") == ""}
    content = (state.get("m.room.power_levels") or {}).get("content") or {}
    create = state.get("m.room.create") or {}
    creators: frozenset[str] = frozenset()
    version = str((create.get("content") or {}).get("room_version", "1"))
    if version.isdigit() and int(version) >= ROOM_VERSION_WITH_CREATORS:
        extra = (create.get("content") or {}).get("additional_creators") or []
        creators = frozenset({str(create.get("sender")), *map(str, extra)})
    users = content.get("users") or {}
    sends = "m.room.encrypted" if room.encrypted else "m.room.message"
    post = (content.get("events") or {}).get(sends, content.get("events_default", 0))
    return PowerLevels(
        {str(u): int(level) for u, level in users.items() if isinstance(level, int)},
        int(content.get("users_default", 0)),
        int(content.get("redact", MODERATOR)),
        creators,
        post if isinstance(post, int) else 0,
    )
