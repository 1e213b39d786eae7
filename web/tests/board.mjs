// Plays the order board in Debian's Chromium, driven by tests/web.rs over stdin and stdout:
// signs in as the store's staff, finds the order paid before it opened, says READY, then takes the
// id of an order paid while it watches (its alert and chime), and moves that one through the
// kitchen by clicks. Then a second tablet opens and both accept the first order at once: one wins,
// the other shows a notice and the order where it now is; reopened without a tap, it holds its
// chime back until one. Then the network drops (OFFLINE), and the order paid meanwhile (its id on
// stdin) appears once it is back. Then the latte's sold-out switch is flipped (SOLD_OUT), and
// flipped back on the next line; the order paid offline goes through the kitchen by keys alone.
// Then, long past the first access token's end (EXPIRED), an order paid (its id on stdin) appears
// and is rejected, with a reason (its first try refused 401: the board renews its session and tries
// again, signed in still). Screenshots go to $SHOTS. Any failure exits non-zero with the
// reason.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const { BOARD_URL, EMAIL, PASSWORD, FIRST, SHOTS } = process.env;
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const errors = [];
  // A tablet of its own (its own storage), signed in as the store's staff.
  const tablet = async (shot) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "ko-KR" });
    // Counts the chime's tones, as the page's own AudioContext makes them. And holds the sound back
    // in a page nobody has tapped, as a tablet's browser does (headless Chromium plays it anyway,
    // whatever its autoplay flags say, and Playwright's own evaluations count as user activation):
    // a context made before a real tap or key in this document is suspended, and resumes only after
    // one (a reload starts a new document, untapped).
    await context.addInitScript(() => {
      let tapped = false;
      for (const type of ["pointerdown", "keydown"]) {
        window.addEventListener(type, (event) => (tapped ||= event.isTrusted), true);
      }
      const Real = AudioContext;
      window.AudioContext = class extends Real {
        constructor(options) {
          super(options);
          this.allowed = tapped;
          if (!this.allowed) void super.suspend();
        }
        get state() {
          return this.allowed ? super.state : "suspended";
        }
        resume() {
          if (!tapped) return new Promise(() => undefined);
          this.allowed = true;
          return super.resume();
        }
      };
      window.tones = 0;
      const make = AudioContext.prototype.createOscillator;
      AudioContext.prototype.createOscillator = function () {
        window.tones += 1;
        window.audio = this;
        return make.call(this);
      };
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    // Counts the board's listings of its orders: each is a request, an invocation and a read.
    page.listings = 0;
    page.moves = 0;
    // Counts the pushes the board hears.
    page.pushes = 0;
    page.on("websocket", (socket) => socket.on("framereceived", () => (page.pushes += 1)));
    page.on("request", (request) => {
      if (request.url().includes("/orders?status=ACTIVE")) page.listings += 1;
      if (request.method() === "POST" && request.url().endsWith("/status")) page.moves += 1;
    });
    page.on("pageerror", (err) => errors.push(String(err)));
    await page.goto(BOARD_URL);
    await page.getByLabel("이메일").fill(EMAIL);
    await page.getByLabel("비밀번호").fill(PASSWORD);
    // The store's own tablet: kept signed in on the device.
    await page.getByLabel("이 기기를 매장용으로 유지").check();
    if (shot) await page.screenshot({ path: `${SHOTS}/sign-in.png` });
    await page.getByRole("button", { name: "로그인" }).click();
    return page;
  };
  const on = (page) => (order, status) =>
    page.locator(`[data-column="${status}"] [data-order="${order}"]`);
  const page = await tablet(true);
  const signedInAt = Date.now();
  const card = on(page);
  await card(FIRST, "PAID").waitFor();
  // Kept in the device's IndexedDB (database "ordersync", store "session"), not in the tab.
  const kept = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const opened = indexedDB.open("ordersync");
        opened.onerror = () => reject(opened.error);
        opened.onsuccess = () => {
          const read = opened.result.transaction("session").objectStore("session").get("ordersync.session");
          read.onerror = () => reject(read.error);
          read.onsuccess = () => resolve([read.result?.refreshToken ?? null, sessionStorage.getItem("ordersync.session")]);
        };
      }),
  );
  if (!kept[0] || kept[1] !== null) throw new Error(`the tablet kept its session as ${JSON.stringify(kept)}`);
  console.log("READY");

  const { value: second } = await lines.next();
  await card(second, "PAID").waitFor();
  await page.getByRole("alert").filter({ hasText: "새 주문" }).waitFor();
  // …with its chime (two tones), which the sign-in's tap allowed to play.
  await page.waitForFunction(() => window.tones >= 2);
  if (await page.getByRole("button", { name: "알림음 켜기" }).isVisible()) {
    throw new Error("the chime was held back after a tap");
  }
  await page.screenshot({ path: `${SHOTS}/board-new-order.png` });
  await page.getByRole("button", { name: "확인" }).click();

  // Through the kitchen by clicks: each move's answer and each push move the card in place, with
  // no listing.
  const listed = page.listings;
  const pushed = page.pushes;
  await card(second, "PAID").getByRole("button", { name: "접수" }).click();
  await card(second, "ACCEPTED").waitFor();
  // The ETA chosen on accepting (20 minutes, the default) shows on the card.
  await card(second, "ACCEPTED").getByText("완료 예정").waitFor();
  await card(second, "ACCEPTED").getByRole("button", { name: "조리 시작" }).click();
  await card(second, "PREPARING").waitFor();
  await page.screenshot({ path: `${SHOTS}/board.png` });
  await card(second, "PREPARING").getByRole("button", { name: "준비 완료" }).click();
  await card(second, "READY").waitFor();
  await card(second, "READY").getByRole("button", { name: "전달 완료" }).click();
  await card(second, "READY").waitFor({ state: "detached" });
  // (A push of the last move would have had time to arrive: the test read it before the card left.)
  await page.waitForTimeout(1_000);
  if (page.listings !== listed) throw new Error(`four moves listed the orders ${page.listings - listed} times`);
  // The board named itself on its moves: none was pushed back to it (its answers told it).
  if (page.pushes !== pushed) throw new Error(`the board was pushed ${page.pushes - pushed} of its own moves`);

  const other = await tablet(false);
  const otherCard = on(other);
  await otherCard(FIRST, "PAID").waitFor();
  await Promise.all(
    [card, otherCard].map((c) => c(FIRST, "PAID").getByRole("button", { name: "접수" }).click()),
  );
  await card(FIRST, "ACCEPTED").waitFor();
  await otherCard(FIRST, "ACCEPTED").waitFor();
  const notice = "다른 기기에서 이미 처리한 주문입니다";
  const counted = async () => (await page.getByText(notice).count()) + (await other.getByText(notice).count());
  // The loser's card may move by the winner's push before its own refusal comes back: wait for
  // the refusal's notice, then count (a notice stays 8 s).
  let told = await counted();
  for (let waited = 0; told === 0 && waited < 10_000; waited += 100) {
    await page.waitForTimeout(100);
    told = await counted();
  }
  if (told !== 1) throw new Error(`${told} boards told of the conflict, not 1`);
  const loser = (await page.getByText(notice).count()) === 1 ? page : other;
  await loser.screenshot({ path: `${SHOTS}/board-conflict.png` });
  // The second tablet reopens, signed in from the device and untouched since: its sound is held
  // back (it says so when the next order comes, below).
  await other.reload();
  await otherCard(FIRST, "ACCEPTED").waitFor();

  // The network drops: the board says so and since when, and refuses a move on the spot; an
  // order paid meanwhile appears once the network is back, once.
  await page.context().setOffline(true);
  await page.getByText("연결 끊김").waitFor();
  await card(FIRST, "ACCEPTED").getByRole("button", { name: "조리 시작" }).click();
  await page.getByText("오프라인 상태에서는 처리할 수 없습니다").waitFor();
  await page.screenshot({ path: `${SHOTS}/board-offline.png` });
  console.log("OFFLINE");
  const { value: third } = await lines.next();
  await page.context().setOffline(false);
  await card(third, "PAID").waitFor({ timeout: 45_000 });
  await page.getByText("연결 끊김").waitFor({ state: "detached" });
  const copies = await page.locator(`[data-order="${third}"]`).count();
  if (copies !== 1) throw new Error(`the order missed offline shows ${copies} times`);
  if ((await card(FIRST, "ACCEPTED").count()) !== 1) throw new Error("the refused move moved");
  // The untouched tablet heard that order too, and offers to turn the chime on; one tap does.
  await otherCard(third, "PAID").waitFor();
  const soundOn = other.getByRole("button", { name: "알림음 켜기" });
  await soundOn.waitFor();
  if ((await other.evaluate(() => window.audio?.state)) === "running") {
    throw new Error("the untouched tablet's sound was not held back");
  }
  await other.screenshot({ path: `${SHOTS}/board-sound-off.png` });
  await soundOn.click();
  await soundOn.waitFor({ state: "detached" });
  await other.waitForFunction(() => window.audio?.state === "running");
  await other.context().close();

  // The latte runs out: the staff flip its switch (the test then tries to order one), and flip it
  // back when told.
  await page.getByRole("button", { name: "메뉴 품절 관리" }).click();
  const latte = page.getByRole("switch", { name: "Latte 품절" });
  await latte.check();
  const latteSoldOut = page.locator(".menu .sold-out").filter({ hasText: "Latte" });
  await latteSoldOut.waitFor();
  await page.screenshot({ path: `${SHOTS}/board-menu.png` });
  console.log("SOLD_OUT");
  await lines.next();
  await latte.uncheck();
  await latteSoldOut.waitFor({ state: "detached" });

  // By keys (a keyboard, or a kitchen's bump bar): N goes to the new order paid offline; X offers
  // its reasons to reject (Escape keeps it); Enter takes it through the kitchen, the card keeping
  // the focus from column to column.
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute("data-order") ?? null);
  await page.keyboard.press("n");
  if ((await focused()) !== third) throw new Error(`N went to ${await focused()}, not ${third}`);
  await page.keyboard.press("x");
  await page.getByRole("dialog", { name: "거절 사유" }).waitFor();
  await page.keyboard.press("Escape");
  await page.getByRole("dialog", { name: "거절 사유" }).waitFor({ state: "hidden" });
  const movesBefore = page.moves;
  for (const status of ["ACCEPTED", "PREPARING", "READY"]) {
    // Twice, as a bump bar's key bounces: one move.
    await page.keyboard.press("Enter");
    await page.keyboard.press("Enter");
    await card(third, status).waitFor();
    await page.waitForFunction((order) => document.activeElement?.getAttribute("data-order") === order, third);
  }
  await card(third, "READY").getByText("완료 예정").waitFor();
  await page.keyboard.press("Enter");
  await card(third, "READY").waitFor({ state: "detached" });
  if (page.moves - movesBefore !== 4) throw new Error(`seven presses made ${page.moves - movesBefore} moves, not 4`);

  // Access tokens last 15 s here (with 30 s of leeway): well past the first one's end, the board
  // (which renewed it meanwhile) still hears an order paid and still moves it.
  const wait = signedInAt + 50_000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  console.log("EXPIRED");
  const { value: fourth } = await lines.next();
  await card(fourth, "PAID").waitFor();
  // The kitchen is swamped: the staff turn it away, with the reason. The API refuses the first try
  // with 401, as it does a token that ran out while the tablet slept: the board renews its session
  // and tries again, and no one is signed out.
  let refused = 0;
  await page.route("**/v1/orders/*/status", (route) => {
    if (refused > 0) return route.continue();
    refused += 1;
    return route.fulfill({
      status: 401,
      contentType: "application/json",
      body: JSON.stringify({ error: { code: "TOKEN_EXPIRED", message: "the access token has expired", requestId: "-" } }),
    });
  });
  await card(fourth, "PAID").getByRole("button", { name: "거절", exact: true }).click();
  const why = page.getByRole("dialog", { name: "거절 사유" });
  await why.waitFor();
  await page.screenshot({ path: `${SHOTS}/board-reject.png` });
  await why.getByRole("button", { name: "주문 폭주" }).click();
  await card(fourth, "PAID").waitFor({ state: "detached" });
  if (refused !== 1) throw new Error(`the move was refused ${refused} times, not once`);
  await page.getByRole("heading", { name: "주문 보드" }).waitFor();
  await page.unroute("**/v1/orders/*/status");

  // English, for a staff member who reads it better; and back.
  await page.getByRole("button", { name: "English" }).click();
  await page.getByRole("heading", { name: "Order board" }).waitFor();
  await page.locator('[data-column="PAID"] h2').filter({ hasText: "New" }).waitFor();
  await page.getByRole("button", { name: "한국어" }).click();
  await page.getByRole("heading", { name: "주문 보드" }).waitFor();

  // On a phone the columns stack, and nothing runs off the side of the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the board is ${overflow}px wider than a phone`);
  const [paidColumn, acceptedColumn] = await Promise.all(
    ["PAID", "ACCEPTED"].map((s) => page.locator(`[data-column="${s}"]`).boundingBox()),
  );
  if (!(acceptedColumn.y > paidColumn.y)) throw new Error("the columns do not stack on a phone");
  await page.screenshot({ path: `${SHOTS}/board-phone.png` });
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("DONE");
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  input.close();
  await browser.close();
}
