"""Realistic sample data for every message template (``templates/messages/<lang>/<name>.j2``).

``SAMPLES[name]`` is a list of contexts: the first is a full, ordinary case; the others are the
cases a press officer also meets — blank optional values (no username, no phone, no room link
yet), empty lists, the other branches of the template. Templates that branch on a code
(``code == 'pin_saved'``) are also rendered once per code the test finds in their source, so a
new branch is covered without a new sample. A template with no entry here fails the test: a new
template needs its sample data.

The objects stand in for the views the services hand to the templates (attribute access, as
Jinja reads both alike); their values are what the sandbox's news day produces.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as N
from typing import Any

NOW = datetime(2026, 11, 2, 3, 30, tzinfo=UTC)  # 10:30 in Hà Nội
HOUR = timedelta(hours=1)

TOPIC = N(
    id=2,
    name="An toàn thực phẩm",
    query='("ngộ độc" OR "thực phẩm bẩn" OR "bếp ăn") AND NOT "thú y"',
    sensitivity="high",
    owner="toml",
)
TOPIC_CHAT = N(
    id=5, name="Vắc-xin", query='"vắc-xin" OR "vaccine"', sensitivity="medium", owner="chat"
)
STORIES = [
    N(
        url="https://vnexpress.net/so-hoc-sinh-nhap-vien-tang-len-52-4812345.html",
        title="Số học sinh nhập viện vì nghi ngộ độc thực phẩm tăng lên 52",
        outlets=["VnExpress", "Tuổi Trẻ", "Thanh Niên"],
        outlet_count=3,
    ),
    N(
        url="",
        title="Nghi ngộ độc thực phẩm tại Trường Tiểu học Sao Mai, 34 học sinh phải cấp cứu",
        outlets=["Dân Trí"],
        outlet_count=1,
    ),
]
ALERT = N(
    id=12,
    severity="critical",
    kind="volume_burst",
    volume=9,
    outlets=4,
    baseline=0.4,
    negative_share=0.6,
    window_start=NOW - HOUR,
    window_end=NOW,
    details={"history": {}},
    forecast={"hours": 3, "expected": 16, "low": 11, "high": 22},
    status="open",
    acknowledged_at=NOW,
    created_at=NOW,
)
ALERT_QUIET = N(
    **{
        **vars(ALERT),
        "severity": "info",
        "kind": "emerging",
        "forecast": None,
        "details": {"history": {"cold_start": True, "hours": 30}},
        "status": "dismissed",
    }
)
FINDING = N(
    topic=TOPIC,
    alert=ALERT,
    terms=["ngộ độc thực phẩm", "Trường Tiểu học Sao Mai", "nhập viện"],
    stories=STORIES,
    acknowledged_by="Lê Minh Châu",
    crisis_id=3,
)
FINDING_BARE = N(
    topic=TOPIC, alert=ALERT_QUIET, terms=[], stories=[], acknowledged_by=None, crisis_id=None
)
CRISIS = N(
    id=3,
    title="An toàn thực phẩm: ngộ độc thực phẩm, Trường Tiểu học Sao Mai",
    severity="critical",
    status="open",
    deadline_at=NOW + 20 * HOUR,
    resolved_at=None,
    invite_link="https://t.me/+AbCdEf123456",
)
CRISIS_LATE = N(**{**vars(CRISIS), "deadline_at": NOW - HOUR, "invite_link": None})
CRISIS_DONE = N(**{**vars(CRISIS), "status": "resolved", "resolved_at": NOW})
LEAD = N(full_name="Lê Minh Châu")
BRIEF = N(
    crisis=CRISIS,
    agency=N(name="Bộ Y tế", code="BYT"),
    now=NOW,
    alert=ALERT,
    topic=TOPIC,
    stories=STORIES,
    roles=[("lead", "Lê Minh Châu"), ("drafter", "Phạm Quốc Dũng"), ("approver", "Trần Thị Bình")],
    lead=LEAD,
    counts=N(joined=2, accepted=1, invited=1, declined=0),
    tasks=[
        (N(title="Gọi cho báo Tuổi Trẻ", due_at=NOW + 2 * HOUR), "Phạm Quốc Dũng"),
        (N(title="Soạn thông tin ban đầu", due_at=None), "Lê Minh Châu"),
    ],
    done_tasks=1,
    statements=0,
    last_update="Đã lấy mẫu thức ăn gửi xét nghiệm",
)
BRIEF_EMPTY = N(
    **{
        **vars(BRIEF),
        "crisis": CRISIS_LATE,
        "agency": None,
        "alert": None,
        "stories": [],
        "roles": [],
        "tasks": [],
        "done_tasks": 0,
        "last_update": None,
    }
)
DRAFT = N(number=1, version=2, status="submitted")
USER = N(id=7, full_name="Lê Minh Châu", username="chau_pn", phone="+84901000003", status="active")
USER_BARE = N(id=8, full_name="Hoàng Thu Hà", username=None, phone=None, status="pending")
TASK = N(id=4, title="Gọi cho báo Tuổi Trẻ", due_at=NOW + 2 * HOUR)
SOURCE = N(
    id=3,
    name="Sức khỏe",
    outlet="VnExpress",
    url="https://vnexpress.net/rss/suc-khoe.rss",
    active=True,
    owner="toml",
    consecutive_failures=0,
    last_error=None,
)
SOURCE_DOWN = N(
    **{
        **vars(SOURCE),
        "id": 4,
        "active": False,
        "owner": "chat",
        "consecutive_failures": 3,
        "last_error": "HTTP 503",
    }
)
REPORT = N(
    crisis=CRISIS_DONE,
    lead="Lê Minh Châu",
    statements=[1, 2],
    deadline_met=True,
    key_times=[
        N(key="detected", at=NOW - 3 * HOUR),
        N(key="opened", at=NOW - 2 * HOUR),
        N(key="convened", at=NOW - 2 * HOUR),
        N(key="first_draft", at=NOW - HOUR),
        N(key="approved", at=None),
        N(key="published", at=None),
    ],
    tasks_done=3,
    tasks_open=1,
)
LINE = N(topic=TOPIC, subscribed=True, muted_until=NOW + 4 * HOUR)
LINE_OFF = N(topic=TOPIC_CHAT, subscribed=False, muted_until=None)
OPENED = N(
    crisis_id=3,
    title=CRISIS.title,
    deadline_at=CRISIS.deadline_at,
    room_ready=True,
    invite_link="https://t.me/+AbCdEf123456",
    room_url="https://t.me/c/1234567890/17",
    invited=3,
    room_error=None,
    unknown=["nguyenvana"],
    missing_rights=["pin"],
)
STATUS = N(
    at=NOW,
    database="PostgreSQL 16 (127.0.0.1:5432/crisisdesk)",
    users={"active": 12, "pending": 2, "suspended": 1},
    open_alerts=3,
    open_crises=1,
    pending_due=5,
    overdue_due=0,
    last_scan={"finished_at": "10:29 02/11/2026"},
    retrying=2,
    failing_since=NOW - HOUR,
    delivery_problems=[
        N(alert_id=12, topic="An toàn thực phẩm", at=NOW, failed=1, uncertain=2),
        N(alert_id=11, topic="Vắc-xin", at=NOW - HOUR, failed=0, uncertain=1),
    ],
)
SCAN = N(
    started_at=NOW,
    duration_s=4.2,
    sources=5,
    sources_ok=4,
    sources_not_modified=1,
    new_articles=23,
    new_stories=9,
    failing_sources=[N(name="Sức khỏe", url=SOURCE.url, error="HTTP 503")],
)
ENTRIES = [
    N(at=NOW - HOUR, actor="Lê Minh Châu", action="draft.created", version=1, detail={}),
    N(
        at=NOW - HOUR,
        actor="Trần Thị Bình",
        action="draft.changes_requested",
        version=1,
        detail={"reason": "Nêu rõ giờ cập nhật tiếp theo."},
    ),
    N(
        at=NOW,
        actor="Lê Minh Châu",
        action="draft.edited",
        version=2,
        detail={"diff": {"added": 1, "removed": 1}, "sha256": "9f2c4e1a77b0c3d5"},
    ),
    N(
        at=NOW,
        actor=None,
        action="draft.published",
        version=2,
        detail={"channel": "@byt_tin_chinh_thuc"},
    ),
]

ROLES_VI = {7: "Người phát ngôn", 8: "Thành viên"}

SAMPLES: dict[str, list[dict[str, Any]]] = {
    "alert_acknowledged": [{"mine": True}, {"mine": False}],
    "alert_button_ack": [{}],
    "alert_button_dismiss": [{}],
    "alert_button_draft": [{}],
    "alert_button_mute": [{}],
    "alert_button_tf": [{}],
    "alert_channel_message": [
        {"code": "current", "channels": ["telegram", "zalo"], "chosen": ["zalo"], "wanted": ""},
        {"code": "set", "channels": ["telegram", "zalo"], "chosen": ["telegram"], "wanted": "both"},
        {"code": "unknown", "channels": ["zalo"], "chosen": ["zalo"], "wanted": "viber"},
        {"code": "no_account", "channels": ["zalo"], "chosen": ["zalo"], "wanted": "telegram"},
    ],
    "alert_caption": [{"a": ALERT, "f": FINDING}, {"a": ALERT_QUIET, "f": FINDING_BARE}],
    "alert_crisis_exists": [{"crisis_id": 3}],
    "alert_crisis_title": [{"f": FINDING}, {"f": FINDING_BARE}],
    "alert_dismiss_ask": [{}],
    "alert_dismiss_reason": [{"reason": r} for r in ("fp", "remit", "handled", "other")],
    "alert_dismissed": [{"reason": "fp"}, {"reason": "handled"}],
    "alert_draft_started": [{"crisis_id": 3}],
    "alert_gone": [{}],
    "alert_message": [
        {"a": ALERT, "f": FINDING, "escalation": False},
        {"a": ALERT, "f": FINDING, "escalation": True},
        {"a": ALERT_QUIET, "f": FINDING_BARE, "escalation": False},
        {
            "a": N(**{**vars(ALERT), "details": {"history": {"short": True, "hours": 80}}}),
            "f": FINDING_BARE,
            "escalation": False,
        },
    ],
    "alert_opening_crisis": [{}],
    "alert_starting_draft": [{}],
    "alert_undelivered": [
        {
            "alert_id": 12,
            "topic": "An toàn thực phẩm",
            "count": 4,
            "names": ["Lê Minh Châu", "Phạm Quốc Dũng"],
            "seconds": 3600,
        },
        {"alert_id": 12, "topic": "Vắc-xin", "count": 1, "names": ["Lê Minh Châu"], "seconds": 90},
    ],
    "alerts_list": [
        {"rows": [(ALERT, TOPIC), (ALERT_QUIET, TOPIC_CHAT)]},
        {"rows": []},
    ],
    "approval_channel_failed": [
        {"channel": "@byt_tin_chinh_thuc", "error": "Forbidden: bot is not a member of the chat"}
    ],
    "approval_closed": [
        {"code": "approve", "number": 1, "version": 2, "who": "Trần Thị Bình", "latest": 2},
        {"code": "superseded", "number": 1, "version": 1, "who": "", "latest": 2},
    ],
    "approval_decided": [
        {
            "decision": d,
            "final": final,
            "draft": DRAFT,
            "approvals": 1,
            "required": 2,
            "who": "Trần Thị Bình",
            "reason": "Nêu rõ giờ cập nhật tiếp theo.",
        }
        for d, final in (
            ("approve", True),
            ("approve", False),
            ("request_changes", False),
            ("reject", False),
        )
    ],
    "approval_label": [{"which": w} for w in ("approve", "changes", "reject")],
    "approval_prompt": [
        {"code": "reason", "decision": "request_changes", "number": 1, "version": 2},
        {
            "code": "reason_typed",
            "decision": "reject",
            "number": 1,
            "version": 2,
            "command": "tuchoi",
            "draft_id": 45,
        },
    ],
    "approval_published": [
        {
            "draft": DRAFT,
            "title": "Thông tin ban đầu",
            "approvers": "Trần Thị Bình, Nguyễn Văn An",
            "at": NOW,
            "short_hash": "9f2c4e1a",
        }
    ],
    "approval_reminder": [
        {
            "escalation": e,
            "draft": DRAFT,
            "crisis": CRISIS,
            "minutes": 30,
            "waiting_for": w,
        }
        for e, w in ((False, ""), (True, "Trần Thị Bình"), (True, ""))
    ],
    "approval_request": [
        {
            "draft": DRAFT,
            "title": "Thông tin ban đầu",
            "crisis": CRISIS,
            "author": "Lê Minh Châu",
            "required": 1,
            "short_hash": "9f2c4e1a",
        }
    ],
    "button_invalid": [{}],
    "button_not_allowed": [{}],
    "button_refresh": [{}],
    "chart_alert_line": [{"a": ALERT}, {"a": None}],
    "chart_baseline": [{}],
    "chart_forecast": [{}],
    "chart_negative": [{}],
    "chart_now": [{}],
    "chart_other": [{}],
    "chart_stories": [{}],
    "chart_title": [{"topic": "An toàn thực phẩm"}],
    "chart_window_note": [{"a": ALERT}],
    "crisis_brief": [
        {"v": BRIEF},
        {"v": BRIEF_EMPTY},
        {"v": N(**{**vars(BRIEF), "crisis": CRISIS_DONE})},
    ],
    "crisis_convened": [
        {"invited": ["Phạm Quốc Dũng", "Trần Thị Bình"], "unknown": ["nguyenvana", "lan_byt"]},
        {"invited": [], "unknown": []},
    ],
    "crisis_deadline_overdue": [
        {"c": CRISIS_LATE, "url": "https://t.me/c/1234567890/17"},
        {"c": CRISIS_LATE, "url": None},
    ],
    "crisis_deadline_reminder": [
        {"c": CRISIS, "left": 4 * 3600, "stage": 80, "url": "https://t.me/c/1234567890/17"},
        {"c": CRISIS, "left": 600, "stage": 95, "url": ""},
    ],
    "crisis_error": [{"code": "unknown_user", "d": {"username": "nguyenvana"}}],
    "crisis_invite": [
        {"v": BRIEF, "role": "drafter"},
        {"v": BRIEF_EMPTY, "role": "member"},
    ],
    "crisis_invite_answer": [
        {
            "join": True,
            "a": N(
                crisis=CRISIS,
                state="joined",
                url="https://t.me/c/1/17",
                link=None,
                needs_link=False,
            ),
        },
        {
            "join": True,
            "a": N(crisis=CRISIS, state="joined", url=None, link=None, needs_link=False),
        },
        {
            "join": True,
            "a": N(
                crisis=CRISIS,
                state="accepted",
                url=None,
                link="https://t.me/+AbCdEf123456",
                needs_link=False,
            ),
        },
        {
            "join": True,
            "a": N(crisis=CRISIS, state="accepted", url=None, link=None, needs_link=False),
        },
        {
            "join": True,
            "a": N(crisis=CRISIS, state="accepted", url=None, link=None, needs_link=True),
        },
        {
            "join": False,
            "a": N(crisis=CRISIS, state="declined", url=None, link=None, needs_link=False),
        },
    ],
    "crisis_list": [{"crises": [CRISIS, CRISIS_LATE]}, {"crises": []}],
    "crisis_opened": [
        {"o": OPENED},
        {
            "o": N(
                **{
                    **vars(OPENED),
                    "invite_link": None,
                    "room_url": None,
                    "unknown": [],
                    "missing_rights": [],
                }
            )
        },
        {"o": N(**{**vars(OPENED), "room_ready": False, "room_error": "no_room", "unknown": []})},
        {"o": N(**{**vars(OPENED), "room_ready": False, "room_error": "hub_failed"})},
        {"o": N(**{**vars(OPENED), "room_ready": False, "room_error": "other"})},
    ],
    "crisis_pick": [{"c": CRISIS, "count": 3}, {"c": CRISIS, "count": 0}],
    "crisis_report_sent": [
        {"r": REPORT},
        {"r": N(**{**vars(REPORT), "deadline_met": None, "statements": []})},
        {"r": N(**{**vars(REPORT), "deadline_met": False})},
    ],
    "crisis_resolve_button": [{}],
    "crisis_resolve_confirm": [{"c": CRISIS}],
    "crisis_resolved": [
        {"r": REPORT},
        {"r": N(**{**vars(REPORT), "deadline_met": None})},
        {"r": N(**{**vars(REPORT), "deadline_met": False})},
    ],
    "crisis_role_set": [{"person": "Phạm Quốc Dũng", "role": "drafter"}],
    "crisis_room_attached": [
        {"c": CRISIS, "url": "https://t.me/c/1234567890/17"},
        {"c": CRISIS_LATE, "url": None},
    ],
    "crisis_room_description": [{"c": CRISIS}],
    "crisis_room_left_out": [
        {
            "c": CRISIS,
            "names": ["Trần Thị Bình", "Phạm Quốc Dũng"],
            "agency": "Bộ Y tế",
            "channel": "zalo",
            "made": made,
            "you": you,
        }
        for made in (True, False)
        for you in (True, False)
    ],
    "crisis_room_pending": [
        {"c": CRISIS, "code": "no_room", "reason": ""},
        {"c": CRISIS, "code": "hub_failed", "reason": "Bad Request: not enough rights"},
    ],
    "crisis_roster": [
        {
            "c": CRISIS,
            "lines": [
                N(name="Lê Minh Châu", role="lead", state="joined", delivery="sent"),
                N(name="Phạm Quốc Dũng", role="drafter", state="invited", delivery="unreachable"),
                N(name="Trần Thị Bình", role="approver", state="invited", delivery="pending"),
                N(name="Hoàng Thu Hà", role="member", state="declined", delivery="sent"),
            ],
        }
    ],
    "delivery_unreachable": [{"name": "Phạm Quốc Dũng"}],
    "digest": [
        {
            "day": NOW,
            "days": [
                N(topic=TOPIC, stories=41, negative_share=0.62, alerts=2),
                N(topic=TOPIC_CHAT, stories=12, negative_share=0.0, alerts=0),
            ],
        },
        {"day": NOW, "days": []},
    ],
    "digest_chart_title": [{}],
    "draft_edit_help": [
        {"number": 1, "fields": ["Số văn bản", "Điều đã xác minh", "Cập nhật tiếp theo"]},
        {
            "number": 1,
            "fields": ["Số văn bản"],
            "typed": True,
            "command": "sua",
            "draft_id": 45,
        },
    ],
    "draft_error": [
        {
            "code": "draft_unknown_field",
            "ctx": {
                "field": "giờ",
                "fields": ["Số văn bản", "Cập nhật tiếp theo"],
                "kind": "thongcao",
                "kinds": ["bandau", "thongcao", "hoidap"],
                "detail": "dòng 12: thiếu «endif»",
                "limit": 20000,
                "number": 1,
                "status": "published",
                "version": 2,
                "latest": 3,
                "required": 2,
                "available": 1,
            },
        },
        {"code": "draft_set_usage", "ctx": {"fields": []}},
    ],
    "draft_header": [
        {
            "draft": N(number=1, version=2, status="drafting"),
            "title": "Thông tin ban đầu",
            "diff": N(added=1, removed=1, excerpt="vào 17 giờ 00 hôm nay"),
        },
        {
            "draft": N(number=1, version=2, status="changes_requested"),
            "title": "Thông tin ban đầu",
            "diff": N(added=3, removed=0, excerpt=""),
        },
        {"draft": N(number=1, version=1, status="drafting"), "title": "Hỏi đáp", "diff": None},
        {
            "draft": N(id=45, number=1, version=1, status="drafting"),
            "title": "Hỏi đáp",
            "diff": None,
            "typed": True,
            "command": "sua",
        },
    ],
    "draft_label": [{"which": w} for w in ("edit", "submit", "discard")],
    "draft_notice": [
        {
            "code": "submitted",
            "number": 1,
            "version": 2,
            "who": "Lê Minh Châu",
            "approvers": "Trần Thị Bình",
            "required": 1,
            "unreachable": "Nguyễn Văn An",
        },
        {
            "code": "submitted",
            "number": 1,
            "version": 2,
            "who": "Lê Minh Châu",
            "approvers": "Trần Thị Bình",
            "required": 1,
            "unreachable": "",
        },
    ],
    "draft_prompt": [
        {
            "prefilled": [("Cơ quan ban hành", "Bộ Y tế"), ("Trích yếu", CRISIS.title)],
            "prompt": N(
                kind_title="Thông tin ban đầu",
                index=2,
                total=4,
                text="Những gì đã xác minh được: sự việc, thời gian, địa điểm",
                required=True,
            ),
        },
        {
            "prefilled": [],
            "prompt": N(
                kind_title="Thông tin ban đầu",
                index=1,
                total=4,
                text="Số văn bản (nếu chưa có số thì bỏ qua)",
                required=False,
            ),
        },
        {
            "prefilled": [],
            "typed": True,
            "prompt": N(kind_title="Hỏi đáp", index=1, total=2, text="Câu hỏi", required=True),
        },
    ],
    "draft_usage": [
        {
            "kinds": [
                ("bandau", "Thông tin ban đầu (thông cáo giữ chỗ)"),
                ("thongcao", "Thông cáo báo chí"),
                ("hoidap", "Hỏi đáp cho người phát ngôn"),
            ]
        }
    ],
    "error_generic": [{}],
    "free_text": [{"status": s} for s in ("active", "pending", "rejected", None)],
    "help": [
        {
            "commands": [("topics", "Chủ đề"), ("alerts", "Cảnh báo"), ("crisis", "Vụ việc")],
            "room": [("task", "Giao việc"), ("set", "Sửa một mục của dự thảo")],
            "registered": True,
        },
        {"commands": [("start", "Đăng ký"), ("help", "Trợ giúp")], "room": [], "registered": False},
    ],
    "help_command": [{"key": "draft"}],
    "help_unknown_command": [{}],
    "history_statement": [
        {"number": 1, "title": "Thông tin ban đầu", "entries": ENTRIES},
        {"number": 2, "title": "Thông cáo báo chí", "entries": []},
    ],
    "hub_rights_changed": [
        {
            "title": "BYT · Trung tâm xử lý khủng hoảng",
            "removed": True,
            "missing": ["topics", "pin"],
        },
        {"title": "BYT · Trung tâm xử lý khủng hoảng", "removed": False, "missing": ["invite"]},
        {"title": "BYT · Trung tâm xử lý khủng hoảng", "removed": False, "missing": []},
    ],
    "invite_choose_agency": [{"role": "Người phát ngôn"}],
    "invite_created": [
        {
            "role": "Người phát ngôn",
            "agency": "Bộ Y tế",
            "expires_at": NOW + 72 * HOUR,
            "link": "https://t.me/crisisdesk_bot?start=inv_Xk3mP9qR",
            "code": "inv_Xk3mP9qR",
        },
        {
            "role": "Thành viên",
            "agency": "Bộ Y tế",
            "expires_at": NOW + 72 * HOUR,
            "link": None,
            "code": "inv_Xk3mP9qR",
        },
    ],
    "invite_list": [
        {
            "invites": [N(id=4, agency_code="BYT", expires_at=NOW + 72 * HOUR)],
            "roles": {4: "Người phát ngôn"},
        },
        {"invites": [], "roles": {}},
    ],
    "invite_refused": [{"reason": r} for r in ("expired", "used", "revoked", "unknown")],
    "invite_revoked": [{"done": True, "id": 4}, {"done": False, "id": 4}],
    "invite_usage": [{"roles": ["member", "spokesperson", "supervisor"]}],
    "invite_welcome": [{}],
    "link_message": [
        {"code": "issued", "link_code": "K7PM-Q2XD", "minutes": 10, "channel": "telegram"},
        {"code": "linked", "name": "Nguyễn Thị Lan", "channels": ["telegram", "zalo"]},
        {"code": "room_linked", "name": "Nguyễn Thị Lan"},
        {"code": "too_many", "minutes": 10},
        {"code": "unknown", "minutes": 10},
    ],
    "me_ask_name": [{}],
    "me_language_set": [{}],
    "me_not_registered": [{"admin": True}, {"admin": False}],
    "me_profile": [
        {
            "user": USER,
            "agency": "Bộ Y tế",
            "role": "Người phát ngôn",
            "channels": ["telegram", "zalo"],
        },
        {"user": USER_BARE, "agency": None, "role": "Thành viên", "channels": []},
    ],
    "me_renamed": [{"person": "Lê Minh Châu"}],
    "me_request": [
        {
            "s": N(status="pending", agency="Bộ Y tế", asked_at=NOW, decided_at=None, reason=None),
            "role": "Người phát ngôn",
        },
        {
            "s": N(
                status="rejected",
                agency="Bộ Y tế",
                asked_at=NOW - HOUR,
                decided_at=NOW,
                reason="Không thuộc cơ quan",
            ),
            "role": "Người phát ngôn",
        },
        {
            "s": N(status="rejected", agency=None, asked_at=NOW, decided_at=None, reason=None),
            "role": "Thành viên",
        },
    ],
    "mute_bad_hours": [{"max": 168}],
    "mute_done": [{"topic": "An toàn thực phẩm", "until": NOW + 24 * HOUR}],
    "mute_not_subscribed": [{}],
    "mute_usage": [{}],
    "not_allowed": [{}],
    "people_card": [
        {
            "user": USER,
            "agency": "Bộ Y tế",
            "role": "Người phát ngôn",
            "requested": "",
            "channels": ["telegram"],
        },
        {
            "user": USER_BARE,
            "agency": "Bộ Y tế",
            "role": "Thành viên",
            "requested": "Người phát ngôn",
            "channels": ["telegram", "zalo"],
        },
        {
            "user": N(**{**vars(USER), "status": "suspended"}),
            "agency": "Bộ Y tế",
            "role": "Người phát ngôn",
            "requested": "",
            "channels": [],
        },
    ],
    "people_changed": [{}],
    "people_choose_agency": [{}],
    "people_list": [
        {
            "agency": "Bộ Y tế",
            "page": 1,
            "pages": 2,
            "people": [USER, USER_BARE],
            "roles": ROLES_VI,
            "channels": {USER.id: ["telegram", "zalo"]},
        },
        {"agency": "Bộ Y tế", "page": 1, "pages": 1, "people": [], "roles": {}, "channels": {}},
    ],
    "people_no_change": [{}],
    "people_role": [{"role": r} for r in ("admin", "supervisor", "spokesperson", "member")],
    "people_you_changed": [
        {"what": w, "role": "Giám sát viên"} for w in ("suspended", "reactivated", "role")
    ],
    "pin_message": [{"code": "pin_saved"}, {"code": "pin_new", "typed": True}],
    "reg_already_active": [{"person": "Lê Minh Châu", "role": "Người phát ngôn"}],
    "reg_already_decided": [
        {"status": s, "by": "Nguyễn Văn An"} for s in ("active", "rejected", "suspended")
    ],
    "reg_already_pending": [{}],
    "reg_already_registered": [{}],
    "reg_approved": [{"role": "Người phát ngôn"}],
    "reg_ask_agency": [{"page": 1, "pages": 3}, {"page": 1, "pages": 1}],
    "reg_ask_name": [{}],
    "reg_ask_phone": [
        {"invited": True, "agency": "Bộ Y tế", "role": "Người phát ngôn", "typed": False},
        {"invited": False, "agency": "Bộ Y tế", "role": "Người phát ngôn", "typed": False},
        {"invited": False, "agency": "Bộ Y tế", "role": "Người phát ngôn", "typed": True},
    ],
    "reg_ask_role": [{}],
    "reg_bad_phone": [{}],
    "reg_bad_typed_phone": [{}],
    "reg_cancelled": [{}],
    "reg_choose_language": [{}],
    "reg_decision_saved": [{}],
    "reg_done_active": [{"person": "Lê Minh Châu", "role": "Người phát ngôn", "agency": "Bộ Y tế"}],
    "reg_done_pending": [
        {"person": "Lê Minh Châu", "role": "Người phát ngôn", "agency": "Bộ Y tế"}
    ],
    "reg_group_private": [{"link": "https://t.me/crisisdesk_bot?start"}, {"link": None}],
    "reg_label": [
        {"key": k}
        for k in (
            "approve",
            "reject",
            "share_phone",
            "edit_name",
            "lang_vi",
            "lang_en",
            "revoke",
            "suspend",
            "reactivate",
            "back",
            "status_pending",
            "status_active",
            "status_suspended",
            "status_rejected",
        )
    ],
    "reg_name_invalid": [
        {"code": c, "minimum": 2, "maximum": 100} for c in ("too_long", "too_short", "control")
    ],
    "reg_no_agencies": [{}],
    "reg_not_own_contact": [{}],
    "reg_nothing_to_cancel": [{}],
    "reg_nothing_to_skip": [{}],
    "reg_phone_expected": [{}],
    "reg_reason_invalid": [{"maximum": 500}],
    "reg_reject_ask_reason": [{"person": "Hoàng Thu Hà"}],
    "reg_rejected": [{"reason": "Không thuộc cơ quan"}, {"reason": None}],
    "reg_resume": [{}],
    "reg_review_request": [
        {
            "person": "Lê Minh Châu",
            "username": "chau_pn",
            "agency": "Bộ Y tế",
            "role": "Người phát ngôn",
            "phone": "+84901000003",
            "phone_typed": True,
            "decided": None,
            "by": "",
            "reason": None,
        },
        {
            "person": "Hoàng Thu Hà",
            "username": None,
            "agency": "Bộ Y tế",
            "role": "Thành viên",
            "phone": "+84901000005",
            "phone_typed": False,
            "decided": "approved",
            "by": "Nguyễn Văn An",
            "reason": None,
        },
        {
            "person": "Hoàng Thu Hà",
            "username": None,
            "agency": "Bộ Y tế",
            "role": "Thành viên",
            "phone": "+84901000005",
            "phone_typed": False,
            "decided": "rejected",
            "by": "Nguyễn Văn An",
            "reason": "Không thuộc cơ quan",
        },
        {
            "person": "Hoàng Thu Hà",
            "username": None,
            "agency": "Bộ Y tế",
            "role": "Thành viên",
            "phone": "+84901000005",
            "phone_typed": False,
            "decided": "rejected",
            "by": "Nguyễn Văn An",
            "reason": None,
        },
    ],
    "reg_stale_button": [{}],
    "reg_use_buttons": [{}],
    "reg_wrong_step": [{}],
    "reminder": [{"text": "Gọi lại cho phóng viên báo Tuổi Trẻ"}],
    "room_right_missing": [
        {"id": 3, "title": CRISIS.title, "right": r, "where": w}
        for r, w in (("pin", "room"), ("topics", "hub"), ("invite", "room"))
    ],
    "scan_status": [
        {"s": SCAN},
        {"s": N(**{**vars(SCAN), "failing_sources": []})},
        {"s": None},
    ],
    "source_bad_url": [{"url": "ftp://example.vn/rss"}],
    "source_down": [
        {"name": "Sức khỏe", "failures": 3, "error": "HTTP 503", "url": SOURCE.url},
    ],
    "source_exists": [{"url": SOURCE.url}],
    "source_not_found": [{}],
    "source_read_only": [{"name": "Sức khỏe"}],
    "source_removed": [{"source": SOURCE}],
    "source_saved": [{"source": SOURCE}],
    "source_unsafe_url": [{"url": "http://192.168.1.10/rss"}],
    "source_up": [{"name": "Sức khỏe"}],
    "source_usage": [{}],
    "sources_list": [{"sources": [SOURCE, SOURCE_DOWN]}, {"sources": []}],
    "status": [
        {"s": STATUS},
        {"s": N(**{**vars(STATUS), "last_scan": None, "retrying": 0, "delivery_problems": []})},
    ],
    "suspended": [{}],
    "task_added": [
        {"t": N(task=TASK, owner="Phạm Quốc Dũng")},
        {"t": N(task=N(id=5, title="Soạn thông cáo", due_at=None), owner="Lê Minh Châu")},
    ],
    "task_done": [{"t": N(task=TASK, owner="Phạm Quốc Dũng")}],
    "task_list": [
        {
            "c": CRISIS,
            "tasks": [
                N(task=TASK, owner="Phạm Quốc Dũng"),
                N(task=N(id=5, title="Soạn thông cáo", due_at=None), owner="Lê Minh Châu"),
            ],
        },
        {"c": CRISIS, "tasks": []},
    ],
    "task_reminder": [{"c": CRISIS, "t": TASK, "stage": s} for s in ("due", "soon")],
    "tf_button_decline": [{}],
    "tf_button_done": [{}],
    "tf_button_join": [{}],
    "tf_pool_missing": [{"missing": ["can_invite_users", "can_pin_messages"]}],
    "tf_pool_registered": [{"free": 2}],
    "timeline_list": [
        {
            "c": CRISIS,
            "lines": [
                N(at=NOW - HOUR, kind="crisis.opened", actor="Lê Minh Châu", text=CRISIS.title),
                N(at=NOW - HOUR, kind="member.accepted", actor="Phạm Quốc Dũng", text=""),
                N(at=NOW, kind="member.joined", actor="Phạm Quốc Dũng", text=None),
                N(at=NOW, kind="deadline", actor=None, text="Hạn thông tin ban đầu"),
            ],
        },
        {"c": CRISIS, "lines": []},
    ],
    "timeline_noted": [{}],
    "timeline_updated": [{}],
    "topic_bad_name": [{}],
    "topic_bad_query": [{"error": "thiếu dấu ngoặc đóng ở vị trí 12"}],
    "topic_bad_sensitivity": [{"value": "rất cao"}],
    "topic_detail": [{"line": LINE}, {"line": LINE_OFF}],
    "topic_exists": [{"name": "An toàn thực phẩm"}],
    "topic_not_found": [{"name": "Giáo dục"}, {}],
    "topic_read_only": [{"name": "An toàn thực phẩm"}],
    "topic_removed": [{"name": "Vắc-xin"}],
    "topic_saved": [{"created": True, "topic": TOPIC_CHAT}, {"created": False, "topic": TOPIC}],
    "topic_usage": [{}],
    "topics_button": [{"line": LINE}, {"line": LINE_OFF}],
    "topics_list": [{"lines": [LINE, LINE_OFF]}, {"lines": []}],
    "topics_toggled": [{"follow": True}, {"follow": False}],
}

#: Templates sent as a photo's caption (Telegram: at most 1,024 characters after parsing).
CAPTIONS = frozenset({"alert_caption"})
#: Button labels (Telegram shows about 64 bytes of callback text; labels stay short).
BUTTONS = frozenset(
    {
        "alert_button_ack",
        "alert_button_dismiss",
        "alert_button_draft",
        "alert_button_mute",
        "alert_button_tf",
        "alert_dismiss_reason",
        "approval_label",
        "crisis_resolve_button",
        "draft_label",
        "reg_label",
        "tf_button_decline",
        "tf_button_done",
        "tf_button_join",
        "topics_button",
    }
)
