"""The chat networks scrubbot runs on, like bot.formats' FORMATS: one module each, one line here.

Each entry is the network's `NETWORK` description (`bot.network.Network`), from a module that
loads no chat library; the adapter itself (PTB, nio) is imported only when the bot starts it.
"""

from adapters import matrix_network, telegram_network
from bot.network import Network

NETWORKS: tuple[Network, ...] = (
    telegram_network.NETWORK,
    matrix_network.NETWORK,
)
