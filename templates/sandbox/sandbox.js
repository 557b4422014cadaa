// CrisisDesk sandbox page: a small messenger client over the sandbox backend (/api/...).
"use strict";
(function () {
  const S = window.SANDBOX;
  const T = S.strings;
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774", "#517da2"];
  const state = { user: null, chat: null, thread: null, key: null, personas: [], chats: [], lastChatJson: "",
    replyTo: null, dismissed: new Set() };

  function api(path, body) {
    const sep = path.includes("?") ? "&" : "?";
    const url = "api/" + path + sep + "lang=" + S.lang;
    const options = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    return fetch(url, options).then(async (r) => {
      const data = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(data.error || r.statusText);
      return data;
    });
  }

  // Telegram personas have numbers; Zalo personas "zalo:<account>".
  const pid = (v) => (/^-?\d+$/.test(String(v)) ? Number(v) : String(v));

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  function color(seed) { return COLORS[Math.abs(Number(seed) || 0) % COLORS.length]; }
  function initials(name) {
    const words = String(name).replace(/[^\p{L}\p{N} ]/gu, " ").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : words[0].slice(0, 2)).toUpperCase();
  }

  let toastTimer = null;
  function toast(text) {
    const el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 3200);
  }
  function alertBox(text) {
    $("alert-text").textContent = text;
    $("alert-box").hidden = false;
  }
  $("alert-ok").addEventListener("click", () => { $("alert-box").hidden = true; });

  // ------------------------------------------------------------------ personas

  function renderPersonas() {
    const select = $("persona");
    const html = state.personas.map((p) =>
      `<option value="${p.id}">${esc(p.name)} — ${esc(p.role)}</option>`).join("");
    if (select.dataset.html !== html) { select.innerHTML = html; select.dataset.html = html; }
    select.value = String(state.user);
  }
  $("persona").addEventListener("change", (e) => selectPersona(pid(e.target.value)));
  $("new-persona").addEventListener("click", () => {
    const name = (prompt(T.new_persona_prompt) || "").trim();
    if (!name) return;
    const parts = name.split(/\s+/);
    const first = parts.pop();
    api("personas", { first_name: first, last_name: parts.join(" "), lang: S.lang })
      .then((r) => refreshState().then(() => selectPersona(r.id)))
      .catch((e) => toast(T.error + ": " + e.message));
  });

  function selectPersona(id) {
    state.user = id;
    state.chat = null; state.thread = null; state.key = null; state.lastChatJson = "";
    // Nothing of the previous persona stays on screen while the new one's chats load.
    state.chats = [];
    renderChats();
    $("messages").innerHTML = "";
    localStorage.setItem("sandbox.user", String(id));
    refreshState().then(() => {
      const bot = state.chats.find((c) => c.kind === "bot");
      if (bot) openChat(bot.key);
    });
  }

  // ------------------------------------------------------------------ chat list

  function renderChats() {
    const list = $("chat-list");
    list.innerHTML = state.chats.map((c) => {
      const topic = c.forum && c.thread_id !== null;
      const title = c.forum ? (c.thread_id === null ? c.title : c.topic) : c.title;
      const avatarText = c.messenger === "zalo" ? "Z" : c.kind === "bot" ? "CD" : c.forum && c.thread_id !== null ? "#" : initials(c.title);
      return `<li class="chat-item${c.key === state.key ? " active" : ""}${topic ? " topic" : ""}"
          data-key="${esc(c.key)}" data-kind="${c.kind}" data-messenger="${c.messenger || "telegram"}" data-title="${esc(c.title)}" data-testid="chat-item">
        <div class="avatar" style="background:${color(c.chat_id + (c.thread_id || 0))}">${esc(avatarText)}</div>
        <div class="chat-text">
          <div class="chat-title"><span class="name">${esc(topic ? c.topic : title)}${c.closed ? ` <small class="closed-tag">${esc(T.topic_closed)}</small>` : ""}</span>
            <span class="time">${esc(c.time)}</span></div>
          <div class="preview">${esc(c.preview || "")}</div>
        </div></li>`;
    }).join("");
  }
  $("chat-list").addEventListener("click", (e) => {
    const item = e.target.closest(".chat-item");
    if (item) openChat(item.dataset.key);
  });

  function openChat(key) {
    const entry = state.chats.find((c) => c.key === key);
    if (!entry) return;
    state.key = key; state.chat = entry.chat_id; state.thread = entry.thread_id; state.lastChatJson = "";
    setReply(null, "");
    renderChats();
    refreshChat(true);
  }

  // ------------------------------------------------------------------ a conversation

  function renderButtons(m) {
    if (!m.buttons.length) return "";
    return `<div class="inline-kb">` + m.buttons.map((row) => `<div class="inline-row">` + row.map((b) =>
      b.url
        ? `<a href="${esc(b.url)}" data-link="${esc(b.url)}" target="_blank" rel="noopener" data-testid="inline-button">${esc(b.text)} ↗</a>`
        : `<button type="button" data-message="${m.id}" data-data="${esc(b.data || "")}" data-testid="inline-button">${esc(b.text)}</button>`
    ).join("") + `</div>`).join("") + `</div>`;
  }

  function renderMessage(m, chat) {
    if (m.service) return `<div class="service" data-id="${m.id}">${esc(m.service)}</div>`;
    const showSender = !m.mine && chat.kind !== "bot";
    let body = "";
    if (m.reply_to) body += `<div class="reply-quote">${esc(m.reply_to.text)}</div>`;
    if (showSender) body += `<div class="sender">${esc(m.sender)}</div>`;
    if (m.photo) body += `<a href="${esc(m.photo)}" target="_blank"><img class="photo" src="${esc(m.photo)}" alt="${esc(T.photo)}" data-testid="photo"></a>`;
    if (m.document) body += `<a class="doc" href="${esc(m.document.url)}" download="${esc(m.document.name)}" data-testid="document">
      <span class="doc-icon">↓</span><span><b>${esc(m.document.name)}</b><br><small>${Math.max(1, Math.round(m.document.size / 1024))} KB</small></span></a>`;
    if (m.contact) body += `<div class="contact-card"><div class="avatar small" style="background:${color(m.id)}">${esc(initials(m.contact.name))}</div>
      <div><b>${esc(m.contact.name)}</b><br>${esc(m.contact.phone)}</div></div>`;
    const meta = `<span class="meta">${m.edited ? esc(T.edited) + " " : ""}${m.pinned ? "📌 " : ""}${esc(m.time)}${m.mine ? " ✓✓" : ""}</span>`;
    body += `<div class="text">${m.html}${meta}</div>`;
    const snippet = (m.html ? m.html.replace(/<[^>]+>/g, " ") : m.photo ? T.photo : m.document ? T.document : "").slice(0, 100);
    return `<div class="msg${m.mine ? " mine" : ""}" data-id="${m.id}" data-testid="message">
      <div class="bubble">${body}</div>${renderButtons(m)}
      <button type="button" class="reply-btn" data-reply="${m.id}" data-snippet="${esc(snippet)}" title="${esc(T.reply)}" data-testid="reply">↩</button></div>`;
  }

  function renderHead(chat) {
    const sub = chat.messenger === "zalo" ? T.zalo_sub : chat.kind === "bot" ? T.bot : `${chat.members} ${T.members}`;
    const entry = state.chats.find((c) => c.key === state.key) || {};
    const title = entry.forum && entry.thread_id !== null ? entry.topic : chat.title;
    const avatarText = chat.messenger === "zalo" ? "Z" : chat.kind === "bot" ? "CD" : initials(chat.title);
    $("conv-head").innerHTML = `<div class="avatar small" style="background:${color(chat.chat_id + (chat.thread_id || 0))}">${esc(avatarText)}</div>
      <div><div class="title" data-testid="chat-title">${esc(title)}</div><div class="sub">${esc(entry.forum && entry.thread_id !== null ? chat.title + " · " + sub : sub)}</div></div>`;
  }

  function renderChat(chat) {
    $("conversation").classList.toggle("zalo", chat.messenger === "zalo");
    renderHead(chat);
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    box.innerHTML = chat.messages.length
      ? chat.messages.map((m) => renderMessage(m, chat)).join("")
      : `<div class="empty">${esc(T.no_messages)}</div>`;
    if (nearBottom || state.forceScroll) box.scrollTop = box.scrollHeight;
    state.forceScroll = false;
    box.querySelectorAll("img.photo").forEach((img) => img.addEventListener("load", () => {
      box.scrollTop = box.scrollHeight;
    }, { once: true }));
    const pinned = $("pinned-bar");
    pinned.hidden = !chat.pinned;
    if (chat.pinned) pinned.innerHTML = `<b>${esc(T.pinned)}</b>${esc(chat.pinned.text)}`;
    const kb = $("reply-keyboard");
    kb.hidden = !chat.reply_keyboard;
    if (chat.reply_keyboard) {
      kb.innerHTML = chat.reply_keyboard.rows.map((row) => `<div class="row">` + row.map((b) =>
        `<button type="button" class="${b.contact ? "contact" : ""}" data-contact="${b.contact ? 1 : 0}" data-text="${esc(b.text)}" data-testid="reply-button">${esc(b.contact ? T.share_phone : b.text)}</button>`
      ).join("") + `</div>`).join("");
    } else {
      kb.innerHTML = "";  // no stale keyboard (another chat's, or one removed) left behind
    }
    if (chat.force_reply && !state.replyTo && !state.dismissed.has(chat.force_reply.id)) {
      setReply(chat.force_reply.id, chat.force_reply.text);
    }
    const composer = $("composer");
    composer.hidden = !chat.can_write;
    $("composer-input").disabled = chat.closed;
    $("composer-input").placeholder = chat.closed ? T.topic_closed : T.type_message;
  }

  function setReply(id, text) {
    state.replyTo = id;
    $("reply-text").textContent = text;
    $("reply-bar").hidden = id === null;
    if (id !== null) $("composer-input").focus();
  }
  $("reply-cancel").addEventListener("click", () => {
    if (state.replyTo) state.dismissed.add(state.replyTo);
    setReply(null, "");
  });

  let chatRequests = 0;
  function refreshChat(scroll) {
    if (state.chat === null) return Promise.resolve();
    const q = `chat?user=${state.user}&chat=${state.chat}` + (state.thread !== null ? `&thread=${state.thread}` : "");
    const key = state.key, user = state.user, request = ++chatRequests;
    // Only the newest request for the chat still open, as the person still chosen, is shown.
    const current = () => request === chatRequests && key === state.key && user === state.user;
    return api(q).then((chat) => {
      if (!current()) return;
      const json = JSON.stringify(chat);
      if (json === state.lastChatJson && !scroll) return;
      state.lastChatJson = json;
      if (scroll) state.forceScroll = true;
      renderChat(chat);
    }).catch(() => {
      if (!current()) return;
      state.chat = null; state.key = null;
      $("messages").innerHTML = `<div class="empty">${esc(T.not_member)}</div>`;
    });
  }

  // ------------------------------------------------------------------ acting

  function send(text) {
    if (!text.trim() || state.chat === null) return;
    state.forceScroll = true;
    const replyTo = state.replyTo;
    if (replyTo) state.dismissed.add(replyTo);
    setReply(null, "");
    api("send", { user: state.user, chat: state.chat, thread: state.thread, text, reply_to: replyTo })
      .then(() => refreshChat(true)).catch((e) => toast(T.error + ": " + e.message));
  }
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("composer-input");
    send(input.value);
    input.value = "";
  });
  $("reply-keyboard").addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.contact === "1") {
      api("contact", { user: state.user, chat: state.chat }).then(() => refreshChat(true))
        .catch((err) => toast(T.error + ": " + err.message));
    } else {
      send(b.dataset.text);
    }
  });
  $("messages").addEventListener("click", (e) => {
    const replyButton = e.target.closest("button[data-reply]");
    if (replyButton) { setReply(Number(replyButton.dataset.reply), replyButton.dataset.snippet); return; }
    const button = e.target.closest("button[data-data]");
    if (button) {
      button.disabled = true;
      api("press", { user: state.user, chat: state.chat, message_id: Number(button.dataset.message), data: button.dataset.data })
        .then((r) => {
          const a = r.answer || {};
          if (a.text && a.show_alert) alertBox(a.text);
          else if (a.text) toast(a.text);
          if (a.url) window.open(a.url, "_blank");
        })
        .catch((err) => toast(err.message.includes("did not answer") ? T.no_answer : T.error + ": " + err.message))
        .finally(() => { button.disabled = false; refreshChat(); });
      return;
    }
    const command = e.target.closest("a.cmd");
    if (command) { e.preventDefault(); send(command.dataset.command); return; }
    const link = e.target.closest("a[data-link]");
    if (link && link.dataset.link.startsWith("https://t.me/")) {
      e.preventDefault();
      api("link", { user: state.user, url: link.dataset.link }).then((r) => {
        if (r.result === "requested") toast(T.join_requested);
        else if (r.result === "joined") toast(T.joined);
        else if (r.result === "member") toast(T.already_member);
        else if (r.result === "not_member") toast(T.not_member);
        else if (r.result === "open") {
          return refreshState().then(() => openChat(`${r.chat_id}:${r.thread_id === null ? "" : r.thread_id}`));
        }
        else window.open(link.dataset.link, "_blank");
        return refreshState();
      }).catch((err) => toast(T.error + ": " + err.message));
    }
  });

  // ------------------------------------------------------------------ clock and drill

  function renderClock(clock) {
    $("clock-time").textContent = clock.local;
    $("clock-date").textContent = clock.date;
    $("clock-speed").textContent = clock.paused ? "‖" : "×" + Math.round(clock.speed);
    $("clock-toggle").textContent = clock.paused ? T.play : T.pause;
    $("clock-toggle").dataset.action = clock.paused ? "play" : "pause";
  }
  $("clock-toggle").addEventListener("click", (e) => {
    api("clock", { action: e.target.dataset.action }).then((r) => renderClock(r.clock));
  });
  $("clock-advance").addEventListener("click", () => {
    api("clock", { action: "advance", minutes: 60 }).then((r) => renderClock(r.clock));
  });
  $("clock-advance15").addEventListener("click", () => {
    api("clock", { action: "advance", minutes: 15 }).then((r) => renderClock(r.clock));
  });

  function drillStep(s) {
    return `<li class="${s.status}" data-number="${s.number}" data-step="${s.key}" data-status="${s.status}" data-testid="drill-step">
        ${s.text}${s.status === "unavailable" ? ` <small>(${esc(T.drill_unavailable)})</small>` : ""}
        ${s.status === "current" && s.persona_id !== state.user ? `<span class="who"><button type="button" data-persona="${s.persona_id}">${esc(T.drill_switch)} ${esc(s.persona)}</button></span>` : ""}
      </li>`;
  }

  function renderDrill(drill) {
    const list = $("drill-steps");
    if (!list || !drill) return;
    const zalo = (drill.zalo_steps || []).length
      ? `<div class="drill-track" data-testid="drill-zalo">${esc(T.drill_zalo)}</div>` + drill.zalo_steps.map(drillStep).join("")
      : "";
    const html = drill.steps.map(drillStep).join("") + (drill.finished ? `<div class="finished" data-testid="drill-finished">${esc(T.drill_finished)}</div>` : "")
      + (drill.waiting ? `<div class="drill-waiting" data-testid="drill-waiting">${esc(T.drill_waiting)} <button type="button" data-drill="start" data-testid="drill-start">${esc(T.drill_start)}</button></div>` : "")
      + zalo
      + `<div class="drill-controls"><button type="button" data-drill="reset" data-testid="drill-reset">${esc(T.drill_reset)}</button></div>`;
    if (list.dataset.html !== html) {
      list.innerHTML = html; list.dataset.html = html;
      const current = list.querySelector("li.current");
      if (current) current.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }
  document.addEventListener("click", (e) => {
    const b = e.target.closest("#drill-steps button[data-persona]");
    if (b) selectPersona(pid(b.dataset.persona));
    const d = e.target.closest("#drill-steps button[data-drill]");
    if (!d) return;
    if (d.dataset.drill === "reset" && !window.confirm(T.drill_reset_confirm)) return;
    d.disabled = true;
    api("drill", { action: d.dataset.drill })
      .then((r) => { renderClock(r.clock); return refreshAll(); })
      .catch((err) => toast(T.error + ": " + err.message));
  });

  // ------------------------------------------------------------------ refresh loop

  function refreshState() {
    const user = state.user;
    const q = user !== null ? `state?user=${user}` : "state";
    return api(q).then((s) => {
      state.personas = s.personas;
      if (state.user === null) {
        const saved = pid(localStorage.getItem("sandbox.user"));
        const known = s.personas.some((p) => p.id === saved);
        state.user = known ? saved : s.personas.find((p) => p.key === (S.drill ? "spokesperson" : "admin")).id;
        return refreshState();
      }
      // An answer asked for before a persona switch lists the other persona's chats.
      if (user !== state.user) return s;
      state.chats = s.chats || [];
      renderPersonas();
      renderChats();
      renderClock(s.clock);
      renderDrill(s.drill);
      return s;
    });
  }

  let refreshing = false, again = false;
  function refreshAll() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    Promise.all([refreshState(), refreshChat()]).finally(() => {
      refreshing = false;
      if (again) { again = false; refreshAll(); }
    });
  }

  function connect() {
    const events = new EventSource("api/events");
    events.addEventListener("change", refreshAll);
    events.addEventListener("tick", refreshAll);
    events.onerror = () => { events.close(); setTimeout(connect, 1500); };
  }

  refreshState().then(() => {
    const bot = state.chats.find((c) => c.kind === "bot");
    if (bot) openChat(bot.key);
    connect();
  });
})();
