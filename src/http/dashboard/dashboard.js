// Quorum's dashboard: plain ES module, no build step. It reads the admin API with the admin
// key kept in this tab's sessionStorage. Every value from the API is put in the page as
// text, never as HTML: key names, model names and error messages are not markup.

const KEY = "quorum.adminKey"
const view = document.getElementById("view")
const login = document.getElementById("login")
const nav = document.querySelector("nav")
let refresh

/** An element with attributes and children (strings become text nodes). */
const h = (tag, attrs = {}, ...children) => {
  const el = document.createElementNS(tag === "svg" || tag === "rect" || tag === "text" || tag === "title" ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value)
    else if (value !== undefined && value !== null && value !== false) el.setAttribute(name, String(value))
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child instanceof Node ? child : String(child))
  return el
}

class Unauthorized extends Error {}

const api = async (path) => {
  const response = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ""}` } })
  if (response.status === 401) throw new Unauthorized()
  const body = await response.json()
  if (!response.ok) throw new Error(body?.error?.message ?? `${path} answered ${response.status}`)
  return body
}

// Small amounts keep every micro-dollar the API gives ("0.000004"); dollars show cents.
const usd = (amount) => (Number(amount) >= 1 ? `$${Number(amount).toFixed(2)}` : `$${Number(amount).toFixed(6)}`)
const int = (n) => Number(n).toLocaleString("en-US")
const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)} %`)
const ms = (x) => (x === null || x === undefined ? "–" : `${Math.round(x)} ms`)
const when = (epochMs) => new Date(epochMs).toISOString().replace("T", " ").slice(0, 19)
const isoDay = (d) => d.toISOString().slice(0, 10)

const card = (label, value) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value))

/** A table: columns of [heading, cell(row), numeric?]. */
const table = (columns, rows, onRow) =>
  h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([title, , num]) => h("th", { class: num ? "num" : undefined }, title)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "Nothing yet"))
      : rows.map((row) => h("tr", { class: onRow ? "clickable" : undefined, onclick: onRow ? () => onRow(row) : undefined }, columns.map(([, cell, num]) => h("td", { class: num ? "num" : undefined }, cell(row)))))))

/** Cost per day as bars, one per day of the range, empty days included. */
const dayBars = (rows, from, days) => {
  const byDay = new Map(rows.map((r) => [r.day, Number(r.cost_usd)]))
  const series = Array.from({ length: days }, (_, i) => {
    const day = isoDay(new Date(from.getTime() + i * 86_400_000))
    return [day, byDay.get(day) ?? 0]
  })
  const max = Math.max(...series.map(([, v]) => v), 1e-9)
  const width = 1000
  const slot = width / days
  return h("svg", { class: "bars", viewBox: `0 0 ${width} 160`, preserveAspectRatio: "none", role: "img", "aria-label": "Cost per day" },
    series.map(([day, value], i) => {
      const height = (value / max) * 130
      return h("rect", { x: i * slot + 2, y: 140 - height, width: slot - 4, height }, h("title", {}, `${day}: ${usd(value)}`))
    }),
    h("text", { x: 2, y: 155 }, series[0][0]),
    h("text", { x: width - 60, y: 155 }, series[days - 1][0]))
}

