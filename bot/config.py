"""Configuration: environment variables (prefix ``CRISISDESK_``) over a TOML file.

The TOML file (named by ``CRISISDESK_CONFIG``) holds the agencies with their response policy, the
watched topics and the news sources, and may also set any scalar setting; an environment variable
always wins. Every failure becomes a :class:`ConfigError` whose message is one line naming the
setting or the TOML line and what is wrong, so an operator never has to read a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from bot.channels.refs import ChatRef, PersonRef

ENV_PREFIX = "CRISISDESK_"
OFFICIAL_API_URL = "https://api.telegram.org"
ZALO_API_URL = "https://bot-api.zaloplatforms.com"
ZALO_OA_OAUTH_URL = "https://oauth.zaloapp.com"  # the OA's token endpoint
ZALO_OA_API_URL = "https://openapi.zalo.me"  # the OA Open API (group chats)
# Telegram's setWebhook ``secret_token``: 1-256 characters, only A-Z, a-z, 0-9, _ and -.
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_SECRET_RULE = "1-256 characters, only A-Z a-z 0-9 _ -"
# The messengers an id in the settings may name (``zalo:abc``). A bare id is Telegram's: ADMIN_IDS
# and the hubs were Telegram numbers before any other channel existed, and stay valid as written.
CHANNELS = ("telegram", "zalo")
BARE_ID_CHANNEL = "telegram"
SECRET_SETTINGS = frozenset(
    {
        "telegram_token",
        "webhook_secret",
        "zalo_token",
        "zalo_webhook_secret",
        "zalo_oa_app_secret",
        "zalo_oa_secret_key",
        "zalo_chart_key",
    }
)


class ConfigError(Exception):
    """A configuration problem, phrased as one line for the operator."""


def channel_id(value: object) -> tuple[str, str]:
    """``(channel, id)`` of an id as an operator writes it: ``zalo:abc``, or a bare Telegram id.

    The id stays a string, as every id a messenger gives (``bot.channels.refs``).
    """
    text = str(value).strip()
    channel, colon, ident = text.partition(":")
    if not colon:
        channel, ident = BARE_ID_CHANNEL, text
        if not re.fullmatch(r"-?\d+", ident):
            ident = ""
    channel, ident = channel.strip().lower(), ident.strip()
    if channel not in CHANNELS or not ident:
        known = ", ".join(CHANNELS)
        raise ValueError(f"expected a numeric Telegram id or channel:id ({known}), got {text!r}")
    return channel, ident


class AgencyConfig(BaseModel):
    """An agency and its policy for responding to the press."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=255)
    # The TOML writes one ``hub_chat_id`` (``-100…``, or ``zalo:…``); validation splits it into
    # the channel and the channel's id, the two columns ``Agency`` keeps.
    hub_chat_id: str | None = Field(default=None, max_length=80)
    hub_channel: str | None = None
    deadline_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    approvals_required: int = Field(default=1, ge=1, le=20)
    approval_pin: bool = False
    public_channel: str | None = Field(default=None, pattern=r"^(@[A-Za-z0-9_]{5,32}|-100\d+)$")
    # A verified Zalo Official Account whose groups are this agency's crisis rooms on Zalo
    # (docs/zalo.md): its app id (the app's secrets are ZALO_OA_APP_SECRET and
    # ZALO_OA_SECRET_KEY, never in this file) and the GMF asset ids its groups may use, written
    # as a list and kept comma-separated.
    zalo_oa_app_id: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    zalo_oa_assets: str | None = Field(default=None, max_length=1000)

    @field_validator("zalo_oa_assets", mode="before")
    @classmethod
    def _assets_joined(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            names = [str(v).strip() for v in value]
            if not all(names) or any("," in n for n in names):
                raise ValueError("asset ids must be non-empty and without commas")
            return ",".join(names) or None
        return value

    @model_validator(mode="after")
    def _oa_needs_assets(self) -> AgencyConfig:
        if self.zalo_oa_app_id is not None and not self.zalo_oa_assets:
            raise ValueError("zalo_oa_app_id needs zalo_oa_assets (the GMF asset ids)")
        return self

    @field_validator("hub_chat_id", mode="before")
    @classmethod
    def _hub_checked(cls, value: Any) -> Any:
        return None if value is None else ":".join(channel_id(value))

    @model_validator(mode="after")
    def _split_hub(self) -> AgencyConfig:
        self.hub_channel = None
        if self.hub_chat_id is not None:
            self.hub_channel, self.hub_chat_id = channel_id(self.hub_chat_id)
        return self


class TopicConfig(BaseModel):
    """A watched topic; ``query`` is the boolean query language of ``scanner.topics``."""

    model_config = ConfigDict(extra="forbid")

    agency: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=255)
    query: str = Field(min_length=1)
    sensitivity: Literal["low", "medium", "high"] = "medium"

    @field_validator("query")
    @classmethod
    def _query_parses(cls, value: str) -> str:
        from scanner.topics import QueryError, parse_query

        try:
            parse_query(value)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        return value


