// Telegram sandbox page: play a member against the bot.
// Vanilla JS. Every piece of text goes in through textContent / text nodes, never as HTML markup.
"use strict";

const $ = (id) => document.getElementById(id);
const INVITE_RE = /^https:\/\/t\.me\/(\+|joinchat\/)[A-Za-z0-9_-]+\/?$/;
const INVOICE_LINK_RE = /^https:\/\/t\.me\/\$[A-Za-z0-9_-]+\/?$/;
const URL_IN_TEXT_RE = /https?:\/\/[^\s<>"]+/g;
const IN_CHAT = ["creator", "administrator", "member", "restricted"];
const STATUS_ORDER = ["creator", "administrator", "member", "restricted", "left", "kicked"];
const LINK_RESULTS = {
  joined: ["ok", (g) => "You joined " + g + "."],
  requested: ["ok", (g) => "Join request sent to " + g + " — waiting for an admin (or the bot) to approve."],
  already_member: ["ok", (g) => "You are already a member of " + g + "."],
  expired: ["error", () => "This invite link has expired (or does not exist)."],
  revoked: ["error", () => "This invite link was revoked."],
  banned: ["error", (g) => "You are banned from " + g + "."],
  limit_reached: ["error", () => "This invite link has reached its member limit."],
};
const PAY_RESULTS = {
  paid: ["ok", (r, price) => "✓ Paid " + price],
  declined: ["error", (r) => "Payment declined by the bot" + (r.error_message ? ": " + r.error_message : "")],
  timeout: ["error", () => "The bot did not answer the pre-checkout query in time; nothing was charged."],
};

const S = {
  bots: [], users: [], groups: [], infos: [],
  loaded: false, msgKey: "", groupsKey: "", stickToBottom: true, fastUntil: 0,
  notes: new Map(), // "bot:user:message" → {kind, text}
  busy: new Set(), // "bot:user:message:button" while a request for that button runs
  paidBy: new Map(), // payment message id key → invoice title
};

// ------------------------------------------------------------------ helpers
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "attrs") for (const [a, val] of Object.entries(v)) node.setAttribute(a, val);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let resp;
  try {
    resp = await fetch("/control" + path, opts);
  } catch (e) {
    throw new Error("the sandbox is not reachable");
  }
  let data;
  try { data = await resp.json(); } catch (e) { throw new Error(resp.status + " " + resp.statusText); }
  if (!data.ok) throw new Error(data.error || resp.statusText);
  return data.result;
}

let statusTimer = 0;
function say(text, kind) {
  const box = $("status");
  box.textContent = text;
  box.className = kind || "";
  clearTimeout(statusTimer);
  if (text && kind !== "error") statusTimer = setTimeout(() => { box.textContent = ""; box.className = ""; }, 8000);
}

const userId = () => Number($("user").value) || null;
const botId = () => Number($("bot").value) || null;
const keyOf = (messageId) => botId() + ":" + userId() + ":" + messageId;
const userName = (u) => (u.first_name || "") + (u.last_name ? " " + u.last_name : "") || "#" + u.id;
const userLabel = (u) => userName(u) + (u.username ? " (@" + u.username + ")" : "");
const groupTitle = (id) => {
  const g = S.groups.find((x) => x.id === id);
  return g ? "“" + g.title + "”" : "the group";
};

function price(currency, amount) {
  if (currency === "XTR") return amount + " ⭐";
  return (amount / 100).toFixed(2) + " " + currency;
}

function fillSelect(select, items, label) {
  const key = JSON.stringify(items.map((x) => [x.id, label(x)]));
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const keep = select.value;
  select.replaceChildren(...items.map((x) => el("option", { value: String(x.id), textContent: label(x) })));
  if (items.some((x) => String(x.id) === keep)) select.value = keep;
}

// A first pick for a person playing a member: the remembered one, else someone who owns no group.
function defaultUser() {
  let saved = null;
  try { saved = localStorage.getItem("sandbox.user"); } catch (e) { /* storage may be disabled */ }
  if (saved && S.users.some((u) => String(u.id) === saved)) return saved;
  const owners = new Set(S.infos.map((i) => i.owner_id));
  const member = S.users.find((u) => !owners.has(u.id));
  return member ? String(member.id) : (S.users[0] ? String(S.users[0].id) : "");
}

