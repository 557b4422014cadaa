"""The sandbox web page and its small JSON backend (aiohttp + Jinja2, no build step).

The page is a messenger: pick a persona (on Telegram, or on Zalo: :mod:`bot.sandbox.zalo_page`),
see their chats (the private chat with the bot, groups,
forum topics), send text, commands and a contact, press inline and reply-keyboard buttons, open
invite links. The backend acts through the emulator's Python control API in-process (the same
calls ``/_control/`` exposes) and reads the emulator's state; ``/api/events`` is a server-sent
event stream that fires whenever the emulator changes, so the page refreshes live.

Routes: ``GET /`` (the page), ``GET /static/{file}``, ``GET /api/state``, ``GET /api/chat``,
``POST /api/send|contact|press|link|personas|clock|drill``, ``GET /api/file/{file_id}``,
``GET /api/events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from bot.sandbox import zalo_page
from bot.sandbox.drill import drill_state
from bot.sandbox.newsday import TZ
from bot.sandbox.personas import PERSONA_BY_ID, PERSONAS
from bot.sandbox.telegram_emulator.errors import ControlError
from bot.sandbox.telegram_emulator.state import Chat, StoredMessage, User

if TYPE_CHECKING:
    from bot.sandbox.runner import Sandbox

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "sandbox"
LANGUAGES = ("vi", "en")
SANDBOX_KEY: web.AppKey[Any] = web.AppKey("sandbox")
STRINGS_KEY: web.AppKey[dict[str, dict[str, str]]] = web.AppKey("strings")
STATIC_FILES = ("sandbox.css", "sandbox.js")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_strings() -> dict[str, dict[str, str]]:
    """The page's words per language (``templates/sandbox/strings.<lang>.json``)."""
    return {
        lang: json.loads((TEMPLATES / f"strings.{lang}.json").read_text(encoding="utf-8"))
        for lang in LANGUAGES
    }


