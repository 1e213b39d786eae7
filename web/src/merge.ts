// How the board's orders follow what the API says, without asking it again: a push and a move's
// answer both say where an order is now (its status and version). Pure, so that its rules are
// unit-tested (merge.test.ts).

import type { Order } from "./api";

/** The statuses the board shows, in its columns' order; an order that leaves them leaves the board. */
export const ACTIVE = ["PAID", "ACCEPTED", "PREPARING", "READY"];

/** What a push says of its order (the event's public facts: no lines' options, no note). */
export interface Facts {
  orderId: string;
  status: string;
  orderVersion: number;
  etaAt?: string;
}

/**
 * The board after `facts`, or null when the board must list its orders to know (an order it does
 * not hold that belongs on it: its options and note come only with the listing). An older or
 * repeated word changes nothing; a newer one moves the order in place, or off the columns. An
 * order that left them stays held (out of sight) until the next listing, so that a late word
 * about it — a push overtaken by the move's own answer — is known to be old and asks for nothing.
 */
export function merge(orders: Order[], facts: Facts): Order[] | null {
  const held = orders.find((o) => o.orderId === facts.orderId);
  if (!held) return ACTIVE.includes(facts.status) ? null : orders;
  if (facts.orderVersion <= held.version) return orders;
  return orders.map((o) =>
    o === held ? { ...o, status: facts.status, version: facts.orderVersion, etaAt: facts.etaAt ?? o.etaAt } : o,
  );
}

/**
 * Whether a push of `type` about `orderId` announces a paid order this board has not announced
 * (`heard` keeps the ones it has). A push is made at least once: a repeat of the same event must
 * not ring again, nor stand again among the unacknowledged once staff have acknowledged it.
 */
export function announces(heard: Set<string>, type: string, orderId: string): boolean {
  if (type !== "order.paid" || heard.has(orderId)) return false;
  heard.add(orderId);
  return true;
}