function remember() {
  try { localStorage.setItem("sandbox.user", $("user").value); } catch (e) { /* ignore */ }
}

// ---------------------------------------------------------- rich message text
function isSafeUrl(url) { return /^https?:\/\//i.test(url); }

function linkTo(url, content, messageId) {
  if (INVITE_RE.test(url) || INVOICE_LINK_RE.test(url)) {
    const a = el("a", { href: url, className: "tlink", title: "Open as this user (inside the sandbox)" }, content);
    a.addEventListener("click", (ev) => { ev.preventDefault(); openLink(url, messageId); });
    return a;
  }
  if (!isSafeUrl(url)) return el("span", {}, content);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, content);
}

// Plain text, with bare URLs made clickable (t.me invite links open as the current user).
function plain(text, messageId) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_IN_TEXT_RE)) {
    const url = m[0].replace(/[.,;:!?)\]]+$/, "");
    frag.append(text.slice(last, m.index), linkTo(url, url, messageId));
    last = m.index + url.length;
  }
  frag.append(text.slice(last));
  return frag;
}

function wrapEntity(e, inner, raw, messageId) {
  switch (e.type) {
    case "bold": return el("b", {}, inner);
    case "italic": return el("i", {}, inner);
    case "underline": return el("u", {}, inner);
    case "strikethrough": return el("s", {}, inner);
    case "code": return el("code", {}, inner);
    case "pre": return el("pre", {}, el("code", {}, inner));
    case "blockquote": case "expandable_blockquote": return el("blockquote", {}, inner);
    case "text_link": return linkTo(e.url || "", inner, messageId);
    case "url": return linkTo(raw.startsWith("http") ? raw : "https://" + raw, inner, messageId);
    case "spoiler": {
      const s = el("span", { className: "spoiler", title: "Spoiler: click to reveal" }, inner);
      s.addEventListener("click", () => s.classList.add("shown"));
      return s;
    }
    case "bot_command": {
      const a = el("a", { href: "#", className: "cmd", title: "Send this command" }, inner);
      a.addEventListener("click", (ev) => { ev.preventDefault(); send(raw.split("@")[0]); });
      return a;
    }
    case "mention": case "text_mention": case "hashtag": case "cashtag":
      return el("span", { className: "mention" }, inner);
    default: return el("span", {}, inner);
  }
}

// Text with Bot API entities (offsets are UTF-16 code units, like JavaScript strings).
function formatted(text, entities, messageId) {
  const ents = (entities || []).filter((e) => e.length > 0 && e.offset >= 0)
    .slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
  const build = (start, end, list) => {
    const frag = document.createDocumentFragment();
    let pos = start;
    let i = 0;
    while (i < list.length) {
      const e = list[i];
      const eEnd = Math.min(e.offset + e.length, end);
      let j = i + 1;
      while (j < list.length && list[j].offset < eEnd) j++;
      if (e.offset >= pos) {
        frag.append(plain(text.slice(pos, e.offset), messageId));
        const inner = j > i + 1 ? build(e.offset, eEnd, list.slice(i + 1, j)) : text.slice(e.offset, eEnd);
        frag.append(wrapEntity(e, inner, text.slice(e.offset, eEnd), messageId));
        pos = eEnd;
      }
      i = j;
    }
    frag.append(plain(text.slice(pos, end), messageId));
    return frag;
  };
  return build(0, text.length, ents);
}

// ------------------------------------------------------------------ messages
function note(msg) {
  const n = S.notes.get(keyOf(msg.message_id));
  if (n && msg.invoice && n.kind === "ok") return null; // shown on the Pay button itself
  return n ? el("div", { className: "note " + n.kind, attrs: { role: "status" } }, n.text) : null;
}

function setNote(key, kind, text) {
  S.notes.set(key, { kind, text });
  S.msgKey = "";
}

