"""People and invites: ``/help``, ``/me``, ``/people``, ``/invite``, ``/invites``; written once
for every channel (``handlers.conversation``).

Every press re-checks its rule on the server (``bot.buttons.register``; the rules ask
``bot.services.people``, ``registration`` and ``invites``); nobody changes their own role or
status, supervisors act only within their agency, and every change is audited by the service,
which also refreshes the person's command menu and tells them (``verification.announce_change``).

On a channel without buttons, lists (agencies, people, pages) are numbered choices and the
changes are short commands: ``/khoa 12`` (suspend), ``/mokhoa 12`` (reactivate), ``/vaitro 12 s``
(role), ``/ngonngu en`` (language), ``/huyma 4`` (revoke an invite), English words beside them.
Without edits a screen that would change in place is posted anew.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bot.buttons import register
from bot.channels.base import Button, Buttons
from bot.services import commands as command_lists
from bot.services import invites, people, verification
from bot.services import registration as reg
from bot.services.commands import publish_person_commands
from bot.services.permissions import Actor, Role, is_admin
from bot.services.verification import review_buttons
from bot.services.wording import label, role_name
from handlers.conversation.dispatch import on_command, on_message, on_press
from handlers.conversation.turn import Turn
from storage.models import UserStatus

ROLE_CODES = {"m": Role.MEMBER, "s": Role.SPOKESPERSON, "v": Role.SUPERVISOR, "a": Role.ADMIN}
CODE_OF_ROLE = {role: code for code, role in ROLE_CODES.items()}


def _split(ident: str) -> tuple[int, str] | None:
    head, _, tail = ident.partition("-")
    if not head.isdigit() or len(head) > 18 or not tail:
        return None
    return int(head), tail


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) <= 6 else 0


def _registered(_s: Any, actor: Actor, _id: str) -> bool:
    return actor.user is not None


def _invite_agency_rule(session: Any, actor: Actor, ident: str) -> bool:
    parts = _split(ident)
    return (
        parts is not None
        and parts[1] in ROLE_CODES
        and invites.can_invite(actor, parts[0], ROLE_CODES[parts[1]])
        and people.agency_name(session, parts[0]) != ""
    )


def _revoke_rule(session: Any, actor: Actor, ident: str) -> bool:
    return ident.isdigit() and invites.can_revoke(session, actor, int(ident))


def _agency_view_rule(session: Any, actor: Actor, ident: str) -> bool:
    parts = _split(ident) if "-" in ident else ((int(ident), "0") if ident.isdigit() else None)
    return parts is not None and people.can_view_agency(session, actor, parts[0])


def _manage_rule(session: Any, actor: Actor, ident: str) -> bool:
    return ident.isdigit() and reg.can_manage(session, actor, int(ident))


def _role_rule(session: Any, actor: Actor, ident: str) -> bool:
    parts = _split(ident)
    return (
        parts is not None
        and parts[1] in ROLE_CODES
        and ROLE_CODES[parts[1]] in reg.grantable_roles(actor)
        and reg.can_manage(session, actor, parts[0])
    )


ME_NAME = register("me.name", _registered, "/me: change my name")
ME_LANG = register(
    "me.lang", lambda s, a, i: a.user is not None and i in ("vi", "en"), "/me: language"
)
INVITE_AGENCY = register("inv.agency", _invite_agency_rule, "/invite: agency chosen by an admin")
INVITE_REVOKE = register("inv.revoke", _revoke_rule, "/invites: revoke a code")
PEOPLE_PAGE = register("ppl.page", _agency_view_rule, "/people: an agency's list, one page")
PEOPLE_OPEN = register("ppl.open", _manage_rule, "/people: one person's card")
PEOPLE_SUSPEND = register("ppl.suspend", _manage_rule, "/people: suspend")
PEOPLE_REACTIVATE = register("ppl.react", _manage_rule, "/people: reactivate")
PEOPLE_ROLE = register("ppl.role", _role_rule, "/people: change role")


def _agency_choices(turn: Turn, action: str, suffix: str) -> Buttons:
    """One button per agency (an admin's choice for ``/people`` and ``/invite``)."""
    rows = invites.agencies_to_choose(turn.runtime)
    return [[Button(f"{a.name} ({a.code})", action, f"{a.id}-{suffix}")] for a in rows]


# --------------------------------------------------------------------------- /help


@on_command("help", None)
async def help_command(turn: Turn) -> None:
    actor = turn.actor

    def described(names: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
        return [(n, turn.render("help_command", key=n)) for n in names]

    await turn.say(
        "help",
        commands=described(command_lists.commands_for(actor)),
        room=described(command_lists.ROOM_COMMANDS) if actor.active else [],
        registered=actor.user is not None or actor.global_admin,
    )


# --------------------------------------------------------------------------- /me


def _profile(turn: Turn, lang: str, user_id: int) -> tuple[str, Buttons]:
    runtime = turn.runtime
    card = people.person_card(runtime, user_id)
    assert card is not None, "a registered person has a row"
    text = runtime.renderer.render(
        "me_profile",
        lang,
        user=card.user,
        agency=card.agency,
        role=role_name(runtime, lang, card.user.role),
        channels=card.channels,
    )
    other = "en" if lang == "vi" else "vi"
    buttons = [
        [
            Button(label(runtime, lang, "edit_name"), ME_NAME.name),
            Button(label(runtime, lang, f"lang_{other}"), ME_LANG.name, other),
        ]
    ]
    return text, buttons


@on_command("me", None)
async def me_command(turn: Turn) -> None:
    actor = turn.actor
    user = actor.user
    if user is None or user.id is None:
        await turn.say("me_not_registered", admin=actor.global_admin)
        return
    if user.status in (UserStatus.PENDING, UserStatus.REJECTED) and not actor.global_admin:
        where = reg.request_standing(turn.runtime, user)
        await turn.say(
            "me_request", s=where, role=role_name(turn.runtime, turn.lang, where.requested_role)
        )
        return
    await turn.replies.say(*_profile(turn, turn.lang, user.id))


@on_press(ME_NAME)
async def on_me_name(turn: Turn, _ident: str) -> None:
    assert turn.actor.user is not None  # the button rule
    reg.open_rename(turn.runtime, turn.actor.user, turn.event.where.chat_id, turn.actor.channel_ref)
    await turn.replies.notice()
    await turn.say("me_ask_name")


@on_message
async def rename_message(turn: Turn) -> bool:
    """The new name typed after ``/me`` → ✏️ (private text while the rename is open)."""
    user_id = turn.actor.user_id
    if not turn.event.private or turn.event.contact is not None or user_id is None:
        return False
    chat_ref, user_ref = turn.event.where.chat_id, turn.actor.channel_ref
    try:
        user = reg.rename(turn.runtime, chat_ref, user_ref, user_id, turn.event.text)
    except reg.RegistrationError as exc:
        await turn.say("reg_name_invalid", code=exc.code, **exc.details)
        return True
    if user is None:
        return False
    await turn.say("me_renamed", person=user.full_name)
    return True


@on_press(ME_LANG, command="ngonngu", aliases=("language",))
async def on_me_lang(turn: Turn, ident: str) -> None:
    runtime = turn.runtime
    assert turn.actor.user_id is not None  # the button rule
    user = reg.choose_own_language(runtime, turn.actor.user_id, ident)
    await turn.replies.notice(runtime.renderer.render("me_language_set", ident))
    await turn.replies.replace(turn.event.message, *_profile(turn, ident, turn.actor.user_id))
    await publish_person_commands(runtime, user)


# --------------------------------------------------------------------------- /invite /invites


async def _send_invite(turn: Turn, agency_id: int, role: Role) -> None:
    runtime = turn.runtime
    invite, agency = invites.invite_into(runtime, turn.actor, agency_id, role)
    text = turn.render(
        "invite_created",
        link=turn.replies.start_link(invite.code),
        code=invite.code,
        role=role_name(runtime, turn.lang, role),
        agency=agency,
        expires_at=invite.expires_at,
    )
    await turn.replies.replace(turn.event.message if turn.event.press else None, text)


async def _may_invite(turn: Turn) -> tuple[Role, ...]:
    """The roles the sender may invite into; none: they are told, and it is audited."""
    allowed = invites.invitable_roles(turn.actor)
    if not allowed:
        turn.audit_refusal("cannot invite")
        await turn.say("not_allowed")
    return allowed


@on_command("invite", Role.SUPERVISOR)
async def invite_command(turn: Turn) -> None:
    actor = turn.actor
    allowed = await _may_invite(turn)
    if not allowed:
        return
    arg = turn.event.args[0].lower() if turn.event.args else ""
    roles = {r.value: r for r in allowed}
    if arg not in roles:
        await turn.say("invite_usage", roles=[r.value for r in allowed])
        return
    role = roles[arg]
    if not is_admin(actor):
        assert actor.agency_id is not None  # invitable_roles: a supervisor of an agency
        await _send_invite(turn, actor.agency_id, role)
        return
    buttons = _agency_choices(turn, INVITE_AGENCY.name, CODE_OF_ROLE[role])
    if not buttons:
        await turn.say("reg_no_agencies")
        return
    text = turn.render("invite_choose_agency", role=role_name(turn.runtime, turn.lang, role))
    await turn.replies.say(text, buttons)


@on_press(INVITE_AGENCY)
async def on_invite_agency(turn: Turn, ident: str) -> None:
    parts = _split(ident)
    assert parts is not None  # the button rule
    await turn.replies.notice()
    await _send_invite(turn, parts[0], ROLE_CODES[parts[1]])


def _invite_list(turn: Turn) -> tuple[str, Buttons]:
    runtime = turn.runtime
    views = invites.open_invite_views(runtime, turn.actor)
    text = turn.render(
        "invite_list",
        invites=views,
        roles={v.id: role_name(runtime, turn.lang, v.role) for v in views},
    )
    revoke = label(runtime, turn.lang, "revoke")
    return text, [[Button(f"{revoke} #{v.id}", INVITE_REVOKE.name, v.id)] for v in views]


@on_command("invites", Role.SUPERVISOR)
async def invites_command(turn: Turn) -> None:
    if await _may_invite(turn):
        await turn.replies.say(*_invite_list(turn))


@on_press(INVITE_REVOKE, command="huyma", aliases=("revoke",))
async def on_invite_revoke(turn: Turn, ident: str) -> None:
    done = invites.revoke_now(turn.runtime, turn.actor, int(ident))
    await turn.replies.notice(turn.render("invite_revoked", done=done, id=ident))
    await turn.replies.replace(turn.event.message, *_invite_list(turn))


# --------------------------------------------------------------------------- /people


def _people_page(turn: Turn, agency_id: int, page: int) -> tuple[str, Buttons]:
    runtime = turn.runtime
    lang = turn.lang
    listed = people.agency_people(runtime, agency_id, page)
    text = turn.render(
        "people_list",
        people=listed.people,
        agency=listed.agency,
        roles={u.id: role_name(runtime, lang, u.role) for u in listed.people},
        channels=listed.channels,
        page=listed.page + 1,
        pages=listed.pages,
    )
    buttons: list[list[Button]] = [
        [
            Button(
                f"{u.full_name} · {label(runtime, lang, 'status_' + u.status)}",
                PEOPLE_OPEN.name,
                u.id or 0,
            )
        ]
        for u in listed.people
    ]
    nav = []
    if listed.page > 0:
        nav.append(Button("◀", PEOPLE_PAGE.name, f"{agency_id}-{listed.page - 1}"))
    if listed.page < listed.pages - 1:
        nav.append(Button("▶", PEOPLE_PAGE.name, f"{agency_id}-{listed.page + 1}"))
    if nav:
        buttons.append(nav)
    return text, buttons


@on_command("people", Role.SUPERVISOR)
async def people_command(turn: Turn) -> None:
    actor = turn.actor
    if is_admin(actor):
        buttons = _agency_choices(turn, PEOPLE_PAGE.name, "0")
        await turn.replies.say(turn.render("people_choose_agency"), buttons)
        return
    assert actor.agency_id is not None  # a supervisor belongs to an agency
    await turn.replies.say(*_people_page(turn, actor.agency_id, 0))


@on_press(PEOPLE_PAGE)
async def on_people_page(turn: Turn, ident: str) -> None:
    agency_id, page = _split(ident) or (0, "0")
    await turn.replies.notice()
    await turn.replies.replace(turn.event.message, *_people_page(turn, agency_id, _int(page)))


def _card(turn: Turn, target_id: int) -> tuple[str, Buttons]:
    runtime = turn.runtime
    lang = turn.lang
    found = people.person_card(runtime, target_id)
    assert found is not None  # the button rule found the person
    target = found.user
    text = turn.render(
        "people_card",
        user=target,
        agency=found.agency,
        role=role_name(runtime, lang, target.role),
        requested=role_name(runtime, lang, target.requested_role or target.role),
        channels=found.channels,
    )
    rows: list[list[Button]] = []
    if target.status == UserStatus.PENDING:
        rows.extend(review_buttons(runtime, lang, target_id))
    elif target.status == UserStatus.ACTIVE:
        rows.append([Button(label(runtime, lang, "suspend"), PEOPLE_SUSPEND.name, target_id)])
        rows.append(
            [
                Button(
                    role_name(runtime, lang, r), PEOPLE_ROLE.name, f"{target_id}-{CODE_OF_ROLE[r]}"
                )
                for r in reg.grantable_roles(turn.actor)
                if r != target.role
            ]
        )
    elif target.status == UserStatus.SUSPENDED:
        rows.append([Button(label(runtime, lang, "reactivate"), PEOPLE_REACTIVATE.name, target_id)])
    rows.append(
        [Button(label(runtime, lang, "back"), PEOPLE_PAGE.name, f"{target.agency_id or 0}-0")]
    )
    return text, [r for r in rows if r]


@on_press(PEOPLE_OPEN)
async def on_people_open(turn: Turn, ident: str) -> None:
    await turn.replies.notice()
    await turn.replies.replace(turn.event.message, *_card(turn, int(ident)))


async def _apply(turn: Turn, target_id: int, change: reg.Change, what: str) -> None:
    """Make a change to someone (the service checks the right again and audits it), show their
    card as it now is, and tell them (``what``: suspended, reactivated, role)."""
    runtime = turn.runtime
    problem: str | None = None
    try:
        target = reg.manage(runtime, change)
    except reg.RegistrationError:
        problem = "people_no_change"
    except reg.NotAllowed:
        problem = "button_not_allowed"
    if problem is not None:
        await turn.replies.notice(turn.render(problem), alert=True)
        return
    await turn.replies.notice(turn.render("people_changed"))
    # Two presses at once: the card may already show this state, which is no error.
    await turn.replies.replace(turn.event.message, *_card(turn, target_id))
    await verification.announce_change(runtime, target, what)


@on_press(PEOPLE_SUSPEND, command="khoa", aliases=("suspend",))
async def on_suspend(turn: Turn, ident: str) -> None:
    target_id = int(ident)
    change = partial(reg.suspend, actor=turn.actor, target_id=target_id)
    await _apply(turn, target_id, change, "suspended")


@on_press(PEOPLE_REACTIVATE, command="mokhoa", aliases=("reactivate",))
async def on_reactivate(turn: Turn, ident: str) -> None:
    target_id = int(ident)
    change = partial(reg.reactivate, actor=turn.actor, target_id=target_id)
    await _apply(turn, target_id, change, "reactivated")


@on_press(PEOPLE_ROLE, command="vaitro", aliases=("setrole",))
async def on_role_change(turn: Turn, ident: str) -> None:
    parts = _split(ident)
    assert parts is not None  # the button rule
    target_id, role = parts[0], ROLE_CODES[parts[1]]
    change = partial(reg.change_role, actor=turn.actor, target_id=target_id, role=role)
    await _apply(turn, target_id, change, "role")
