"""What the Bot API accepts in one message (``bot.wiring`` declares it to services)."""

from __future__ import annotations

TEXT_LIMIT = 4096  # characters of message text after entity parsing (Bot API sendMessage)
