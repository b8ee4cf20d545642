// Telegram sandbox page: play a member against the bot. Vanilla JS; all text set via textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const LINK_RE = /https:\/\/t\.me\/[+$][A-Za-z0-9_-]+/g;
let state = { bots: [], users: [], groups: [] };
let lastMessages = "";
let lastGroups = "";

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children) node.append(c);
  return node;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const resp = await fetch("/control" + path, opts);
  const data = await resp.json();
  if (!data.ok) throw new Error(data.error || resp.statusText);
  return data.result;
}

function say(text) { $("status").textContent = text; }
const userId = () => Number($("user").value) || null;
const botId = () => Number($("bot").value) || null;

function fillSelect(select, items, label) {
  const key = JSON.stringify(items);
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const keep = select.value;
  select.replaceChildren(...items.map((x) => el("option", { value: String(x.id), textContent: label(x) })));
  if (items.some((x) => String(x.id) === keep)) select.value = keep;
}

async function refreshState() {
  state = await api("/state");
  fillSelect($("bot"), state.bots, (b) => "@" + (b.username || b.id));
  fillSelect($("user"), state.users, (u) => u.first_name + (u.username ? " @" + u.username : "") + " #" + u.id);
}

// Text with t.me links turned into "open as this user" links.
function richText(text) {
  const span = el("span");
  let last = 0;
  for (const m of text.matchAll(LINK_RE)) {
    span.append(text.slice(last, m.index));
    const link = m[0];
    const a = el("a", { className: "tlink", textContent: link, href: "#", title: "open as this user" });
    a.addEventListener("click", (ev) => { ev.preventDefault(); openLink(link); });
    span.append(a);
    last = m.index + link.length;
  }
  span.append(text.slice(last));
  return span;
}

function keyboard(msg) {
  const rows = (msg.reply_markup && msg.reply_markup.inline_keyboard) || [];
  const box = el("div", { className: "kb" });
  for (const row of rows) {
    const r = el("div", { className: "row" });
    for (const b of row) {
      const btn = el("button", { type: "button", textContent: b.text });
      if (b.pay) btn.addEventListener("click", () => pay(msg.message_id));
      else if (b.callback_data !== undefined) btn.addEventListener("click", () => press(msg.message_id, b.callback_data));
      else if (b.url) btn.addEventListener("click", () => (b.url.match(LINK_RE) ? openLink(b.url) : window.open(b.url, "_blank", "noopener")));
      else btn.disabled = true;
      r.append(btn);
    }
    box.append(r);
  }
  return box;
}

function renderMessage(msg, me) {
  const mine = msg.from && msg.from.id === me;
  const node = el("div", { className: "msg" + (mine ? " me" : "") });
  if (msg.invoice) {
    const inv = msg.invoice;
    const price = inv.currency === "XTR" ? inv.total_amount + " ⭐" : (inv.total_amount / 100).toFixed(2) + " " + inv.currency;
    node.append(el("div", { className: "invoice" }, el("b", { textContent: inv.title }), el("br"), inv.description, el("br"), price));
  } else if (msg.successful_payment) {
    const p = msg.successful_payment;
    node.className = "msg service";
    node.append("Paid " + p.total_amount + " " + p.currency + " (" + p.invoice_payload + ")");
  } else if (msg.refunded_payment) {
    node.className = "msg service";
    node.append("Refunded " + msg.refunded_payment.total_amount + " " + msg.refunded_payment.currency);
  } else {
    node.append(richText(msg.text || ""));
  }
  if (msg.reply_markup) node.append(keyboard(msg));
  const when = new Date(msg.date * 1000).toLocaleTimeString();
  node.append(el("div", { className: "meta", textContent: "#" + msg.message_id + " · " + when + (msg.edit_date ? " · edited" : "") }));
  return node;
}

async function refreshMessages() {
  const uid = userId();
  if (!uid || !botId()) { $("messages").replaceChildren(); lastMessages = ""; return; }
  const msgs = await api("/users/" + uid + "/messages?all=1&bot_id=" + botId());
  const key = JSON.stringify(msgs);
  if (key === lastMessages) return;
  lastMessages = key;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...msgs.map((m) => renderMessage(m, uid)));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