def page_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[SANDBOX_KEY] = sandbox
    app[STRINGS_KEY] = load_strings()
    app.add_routes(
        [
            web.get("/", index),
            web.get("/static/{name}", static),
            web.get("/api/state", api_state),
            web.get("/api/chat", api_chat),
            web.get("/api/events", api_events),
            web.get("/api/file/{file_id}", api_file),
            web.post("/api/send", api_send),
            web.post("/api/contact", api_contact),
            web.post("/api/press", api_press),
            web.post("/api/link", api_link),
            web.post("/api/personas", api_new_persona),
            web.post("/api/clock", api_clock),
            web.post("/api/drill", api_drill),
        ]
    )
    return app


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Misuse (a person writing where they are not, a bad id) is a 400 with the reason."""
    try:
        return await handler(request)
    except (ControlError, ValueError, KeyError) as error:
        return web.json_response({"ok": False, "error": str(error)}, status=400)


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang") or request.cookies.get("lang") or "vi"
    return lang if lang in LANGUAGES else "vi"


# --------------------------------------------------------------------------- the page


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


async def index(request: web.Request) -> web.Response:
    lang = _lang(request)
    sandbox = _sandbox(request)
    strings = request.app[STRINGS_KEY][lang]
    body = _env.get_template("index.html").render(
        lang=lang,
        t=strings,
        strings_json=json.dumps(strings, ensure_ascii=False),
        drill=sandbox.options.drill,
        bot_name=sandbox.emulator.bot.first_name,
    )
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    if "lang" in request.query:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax")
    return response


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(
        body=(TEMPLATES / name).read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


# --------------------------------------------------------------------------- reading state


def _user_id(request: web.Request, data: dict[str, Any] | None = None) -> int:
    raw = (data or {}).get("user", request.query.get("user"))
    if raw is None:
        raise ValueError("user is required")
    user_id = int(raw)
    _sandbox(request).emulator.user(user_id)  # raises ControlError when unknown
    return user_id


def persona_list(sandbox: Sandbox, lang: str, strings: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for persona in PERSONAS:
        out.append(
            {
                "id": persona.user_id,
                "key": persona.key,
                "name": persona.full_name,
                "role": strings.get(f"persona_{persona.key}", persona.key),
                "phone": persona.phone,
            }
        )
    for user_id in sandbox.custom_personas:
        user = sandbox.emulator.user(user_id)
        out.append(
            {
                "id": user.id,
                "key": f"custom-{user.id}",
                "name": display_name(user),
                "role": strings["persona_custom"],
                "phone": custom_phone(user.id),
            }
        )
    return out


def custom_phone(user_id: int) -> str:
    return f"+8498{user_id % 10_000_000:07d}"


def phone_of(user_id: int) -> str:
    persona = PERSONA_BY_ID.get(user_id)
    return persona.phone if persona else custom_phone(user_id)


def display_name(user: User) -> str:
    if user.is_bot:
        return user.first_name
    return " ".join(part for part in (user.last_name, user.first_name) if part)


def visible_chats(sandbox: Sandbox, user_id: int) -> list[Chat]:
    """The chats a person has: their chat with the bot, and groups they are a member of."""
    emulator = sandbox.emulator
    user = emulator.user(user_id)
    private = emulator.world.private_chat(user)
    chats = [private]
    for chat in emulator.world.chats.values():
        if chat.private_user is None and chat.member(user_id).is_member:
            chats.append(chat)
    return chats


def chat_entries(sandbox: Sandbox, user_id: int, strings: dict[str, str]) -> list[dict[str, Any]]:
    """The chat list: one entry per chat, and per forum topic (General first)."""
    entries = []
    for chat in visible_chats(sandbox, user_id):
        if chat.is_forum:
            threads: list[tuple[int | None, str, bool]] = [(None, strings["general_topic"], False)]
            threads += [
                (topic.message_thread_id, topic.name, topic.closed)
                for topic in sandbox.emulator.topics(chat.id)
            ]
            for thread_id, name, closed in threads:
                messages = [
                    m
                    for m in chat.live_messages()
                    if m.thread_id == thread_id and not _is_topic_service(m)
                ]
                entries.append(
                    _entry(sandbox, chat, thread_id, f"{chat.title} › {name}", messages, strings)
                    | {"closed": closed, "forum": True, "topic": name}
                )
        else:
            title = sandbox.emulator.bot.first_name if chat.private_user else chat.title or ""
            entries.append(_entry(sandbox, chat, None, title, chat.live_messages(), strings))
    entries.sort(key=lambda e: (e["kind"] != "bot", -(e["last_date"] or 0)))
    return entries


def _is_topic_service(message: StoredMessage) -> bool:
    return "forum_topic_created" in message.data


def _entry(
    sandbox: Sandbox,
    chat: Chat,
    thread_id: int | None,
    title: str,
    messages: list[StoredMessage],
    strings: dict[str, str],
) -> dict[str, Any]:
    last = messages[-1] if messages else None
    preview = ""
    if last is not None:
        preview = (
            last.text
            or service_text(sandbox, last, strings)
            or (strings["photo"] if "photo" in last.data else "")
            or (strings["document"] if "document" in last.data else "")
            or (strings["contact"] if "contact" in last.data else "")
        )
    kind = "bot" if chat.private_user else ("forum" if chat.is_forum else "group")
    return {
        "key": f"{chat.id}:{thread_id or ''}",
        "chat_id": chat.id,
        "thread_id": thread_id,
        "title": title,
        "kind": kind,
        "preview": preview[:90],
        "last_date": int(last.data.get("date", 0)) if last else None,
        "time": _local_time(last.data.get("date")) if last else "",
        "count": len(messages),
        "closed": False,
        "forum": False,
    }


def _local_time(stamp: Any) -> str:
    if not stamp:
        return ""
    return datetime.fromtimestamp(int(stamp), TZ).strftime("%H:%M")


def service_text(sandbox: Sandbox, message: StoredMessage, strings: dict[str, str]) -> str:
    """The grey centred line a client shows for a service message ('' for ordinary ones)."""
    data = message.data
    actor = data.get("from", {})
    who = " ".join(p for p in (actor.get("last_name"), actor.get("first_name")) if p)

    def names(users: list[dict[str, Any]]) -> str:
        return ", ".join(
            " ".join(p for p in (u.get("last_name"), u.get("first_name")) if p) for u in users
        )

    if "new_chat_members" in data:
        return strings["svc_joined"].format(who=names(data["new_chat_members"]))
    if "left_chat_member" in data:
        return strings["svc_left"].format(who=names([data["left_chat_member"]]))
    if "pinned_message" in data:
        pinned = data["pinned_message"]
        text = pinned.get("text") or pinned.get("caption") or ""
        return strings["svc_pinned"].format(who=who, text=text[:60])
    if "forum_topic_created" in data:
        return strings["svc_topic_created"].format(name=data["forum_topic_created"]["name"])
    if "forum_topic_closed" in data:
        return strings["svc_topic_closed"]
    if "forum_topic_reopened" in data:
        return strings["svc_topic_reopened"]
    if "forum_topic_edited" in data:
        return strings["svc_topic_edited"].format(name=data["forum_topic_edited"].get("name", ""))
    if "new_chat_title" in data:
        return strings["svc_title"].format(title=data["new_chat_title"])
    return ""


# --------------------------------------------------------------------------- entities → HTML


_SIMPLE_TAGS = {
    "bold": "b",
    "italic": "i",
    "underline": "u",
    "strikethrough": "s",
    "code": "code",
    "blockquote": "blockquote",
    "expandable_blockquote": "blockquote",
}


def entities_to_html(text: str, entities: list[dict[str, Any]]) -> str:
    """Telegram text + entities (UTF-16 offsets) as safe HTML for the page."""
    units = text.encode("utf-16-le")
    length = len(units) // 2
    opens: dict[int, list[tuple[int, str]]] = {}
    closes: dict[int, list[str]] = {}
    for index, entity in enumerate(sorted(entities, key=lambda e: (e["offset"], -e["length"]))):
        start, end = entity["offset"], entity["offset"] + entity["length"]
        if start < 0 or end > length or start >= end:
            continue
        open_tag, close_tag = _tags(entity, _slice(units, start, end))
        if not open_tag:
            continue
        opens.setdefault(start, []).append((index, open_tag))
        closes.setdefault(end, []).insert(0, close_tag)
    out: list[str] = []
    position = 0
    boundaries = sorted(set(opens) | set(closes) | {length})
    for boundary in boundaries:
        if boundary > position:
            out.append(html.escape(_slice(units, position, boundary)))
            position = boundary
        out.extend(closes.get(boundary, []))
        out.extend(tag for _i, tag in opens.get(boundary, []))
    return "".join(out).replace("\n", "<br>")


def _slice(units: bytes, start: int, end: int) -> str:
    return units[start * 2 : end * 2].decode("utf-16-le", errors="replace")


def _tags(entity: dict[str, Any], content: str) -> tuple[str, str]:
    kind = entity["type"]
    if kind in _SIMPLE_TAGS:
        tag = _SIMPLE_TAGS[kind]
        return f"<{tag}>", f"</{tag}>"
    if kind == "pre":
        return "<pre>", "</pre>"
    if kind == "spoiler":
        return '<span class="spoiler">', "</span>"
    if kind in ("text_link", "url"):
        href = entity.get("url") or content
        if not href.startswith(("http://", "https://", "tg://")):
            href = "https://" + href
        safe = html.escape(href, quote=True)
        return f'<a href="{safe}" data-link="{safe}" target="_blank" rel="noopener">', "</a>"
    if kind == "bot_command":
        safe = html.escape(content, quote=True)
        return f'<a href="#" class="cmd" data-command="{safe}">', "</a>"
    if kind in ("mention", "hashtag", "text_mention"):
        return f'<span class="{kind}">', "</span>"
    return "", ""


# --------------------------------------------------------------------------- messages


def message_json(
    sandbox: Sandbox, message: StoredMessage, viewer: int, strings: dict[str, str]
) -> dict[str, Any]:
    data = message.data
    sender = data.get("from") or {}
    text = data.get("text", data.get("caption"))
    entities = data.get("entities", data.get("caption_entities", []))
    out: dict[str, Any] = {
        "id": message.message_id,
        "mine": message.sender_id == viewer,
        "from_bot": message.sender_id == sandbox.emulator.bot.id,
        "sender": " ".join(p for p in (sender.get("last_name"), sender.get("first_name")) if p),
        "time": _local_time(data.get("date")),
        "edited": message.edited,
        "pinned": message.pinned,
        "html": entities_to_html(text, entities) if text else "",
        "service": service_text(sandbox, message, strings),
        "buttons": _inline_buttons(message),
    }
    if "photo" in data:
        biggest = data["photo"][-1]
        out["photo"] = f"api/file/{biggest['file_id']}"
    if "document" in data:
        document = data["document"]
        out["document"] = {
            "name": document.get("file_name") or strings["document"],
            "url": f"api/file/{document['file_id']}",
            "size": document.get("file_size", 0),
        }
    if "contact" in data:
        contact = data["contact"]
        out["contact"] = {
            # Vietnamese order, family name first, as everywhere else on the page.
            "name": " ".join(p for p in (contact.get("last_name"), contact.get("first_name")) if p),
            "phone": contact.get("phone_number", ""),
        }
    reply = data.get("reply_to_message")
    if reply and not reply.get("forum_topic_created"):
        snippet = reply.get("text") or reply.get("caption") or ""
        out["reply_to"] = {"id": reply.get("message_id"), "text": snippet[:80]}
    return out


def _inline_buttons(message: StoredMessage) -> list[list[dict[str, str]]]:
    markup = message.reply_markup or {}
    rows = []
    for row in markup.get("inline_keyboard", []):
        rows.append(
            [
                {
                    "text": button.get("text", ""),
                    **({"data": button["callback_data"]} if "callback_data" in button else {}),
                    **({"url": button["url"]} if "url" in button else {}),
                }
                for button in row
            ]
        )
    return rows


def current_reply_keyboard(
    messages: list[StoredMessage], bot_id: int, viewer: int
) -> dict[str, Any] | None:
    """The reply keyboard the person sees now: the last one the bot attached, unless removed,
    or used once when it was ``one_time_keyboard``."""
    keyboard: dict[str, Any] | None = None
    for message in messages:
        if message.sender_id == bot_id and message.reply_keyboard is not None:
            markup = message.reply_keyboard
            if "keyboard" in markup:
                keyboard = markup
            elif markup.get("remove_keyboard"):
                keyboard = None
        elif message.sender_id == viewer and keyboard and keyboard.get("one_time_keyboard"):
            keyboard = None
    if keyboard is None:
        return None
    return {
        "rows": [
            [
                {
                    "text": button if isinstance(button, str) else button.get("text", ""),
                    "contact": bool(isinstance(button, dict) and button.get("request_contact")),
                }
                for button in row
            ]
            for row in keyboard["keyboard"]
        ],
        "placeholder": keyboard.get("input_field_placeholder", ""),
    }


def force_reply_target(
    messages: list[StoredMessage], bot_id: int, viewer: int, private: bool
) -> dict[str, Any] | None:
    """The bot question a client would open a reply to (``ForceReply``), if the person has not
    written since. ``selective`` questions count only for the person they answer or mention."""
    target: StoredMessage | None = None
    for message in messages:
        markup = message.reply_keyboard or {}
        if message.sender_id == bot_id and markup.get("force_reply"):
            replied = (message.data.get("reply_to_message") or {}).get("from", {}).get("id")
            mentioned = any(
                e.get("type") == "text_mention" and e.get("user", {}).get("id") == viewer
                for e in message.entities
            )
            if private or not markup.get("selective") or replied == viewer or mentioned:
                target = message
        elif message.sender_id == viewer:
            target = None
    if target is None:
        return None
    return {"id": target.message_id, "text": (target.text or "")[:100]}


async def api_state(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    lang = _lang(request)
    strings = request.app[STRINGS_KEY][lang]
    drill = None
    if sandbox.options.drill:  # first: a step met may start the drill's clock
        drill = await asyncio.to_thread(drill_state, sandbox, strings)
    state: dict[str, Any] = {
        "personas": persona_list(sandbox, lang, strings) + zalo_page.persona_list(strings),
        "clock": clock_json(sandbox),
        "scan": {"count": sandbox.scans, "error": sandbox.last_scan_error},
        "drill": drill,
    }
    if zalo_page.is_zalo(request.query.get("user")):
        state["chats"] = zalo_page.chat_entries(sandbox, request.query["user"], strings)
    elif "user" in request.query:
        user_id = _user_id(request)
        state["chats"] = chat_entries(sandbox, user_id, strings)
    return web.json_response(state)


def clock_json(sandbox: Sandbox) -> dict[str, Any]:
    now = sandbox.clock.now()
    local = now.astimezone(TZ)
    return {
        "now": now.isoformat(),
        "local": local.strftime("%H:%M"),
        "date": local.strftime("%d/%m/%Y"),
        "speed": sandbox.clock.speed,
        "paused": sandbox.clock.speed == 0,
        "epoch": now.timestamp(),
    }


async def api_chat(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    strings = request.app[STRINGS_KEY][_lang(request)]
    if zalo_page.is_zalo(request.query.get("user")):
        return web.json_response(zalo_page.chat_json(sandbox, request.query["user"], strings))
    user_id = _user_id(request)
    chat = sandbox.emulator.chat(int(request.query["chat"]))
    if chat.private_user is None and not chat.member(user_id).is_member:
        raise ControlError("this person is not in that chat")
    if chat.private_user is not None and chat.private_user.id != user_id:
        raise ControlError("that is someone else's private chat")
    thread = request.query.get("thread")
    thread_id = int(thread) if thread else None
    messages = [
        m
        for m in chat.live_messages()
        if (not chat.is_forum or m.thread_id == thread_id) and not _is_topic_service(m)
    ]
    pinned = None
    for message_id in reversed(chat.pinned):
        candidate = chat.messages.get(message_id)
        if (
            candidate
            and not candidate.deleted
            and (not chat.is_forum or candidate.thread_id == thread_id)
        ):
            pinned = {"id": candidate.message_id, "text": (candidate.text or "")[:120]}
            break
    bot_id = sandbox.emulator.bot.id
    member = chat.member(user_id)
    closed = bool(
        chat.is_forum
        and thread_id is not None
        and (topic := chat.topics.get(thread_id)) is not None
        and topic.closed
        and member.status not in ("creator", "administrator")
    )
    title = sandbox.emulator.bot.first_name if chat.private_user else chat.title
    can_write = chat.type != "channel" or member.status in ("creator", "administrator")
    members = sum(1 for m in chat.members.values() if m.is_member)
    return web.json_response(
        {
            "chat_id": chat.id,
            "thread_id": thread_id,
            "title": title,
            "kind": "bot" if chat.private_user else chat.type,
            "members": members,
            "messages": [message_json(sandbox, m, user_id, strings) for m in messages],
            "pinned": pinned,
            "reply_keyboard": current_reply_keyboard(messages, bot_id, user_id),
            "force_reply": force_reply_target(
                messages, bot_id, user_id, chat.private_user is not None
            ),
            "closed": closed,
            "can_write": can_write,
        }
    )


# --------------------------------------------------------------------------- acting


async def _body(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _chat_arg(data: dict[str, Any], user_id: int) -> int | None:
    chat = data.get("chat")
    if chat in (None, "", user_id):
        return None
    return int(chat)


async def api_send(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    data = await _body(request)
    if zalo_page.is_zalo(data.get("user")):
        sent_id = zalo_page.send(sandbox, str(data["user"]), str(data.get("text", "")))
        return web.json_response({"ok": True, "message_id": sent_id})
    user_id = _user_id(request, data)
    thread = data.get("thread")
    sent = sandbox.emulator.send_text(
        user_id,
        str(data.get("text", "")),
        chat_id=_chat_arg(data, user_id),
        thread_id=int(thread) if thread else None,
        reply_to=int(data["reply_to"]) if data.get("reply_to") else None,
    )
    return web.json_response({"ok": True, "message_id": sent.message_id})


async def api_contact(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    data = await _body(request)
    user_id = _user_id(request, data)
    sent = sandbox.emulator.send_contact(
        user_id, phone_of(user_id), chat_id=_chat_arg(data, user_id)
    )
    return web.json_response({"ok": True, "message_id": sent.message_id})


async def api_press(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    data = await _body(request)
    user_id = _user_id(request, data)
    try:
        answer = await sandbox.emulator.press_button(
            user_id,
            int(data["chat"]),
            int(data["message_id"]),
            data=str(data["data"]),
            timeout=10.0,
        )
    except TimeoutError as error:
        return web.json_response({"ok": False, "error": str(error)}, status=408)
    return web.json_response({"ok": True, "answer": answer})


async def api_link(request: web.Request) -> web.Response:
    """A click on a t.me invite link: join, or ask to join when the link needs approval."""
    sandbox = _sandbox(request)
    data = await _body(request)
    user_id = _user_id(request, data)
    url = str(data.get("url", ""))
    emulator = sandbox.emulator
    room = re.fullmatch(r"https://t\.me/c/(\d+)(?:/(\d+))?/?", url)
    if room is not None:  # a link to a message or topic of a supergroup: open it if a member
        chat_id = int(f"-100{room.group(1)}")
        thread_id = int(room.group(2)) if room.group(2) else None
        chat = emulator.world.chats.get(chat_id)
        if chat is None or not chat.member(user_id).is_member:
            return web.json_response({"ok": True, "result": "not_member", "chat_id": chat_id})
        if thread_id is not None and thread_id not in chat.topics:
            thread_id = None
        return web.json_response(
            {"ok": True, "result": "open", "chat_id": chat_id, "thread_id": thread_id}
        )
    for chat in emulator.world.chats.values():
        link = chat.invite_links.get(url)
        if link is None:
            continue
        if chat.member(user_id).is_member:
            return web.json_response({"ok": True, "result": "member", "chat_id": chat.id})
        if link.creates_join_request:
            emulator.request_join(user_id, url)
            return web.json_response({"ok": True, "result": "requested", "chat_id": chat.id})
        emulator.join(user_id, invite_link=url)
        return web.json_response({"ok": True, "result": "joined", "chat_id": chat.id})
    return web.json_response({"ok": True, "result": "external"})


async def api_new_persona(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    data = await _body(request)
    first = str(data.get("first_name", "")).strip()[:64]
    last = str(data.get("last_name", "")).strip()[:64] or None
    if not first:
        raise ValueError("first_name is required")
    user = sandbox.emulator.create_user(first, last_name=last, language_code=data.get("lang", "vi"))
    sandbox.custom_personas.append(user.id)
    return web.json_response({"ok": True, "id": user.id})


async def api_clock(request: web.Request) -> web.Response:
    """Pause, play (at a speed), or jump forward: a trainer's remote for the news day."""
    sandbox = _sandbox(request)
    data = await _body(request)
    action = data.get("action")
    if action == "pause":
        if sandbox.clock.speed:
            sandbox.resume_speed = sandbox.clock.speed
        sandbox.clock.set_speed(0)
    elif action == "play":
        speed = float(data.get("speed") or sandbox.resume_speed or sandbox.options.speed)
        if not 0 < speed <= 3600:
            raise ValueError("speed must be between 0 and 3600")
        sandbox.clock.set_speed(speed)
        sandbox.drill_waiting = False  # playing is being ready
    elif action == "advance":
        minutes = float(data.get("minutes", 60))
        if not 0 < minutes <= 24 * 60:
            raise ValueError("minutes must be between 0 and 1440")
        sandbox.clock.advance(timedelta(minutes=minutes))
        sandbox.scan_soon()
    else:
        raise ValueError("action must be pause, play or advance")
    sandbox.pokes += 1
    return web.json_response({"ok": True, "clock": clock_json(sandbox)})