function keyboard(msg, synthesizedPay) {
  const rows = (msg.reply_markup && msg.reply_markup.inline_keyboard) || [];
  const all = synthesizedPay ? [[synthesizedPay], ...rows] : rows;
  if (!all.length) return null;
  const paid = msg.invoice && S.notes.get(keyOf(msg.message_id));
  const box = el("div", { className: "kb" });
  all.forEach((row, r) => {
    const line = el("div", { className: "row" });
    row.forEach((b, c) => {
      const busyKey = keyOf(msg.message_id) + ":" + r + ":" + c;
      const busy = S.busy.has(busyKey);
      if (b.url && !INVITE_RE.test(b.url) && !INVOICE_LINK_RE.test(b.url)) {
        const a = isSafeUrl(b.url)
          ? el("a", { className: "kbtn", href: b.url, target: "_blank", rel: "noopener noreferrer", textContent: b.text + " ↗" })
          : el("span", { className: "kbtn off", textContent: b.text });
        line.append(a);
        return;
      }
      const btn = el("button", { type: "button", className: "kbtn", textContent: b.text });
      if (busy) { btn.disabled = true; btn.classList.add("busy"); }
      if (b.pay) {
        btn.classList.add("pay");
        if (paid && paid.kind === "ok") { btn.disabled = true; btn.textContent = paid.text; }
        btn.addEventListener("click", () => pay(msg, busyKey));
      } else if (b.callback_data !== undefined) {
        btn.addEventListener("click", () => press(msg.message_id, b.callback_data, busyKey));
      } else if (b.url) {
        btn.title = "Opens the link as this user, inside the sandbox";
        btn.addEventListener("click", () => openLink(b.url, msg.message_id, busyKey));
      } else if (b.copy_text) {
        btn.addEventListener("click", () => copy(b.copy_text.text));
      } else {
        btn.disabled = true;
        btn.title = "This kind of button is not supported in the sandbox";
      }
      line.append(btn);
    });
    box.append(line);
  });
  return box;
}

function invoiceCard(inv) {
  return el("div", { className: "invoice" },
    el("div", { className: "inv-title", textContent: inv.title }),
    inv.description ? el("div", { className: "inv-desc", textContent: inv.description }) : null,
    el("div", { className: "inv-price", textContent: price(inv.currency, inv.total_amount) }));
}

function renderMessage(msg, me) {
  const mine = Boolean(msg.from && msg.from.id === me);
  const node = el("div", { className: "msg" + (mine ? " me" : " them"), dataset: { messageId: String(msg.message_id) } });
  let synthesizedPay = null;
  if (msg.successful_payment) {
    const p = msg.successful_payment;
    node.className = "msg service";
    const what = S.paidBy.get(keyOf(msg.message_id));
    let text = "You paid " + price(p.currency, p.total_amount) + (what ? " for " + what : "");
    if (p.subscription_expiration_date) {
      text += " · subscription renews " + new Date(p.subscription_expiration_date * 1000).toLocaleDateString();
    }
    node.append(text);
    node.title = "charge " + p.telegram_payment_charge_id;
    return node;
  }
  if (msg.refunded_payment) {
    const p = msg.refunded_payment;
    node.className = "msg service";
    node.append("Refunded " + price(p.currency, p.total_amount));
    return node;
  }
  if (msg.invoice) {
    node.classList.add("has-invoice");
    node.append(invoiceCard(msg.invoice));
    const hasPay = ((msg.reply_markup && msg.reply_markup.inline_keyboard) || []).some((r) => r.some((b) => b.pay));
    if (!hasPay) synthesizedPay = { text: "Pay " + price(msg.invoice.currency, msg.invoice.total_amount), pay: true };
  } else if (msg.text !== undefined) {
    node.append(el("div", { className: "text" }, formatted(msg.text, msg.entities, msg.message_id)));
  } else {
    const kind = ["photo", "video", "document", "audio", "voice", "sticker", "animation", "location", "contact", "poll"]
      .find((k) => msg[k] !== undefined);
    node.append(el("div", { className: "muted", textContent: "[" + (kind || "unsupported message") + "]" }));
    if (msg.caption) node.append(el("div", { className: "text" }, formatted(msg.caption, msg.caption_entities, msg.message_id)));
  }
  node.append(el("div", { className: "meta", textContent:
    new Date(msg.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) + (msg.edit_date ? " · edited" : ""),
    title: "message #" + msg.message_id }));
  const kb = keyboard(msg, synthesizedPay);
  const n = note(msg);
  if (!kb && !n) return node;
  return el("div", { className: "msg-group" + (mine ? " me" : "") }, node, kb, n);
}

