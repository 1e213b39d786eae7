// Every word the app shows, Korean first. A key missing from English falls back to Korean.

import { signal } from "@preact/signals";

const ko = {
  title: "주문 보드",
  email: "이메일",
  password: "비밀번호",
  store: "매장 ID",
  signIn: "로그인",
  signOut: "로그아웃",
  signInFailed: "로그인할 수 없습니다",
  paid: "신규",
  accepted: "접수",
  preparing: "조리 중",
  ready: "준비 완료",
  accept: "접수",
  prepare: "조리 시작",
  markReady: "준비 완료",
  complete: "전달 완료",
  minutes: "분",
  newOrder: "새 주문",
  acknowledge: "확인",
  offlineSince: "연결 끊김",
  pickup: "포장",
  delivery: "배달",
  won: "원",
  empty: "주문 없음",
  movedElsewhere: "다른 기기에서 이미 처리한 주문입니다",
  offlineRefused: "오프라인 상태에서는 처리할 수 없습니다",
  menu: "메뉴 품절 관리",
  soldOut: "품절",
  menuFailed: "메뉴를 바꿀 수 없습니다",
  reject: "거절",
  rejectTitle: "거절 사유",
  OUT_OF_STOCK: "재료 소진",
  TOO_BUSY: "주문 폭주",
  STORE_CLOSING: "영업 종료",
  OTHER: "기타",
  cancel: "취소",
  soundOn: "알림음 켜기",
};

export type Key = keyof typeof ko;

const en: Partial<Record<Key, string>> = {
  title: "Order board",
  email: "E-mail",
  password: "Password",
  store: "Store ID",
  signIn: "Sign in",
  signOut: "Sign out",
  signInFailed: "Could not sign in",
  paid: "New",
  accepted: "Accepted",
  preparing: "Preparing",
  ready: "Ready",
  accept: "Accept",
  prepare: "Start",
  markReady: "Ready",
  complete: "Handed over",
  minutes: "min",
  newOrder: "New order",
  acknowledge: "OK",
  offlineSince: "Offline since",
  pickup: "Pickup",
  delivery: "Delivery",
  won: "KRW",
  empty: "No orders",
  movedElsewhere: "Another device moved this order first",
  offlineRefused: "Offline: try again once connected",
  menu: "Sold-out switches",
  soldOut: "sold out",
  menuFailed: "Could not change the menu",
  reject: "Reject",
  rejectTitle: "Why reject it?",
  OUT_OF_STOCK: "Out of stock",
  TOO_BUSY: "Too busy",
  STORE_CLOSING: "Closing",
  OTHER: "Other",
  cancel: "Cancel",
  soundOn: "Turn the chime on",
};

const CHOSEN = "ordersync.language";

/** The language shown: the one chosen on this device, else English for an English browser, else Korean. */
export const language = signal<"ko" | "en">(
  (localStorage.getItem(CHOSEN) as "ko" | "en" | null) ??
    (navigator.language.toLowerCase().startsWith("en") ? "en" : "ko"),
);
document.documentElement.lang = language.value;

export function choose(chosen: "ko" | "en"): void {
  language.value = chosen;
  localStorage.setItem(CHOSEN, chosen);
  document.documentElement.lang = chosen;
}

export function t(key: Key): string {
  return (language.value === "en" && en[key]) || ko[key];
}
