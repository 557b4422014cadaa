"""The local feed server's routes and feed builders, shared by the scanner tests and benches."""

from __future__ import annotations

import asyncio
import gzip
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

SYNDICATED_LEAD = (
    "Chiều 1/11, Bộ Y tế cho biết lô vắc-xin sởi nhập khẩu đã được kiểm định chặt chẽ trước "
    "khi đưa vào tiêm chủng mở rộng tại 63 tỉnh thành, phụ huynh yên tâm đưa trẻ đi tiêm."
)
SYNDICATED_TITLES = [
    "Bộ Y tế khẳng định vắc-xin sởi nhập khẩu an toàn",
    "Bộ Y tế: Vắc xin sởi nhập khẩu an toàn",
    "Bộ Y tế khẳng định vắc-xin sởi nhập khẩu là an toàn",
    "Vắc-xin sởi nhập khẩu an toàn, Bộ Y tế khẳng định",
    "BỘ Y TẾ KHẲNG ĐỊNH VẮC-XIN SỞI NHẬP KHẨU AN TOÀN",
]


def rss(
    items: list[tuple[str, str, str]],
    *,
    encoding: str = "utf-8",
    pub: str = "Mon, 02 Nov 2026 07:30:00 +0700",
) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><description><![CDATA[{d}]]></description>"
        f"<pubDate>{pub}</pubDate></item>"
        for t, link, d in items
    )
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>Tin</title><link>http://x.vn</link><description>d</description>{body}</channel></rss>"
    )
    return encode_1258(xml) if encoding == "windows-1258" else xml.encode(encoding)


_TONES = "\u0300\u0301\u0303\u0309\u0323"


