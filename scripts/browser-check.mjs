// A person's first visit to an assembled authentik, in headless Chromium (Debian's, driven by
// playwright-core; no browser is downloaded): the initial-setup flow sets the admin's e-mail
// and password, the user interface loads, then the admin interface. Every JS and CSS response
// must be 200 and the console must stay free of errors. Screenshots go to OUT.
//
//   NODE_PATH=DIR/node_modules node scripts/browser-check.mjs BASE_URL OUT [EMAIL] [PASSWORD]
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, out, email = "admin@example.org", password = "akpkg-browser-check-1"] =
    process.argv.slice(2);
mkdirSync(out, { recursive: true });
const problems = [];
const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
    ],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("response", (response) => {
    const url = response.url();
    if (/\.(js|css)(\?|$)/.test(url) && response.status() !== 200) {
        problems.push(`${response.status()} ${url}`);
    }
});
let step = 0;
const shot = async (name) => {
    step += 1;
    const path = join(out, `${step}-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot ${path}`);
};

try {
    await page.goto(`${base}/if/flow/initial-setup/`, { waitUntil: "networkidle" });
    await page.locator('input[name="email"]').waitFor({ timeout: 60_000 });
    await shot("initial-setup");
    await page.locator('input[name="email"]').fill(email);
    await page.locator('input[name="password"]').fill(password);
    await page.locator('input[name="password_repeat"]').fill(password);
    await shot("initial-setup-filled");
    await page.locator('button[type="submit"]').first().click();
    await page.waitForURL(/\/if\/user\//, { timeout: 60_000 });
    await page.waitForLoadState("networkidle");
    await shot("user-interface");
    await page.goto(`${base}/if/admin/`, { waitUntil: "networkidle" });
    await page.locator("ak-interface-admin").waitFor({ timeout: 60_000 });
    await page.waitForTimeout(3_000);
    await shot("admin-interface");
} catch (error) {
    await shot("failure");
    console.error(`problems so far:\n${problems.join("\n")}`);
    throw error;
}
console.log(`landed on ${page.url()} as ${email}`);
await browser.close();
if (problems.length) {
    console.error(`problems:\n${problems.join("\n")}`);
    process.exit(1);
}
console.log("no console errors; every JS and CSS response was 200");
