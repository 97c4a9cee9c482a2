"""One thin module per chat network; each translates events into `bot.service` calls."""
