// The API as the board uses it: JSON over HTTP with a bearer token, errors as their stable codes.

export interface Config {
  /** The HTTP API's base URL ("" for the page's own origin). */
  api: string;
  /** The WebSocket API's URL. */
  websocket: string;
}

export interface Line {
  itemId: string;
  name: string;
  quantity: number;
  lineTotal: number;
  options: { groupId: string; valueId: string; name: string }[];
}

export interface Order {
  orderId: string;
  status: string;
  version: number;
  lines: Line[];
  total: number;
  orderName: string;
  fulfilment: string;
  note?: string;
  createdAt: string;
  etaAt?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function loadConfig(): Promise<Config> {
  const reply = await fetch(new URL("config.json", document.baseURI));
  return (await reply.json()) as Config;
}

export async function call<T>(
  config: Config,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
  idempotencyKey?: string,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  if (body !== undefined) headers["content-type"] = "application/json";
  let reply: Response;
  try {
    reply = await fetch(config.api + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "OFFLINE", "the network is unreachable");
  }
  const json = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const error = (json as { error?: { code?: string; message?: string } }).error ?? {};
    throw new ApiError(reply.status, error.code ?? "HTTP_" + reply.status, error.message ?? "");
  }
  return json as T;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export function signIn(config: Config, email: string, password: string): Promise<Tokens> {
  return call(config, "POST", "/v1/auth/login", null, { email, password });
}

export function refresh(config: Config, refreshToken: string): Promise<Tokens> {
  return call(config, "POST", "/v1/auth/refresh", null, { refreshToken });
}

/** Changes the signed-in person's password; the API answers a new session's tokens (every other
 * session ends). */
export function changePassword(
  config: Config,
  token: string,
  currentPassword: string,
  newPassword: string,
): Promise<Tokens> {
  return call(config, "POST", "/v1/me/password", token, { currentPassword, newPassword });
}

export async function activeOrders(config: Config, token: string, store: string): Promise<Order[]> {
  const page = await call<{ orders: Order[] }>(
    config,
    "GET",
    `/v1/stores/${encodeURIComponent(store)}/orders?status=ACTIVE&limit=100`,
    token,
  );
  return page.orders;
}

/** Why a store turns a paid order away (the API's `reason`). */
export const REJECT_REASONS = ["OUT_OF_STOCK", "TOO_BUSY", "STORE_CLOSING", "OTHER"] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export function move(
  config: Config,
  token: string,
  order: string,
  to: string,
  extra: { etaMinutes?: number; reason?: RejectReason; device?: string } = {},
): Promise<Order> {
  return call(config, "POST", `/v1/orders/${encodeURIComponent(order)}/status`, token, { to, ...extra });
}

export interface MenuItem {
  id: string;
  categoryId: string;
  name: string;
  description: string;
  price: number;
  available: boolean;
  optionGroupIds: string[];
  position: number;
}

export interface Category {
  id: string;
  name: string;
  position: number;
}

/** The menu as the owner edits it (option groups and images stay with the API). */
export interface Menu {
  categories: Category[];
  items: MenuItem[];
}

export function wholeMenu(config: Config, store: string): Promise<Menu> {
  return call(config, "GET", `/v1/stores/${encodeURIComponent(store)}/menu`, null);
}

/** What the owner sets of an item; the rest of it (sold out, option groups, place) is kept. */
export interface ItemDraft {
  categoryId: string;
  name: string;
  description: string;
  price: number;
}

/** Creates an item at `position`, or replaces `was` (the item as read, whose option groups it
 * keeps). Neither names whether the item is sold out: the API keeps a replaced item's own (the
 * staff may have switched it since this page read it), and a new one is available. */
export function putItem(
  config: Config,
  token: string,
  store: string,
  id: string,
  draft: ItemDraft,
  was: MenuItem | undefined,
  position: number,
): Promise<MenuItem> {
  const body = was ? { ...draft, optionGroupIds: was.optionGroupIds } : { ...draft, optionGroupIds: [], position };
  return call(config, "PUT", `/v1/stores/${encodeURIComponent(store)}/menu/items/${encodeURIComponent(id)}`, token, body);
}

export function deleteItem(config: Config, token: string, store: string, id: string): Promise<unknown> {
  return call(config, "DELETE", `/v1/stores/${encodeURIComponent(store)}/menu/items/${encodeURIComponent(id)}`, token);
}

export function putCategory(config: Config, token: string, store: string, id: string, name: string, position: number): Promise<Category> {
  return call(config, "PUT", `/v1/stores/${encodeURIComponent(store)}/menu/categories/${encodeURIComponent(id)}`, token, { name, position });
}

export function deleteCategory(config: Config, token: string, store: string, id: string): Promise<unknown> {
  return call(config, "DELETE", `/v1/stores/${encodeURIComponent(store)}/menu/categories/${encodeURIComponent(id)}`, token);
}

export async function menuItems(config: Config, store: string): Promise<MenuItem[]> {
  const menu = await call<{ items: MenuItem[] }>(config, "GET", `/v1/stores/${encodeURIComponent(store)}/menu`, null);
  return menu.items;
}

export function setAvailable(
  config: Config,
  token: string,
  store: string,
  item: string,
  available: boolean,
): Promise<MenuItem> {
  return call<MenuItem>(
    config,
    "PATCH",
    `/v1/stores/${encodeURIComponent(store)}/menu/items/${encodeURIComponent(item)}/availability`,
    token,
    { available },
  );
}

/** One span a store is open, "HH:MM" (a close at or before the open runs past midnight). */
export interface Interval {
  open: string;
  close: string;
}

export interface WeeklyHours {
  mon: Interval[];
  tue: Interval[];
  wed: Interval[];
  thu: Interval[];
  fri: Interval[];
  sat: Interval[];
  sun: Interval[];
}

/** A date the store keeps other hours than its week's: `hours` empty (or absent) is closed all day. */
export interface DateException {
  date: string;
  hours?: Interval[];
}

/** What the store's owner sets. */
export interface StoreSettings {
  name: string;
  phone: string;
  address: string;
  timeZone: string;
  acceptingOrders: boolean;
  weeklyHours: WeeklyHours;
  exceptions: DateException[];
  prepMinutes: number;
  minOrderAmount: number;
  maxQueuedOrders: number;
}

/** The store as everyone may read it, and whether it takes orders now. */
export interface Store extends StoreSettings {
  storeId: string;
  status: { open: boolean; reason?: "CLOSED_BY_STORE" | "CLOSED_TODAY" | "OUTSIDE_HOURS" };
}

/** The owner changes some of the store's settings (nothing else is the client's to set). */
export function updateStore(config: Config, token: string, store: string, patch: Partial<StoreSettings>): Promise<Store> {
  return call(config, "PATCH", `/v1/stores/${encodeURIComponent(store)}`, token, patch);
}

export function storeInfo(config: Config, store: string): Promise<Store> {
  return call(config, "GET", `/v1/stores/${encodeURIComponent(store)}`, null);
}

export interface ItemSales {
  itemId: string;
  name: string;
  count: number;
  revenue: number;
}

export interface DailyReport {
  date: string;
  orders: number;
  grossSales: number;
  refunds: number;
  refundCount: number;
  netSales: number;
  lostSales: { total: number };
  ordersByHour: number[];
  items: ItemSales[];
}

export function dailyReport(config: Config, token: string, store: string, date: string): Promise<DailyReport> {
  return call(config, "GET", `/v1/stores/${encodeURIComponent(store)}/reports/daily?date=${date}`, token);
}

export async function topItems(
  config: Config,
  token: string,
  store: string,
  from: string,
  to: string,
): Promise<ItemSales[]> {
  const ranking = await call<{ items: ItemSales[] }>(
    config,
    "GET",
    `/v1/stores/${encodeURIComponent(store)}/reports/top-items?from=${from}&to=${to}&limit=5`,
    token,
  );
  return ranking.items;
}

export interface AuditRecord {
  action: string;
  actor: { kind: string; id?: string };
  target: string;
  before?: string;
  after?: string;
  amount?: number;
  at: string;
}

export async function auditTrail(config: Config, token: string, store: string): Promise<AuditRecord[]> {
  const page = await call<{ records: AuditRecord[] }>(
    config,
    "GET",
    `/v1/stores/${encodeURIComponent(store)}/audit?limit=20`,
    token,
  );
  return page.records;
}

export function exportMonth(
  config: Config,
  token: string,
  store: string,
  month: string,
): Promise<{ url: string; rows: number }> {
  return call(config, "POST", `/v1/stores/${encodeURIComponent(store)}/reports/export?month=${month}`, token);
}

export async function completedOrders(config: Config, token: string, store: string): Promise<Order[]> {
  const page = await call<{ orders: Order[] }>(
    config,
    "GET",
    `/v1/stores/${encodeURIComponent(store)}/orders?status=COMPLETED&limit=10`,
    token,
  );
  return page.orders;
}

export interface Refund {
  refundId: string;
  amount: number;
  state: "PENDING" | "DONE" | "FAILED";
  balanceAmount: number;
}

/** `key` names the refund: sent again (a retry after a lost answer), it never refunds twice. */
export function refund(
  config: Config,
  token: string,
  order: string,
  key: string,
  amount: number,
  reason: string,
): Promise<Refund> {
  return call(config, "POST", `/v1/orders/${encodeURIComponent(order)}/refunds`, token, { amount, reason }, key);
}

/** What an order's payment took and every refund of it, oldest first. */
export interface OrderRefunds {
  paidAmount: number;
  refundedAmount: number;
  /** What can still be refunded: paid, less the refunds made and those under way. */
  balanceAmount: number;
  refunds: { refundId: string; amount: number; reason: string; state: Refund["state"]; createdAt: string }[];
}

export function orderRefunds(config: Config, token: string, order: string): Promise<OrderRefunds> {
  return call(config, "GET", `/v1/orders/${encodeURIComponent(order)}/refunds`, token);
}

/** A store the signed-in user may run. */
export interface MyStore {
  storeId: string;
  name: string;
  place: "OWNER" | "STAFF";
}

export async function myStores(config: Config, token: string): Promise<MyStore[]> {
  return (await call<{ stores: MyStore[] }>(config, "GET", "/v1/me/stores", token)).stores;
}

/** Who works at a store (with their names) and whom it has invited, as its owner sees them. */
export interface StaffList {
  staff: { userId: string; name?: string; addedAt: string }[];
  invitations: { userId: string; invitedAt: string; expiresAt: string }[];
}

export function staffList(config: Config, token: string, store: string): Promise<StaffList> {
  return call(config, "GET", `/v1/stores/${encodeURIComponent(store)}/staff`, token);
}

/** Invites the account that signs in with `email`; answers its id. */
export function inviteStaff(
  config: Config,
  token: string,
  store: string,
  email: string,
): Promise<{ userId: string; status: "INVITED" | "STAFF"; expiresAt?: string }> {
  return call(config, "POST", `/v1/stores/${encodeURIComponent(store)}/staff`, token, { email });
}

/** Ends a member's place at the store, or withdraws their invitation. */
export function removeStaff(config: Config, token: string, store: string, user: string): Promise<unknown> {
  return call(
    config,
    "DELETE",
    `/v1/stores/${encodeURIComponent(store)}/staff/${encodeURIComponent(user)}`,
    token,
  );
}

/** A store's invitation to the signed-in user to join its staff. */
export interface Invitation {
  storeId: string;
  storeName: string;
  invitedAt: string;
  expiresAt: string;
}

export async function myInvitations(config: Config, token: string): Promise<Invitation[]> {
  return (await call<{ invitations: Invitation[] }>(config, "GET", "/v1/me/invitations", token)).invitations;
}

/** Joins the store's staff by its invitation. */
export function acceptInvitation(config: Config, token: string, store: string): Promise<unknown> {
  return call(config, "POST", `/v1/me/invitations/${encodeURIComponent(store)}/accept`, token);
}
