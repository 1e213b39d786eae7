import { describe, expect, it } from "vitest";
import type { Order } from "./api";
import { ACTIVE, announces, type Facts, merge } from "./merge";

/** What the columns show: the held orders in the active statuses. */
function onColumns(board: Order[]): Order[] {
  return board.filter((o) => ACTIVE.includes(o.status));
}

function order(orderId: string, status: string, version: number): Order {
  return {
    orderId,
    status,
    version,
    lines: [{ itemId: "latte", name: "Latte", quantity: 2, lineTotal: 9000, options: [] }],
    total: 9000,
    orderName: "Latte",
    fulfilment: "PICKUP",
    note: "no sugar",
    createdAt: "2026-12-03T10:00:00Z",
  };
}

// One order's life as its pushes say it: paid at version 2, then one move per version.
const LIFE: Facts[] = ["PAID", "ACCEPTED", "PREPARING", "READY", "COMPLETED"].map((status, i) => ({
  orderId: "o1",
  status,
  orderVersion: i + 2,
  ...(status === "ACCEPTED" ? { etaAt: "2026-12-03T10:20:00Z" } : {}),
}));

/** A small seeded generator (mulberry32): the same interleavings on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("merge", () => {
  it("moves a held order in place and keeps what the push does not carry", () => {
    const board = [order("o1", "PAID", 2), order("o2", "PAID", 2)];
    const after = merge(board, LIFE[1])!;
    expect(after.map((o) => [o.orderId, o.status, o.version])).toEqual([
      ["o1", "ACCEPTED", 3],
      ["o2", "PAID", 2],
    ]);
    expect(after[0].note).toBe("no sugar");
    expect(after[0].lines).toEqual(board[0].lines);
    expect(after[0].etaAt).toBe("2026-12-03T10:20:00Z");
  });

  it("asks for the listing only for an order it lacks that belongs on the board", () => {
    expect(merge([], LIFE[0])).toBeNull();
    const board = [order("o2", "PAID", 2)];
    expect(merge(board, { ...LIFE[4] })).toBe(board);
  });

  it("takes an order off the columns when it leaves the active statuses, and knows it", () => {
    const done = merge([order("o1", "READY", 5)], LIFE[4])!;
    expect(onColumns(done)).toEqual([]);
    const rejected = merge([order("o1", "PAID", 2)], { orderId: "o1", status: "REJECTED", orderVersion: 3 })!;
    expect(onColumns(rejected)).toEqual([]);
    // The push of its last move, overtaken by the move's answer, comes late: old news, no listing.
    expect(merge(done, LIFE[3])).toBe(done);
  });

  it("changes nothing for a repeated or older word", () => {
    const board = [order("o1", "PREPARING", 4)];
    expect(merge(board, LIFE[2])).toBe(board);
    expect(merge(board, LIFE[1])).toBe(board);
  });

  // The invariant, after pushes delivered in any order, repeated, with listings in between: the
  // board shows the order as its newest word says (or not at all once it left the board), never an
  // older state, and never twice; and once it has held the order it never lists for it again (a
  // listing replaces the board, as the app's does).
  it("ends where the newest word says, whatever the order and repeats of delivery", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const next = random(seed);
      const deliveries = LIFE.flatMap((f) => Array.from({ length: 1 + Math.floor(next() * 3) }, () => f));
      deliveries.sort(() => next() - 0.5);
      let board: Order[] = [];
      let newest = 0;
      let heldOnce = false;
      let listedAfterHeld = 0;
      for (const facts of deliveries) {
        newest = Math.max(newest, facts.orderVersion);
        // When the board asks, the listing answers with the store's active orders as they now are.
        const now = LIFE.find((f) => f.orderVersion === newest)!;
        const merged = merge(board, facts);
        if (merged === null && heldOnce) listedAfterHeld += 1;
        board = merged ?? (now.status === "COMPLETED" ? [] : [order("o1", now.status, now.orderVersion)]);
        const shown = onColumns(board)
          .filter((o) => o.orderId === "o1")
          .map((o) => [o.status, o.version]);
        expect(shown, `seed ${seed}`).toEqual(now.status === "COMPLETED" ? [] : [[now.status, newest]]);
        heldOnce ||= board.some((o) => o.orderId === "o1");
      }
      const final = LIFE[LIFE.length - 1];
      expect(newest).toBe(final.orderVersion);
      expect(onColumns(board).filter((o) => o.orderId === "o1"), `seed ${seed}`).toEqual([]);
      expect(listedAfterHeld, `seed ${seed}`).toBe(0);
    }
  });

  it("lists once for an order whose words come in order, however late the last push", () => {
    let board: Order[] = [];
    let listings = 0;
    // The moves' answers (versions 3 to 6), each ahead of its push; then the pushes, late.
    for (const facts of [LIFE[0], ...LIFE.slice(1), ...LIFE.slice(1)]) {
      const merged = merge(board, facts);
      if (merged === null) listings += 1;
      board = merged ?? [order("o1", facts.status, facts.orderVersion)];
    }
    expect(listings).toBe(1);
    expect(onColumns(board)).toEqual([]);
  });
});

describe("announces", () => {
  it("announces a paid order once, however often its push comes", () => {
    const heard = new Set<string>();
    expect(announces(heard, "order.paid", "o1")).toBe(true);
    // The same event again (a push is made at least once), after the staff acknowledged it too.
    expect(announces(heard, "order.paid", "o1")).toBe(false);
    expect(announces(heard, "order.paid", "o2")).toBe(true);
    expect(announces(heard, "order.accepted", "o3")).toBe(false);
    expect(announces(heard, "order.paid", "o3")).toBe(true);
  });
});