async function refreshGroups() {
  const infos = await Promise.all(state.groups.map((g) => api("/chats/" + g.id)));
  const key = JSON.stringify(infos);
  if (key === lastGroups) return;
  lastGroups = key;
  $("groups").replaceChildren(...infos.map((info) => {
    const box = el("div", { className: "group" }, el("b", { textContent: info.chat.title }), " (" + info.chat.type + ")");
    const list = el("ul");
    for (const m of info.members) {
      const name = (m.user.first_name || "") + (m.user.username ? " @" + m.user.username : "") + " #" + m.user.id;
      list.append(el("li", { className: "status-" + m.status, textContent: name + " — " + m.status }));
    }
    box.append(list);
    const uid = userId();
    if (uid && info.members.some((m) => m.user.id === uid && ["member", "restricted", "creator", "administrator"].includes(m.status))) {
      const leave = el("button", { type: "button", textContent: "Leave this group" });
      leave.addEventListener("click", () => act(() => api("/users/" + uid + "/leave", { chat_id: info.chat.id }), "left"));
      box.append(leave);
    }
    return box;
  }));
}

async function act(fn, okText) {
  try { const res = await fn(); say(okText ? okText(res) : "done"); } catch (e) { say("Error: " + e.message); }
  await tick();
}

function send(text) {
  const uid = userId();
  if (!uid || !text) return;
  act(() => api("/users/" + uid + "/send", { text, bot_id: botId() }), () => "sent");
}
function press(messageId, data) {
  act(() => api("/users/" + userId() + "/press", { message_id: messageId, data, bot_id: botId() }), () => "button pressed");
}
function pay(messageId) {
  say("paying… waiting for the bot to confirm");
  act(() => api("/users/" + userId() + "/pay", { message_id: messageId, bot_id: botId() }),
    (r) => "payment: " + r.status + (r.error_message ? " — " + r.error_message : ""));
}
function openLink(link) {
  if (link.includes("/$")) {
    say("paying invoice link…");
    act(() => api("/users/" + userId() + "/pay", { link }), (r) => "payment: " + r.status);
    return;
  }
  act(() => api("/users/" + userId() + "/open_link", { link }), (r) => "link: " + r.result);
}

async function tick() {
  try { await refreshMessages(); await refreshGroups(); } catch (e) { say("Error: " + e.message); }
}

function setup() {
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send($("text").value.trim()); $("text").value = ""; });
  $("quick").querySelector("[data-text]").addEventListener("click", (ev) => send(ev.target.dataset.text));
  $("block").addEventListener("click", () => act(() => api("/users/" + userId() + "/block", { bot_id: botId() }), () => "bot blocked"));
  $("unblock").addEventListener("click", () => act(() => api("/users/" + userId() + "/unblock", { bot_id: botId() }), () => "bot unblocked"));
  $("show-new-user").addEventListener("click", () => { $("new-user").hidden = !$("new-user").hidden; });
  $("toggle-side").addEventListener("click", () => $("side").classList.toggle("open"));
  $("new-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { first_name: $("new-first").value.trim() };
    if ($("new-username").value.trim()) body.username = $("new-username").value.trim();
    try {
      const res = await api("/users", body);
      await refreshState();
      $("user").value = String(res.id);
      $("new-user").hidden = true;
      lastMessages = "";
      await tick();
    } catch (e) { say("Error: " + e.message); }
  });
  $("link-form").addEventListener("submit", (ev) => { ev.preventDefault(); openLink($("link").value.trim()); });
  $("user").addEventListener("change", () => { lastMessages = ""; lastGroups = ""; tick(); });
  $("bot").addEventListener("change", () => { lastMessages = ""; tick(); });
}

setup();
refreshState().then(tick).catch((e) => say("Error: " + e.message));
setInterval(async () => {
  try { await refreshState(); } catch (e) { say("Error: " + e.message); return; }
  await tick();
}, 1000);
