"""People and invites: ``/help``, ``/me``, ``/people``, ``/invite``, ``/invites``.

Every button re-checks its rule on the server (``bot.buttons.register``); nobody changes their own
role or status, supervisors act only within their agency, and every change is audited by the
service. Menus are refreshed whenever a person's role or status changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.buttons import register
from bot.channels.base import Button, DeliveryError, Keyboard
from bot.channels.telegram.notifier import keyboard, message_ref
from bot.runtime import Runtime
from bot.services import commands as command_lists
from bot.services import identity, invites
from bot.services import registration as reg
from bot.services.commands import publish_person_commands
from bot.services.permissions import Actor, Role, has_role, is_admin
from bot.services.verification import review_buttons
from bot.services.wording import label, role_name
from handlers.buttons import on_button
from handlers.common import actor_of, language_of, refuse, reply, runtime_of
from storage.models import Agency, User, UserStatus

ROLE_CODES = {"m": Role.MEMBER, "s": Role.SPOKESPERSON, "v": Role.SUPERVISOR, "a": Role.ADMIN}
CODE_OF_ROLE = {role: code for code, role in ROLE_CODES.items()}


def _split(ident: str) -> tuple[int, str] | None:
    head, _, tail = ident.partition("-")
    if not head.isdigit() or len(head) > 18 or not tail:
        return None
    return int(head), tail


def _registered(_s: Any, actor: Actor, _id: str) -> bool:
    return actor.user is not None


def _invite_agency_rule(session: Any, actor: Actor, ident: str) -> bool:
    parts = _split(ident)
    return (
        parts is not None
        and parts[1] in ROLE_CODES
        and invites.can_invite(actor, parts[0], ROLE_CODES[parts[1]])
        and session.get(Agency, parts[0]) is not None
    )


def _revoke_rule(session: Any, actor: Actor, ident: str) -> bool:
    return ident.isdigit() and invites.can_revoke(session, actor, int(ident))


def _agency_view_rule(session: Any, actor: Actor, ident: str) -> bool:
    parts = _split(ident) if "-" in ident else ((int(ident), "0") if ident.isdigit() else None)
    if parts is None or session.get(Agency, parts[0]) is None:
        return False
    return is_admin(actor) or (has_role(actor, Role.SUPERVISOR) and actor.agency_id == parts[0])


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


# --------------------------------------------------------------------------- /help


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    names = command_lists.commands_for(actor)

    def described(ns: Iterable[str]) -> list[tuple[str, str]]:
        return [(n, runtime.renderer.render("help_command", lang, key=n)) for n in ns]

    room = described(command_lists.ROOM_COMMANDS) if actor.active else []
    await reply(
        update,
        runtime.renderer.render(
            "help",
            lang,
            commands=described(names),
            room=room,
            registered=actor.user is not None or actor.global_admin,
        ),
    )


# --------------------------------------------------------------------------- /me


def _profile(runtime: Runtime, lang: str, user: User) -> tuple[str, Any]:
    with runtime.db.session() as session:
        agency = session.get(Agency, user.agency_id or 0)
    text = runtime.renderer.render(
        "me_profile",
        lang,
        user=user,
        agency=agency.name if agency else "",
        role=role_name(runtime, lang, user.role),
    )
    other = "en" if user.language == "vi" else "vi"
    buttons = [
        [
            Button(label(runtime, lang, "edit_name"), ME_NAME.name),
            Button(label(runtime, lang, f"lang_{other}"), ME_LANG.name, other),
        ]
    ]
    return text, keyboard(buttons)


async def me_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    if actor.user is None:
        await reply(
            update, runtime.renderer.render("me_not_registered", lang, admin=actor.global_admin)
        )
        return
    if actor.user.status in (UserStatus.PENDING, UserStatus.REJECTED) and not actor.global_admin:
        with runtime.db.session() as session:
            where = reg.standing(session, actor.user)
        role = role_name(runtime, lang, where.requested_role)
        await reply(update, runtime.renderer.render("me_request", lang, s=where, role=role))
        return
    text, markup = _profile(runtime, lang, actor.user)
    message = update.effective_message
    assert message is not None
    await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=False)


@on_button(ME_NAME.name)
async def on_me_name(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, _ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None and query.message is not None and actor.user is not None
    with runtime.db.session() as session:
        reg.ask_new_name(
            session,
            user=actor.user,
            chat_ref=str(query.message.chat.id),
            user_ref=actor.channel_ref,
            now=runtime.clock.now(),
        )
    await query.answer()
    await query.message.chat.send_message(
        runtime.renderer.render("me_ask_name", actor.user.language), parse_mode=ParseMode.HTML
    )


async def rename_from_text(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, text: str
) -> None:
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    chat = update.effective_chat
    assert chat is not None
    error: reg.RegistrationError | None = None
    with runtime.db.session() as session:
        state = reg.get_state(session, str(chat.id), actor.channel_ref, reg.FLOW_ME_NAME)
        user = session.get(User, actor.user_id or 0)
        if state is None or user is None:
            return
        try:
            user = reg.set_name(session, state, user, text, runtime.clock.now())
        except reg.RegistrationError as exc:
            error = exc
    if error is not None:
        await reply(
            update,
            runtime.renderer.render("reg_name_invalid", lang, code=error.code, **error.details),
        )
        return
    await reply(update, runtime.renderer.render("me_renamed", lang, person=user.full_name))


@on_button(ME_LANG.name)
async def on_me_lang(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    with runtime.db.session() as session:
        user = session.get(User, actor.user_id or 0)
        assert user is not None
        reg.set_language(session, user, ident, runtime.clock.now())
    await query.answer(runtime.renderer.render("me_language_set", ident))
    text, markup = _profile(runtime, ident, user)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    await publish_person_commands(runtime, user)


# --------------------------------------------------------------------------- /invite /invites


async def _send_invite(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    actor: Actor,
    agency_id: int,
    role: Role,
    edit: bool = False,
) -> None:
    runtime = runtime_of(context)
    lang = language_of(update, actor)
    with runtime.db.session() as session:
        invite = invites.create_invite(
            session,
            actor=actor,
            agency_id=agency_id,
            role=role,
            ttl_hours=runtime.settings.invite_ttl_hours,
            now=runtime.clock.now(),
        )
        agency = session.get(Agency, agency_id)
    link = f"https://t.me/{context.bot.username}?start={invite.code}"
    text = runtime.renderer.render(
        "invite_created",
        lang,
        link=link,
        role=role_name(runtime, lang, role),
        agency=agency.name if agency else "",
        expires_at=invite.expires_at,
    )
    if edit and update.callback_query is not None:
        await update.callback_query.edit_message_text(
            text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
        )
    else:
        await reply(update, text)


async def invite_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    render = runtime.renderer.render
    allowed = invites.invitable_roles(actor)
    if not allowed:
        await refuse(update, runtime, actor, lang, "cannot invite", "not_allowed")
        return
    arg = context.args[0].lower() if context.args else ""
    roles = {r.value: r for r in allowed}
    if arg not in roles:
        await reply(update, render("invite_usage", lang, roles=[r.value for r in allowed]))
        return
    role = roles[arg]
    if not is_admin(actor):
        assert actor.agency_id is not None
        await _send_invite(update, context, actor, actor.agency_id, role)
        return
    with runtime.db.session() as session:
        agencies = invites.agencies_to_invite_for(session)
    if not agencies:
        await reply(update, render("reg_no_agencies", lang))
        return
    buttons = [
        [Button(f"{a.name} ({a.code})", INVITE_AGENCY.name, f"{a.id}-{CODE_OF_ROLE[role]}")]
        for a in agencies
    ]
    message = update.effective_message
    assert message is not None
    await message.reply_text(
        render("invite_choose_agency", lang, role=role_name(runtime, lang, role)),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard(buttons),
        do_quote=False,
    )


@on_button(INVITE_AGENCY.name)
async def on_invite_agency(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    parts = _split(ident)
    assert parts is not None and update.callback_query is not None
    await update.callback_query.answer()
    await _send_invite(update, context, actor, parts[0], ROLE_CODES[parts[1]], edit=True)


def _invite_list(runtime: Runtime, actor: Actor, lang: str) -> tuple[str, Any]:
    with runtime.db.session() as session:
        views = invites.describe(session, invites.open_invites(session, actor, runtime.clock.now()))
    views = views[-30:]
    text = runtime.renderer.render(
        "invite_list",
        lang,
        invites=views,
        roles={v.id: role_name(runtime, lang, v.role) for v in views},
    )
    buttons = [
        [Button(label(runtime, lang, "revoke") + f" #{v.id}", INVITE_REVOKE.name, v.id)]
        for v in views
    ]
    return text, keyboard(buttons)


async def invites_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    if not invites.invitable_roles(actor):
        await refuse(update, runtime, actor, lang, "cannot invite", "not_allowed")
        return
    text, markup = _invite_list(runtime, actor, lang)
    message = update.effective_message
    assert message is not None
    await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=False)


@on_button(INVITE_REVOKE.name)
async def on_invite_revoke(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    lang = language_of(update, actor)
    with runtime.db.session() as session:
        done = invites.revoke(session, actor=actor, invite_id=int(ident), now=runtime.clock.now())
    await query.answer(runtime.renderer.render("invite_revoked", lang, done=done, id=ident))
    text, markup = _invite_list(runtime, actor, lang)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


# --------------------------------------------------------------------------- /people


def _people_page(runtime: Runtime, lang: str, agency_id: int, page: int) -> tuple[str, Any]:
    with runtime.db.session() as session:
        rows, page, pages = reg.people_of_agency(session, agency_id, page)
        agency = session.get(Agency, agency_id)
    text = runtime.renderer.render(
        "people_list",
        lang,
        people=rows,
        agency=agency.name if agency else "",
        roles={u.id: role_name(runtime, lang, u.role) for u in rows},
        page=page + 1,
        pages=pages,
    )
    buttons = [
        [
            Button(
                f"{u.full_name} · {label(runtime, lang, 'status_' + u.status)}",
                PEOPLE_OPEN.name,
                u.id or 0,
            )
        ]
        for u in rows
    ]
    nav = []
    if page > 0:
        nav.append(Button("◀", PEOPLE_PAGE.name, f"{agency_id}-{page - 1}"))
    if page < pages - 1:
        nav.append(Button("▶", PEOPLE_PAGE.name, f"{agency_id}-{page + 1}"))
    if nav:
        buttons.append(nav)
    return text, keyboard(buttons)


async def people_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    runtime = runtime_of(context)
    actor = actor_of(update, runtime)
    lang = language_of(update, actor)
    message = update.effective_message
    assert message is not None
    if not has_role(actor, Role.SUPERVISOR):
        await refuse(update, runtime, actor, lang, "needs supervisor", "not_allowed")
        return
    if is_admin(actor):
        with runtime.db.session() as session:
            agencies = invites.agencies_to_invite_for(session)
        buttons = [
            [Button(f"{a.name} ({a.code})", PEOPLE_PAGE.name, f"{a.id}-0")] for a in agencies
        ]
        await message.reply_text(
            runtime.renderer.render("people_choose_agency", lang),
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard(buttons),
            do_quote=False,
        )
        return
    assert actor.agency_id is not None
    text, markup = _people_page(runtime, lang, actor.agency_id, 0)
    await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=False)


@on_button(PEOPLE_PAGE.name)
async def on_people_page(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    agency_id, page = _split(ident) or (0, "0")
    await query.answer()
    text, markup = _people_page(runtime, language_of(update, actor), agency_id, _int(page))
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) <= 6 else 0


def _card(runtime: Runtime, lang: str, actor: Actor, target: User) -> tuple[str, Keyboard]:
    with runtime.db.session() as session:
        agency = session.get(Agency, target.agency_id or 0)
    text = runtime.renderer.render(
        "people_card",
        lang,
        user=target,
        agency=agency.name if agency else "",
        role=role_name(runtime, lang, target.role),
        requested=role_name(runtime, lang, target.requested_role or target.role),
    )
    assert target.id is not None
    rows: list[list[Button]] = []
    if target.status == UserStatus.PENDING:
        rows.extend(review_buttons(runtime, lang, target.id))
    elif target.status == UserStatus.ACTIVE:
        rows.append([Button(label(runtime, lang, "suspend"), PEOPLE_SUSPEND.name, target.id)])
        rows.append(
            [
                Button(
                    role_name(runtime, lang, r), PEOPLE_ROLE.name, f"{target.id}-{CODE_OF_ROLE[r]}"
                )
                for r in reg.grantable_roles(actor)
                if r != target.role
            ]
        )
    elif target.status == UserStatus.SUSPENDED:
        rows.append([Button(label(runtime, lang, "reactivate"), PEOPLE_REACTIVATE.name, target.id)])
    rows.append(
        [Button(label(runtime, lang, "back"), PEOPLE_PAGE.name, f"{target.agency_id or 0}-0")]
    )
    return text, [r for r in rows if r]


@on_button(PEOPLE_OPEN.name)
async def on_people_open(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    with runtime.db.session() as session:
        target = session.get(User, int(ident))
    assert target is not None
    await query.answer()
    text, rows = _card(runtime, language_of(update, actor), actor, target)
    markup = keyboard(rows)
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


async def _apply(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, change: Any, what: str
) -> None:
    runtime = runtime_of(context)
    query = update.callback_query
    assert query is not None
    lang = language_of(update, actor)
    problem: str | None = None
    target: User | None = None
    with runtime.db.session() as session:
        try:
            target = change(session, runtime.clock.now())
        except reg.RegistrationError:
            problem = "people_no_change"
        except reg.NotAllowed:
            problem = "button_not_allowed"
    if problem is not None or target is None:
        await query.answer(
            runtime.renderer.render(problem or "people_no_change", lang), show_alert=True
        )
        return
    await query.answer(runtime.renderer.render("people_changed", lang))
    text, rows = _card(runtime, lang, actor, target)
    card = query.message
    assert isinstance(card, Message)
    # Two presses at once: the card may already show this state, which is no error.
    await runtime.notifier.edit_text(message_ref(card), text, rows)
    await publish_person_commands(runtime, target)
    with runtime.db.session() as session:
        account = identity.account_on(session, target.id, runtime.notifier.channel)
    if account is not None:
        note = runtime.renderer.render(
            "people_you_changed",
            target.language,
            what=what,
            role=role_name(runtime, target.language, target.role),
        )
        with contextlib.suppress(DeliveryError):
            await runtime.notifier.send_text(account.direct_chat(), note)


@on_button(PEOPLE_SUSPEND.name)
async def on_suspend(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _apply(
        update,
        context,
        actor,
        lambda s, now: reg.suspend(s, actor=actor, target_id=int(ident), now=now),
        "suspended",
    )


@on_button(PEOPLE_REACTIVATE.name)
async def on_reactivate(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    await _apply(
        update,
        context,
        actor,
        lambda s, now: reg.reactivate(s, actor=actor, target_id=int(ident), now=now),
        "reactivated",
    )


@on_button(PEOPLE_ROLE.name)
async def on_role_change(
    update: Update, context: ContextTypes.DEFAULT_TYPE, actor: Actor, ident: str
) -> None:
    parts = _split(ident)
    assert parts is not None
    await _apply(
        update,
        context,
        actor,
        lambda s, now: reg.change_role(
            s, actor=actor, target_id=parts[0], role=ROLE_CODES[parts[1]], now=now
        ),
        "role",
    )


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, None]]:
    return [
        CommandHandler("help", help_command),
        CommandHandler("me", me_command),
        CommandHandler("invite", invite_command),
        CommandHandler("invites", invites_command),
        CommandHandler("people", people_command),
    ]


__all__ = ["ChatType", "handlers"]
