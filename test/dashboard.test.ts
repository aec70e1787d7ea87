/**
 * The dashboard in a real headless Chromium (Debian's chromium, driven by playwright-core)
 * against a real gateway with traffic: logging in, each page loading with data, no console
 * error (a content security policy violation is one), and a screenshot of each page in docs/.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, chromium, type Page } from "playwright-core"
import { type RunningGateway, startGateway } from "./support/gateway"

const CHROMIUM = "/usr/bin/chromium"
const ADMIN = "dashboard-admin-key"
// The screenshots in docs/ are rewritten only when asked (QUORUM_SCREENSHOTS=docs): a test run leaves the tree as it was.
const DOCS = process.env["QUORUM_SCREENSHOTS"] === "docs" ? fileURLToPath(new URL("../docs/", import.meta.url)) : `${mkdtempSync(join(tmpdir(), "quorum-screens-"))}/`

const YAML = `
models:
  - { id: sim-fast, provider: sim, price: { input: 0.1, output: 0.4 }, sim: { latency_ms: 2, answers: ["Paris"] } }
  - { id: sim-smart, provider: sim, price: { input: 2, output: 8 }, sim: { latency_ms: 5, answers: ["Paris"] } }
  - { id: sim-flaky, provider: sim, price: { input: 0.05, output: 0.2 }, sim: { latency_ms: 1, error_rate: 0.5, answers: ["Paris"] } }
routes:
  - { id: default, strategy: fallback, targets: [sim-flaky, sim-fast, sim-smart] }
auth: { mode: keys }
spend: { flush_ms: 5 }
`

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in Chromium", () => {
  let gateway: RunningGateway
  let browser: Browser
  let page: Page
  const problems: Array<string> = []

  beforeAll(async () => {
    gateway = await startGateway(YAML, { QUORUM_ADMIN_KEY: ADMIN })
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }
    for (const name of ["team-a", "team-b"]) {
      const key = (await (await fetch(`${gateway.url}/admin/keys`, { method: "POST", headers: admin, body: JSON.stringify({ name, budget_usd: 10 }) })).json()) as { key: string }
      for (const model of ["default", "sim-smart", "default"]) {
        await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "Capital of France?" }] })
        })
      }
    }
    // The ledger writes in batches: wait until it has nothing pending.
    for (let i = 0; i < 500; i++) {
      const status = (await (await fetch(`${gateway.url}/admin/ledger`, { headers: admin })).json()) as { pending: number }
      if (status.pending === 0) break
      await new Promise((r) => setTimeout(r, 10))
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] })
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text())
    })
    page.on("pageerror", (error) => problems.push(error.message))
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await gateway?.close()
  })

  const show = async (hash: string, ready: string) => {
    await page.goto(`${gateway.url}/dashboard#${hash}`)
    await page.locator(`#view[data-page="${hash}"]`).waitFor()
    await page.getByText(ready).first().waitFor()
  }

  it("asks for the admin key, and refuses a wrong one", async () => {
    await page.goto(`${gateway.url}/dashboard`)
    await page.locator("form#login").waitFor()
    await page.fill("input[name=key]", "not-the-key")
    await page.click("form#login button[type=submit]")
    await page.getByText("That key is not the admin key.").waitFor()
    await page.screenshot({ path: `${DOCS}dashboard-login.png` })
    // The refused key's 401s are logged by the browser as failed loads: expected here, nowhere else.
    problems.length = 0
  })

  it("shows spend by key and model once logged in", async () => {
    await page.fill("input[name=key]", ADMIN)
    await page.click("form#login button[type=submit]")
    await page.locator('#view[data-page="spend"]').waitFor()
    const text = await page.locator("#view").innerText()
    expect(text).toContain("team-a")
    expect(text).toContain("team-b")
    expect(text).toContain("sim-smart")
    expect(await page.locator("svg.bars rect").count()).toBe(30)
    await page.screenshot({ path: `${DOCS}dashboard-spend.png`, fullPage: true })
  })

  it("shows each model's live health", async () => {
    await show("models", "sim-flaky")
    const rows = await page.locator("#view tbody tr").allInnerTexts()
    expect(rows.some((r) => r.startsWith("sim-fast") && r.includes("closed"))).toBe(true)
    await page.screenshot({ path: `${DOCS}dashboard-models.png`, fullPage: true })
  })

  it("shows consensus reliability for a task", async () => {
    await show("consensus", "Consensus reliability")
    expect(await page.locator("#view").innerText()).toContain("config")
    await page.screenshot({ path: `${DOCS}dashboard-consensus.png`, fullPage: true })
  })

  it("lists recent requests, and a request's upstream attempts", async () => {
    await show("requests", "/v1/chat/completions")
    expect(await page.locator("#view tbody tr.clickable").count()).toBe(6)
    await page.locator("#view tbody tr.clickable").first().click()
    await page.getByText(/^Request req-/).waitFor()
    const detail = await page.locator("#view").innerText()
    expect(detail).not.toContain("null")
    expect(detail).toMatch(/sim-(flaky|fast|smart)\ssim\s(ok|error)/)
    await page.screenshot({ path: `${DOCS}dashboard-requests.png`, fullPage: true })
  })

  it("had no console error on any page", () => {
    expect(problems).toEqual([])
  })
})
