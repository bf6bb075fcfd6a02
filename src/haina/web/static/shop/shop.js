// The Haina reference shop: a buyer's whole way (search, a tire with a fitting appointment,
// sign-in by SMS code, checkout, payment) through the Storefront API, /store/v1, and nothing
// else. Copy it: the publishable key is the only thing the page needs (data-key on <body>).
"use strict";

const API = "/store/v1";
const KEY = document.body.dataset.key;
const SANDBOX = document.body.dataset.sandbox === "yes";
const HERE = { lat: 31.2304, lng: 121.4737 }; // Shanghai, where the demo's shops are
const QUANTITY = 4; // tires are fitted four at a time

const state = {
  token: sessionStorage.getItem("haina.access"),
  refresh: sessionStorage.getItem("haina.refresh"),
  pick: null,        // {sku, title, point, start}: the tire and slot chosen
  cart: null, booking: null,
  checkoutKey: null, // one Idempotency-Key per checkout: a retry never orders twice
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the API, one function

async function api(method, path, body, headers = {}) {
  const h = { "X-Publishable-Key": KEY, ...headers };
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const r = await fetch(API + path, {
    method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && state.refresh && !path.startsWith("/sign-in")) {
    if (await refreshSession()) return api(method, path, body, headers); // once more, fresh
  }
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) { // RFC 9457 problem: show its detail
    const e = new Error(data && data.detail ? data.detail : r.statusText);
    e.problem = data;
    throw e;
  }
  return data;
}

function keepSession(s) {
  state.token = s ? s.access_token : null;
  state.refresh = s ? s.refresh_token : null;
  for (const [k, v] of [["haina.access", state.token], ["haina.refresh", state.refresh]]) {
    if (v) sessionStorage.setItem(k, v); else sessionStorage.removeItem(k);
  }
  $("account").hidden = !state.token;
}

async function refreshSession() {
  const refresh = state.refresh;
  keepSession(null);
  try {
    keepSession(await api("POST", "/sign-in/refresh", { refresh_token: refresh }));
    return true;
  } catch { return false; }
}

function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

// ---------------------------------------------------------------- small view helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v); else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

const money = (m) => `¥${m.amount}`;
const when = (iso) => new Date(iso).toLocaleString("zh-CN", {
  month: "numeric", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit",
  timeZone: "Asia/Shanghai" });

function showError(e) {
  $("error").textContent = e ? e.message : "";
  $("error").hidden = !e;
}

async function step(work) { // run one user action; its failure is shown, not thrown
  showError(null);
  try { await work(); } catch (e) { showError(e); }
}

// ---------------------------------------------------------------- search

async function search(q) {
  const found = await api("GET", `/search?${new URLSearchParams({
    q, lat: HERE.lat, lng: HERE.lng, radius_km: 20 })}`);
  const results = $("results");
  results.replaceChildren();
  if (!found.products.length) results.append(el("p", {}, "没有找到 Nothing found"));
  for (const p of found.products) results.append(productCard(p));
}

function productCard(p) {
  const add = el("button", { type: "button", class: "primary", disabled: "" },
                 `加入购物车并预约 Add ×${QUANTITY} with fitting`);
  add.addEventListener("click", () => step(() => addToCart()));
  const card = el("article", { class: "card", "data-sku": p.sku },
                  el("h3", {}, p.title), el("p", { class: "price" }, money(p.price)));
  for (const point of p.service_points) {
    const slots = el("div", { class: "slots" });
    for (const slot of point.next_slots) {
      const b = el("button", { type: "button", "aria-pressed": "false" }, when(slot.start));
      b.addEventListener("click", () => {
        document.querySelectorAll(".slots button").forEach((x) => x.setAttribute("aria-pressed", "false"));
        b.setAttribute("aria-pressed", "true");
        state.pick = { sku: p.sku, title: p.title, point, start: slot.start, service: p.service };
        document.querySelectorAll("article button.primary").forEach((x) => { x.disabled = true; });
        add.disabled = false;
      });
      slots.append(b);
    }
    card.append(el("div", { class: "shop" },
                    el("strong", {}, point.name), ` · ${point.distance_km.toFixed(1)} km · `,
                    stars(point.rating),
                    el("p", { class: "hint" }, point.address || ""), slots));
  }
  if (p.service_points.length) card.append(add);
  return card;
}

function stars(rating) { // the point's buyers' ratings: ★ 4.6 (12), or none yet
  if (!rating || !rating.count) return el("span", { class: "rating hint" }, "暂无评分 No ratings yet");
  const full = Math.round(Number(rating.average));
  return el("span", { class: "rating", "aria-label": `rated ${rating.average} of 5 by ${rating.count}` },
            el("span", { class: "stars", "aria-hidden": "true" }, "★".repeat(full) + "☆".repeat(5 - full)),
            ` ${rating.average} (${rating.count})`);
}

// ---------------------------------------------------------------- sign-in by SMS code

async function sendCode() {
  const sent = await api("POST", "/sign-in/codes", { phone: $("phone").value });
  $("code-form").hidden = false;
  $("code").focus();
  if (SANDBOX) { // a sandbox key's codes are shown here instead of an SMS
    const inbox = await api("GET", "/sandbox/inbox");
    const latest = inbox.data.find((m) => m.phone === sent.phone);
    $("inbox").textContent = `沙箱短信 Sandbox SMS: ${latest ? latest.code : "?"}`;
    $("inbox").hidden = false;
  }
}

async function verifyCode() {
  keepSession(await api("POST", "/sign-in/verify",
                        { phone: $("phone").value, code: $("code").value }));
  $("signin").hidden = true;
  if (state.pick) await addToCart(); // carry on with what the buyer was doing
}

// ---------------------------------------------------------------- cart, appointment, order

async function addToCart() {
  if (!state.token) { $("signin").hidden = false; $("phone").focus(); return; }
  const { sku, point, start, service } = state.pick;
  state.cart = await api("POST", "/carts", { lines: [{ sku, quantity: QUANTITY }] },
                         { "Idempotency-Key": idempotencyKey() });
  state.booking = await api("POST", "/bookings",
                            { service_point_id: point.id, service, start });
  state.checkoutKey = idempotencyKey();
  renderCart();
}

function renderCart() {
  const { cart, booking, pick } = state;
  const lines = cart.lines.map((l) => el("p", {}, `${l.title} × ${l.quantity} `,
                                         el("span", { class: "price" }, money(l.total))));
  $("cart-lines").replaceChildren(
    ...lines,
    el("p", {}, `预约 Fitting: ${pick.point.name}, ${when(booking.start)} (保留 held 10 min)`),
    el("p", { class: "total" }, el("span", {}, "合计 Total"), money(cart.totals.total)));
  $("cart").hidden = false;
  $("pay").focus();
}

async function checkoutAndPay() {
  const order = await api("POST", `/carts/${state.cart.id}/checkout`,
                          { bookings: [{ sku: state.pick.sku, booking_id: state.booking.id }] },
                          { "Idempotency-Key": state.checkoutKey });
  await api("POST", `/orders/${order.id}/payments`,
            { payment_method: { type: "card", number: $("card").value.replace(/\s/g, "") } },
            { "Idempotency-Key": `${state.checkoutKey}:pay` });
  const paid = await api("GET", `/orders/${order.id}`);
  const booking = await api("GET", `/bookings/${state.booking.id}`);
  $("cart").hidden = true;
  $("done").replaceChildren(
    el("h2", {}, "下单成功 Order placed"),
    el("p", {}, `订单 Order ${paid.id}: `, el("strong", { id: "order-status" }, paid.status)),
    el("p", {}, `合计 Total ${money(paid.totals.total)}`),
    el("p", {}, `预约 Appointment ${state.pick.point.name}, ${when(booking.start)}: `,
       el("strong", { id: "booking-status" }, booking.status)),
    shipTo(paid));
  $("done").hidden = false;
  $("done").scrollIntoView();
}

function shipTo(order) { // an order with a fitting ships to the shop
  if (!order.ship_to_point_id || !order.address) return "";
  const a = order.address;
  return el("p", { id: "ship-to" }, "送货到店 Ships to the shop: ",
            el("strong", {}, a.name), ` ${[a.city, a.district, a.line1].filter(Boolean).join(" ")}`);
}

async function myOrders() {
  const [orders, bookings] = await Promise.all([api("GET", "/orders?limit=10"),
                                                api("GET", "/bookings?limit=10")]);
  $("done").replaceChildren(
    el("h2", {}, "我的订单 My orders"), ...orders.data.map((o) =>
      el("p", {}, `${o.id} · ${money(o.totals.total)} · ${o.status}`)),
    el("h2", {}, "我的预约 My appointments"), ...bookings.data.map(bookingItem));
  $("done").hidden = false;
}

function bookingItem(b) { // a completed job can be rated, once
  const item = el("div", { class: "booking", "data-booking": b.id },
                  el("p", {}, `${when(b.start)} · ${b.service} · `, el("strong", {}, b.status)));
  if (b.status !== "completed") return item;
  if (b.rating) { // rated already (the booking's answer says so): no form
    item.append(el("p", { class: "rated" }, el("span", {
      class: "stars", role: "img", "aria-label": `rated ${b.rating.score} of 5` },
      "★".repeat(b.rating.score) + "☆".repeat(5 - b.rating.score)), " 已评分 Rated"));
    return item;
  }
  const score = el("select", { id: `score-${b.id}`, "aria-label": "评分 Score" },
                   ...[5, 4, 3, 2, 1].map((n) => el("option", { value: String(n) }, "★".repeat(n))));
  const comment = el("input", { id: `comment-${b.id}`, maxlength: "500",
                                "aria-label": "评价 Comment", placeholder: "评价 Comment" });
  const form = el("form", { class: "rate row" }, score, comment,
                  el("button", { type: "submit" }, "评分 Rate"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    step(async () => {
      try {
        await api("POST", `/bookings/${b.id}/rating`,
                  { score: Number(score.value), comment: comment.value || null },
                  { "Idempotency-Key": `rate:${b.id}` });
      } catch (err) {
        if (!err.problem || !err.problem.type.endsWith("/already-rated")) throw err;
      }
      form.replaceWith(el("p", { class: "rated" }, "已评分 Rated, thank you"));
    });
  });
  item.append(form);
  return item;
}

// ---------------------------------------------------------------- wiring

$("search").addEventListener("submit", (e) => { e.preventDefault(); step(() => search($("q").value)); });
$("phone-form").addEventListener("submit", (e) => { e.preventDefault(); step(sendCode); });
$("code-form").addEventListener("submit", (e) => { e.preventDefault(); step(verifyCode); });
$("pay").addEventListener("click", () => step(checkoutAndPay));
$("account").addEventListener("click", () => step(myOrders));
$("account").hidden = !state.token;
step(() => search($("q").value));