def encode_1258(text: str) -> bytes:
    """windows-1258 as Vietnamese sites wrote it: base letters precomposed, tones combining."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
        out += (base + "".join(c for c in decomposed if c in _TONES)).encode("cp1258")
    return bytes(out)


def atom(items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f'<entry><title>{t}</title><link href="{link}"/><id>{link}</id>'
        f'<updated>2026-11-02T00:15:00Z</updated><summary type="html">{d}</summary></entry>'
        for t, link, d in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Atom</title><id>urn:x</id><updated>2026-11-02T00:00:00Z</updated>{entries}</feed>"
    ).encode()


@dataclass
class FeedServer:
    base: str
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def build_app(server: FeedServer) -> web.Application:
    app = web.Application()
    etag = '"v1"'

    def count(request: web.Request) -> None:
        server.hits[request.path] = server.hits.get(request.path, 0) + 1

    async def rss2(request: web.Request) -> web.Response:
        count(request)
        body = rss(
            [
                (
                    "Cháy lớn tại chợ Đồng Xuân, nhiều ki-ốt bị thiêu rụi",
                    "https://a.vn/chay-cho?utm_source=rss&utm_medium=x",
                    "<p>Đám cháy <b>bùng phát</b> lúc 3h sáng &amp; lan nhanh.</p>"
                    "<script>x()</script>",
                ),
                (
                    "Hà Nội khánh thành cầu vượt mới",
                    "https://a.vn/cau-vuot",
                    "Cây cầu giúp giảm ùn tắc.",
                ),
            ]
        )
        return web.Response(body=body, content_type="application/rss+xml")

    async def atom_feed(request: web.Request) -> web.Response:
        count(request)
        return web.Response(
            body=atom(
                [
                    (
                        "Sốt xuất huyết tăng mạnh ở phía Nam",
                        "https://b.vn/sxh",
                        "Số ca &lt;b&gt;tăng&lt;/b&gt; gấp đôi",
                    )
                ]
            ),
            content_type="application/atom+xml",
        )

    async def bozo(request: web.Request) -> web.Response:
        count(request)
        body = rss([("Giá xăng giảm mạnh", "https://c.vn/xang", "Giá xăng & dầu giảm")])  # bare '&'
        return web.Response(
            body=body.replace(b"<![CDATA[", b"").replace(b"]]>", b""),
            content_type="application/rss+xml",
        )

    async def broken(request: web.Request) -> web.Response:
        count(request)
        return web.Response(
            body=b"<html><body><h1>502 Bad Gateway</h1><p>oops", content_type="text/html"
        )

    async def huge(request: web.Response) -> web.StreamResponse:
        count(request)  # type: ignore[arg-type]
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)  # type: ignore[arg-type]
        chunk = b"<!-- " + b"x" * 65536 + b" -->"
        try:
            for _ in range(64):  # 4 MiB, no Content-Length: the cap must cut it off
                await response.write(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    async def slow(request: web.Request) -> web.Response:
        count(request)
        await asyncio.sleep(2)  # longer than the tests' 1 s total timeout
        return web.Response(body=rss([("Muộn", "https://d.vn/late", "")]))

    async def conditional(request: web.Request) -> web.Response:
        count(request)
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=rss([("Tin có ETag", "https://e.vn/etag", "Nội dung")]),
            headers={"ETag": etag, "Last-Modified": "Mon, 02 Nov 2026 00:00:00 GMT"},
            content_type="application/rss+xml",
        )

    async def loop(request: web.Request) -> web.Response:
        count(request)
        raise web.HTTPFound("/loop2" if request.path == "/loop" else "/loop")

    async def redirect_ok(request: web.Request) -> web.Response:
        count(request)
        raise web.HTTPMovedPermanently("/rss2")

    async def redirect_to(request: web.Request) -> web.Response:
        """/to?target=URL answers 302 to any URL: a feed that bounces to an internal address."""
        count(request)
        raise web.HTTPFound(request.query["target"])

    async def legacy(request: web.Request) -> web.Response:
        count(request)
        body = rss(
            [("Café crème à Paris — été", "https://f.vn/cafe", "Déjà vu, naïve façade")],
            encoding="windows-1252",
        )
        return web.Response(body=body, headers={"Content-Type": "application/rss+xml"})

    async def vietnamese_1258(request: web.Request) -> web.Response:
        count(request)
        # windows-1258 stores tones as combining marks: decoding + NFC must give normal text.
        body = rss([("Lũ lụt ở Quảng Nam", "https://g.vn/lu", "Mưa lớn")], encoding="windows-1258")
        return web.Response(body=body, headers={"Content-Type": "text/xml"})

    async def gz(request: web.Request) -> web.Response:
        count(request)
        body = gzip.compress(rss([("Tin nén gzip", "https://h.vn/gz", "nén")]))
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
        )

    async def outlet(request: web.Request) -> web.Response:
        count(request)
        n = int(request.match_info["n"])
        title = SYNDICATED_TITLES[n % len(SYNDICATED_TITLES)]
        lead = SYNDICATED_LEAD.replace("Chiều 1/11", "Chiều 1/11" if n % 2 else "Chiều ngày 1/11")
        other = (
            "Giá vàng hôm nay tăng nhẹ",
            f"https://o{n}.vn/vang-{n}",
            f"Thị trường vàng trong nước biến động {n}",
        )
        return web.Response(
            body=rss([(title, f"https://o{n}.vn/vac-xin-soi", lead), other]),
            content_type="application/rss+xml",
        )

    for path, handler in [
        ("/rss2", rss2),
        ("/atom", atom_feed),
        ("/bozo", bozo),
        ("/broken", broken),
        ("/huge", huge),
        ("/slow", slow),
        ("/etag", conditional),
        ("/loop", loop),
        ("/loop2", loop),
        ("/moved", redirect_ok),
        ("/to", redirect_to),
        ("/legacy", legacy),
        ("/vn1258", vietnamese_1258),
        ("/gz", gz),
        ("/outlet/{n}", outlet),
    ]:
        app.router.add_get(path, handler)  # type: ignore[arg-type]
    return app