async def api_drill(request: web.Request) -> web.Response:
    """The drill's own buttons: ``start`` (the trainee is ready) and ``reset`` (start over)."""
    sandbox = _sandbox(request)
    data = await _body(request)
    action = data.get("action")
    if action == "start":
        sandbox.drill_go()
    elif action == "reset":
        await sandbox.reset()
    else:
        raise ValueError("action must be start or reset")
    return web.json_response({"ok": True, "clock": clock_json(sandbox)})


async def api_file(request: web.Request) -> web.StreamResponse:
    """Photos and documents through the emulator's file route (``/file/bot<token>/<path>``)."""
    sandbox = _sandbox(request)
    stored = sandbox.emulator.world.files.get(request.match_info["file_id"])
    if stored is None:
        raise web.HTTPNotFound()
    emulator = sandbox.emulator
    raise web.HTTPFound(f"{emulator.file_url}{emulator.token}/{stored.file_path}")


# --------------------------------------------------------------------------- live updates


def _signature(sandbox: Sandbox) -> tuple[int, ...]:
    emulator = sandbox.emulator
    return (
        len(sandbox.zalo_emulator.bot_platform.messages),
        len(emulator.calls),
        len(emulator.hub.history),
        len(emulator.world.chats),
        len(emulator.world.users),
        sandbox.pokes,
    )


