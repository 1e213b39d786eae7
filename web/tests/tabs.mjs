// Three tabs of one session kept on the device, in Debian's Chromium, driven by tests/web.rs: the
// store's tablet signs in (keeping the device signed in), then two more tabs open at the same
// moment — each renews the session from the refresh token they share, at once — and all three keep
// renewing (access tokens of 15 s) for half a minute. The refresh token rotates on every renewal
// and the API ends a session whose spent token comes back; a tab that renewed with a token another
// tab had just spent would end the session for all three. Says TABS once the three run, DONE once
// they all still show the board after the half minute (and a new tab still opens signed in). The
// user owns two stores: the first tab picks $STORE_NAME, the third changes to $OTHER_NAME, and each
// tab stays with its own store through the renewals.
// Any failure exits non-zero with the reason.
import { chromium } from "playwright-core";

const { BOARD_URL, EMAIL, PASSWORD, STORE, STORE_NAME, OTHER, OTHER_NAME } = process.env;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "ko-KR" });
  const open = async () => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (err) => errors.push(String(err)));
    page.on("response", async (response) => {
      // No call of theirs to the API is refused (a spent refresh token coming back would be).
      if (response.status() >= 400 && response.url().includes("/v1/")) {
        errors.push(`${response.status()} ${response.url()} ${await response.text().catch(() => "")}`);
      }
    });
    await page.goto(BOARD_URL);
    return page;
  };
  const first = await open();
  await first.getByLabel("이메일").fill(EMAIL);
  await first.getByLabel("비밀번호").fill(PASSWORD);
  await first.getByLabel("이 기기를 매장용으로 유지").check();
  await first.getByRole("button", { name: "로그인" }).click();
  await first.getByRole("button", { name: STORE_NAME }).click();
  // The board's columns (the sign-in page has the title too).
  const board = (page) => page.locator('[data-column="PAID"]');
  await board(first).waitFor();
  const tabs = [first, ...(await Promise.all([open(), open()]))];
  await Promise.all(tabs.map((tab) => board(tab).waitFor()));
  const third = tabs[2];
  await third.getByRole("button", { name: "매장 변경" }).click();
  await third.getByRole("button", { name: OTHER_NAME }).click();
  await third.locator(`main[data-store="${OTHER}"]`).waitFor();
  console.log("TABS");

  await first.waitForTimeout(30_000);
  for (const [index, tab] of tabs.entries()) {
    if ((await board(tab).count()) !== 1) {
      throw new Error(`tab ${index + 1} was signed out: ${errors.join("; ")}`);
    }
    const shows = await tab.locator("main").getAttribute("data-store");
    const should = index === 2 ? OTHER : STORE;
    if (shows !== should) throw new Error(`tab ${index + 1} shows store ${shows}, not ${should}`);
  }
  const last = await open();
  await board(last).waitFor();
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("DONE");
} catch (err) {
  console.error(err, errors);
  process.exitCode = 1;
} finally {
  await browser.close();
}