// The last reply keyboard the bot sent (unless removed later).
function replyKeyboard(msgs, me) {
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (!m.from || m.from.id === me || !m.reply_markup) continue;
    if (m.reply_markup.remove_keyboard) return null;
    if (m.reply_markup.keyboard) return m.reply_markup.keyboard;
  }
  return null;
}

function renderReplyKeyboard(rows) {
  const box = $("reply-kb");
  box.hidden = !rows;
  if (!rows) { box.replaceChildren(); return; }
  box.replaceChildren(...rows.map((row) => el("div", { className: "row" }, ...row.map((b) => {
    const text = typeof b === "string" ? b : b.text;
    const btn = el("button", { type: "button", className: "kbtn", textContent: text });
    btn.addEventListener("click", () => send(text));
    return btn;
  }))));
}

function emptyChat() {
  const start = el("button", { type: "button", className: "start", textContent: "Start" });
  start.addEventListener("click", () => send("/start"));
  return el("div", { className: "empty" }, el("p", { textContent: "No messages with this bot yet." }), start);
}

async function refreshMessages() {
  const uid = userId();
  const bid = botId();
  const box = $("messages");
  if (!uid || !bid) {
    box.replaceChildren(el("p", { className: "empty", textContent: S.users.length ? "Pick a bot." : "Create a user first." }));
    S.msgKey = "";
    return;
  }
  const msgs = await api("/users/" + uid + "/messages?all=1&bot_id=" + bid);
  if (uid !== userId() || bid !== botId()) return; // the picker changed while we waited
  const key = JSON.stringify([uid, bid, msgs, [...S.busy]]);
  if (key === S.msgKey) return;
  S.msgKey = key;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  box.replaceChildren(...(msgs.length ? msgs.map((m) => renderMessage(m, uid)) : [emptyChat()]));
  renderReplyKeyboard(replyKeyboard(msgs, uid));
  if (atBottom || S.stickToBottom) box.scrollTop = box.scrollHeight;
  S.stickToBottom = false;
}

// -------------------------------------------------------------------- groups
function memberItem(m, uid) {
  const u = m.user;
  const you = u.id === uid;
  return el("li", { className: you ? "you" : "", dataset: { userId: String(u.id), status: m.status } },
    el("span", { className: "who-line", title: userLabel(u) + " · #" + u.id },
      el("span", { className: "name", textContent: userName(u) }),
      u.username ? el("span", { className: "muted", textContent: " @" + u.username }) : null),
    u.is_bot ? el("span", { className: "tag", textContent: "bot" }) : null,
    you ? el("span", { className: "tag you-tag", textContent: "you" }) : null,
    el("span", { className: "badge status-" + m.status, textContent: m.status }));
}

function renderGroups() {
  const uid = userId();
  const key = JSON.stringify([uid, S.infos]);
  if (key === S.groupsKey) return;
  S.groupsKey = key;
  const box = $("groups");
  if (!S.infos.length) {
    box.replaceChildren(el("p", { className: "empty", textContent: "No groups in this sandbox." }));
    return;
  }
  box.replaceChildren(...S.infos.map((info) => {
    const members = info.members.slice().sort((a, b) =>
      STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status));
    const inside = members.filter((m) => IN_CHAT.includes(m.status)).length;
    const card = el("section", { className: "group", dataset: { chatId: String(info.chat.id) } },
      el("div", { className: "group-head" },
        el("span", { className: "avatar small", textContent: (info.chat.title || "?").slice(0, 1).toUpperCase(), attrs: { "aria-hidden": "true" } }),
        el("div", {},
          el("b", { textContent: info.chat.title }),
          el("div", { className: "muted", textContent: info.chat.type + " · " + inside + (inside === 1 ? " member" : " members") }))),
      el("ul", { className: "members", attrs: { "aria-label": "Members of " + info.chat.title } },
        ...members.map((m) => memberItem(m, uid))));
    const requests = (info.join_requests || []).map((id) => S.users.find((u) => u.id === id)).filter(Boolean);
    if (requests.length) {
      card.append(el("div", { className: "muted", textContent: "Join requests: " + requests.map(userName).join(", ") }));
    }
    const mine = members.find((m) => m.user.id === uid);
    if (mine && IN_CHAT.includes(mine.status) && mine.status !== "creator") {
      const leave = el("button", { type: "button", className: "plain danger", textContent: "Leave this group" });
      leave.addEventListener("click", () => act(() => api("/users/" + uid + "/leave", { chat_id: info.chat.id }),
        () => ["ok", "You left " + groupTitle(info.chat.id) + "."]));
      card.append(leave);
    }
    return card;
  }));
}