async def _either_changes(
    sandbox: Sandbox,
    changed: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109 - as the emulators' own wait_for
) -> None:
    """Until ``changed()`` holds after a change in either emulator; TimeoutError otherwise."""
    waits = [
        asyncio.ensure_future(emulator.wait_for(changed, timeout=timeout))
        for emulator in (sandbox.emulator, sandbox.zalo_emulator)
    ]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    next(iter(done)).result()  # raises TimeoutError when neither changed in time


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``change`` whenever the emulator changes, ``tick`` every few seconds
    (the clock and the drill panel move on simulated time)."""
    sandbox = _sandbox(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    last = _signature(sandbox)
    await response.write(b"event: change\ndata: {}\n\n")

    def changed_since(seen: tuple[int, ...]) -> Callable[[], tuple[int, ...] | None]:
        def check() -> tuple[int, ...] | None:
            now = _signature(sandbox)
            return now if now != seen else None

        return check

    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        while True:
            try:
                await _either_changes(sandbox, changed_since(last), timeout=3.0)
                await asyncio.sleep(0.05)  # let a burst of calls settle into one refresh
                last = _signature(sandbox)
                await response.write(b"event: change\ndata: {}\n\n")
            except TimeoutError:
                await response.write(b"event: tick\ndata: {}\n\n")
    return response