class SourceConfig(BaseModel):
    """A news feed; stories are counted per ``outlet``, not per feed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    outlet: str = Field(min_length=1, max_length=255)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://\S+$")


class Settings(BaseSettings):
    """Every setting of the config contract (DESIGN.md, README "Configuration")."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, env_ignore_empty=True
    )

    config: Path | None = None
    telegram_token: SecretStr | None = None
    telegram_api_url: str = Field(default=OFFICIAL_API_URL, pattern=r"^https?://\S+$")
    database_url: str | None = None
    data_dir: Path = Path("data")
    scan_interval: int = Field(default=300, ge=10, le=86_400)
    hub_chat_id: Annotated[ChatRef | None, NoDecode] = None  # a bare Telegram id, or channel:id
    admin_ids: Annotated[list[PersonRef], NoDecode] = Field(default_factory=list)
    timezone: str = "Asia/Ho_Chi_Minh"
    allow_private_feeds: bool = False
    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    webhook_secret: SecretStr | None = None
    webhook_listen: str = Field(default="0.0.0.0", min_length=1, max_length=255)
    webhook_port: int = Field(default=8443, ge=1, le=65_535)
    tick_seconds: float = Field(default=5.0, gt=0, le=300)
    # Feed-parsing processes (scanner.parse_pool); unset: one per core, at most four; 0: a thread
    parse_workers: int | None = Field(default=None, ge=0, le=32)
    # PostgreSQL: how often a worker checks (or tries to take) the leader lock; docs/operations.md
    leader_check_seconds: float = Field(default=2.0, ge=0.1, le=60)
    invite_ttl_hours: float = Field(default=72.0, gt=0, le=24 * 90)
    escalation_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    digest_time: time = time(7, 30)
    approval_reminder_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    send_timeout: float = Field(default=30.0, gt=0, le=600)
    delivery_retry_minutes: float = Field(default=60.0, ge=60, le=7 * 24 * 60)
    templates_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_listen: str = Field(default="127.0.0.1", min_length=1)  # /healthz and /metrics
    http_port: int = Field(default=9108, ge=0, le=65_535)  # 0: no health/metrics server
    article_retention_days: int | None = Field(default=None, ge=30, le=36_500)
    # Zalo (docs/zalo.md): the Bot Platform channel and the optional Official Account rooms.
    zalo_token: SecretStr | None = None
    zalo_api_url: str = Field(default=ZALO_API_URL, pattern=r"^https?://\S+$")
    zalo_webhook_secret: SecretStr | None = None
    zalo_oa_app_id: str | None = Field(default=None, pattern=r"^\d{1,32}$")
    zalo_oa_app_secret: SecretStr | None = None
    zalo_oa_secret_key: SecretStr | None = None
    zalo_oa_oauth_url: str = Field(default=ZALO_OA_OAUTH_URL, pattern=r"^https?://\S+$")
    zalo_oa_api_url: str = Field(default=ZALO_OA_API_URL, pattern=r"^https?://\S+$")
    # The bot's public address on Zalo (no Telegram token): Zalo fetches charts from
    # {ZALO_PUBLIC_URL}/charts/… and, with ZALO_WEBHOOK_SECRET, posts updates to
    # {ZALO_PUBLIC_URL}/zalo/webhook; that server listens on WEBHOOK_LISTEN:WEBHOOK_PORT.
    zalo_public_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    zalo_chart_key: SecretStr | None = None  # signs chart links; at least 32 characters

    agencies: list[AgencyConfig] = Field(default_factory=list)
    topics: list[TopicConfig] = Field(default_factory=list)
    sources: list[SourceConfig] = Field(default_factory=list)

    @field_validator("hub_chat_id", mode="before")
    @classmethod
    def _hub_ref(cls, value: Any) -> Any:
        if value is None or isinstance(value, ChatRef):
            return value
        return ChatRef(*channel_id(value))

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_refs(cls, value: Any) -> Any:
        """``1,2,zalo:abc``: bare ids are Telegram's (as before other channels), others named."""
        if isinstance(value, str):
            value = [p for p in value.split(",") if p.strip()]
        elif not isinstance(value, list | tuple):
            value = [value]
        return [v if isinstance(v, PersonRef) else PersonRef(*channel_id(v)) for v in value]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _https_unless_local(cls, value: str | None) -> str | None:
        # Telegram delivers only to HTTPS; plain HTTP is allowed for a local Bot API server.
        if value and value.startswith("http://"):
            host = value.split("/")[2].split(":")[0]
            if host not in ("127.0.0.1", "localhost", "[::1]"):
                raise ValueError("must be an https:// URL (http:// only for 127.0.0.1)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_form(cls, value: SecretStr | None) -> SecretStr | None:
        # setWebhook accepts 1-256 characters of A-Z a-z 0-9 _ -; anything else it refuses,
        # and the error would surface only after start-up. The value itself is never echoed.
        if value is not None and not WEBHOOK_SECRET_RE.fullmatch(value.get_secret_value()):
            raise ValueError(WEBHOOK_SECRET_RULE)
        return value

    @field_validator(
        "telegram_api_url",
        "zalo_api_url",
        "zalo_public_url",
        "zalo_oa_oauth_url",
        "zalo_oa_api_url",
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("zalo_chart_key")
    @classmethod
    def _zalo_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        # HMAC-SHA256 chart links: a shorter key is guessable (bot.channels.zalo.chart_links).
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("at least 32 characters")
        return value

    @field_validator("zalo_webhook_secret")
    @classmethod
    def _zalo_secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        # Zalo's setWebhook takes a secret_token of 8-256 characters.
        if value is not None and not 8 <= len(value.get_secret_value()) <= 256:
            raise ValueError("8-256 characters")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        # Without a secret the receiver could not tell Telegram from anyone who finds the URL,
        # and a forged update acts as any user id, admins included.
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                f"{ENV_PREFIX}WEBHOOK_URL is set but {ENV_PREFIX}WEBHOOK_SECRET is not; "
                f"webhook mode needs a secret ({WEBHOOK_SECRET_RULE})"
            )
        return self

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        codes = [a.code for a in self.agencies]
        for i, code in enumerate(codes):
            if code in codes[:i]:  # messages start with the place, so the TOML line is found
                raise ValueError(f"agencies[{i}].code: agency code {code!r} is defined twice")
        for i, topic in enumerate(self.topics):
            if topic.agency not in codes:
                known = ", ".join(codes) or "none"
                raise ValueError(
                    f"topics[{i}].agency: unknown agency {topic.agency!r} (known: {known})"
                )
        seen: set[tuple[str, str]] = set()
        for i, topic in enumerate(self.topics):
            if (topic.agency, topic.name) in seen:
                raise ValueError(
                    f"topics[{i}].name: topic {topic.name!r} of {topic.agency} is defined twice"
                )
            seen.add((topic.agency, topic.name))
        urls = [s.url for s in self.sources]
        for i, url in enumerate(urls):
            if url in urls[:i]:
                raise ValueError(f"sources[{i}].url: source url {url!r} is listed twice")
        from scanner.sources import UnsafeURLError, check_url

        for i, url in enumerate(urls):
            try:  # the fetcher's own rule, at start-up rather than on every scan
                check_url(url, allow_private=self.allow_private_feeds)
            except (UnsafeURLError, ValueError) as exc:
                raise ValueError(f"sources[{i}].url {url!r}: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the TOML file, which arrives as init kwargs.
        return env_settings, init_settings

    # ------------------------------------------------------------------ derived values

    @property
    def token(self) -> str | None:
        return self.telegram_token.get_secret_value() if self.telegram_token else None

    @property
    def zalo(self) -> str | None:
        """The Zalo bot token when CrisisDesk runs on Zalo: set, and no Telegram token."""
        if self.telegram_token is not None or self.zalo_token is None:
            return None
        return self.zalo_token.get_secret_value()

    @property
    def effective_database_url(self) -> str:
        from storage.db import sqlite_url

        return self.database_url or sqlite_url(self.data_dir)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bot_base_url(self) -> str:
        return f"{self.telegram_api_url}/bot"

    @property
    def bot_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if ``CRISISDESK_CONFIG`` names one) and the environment.

    ``overrides`` win over both; they are for the CLI and tests. Raises :class:`ConfigError`.
    """
    env = dict(os.environ if environ is None else environ)
    path_text = overrides.get("config") or env.get(f"{ENV_PREFIX}CONFIG")
    toml_data: dict[str, Any] = {}
    toml_text = ""
    path: Path | None = None
    if path_text:
        path = Path(path_text)
        try:
            toml_text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        try:
            toml_data = tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as exc:
            line, message = _toml_error_line(toml_text, exc)
            raise ConfigError(f"{path} line {line}: malformed TOML: {message}") from None
        toml_data = {k.lower(): v for k, v in toml_data.items()}
        toml_data["config"] = path
    kwargs = {**toml_data, **overrides}
    saved = _swap_environ(env)
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, toml_text, env, set(overrides))) from None
    finally:
        _swap_environ(saved)


def _swap_environ(new: Mapping[str, str]) -> dict[str, str]:
    """pydantic-settings reads ``os.environ``; swap in ``new`` so tests can pass their own."""
    old = dict(os.environ)
    if old != dict(new):
        os.environ.clear()
        os.environ.update(new)
    return old


def _describe(
    exc: ValidationError, path: Path | None, text: str, env: Mapping[str, str], overrides: set[str]
) -> str:
    """One line for the first validation error: which setting or TOML line, and what is wrong."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {str(value)[:60]!r})"
    if loc and loc[0] in SECRET_SETTINGS:
        shown = ""  # a mistyped secret is still a secret: never echo it
    if not loc:
        # Model-level checks start with their place ("topics[2].agency: ..."); find its line.
        place = _PLACE.match(message)
        line = _toml_line(text, [place[1], place[2], place[3]]) if place and path else None
        where = f"{path} line {line}" if line else str(path)
        return f"{where}: {message}" if path else f"configuration: {message}"
    top = loc[0]
    env_name = f"{ENV_PREFIX}{top.upper()}"
    if top not in overrides and env_name in env:
        return f"{env_name}: {message}{shown}"
    if path is not None:
        line = _toml_line(text, loc)
        where = f"{path} line {line}" if line else str(path)
        return f"{where}: {_dotted(loc)}: {message}{shown}"
    return f"{env_name}: {message}{shown}"


_PLACE = re.compile(r"^([a-z_]+)\[(\d+)\]\.([a-z_]+): ")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_AT_END = re.compile(r"\s*\(at end of document\)$")


def _toml_error_line(text: str, exc: tomllib.TOMLDecodeError) -> tuple[int, str]:
    """The line of a TOML syntax error and its message without the position.

    tomllib names the line for most errors, but reports some (a key set twice on the last
    line, an unclosed array) "at end of document"; then the line is the first whose prefix of
    the file fails with the same message.
    """
    message = str(exc)
    found = _AT_LINE.search(message)
    if found:
        return int(found[1]), message[: found.start()]
    bare = _AT_END.sub("", message)
    lines = text.splitlines()
    for n in range(1, len(lines) + 1):
        try:
            tomllib.loads("\n".join(lines[:n]))
        except tomllib.TOMLDecodeError as partial:
            if _AT_END.sub("", _AT_LINE.sub("", str(partial))) == bare:
                return n, bare
    return max(len(lines), 1), bare


def _dotted(loc: list[str]) -> str:
    out = loc[0]
    for part in loc[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _toml_line(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of ``loc`` (e.g. ``agencies, 1, deadline_hours``) in the TOML."""
    lines = text.splitlines()
    if len(loc) >= 2 and loc[1].isdigit():
        table, index = loc[0], int(loc[1])
        key = loc[2] if len(loc) > 2 else None
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        starts = [i for i, line in enumerate(lines) if header.match(line)]
        if index < len(starts):
            start = starts[index]
            if key is None:
                return start + 1
            sub_table = re.compile(rf"^\s*\[\s*{re.escape(table)}\.{re.escape(key)}\s*\]")
            for i in range(start + 1, len(lines)):
                if sub_table.match(lines[i]):
                    return i + 1
                if lines[i].lstrip().startswith("["):
                    break
                if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
                    return i + 1
            return start + 1
        return None
    for i, line in enumerate(lines):
        if re.match(rf"^\s*{re.escape(loc[0])}\s*=", line):
            return i + 1
    return None