async function refreshGroups() {
  const infos = await Promise.all(S.groups.map((g) => api("/chats/" + g.id)));
  S.infos = infos;
  renderGroups();
}

// ------------------------------------------------------------------- refresh
async function refreshState() {
  const st = await api("/state");
  S.bots = st.bots;
  S.users = st.users;
  S.groups = st.groups;
  fillSelect($("bot"), S.bots, (b) => b.first_name + (b.username ? " (@" + b.username + ")" : ""));
  $("bot-pick").hidden = S.bots.length < 2;
  fillSelect($("user"), S.users, userLabel);
  const bot = S.bots.find((b) => b.id === botId());
  $("bot-name").textContent = bot ? bot.first_name : "No bot";
  $("bot-handle").textContent = bot && bot.username ? "@" + bot.username + " · bot" : "";
  $("bot-avatar").textContent = bot ? bot.first_name.slice(0, 1).toUpperCase() : "?";
}

async function refreshOnce() {
  await refreshState();
  if (!S.loaded) {
    await refreshGroups();
    $("user").value = defaultUser();
    S.loaded = true;
  }
  await refreshMessages();
  await refreshGroups();
}

// One refresh at a time; a request made while one runs schedules one more run after it.
let running = null;
let again = false;
function refresh() {
  if (running) { again = true; return running; }
  running = (async () => {
    try {
      do { again = false; await refreshOnce(); } while (again);
      $("offline").hidden = true;
    } catch (e) {
      $("offline").hidden = false;
      $("offline").textContent = "Sandbox: " + e.message + " — retrying…";
    } finally {
      running = null;
    }
  })();
  return running;
}

function poll() {
  refresh().finally(() => {
    const delay = document.hidden ? 3000 : Date.now() < S.fastUntil ? 250 : 1000;
    setTimeout(poll, delay);
  });
}

// ------------------------------------------------------------------- actions
async function act(fn, describe, busyKey) {
  S.fastUntil = Date.now() + 5000;
  if (busyKey) { S.busy.add(busyKey); S.msgKey = ""; refresh(); }
  try {
    const res = await fn();
    const [kind, text, onMessage] = describe ? describe(res) : ["ok", ""];
    say(onMessage ? "" : text, kind); // a result shown on its message is not repeated below
  } catch (e) {
    say("Error: " + e.message, "error");
  } finally {
    if (busyKey) { S.busy.delete(busyKey); S.msgKey = ""; }
  }
  await refresh();
}

function send(text) {
  const uid = userId();
  if (!uid || !text) return;
  S.stickToBottom = true;
  act(() => api("/users/" + uid + "/send", { text, bot_id: botId() }));
}

function press(messageId, data, busyKey) {
  S.stickToBottom = true;
  act(() => api("/users/" + userId() + "/press", { message_id: messageId, data, bot_id: botId() }), null, busyKey);
}

function pay(msg, busyKey) {
  const key = keyOf(msg.message_id);
  const inv = msg.invoice;
  const amount = price(inv.currency, inv.total_amount);
  say("Paying " + amount + " — waiting for the bot to confirm…", "");
  S.stickToBottom = true;
  act(() => api("/users/" + userId() + "/pay", { message_id: msg.message_id, bot_id: botId() }), (r) => {
    const entry = PAY_RESULTS[r.status];
    const kind = entry ? entry[0] : "error";
    const text = entry ? entry[1](r, amount) : "Payment: " + r.status;
    setNote(key, kind, text);
    if (r.status === "paid" && r.message_id) S.paidBy.set(keyOf(r.message_id), inv.title);
    return [kind, text, true];
  }, busyKey);
}

