"""The flows written against the conversation layer, one list for every messenger.

A flow registers with the layer (``handlers.conversation``) when its module is imported, so a
channel adapter that forgets to import one silently lacks those commands. Both adapters (PTB's
Application in ``bot.app``, Zalo in ``bot.channels.zalo.app``) import this list instead of
naming modules, so a new flow added here is on every messenger at once. The drill and the docs
count them as wired (``bot.app.FLOW_MODULES``).

approvals: submit and decide on drafts; alert_draft: the alerts' Draft response, which needs the
drafts flows; taskforce: /crisis, /thamgia and the room commands (Telegram's membership updates
reach it through ``bot.channels.telegram.membership``); linking: one person on two messengers;
people and admin: /help, /me, /people, /invite, /status.
"""

from __future__ import annotations

from handlers import (
    admin,
    alert_draft,
    alerts,
    approvals,
    drafts,
    linking,
    people,
    registration,
    taskforce,
    topics,
)

FLOW_MODULES = (
    alerts,
    registration,
    alert_draft,
    approvals,
    topics,
    drafts,
    taskforce,
    linking,
    people,
    admin,
)
