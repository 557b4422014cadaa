"""One person, two messengers (``bot.services.linking``), written once for every channel.

``/lienket`` (``/link``) in a private chat: a registered person gets a one-time code there;
the same command followed by the code, typed on their other messenger, attaches that account
to them. ``/nhantin zalo|telegram|ca_hai`` (``/receive``) chooses where alerts reach them;
without a word it says where they go now.
"""

from __future__ import annotations

from bot.services import linking
from bot.services.commands import publish_person_commands, register_command
from handlers.conversation.dispatch import on_command
from handlers.conversation.turn import Turn
from storage.models import Role, UserStatus


@on_command("lienket", None, listed=False)
async def link_command(turn: Turn) -> None:
    event = turn.event
    if not event.private:  # a code shown in a group could be typed by anyone there
        await turn.say("link_message", code="private")
        return
    if event.args:
        await _redeem(turn, "".join(event.args))
        return
    user = turn.actor.user
    if user is None or user.status != UserStatus.ACTIVE:
        await turn.say("link_message", code="not_registered")
        return
    issued = linking.issue_code_now(turn.runtime, user, event.who.channel)
    await turn.say(
        "link_message",
        code="issued",
        link_code=issued.code,
        minutes=int(linking.CODE_TTL.total_seconds() // 60),
        channel=event.who.channel,
    )


on_command("link", None, listed=False)(link_command)
# Anyone may type a code (a new account has no person yet), but the menus offer the command to
# registered people, who ask for codes; a stranger's menu stays the four first steps.
register_command("lienket", Role.MEMBER)


async def _redeem(turn: Turn, typed: str) -> None:
    runtime = turn.runtime
    result, channels = linking.redeem_now(runtime, turn.event.who, typed)
    if result.user is None:
        minutes = int(linking.ATTEMPT_WINDOW.total_seconds() // 60)
        await turn.say("link_message", code=result.refused, minutes=minutes)
        return
    # The person now speaks from here as themselves: answer in their own language.
    text = runtime.renderer.render(
        "link_message",
        result.user.language,
        code="linked",
        name=result.user.full_name,
        channels=channels,
    )
    await turn.replies.say(text)
    # The new account's menu is still a stranger's: show it the person's role's commands.
    await publish_person_commands(runtime, result.user)


@on_command("nhantin", Role.MEMBER)
async def alert_channel_command(turn: Turn) -> None:
    user = turn.actor.user
    if user is None:  # a global admin who never registered: nothing to send them alerts on
        await turn.say("link_message", code="not_registered")
        return
    wanted = turn.event.args[0] if turn.event.args else None
    choice = linking.alert_choice(turn.runtime, user, wanted)
    await turn.say(
        "alert_channel_message",
        code=choice.problem or ("set" if wanted is not None else "current"),
        channels=choice.channels,
        chosen=choice.chosen,
        wanted=wanted or "",
    )


on_command("receive", Role.MEMBER, listed=False)(alert_channel_command)
