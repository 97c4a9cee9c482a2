"""Matrix as a network the bot runs on: its settings and start-up; no nio is loaded here."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.errors import ConfigError
from bot.network import Adapter, Getter, Network, Running


@dataclass(frozen=True)
class MatrixSettings:
    homeserver: str
    user_id: str
    password: str | None = field(default=None, repr=False)  # first login, cross-signing
    access_token: str | None = field(default=None, repr=False)  # with device_id, instead
    device_id: str | None = None
    # Who may invite the bot: user ids (@mum:example.org) or servers (example.org); empty: anyone.
    allowed_inviters: tuple[str, ...] = ()

    def secrets(self) -> Iterable[str]:
        return (self.password or "", self.access_token or "")

    def ports(self) -> dict[str, int]:
        return {}

    def health_address(self) -> str | None:
        return None

    def adapter(self, running: Running) -> Adapter:
        from adapters.matrix import MatrixAdapter  # nio loads only for `run`

        return MatrixAdapter(self, running)


def from_env(get: Getter) -> MatrixSettings | None:
    homeserver, user_id = get("MATRIX_HOMESERVER"), get("MATRIX_USER_ID")
    if homeserver is None and user_id is None:
        return None
    if homeserver is None or not homeserver.startswith(("https://", "http://")):
        raise ConfigError(
            "MATRIX_HOMESERVER must be the homeserver's URL, like https://matrix.org."
        )
    if user_id is None or not user_id.startswith("@") or ":" not in user_id:
        raise ConfigError(
            "MATRIX_USER_ID must be the bot's full user id, like @scrubbot:matrix.org."
        )
    password, token, device = (
        get("MATRIX_PASSWORD"),
        get("MATRIX_ACCESS_TOKEN"),
        get("MATRIX_DEVICE_ID"),
    )
    if password is None and (token is None or device is None):
        raise ConfigError(
            "Set MATRIX_PASSWORD, or both MATRIX_ACCESS_TOKEN and MATRIX_DEVICE_ID, for Matrix."
        )
    inviters = (get("MATRIX_ALLOWED_INVITERS") or "").replace(",", " ").split()
    return MatrixSettings(
        homeserver=homeserver.rstrip("/"),
        user_id=user_id,
        password=password,
        access_token=token,
        device_id=device,
        allowed_inviters=tuple(inviters),
    )


SETUP = """\
To run it on Matrix instead (or as well): create an account for the bot on a homeserver, put
MATRIX_HOMESERVER, MATRIX_USER_ID and MATRIX_PASSWORD into .env, make run, then invite the bot
to a room. README.md has the details (groups, encrypted rooms, self-hosting).
"""

NETWORK = Network(
    name="matrix",
    title="Matrix",
    prefix="MATRIX_",
    switch="MATRIX_HOMESERVER",
    setup=SETUP,
    from_env=from_env,
    # matrix-nio logs room and user ids, event contents and request paths at INFO and DEBUG.
    quiet=("nio", "peewee"),
)