const pages = {
  async spend() {
    const to = new Date()
    const from = new Date(to.getTime() - 29 * 86_400_000)
    const range = `from=${isoDay(from)}&to=${isoDay(to)}`
    const [total, daily, byKey, byModel] = await Promise.all([
      api(`/admin/spend?group_by=&${range}`),
      api(`/admin/spend?group_by=day&${range}`),
      api(`/admin/spend?group_by=key&${range}`),
      api(`/admin/spend?group_by=model&${range}`)
    ])
    const t = total.total
    return [
      h("h2", {}, "Spend, last 30 days"),
      h("div", { class: "cards" }, card("Cost", usd(t.cost_usd)), card("Requests", int(t.requests)), card("Failed", int(t.failed)), card("Refused", int(t.refused)), card("Tokens", int(t.prompt_tokens + t.completion_tokens))),
      h("h2", {}, "Cost per day"),
      dayBars(daily.data, from, 30),
      h("h2", {}, "By key"),
      table([["Key", (r) => r.key_name ?? r.key ?? "(no key)"], ["Requests", (r) => int(r.requests), true], ["Failed", (r) => int(r.failed), true], ["Tokens", (r) => int(r.prompt_tokens + r.completion_tokens), true], ["Cost", (r) => usd(r.cost_usd), true]], byKey.data),
      h("h2", {}, "By model"),
      table([["Model", (r) => r.model ?? "–"], ["Requests", (r) => int(r.requests), true], ["Attempts", (r) => int(r.attempts), true], ["Failed", (r) => int(r.failed), true], ["Cost", (r) => usd(r.cost_usd), true]], byModel.data)
    ]
  },

  async models() {
    const health = await api("/admin/health")
    return [
      h("h2", {}, "Models, live"),
      h("p", { class: "muted" }, `This worker's view of the last calls to each deployment, refreshed every 5 s. ${health.workers > 1 ? `One of ${health.workers} workers.` : ""}`),
      table([
        ["Model", (r) => r.model],
        ["Provider", (r) => r.provider],
        ["Circuit", (r) => h("span", { class: `state-${r.circuit}` }, r.circuit.replace("_", " "))],
        ["In flight", (r) => int(r.in_flight), true],
        ["Error rate", (r) => pct(r.error_rate), true],
        ["Latency p50", (r) => ms(r.latency_ms.p50), true],
        ["p90", (r) => ms(r.latency_ms.p90), true],
        ["First token p50", (r) => ms(r.first_token_ms.p50), true]
      ], health.data)
    ]
  },

  async consensus() {
    const task = new URLSearchParams(location.hash.split("?")[1] ?? "").get("task") ?? "default"
    const report = await api(`/v1/reliability?task=${encodeURIComponent(task)}`)
    const input = h("input", { name: "task", value: task, "aria-label": "Task" })
    return [
      h("h2", {}, "Consensus reliability"),
      h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); location.hash = `consensus?task=${encodeURIComponent(input.value)}` } }, h("label", {}, "Task ", input), h("button", { type: "submit" }, "Show")),
      h("div", { class: "cards" }, card("Rule", report.rule), card("Labels", int(report.labels)), card("Learned from", int(report.learned_from)), card("Labels needed", int(report.min_labels))),
      h("h2", {}, "Per model"),
      table([
        ["Model", (r) => r.model],
        ["Weight", (r) => r.weight.toFixed(2), true],
        ["Accuracy", (r) => pct(r.accuracy), true],
        ["Labelled", (r) => int(r.labelled), true],
        ["Abstains", (r) => pct(r.abstention_rate), true],
        ["Mean latency", (r) => ms(r.mean_latency_ms), true],
        ["Mean cost", (r) => (r.mean_cost_usd === null ? "–" : usd(r.mean_cost_usd)), true]
      ], report.data)
    ]
  },

  async requests() {
    const page = await api("/admin/requests?limit=50")
    const detail = h("div", {})
    const show = async (row) => {
      const r = await api(`/admin/requests/${encodeURIComponent(row.id)}`)
      detail.replaceChildren(...[
        h("h2", {}, `Request ${r.id}`),
        r.error ? h("p", { class: "error" }, r.error) : null,
        table([
          ["#", (a) => a.seq, true],
          ["Model", (a) => a.model],
          ["Provider", (a) => a.provider],
          ["Status", (a) => (a.error_kind ? `${a.status} (${a.error_kind})` : a.status)],
          ["Tokens", (a) => int(a.prompt_tokens + a.completion_tokens), true],
          ["Cost", (a) => usd(a.cost_usd), true],
          ["Latency", (a) => ms(a.latency_ms), true]
        ], r.upstream_attempts)
      ].filter((child) => child !== null))
    }
    return [
      h("h2", {}, "Recent requests"),
      table([
        ["When (UTC)", (r) => when(r.started_at)],
        ["Key", (r) => r.key_id ?? "–"],
        ["Endpoint", (r) => r.endpoint],
        ["Model", (r) => r.model ?? "–"],
        ["Status", (r) => h("span", { class: `status-${String(r.status)[0]}` }, r.status)],
        ["Tokens", (r) => int(r.prompt_tokens + r.completion_tokens), true],
        ["Cost", (r) => usd(r.cost_usd), true],
        ["Latency", (r) => ms(r.latency_ms), true]
      ], page.data, show),
      detail
    ]
  }
}

const showLogin = (message = "") => {
  nav.hidden = true
  view.replaceChildren()
  login.hidden = false
  login.querySelector(".error").textContent = message
}

const render = async () => {
  clearTimeout(refresh)
  if (!sessionStorage.getItem(KEY)) return showLogin()
  const name = location.hash.slice(1).split("?")[0] || "spend"
  const page = pages[name] ?? pages.spend
  login.hidden = true
  nav.hidden = false
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.getAttribute("href") === `#${name}`)
  try {
    view.replaceChildren(...(await page()).filter((child) => child !== null && child !== undefined))
    view.dataset.page = name
    if (name === "models") refresh = setTimeout(render, 5000)
  } catch (error) {
    if (error instanceof Unauthorized) {
      sessionStorage.removeItem(KEY)
      return showLogin("That key is not the admin key.")
    }
    view.replaceChildren(h("p", { class: "error", role: "alert" }, error.message))
  }
}

login.addEventListener("submit", (event) => {
  event.preventDefault()
  sessionStorage.setItem(KEY, new FormData(login).get("key"))
  login.reset()
  void render()
})
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY)
  showLogin()
})
window.addEventListener("hashchange", () => void render())
void render()