function groupOfLink(link) {
  const info = S.infos.find((i) => (i.links || []).some((l) => l.invite_link === link));
  return info ? groupTitle(info.chat.id) : "the group";
}

function openLink(link, messageId, busyKey) {
  const uid = userId();
  if (!uid || !link) return;
  const noteKey = messageId === undefined ? null : keyOf(messageId);
  if (INVOICE_LINK_RE.test(link)) {
    say("Paying the invoice link — waiting for the bot to confirm…", "");
    act(() => api("/users/" + uid + "/pay", { link }), (r) => {
      const [kind, text] = r.status === "paid" ? ["ok", "✓ Paid"] : ["error", "Payment: " + r.status + (r.error_message ? " — " + r.error_message : "")];
      if (noteKey) setNote(noteKey, kind, text);
      return [kind, text, Boolean(noteKey)];
    }, busyKey);
    return;
  }
  if (!INVITE_RE.test(link)) {
    say("Only t.me invite links (https://t.me/+…) and invoice links (https://t.me/$…) can be opened here.", "error");
    return;
  }
  act(async () => {
    const res = await api("/users/" + uid + "/open_link", { link });
    await refreshGroups().catch(() => undefined);
    return res;
  }, (r) => {
    const entry = LINK_RESULTS[r.result];
    const kind = entry ? entry[0] : "error";
    const text = entry ? entry[1](groupOfLink(link)) : "Link: " + r.result;
    if (noteKey) setNote(noteKey, kind, text);
    return [kind, text, Boolean(noteKey)];
  }, busyKey);
}

async function copy(text) {
  try { await navigator.clipboard.writeText(text); say("Copied to the clipboard.", "ok"); } catch (e) { say("Could not copy: " + text, "error"); }
}

// --------------------------------------------------------------------- setup
function toggleNewUser(show) {
  const form = $("new-user");
  form.hidden = !show;
  $("show-new-user").setAttribute("aria-expanded", String(show));
  $("new-user-error").textContent = "";
  if (show) $("new-first").focus();
}

function toggleSide(show) {
  document.body.classList.toggle("side-open", show);
  $("toggle-side").setAttribute("aria-expanded", String(show));
  $("toggle-side").textContent = show ? "Chat" : "Groups";
}

function userChanged() {
  remember();
  S.msgKey = "";
  S.groupsKey = "";
  S.stickToBottom = true;
  $("status").textContent = "";
  renderGroups();
  refresh();
}

function setup() {
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    send(text);
  });
  $("chat-menu").addEventListener("click", (ev) => {
    const target = ev.target.closest("button");
    if (!target) return;
    $("chat-menu").open = false;
    const uid = userId();
    if (target.dataset.send) send(target.dataset.send);
    else if (target.id === "block") act(() => api("/users/" + uid + "/block", { bot_id: botId() }), () => ["ok", "You blocked the bot."]);
    else if (target.id === "unblock") act(() => api("/users/" + uid + "/unblock", { bot_id: botId() }), () => ["ok", "You unblocked the bot."]);
  });
  $("show-new-user").addEventListener("click", () => toggleNewUser($("new-user").hidden));
  $("cancel-new-user").addEventListener("click", () => toggleNewUser(false));
  $("toggle-side").addEventListener("click", () => toggleSide(!document.body.classList.contains("side-open")));
  $("new-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { first_name: $("new-first").value.trim() };
    const username = $("new-username").value.trim().replace(/^@/, "");
    if (username) body.username = username;
    if (!body.first_name) { $("new-user-error").textContent = "A first name is needed."; return; }
    try {
      const res = await api("/users", body);
      await refreshState();
      $("user").value = String(res.id);
      $("new-first").value = "";
      $("new-username").value = "";
      toggleNewUser(false);
      userChanged();
      say("You are now " + body.first_name + " (#" + res.id + ").", "ok");
    } catch (e) {
      $("new-user-error").textContent = "Error: " + e.message;
    }
  });
  $("link-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    openLink($("link").value.trim());
  });
  $("user").addEventListener("change", userChanged);
  $("bot").addEventListener("change", () => { S.msgKey = ""; S.stickToBottom = true; refresh(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { $("chat-menu").open = false; toggleNewUser(false); }
  });
}

setup();
poll();
