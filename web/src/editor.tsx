// The owner edits the menu on the board ("메뉴 편집"): categories and their items — name, price,
// description, category — new ones added at the end, an item or an empty category deleted (a second
// tap confirms it). Option groups and images stay with the API, and a replaced item keeps them, as
// it keeps being sold out. Each save answers the saved entry, which replaces the page's copy: the
// menu read is cached by the API for up to a minute and would lag a change made here.

import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  type Category,
  type Config,
  deleteCategory,
  deleteItem,
  type ItemDraft,
  type Menu,
  type MenuItem,
  putCategory,
  putItem,
  wholeMenu,
} from "./api";
import { end, store, withToken } from "./session";
import { t, won } from "./text";

/** A fresh id for a new entry (the API takes the client's: a retried save lands on the same one). */
function newId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One past the last position among `entries`: a new entry goes at the end. */
function after(entries: { position: number }[]): number {
  return entries.reduce((last, e) => Math.max(last, e.position + 1), 0);
}

function ItemForm({
  item,
  categories,
  categoryId,
  onSave,
  onCancel,
}: {
  item?: MenuItem;
  categories: Category[];
  categoryId: string;
  onSave: (draft: ItemDraft) => Promise<void>;
  onCancel: () => void;
}) {
  const [name, setName] = useState(item?.name ?? "");
  const [price, setPrice] = useState(item ? String(item.price) : "");
  const [description, setDescription] = useState(item?.description ?? "");
  const [category, setCategory] = useState(item?.categoryId ?? categoryId);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await onSave({ categoryId: category, name: name.trim(), description: description.trim(), price: Number(price) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="item-form" aria-label={item ? `${item.name} ${t("edit")}` : t("addItem")} onSubmit={(e) => void submit(e)}>
      <label>
        {t("itemName")}
        <input required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        {t("itemPrice")}
        <input
          type="number"
          inputMode="numeric"
          required
          min={0}
          max={10_000_000}
          step={1}
          value={price}
          onInput={(e) => setPrice(e.currentTarget.value)}
        />
      </label>
      <label>
        {t("itemDescription")}
        <textarea maxLength={500} rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      {categories.length > 1 && (
        <label>
          {t("itemCategory")}
          <select value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            {categories.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <div class="actions">
        <button type="submit" disabled={busy}>
          {t("saveItem")}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          {t("cancel")}
        </button>
      </div>
    </form>
  );
}

export function MenuEditor({ config, onNotice }: { config: Config; onNotice: (text: string) => void }) {
  const storeId = store.value;
  const [menu, setMenu] = useState<Menu | null>(null);
  // The item being edited (its id), or `new:<categoryId>` for one being added.
  const [editing, setEditing] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [newCategory, setNewCategory] = useState("");
  // The id a new item will have, fixed while its form is open: saving again after an answer that
  // never came replaces the same item rather than adding a second.
  const [newItemId, setNewItemId] = useState(() => newId("i"));
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!storeId) return;
    wholeMenu(config, storeId).then(
      (read) => setMenu({ categories: read.categories, items: read.items }),
      () => setError(t("menuFailed")),
    );
  }, [config, storeId]);

  /** Runs a change; a refusal is said in words (and a session that ended signs the board out). */
  const change = async (work: (token: string, storeId: string) => Promise<void>): Promise<boolean> => {
    if (!storeId) return false;
    setError(null);
    try {
      await withToken(config, (token) => work(token, storeId));
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) end();
      else if (err instanceof ApiError && err.status === 0) setError(t("offlineRefused"));
      else if (err instanceof ApiError && err.code === "CATEGORY_NOT_EMPTY") setError(t("categoryNotEmpty"));
      else if (err instanceof ApiError && err.code === "MENU_BUSY") setError(t("menuBusy"));
      else if (err instanceof ApiError && err.status === 422) setError(`${t("menuRefused")}${err.message ? `: ${err.message}` : ""}`);
      else setError(t("menuFailed"));
      return false;
    }
  };

  if (!menu) return error ? <p role="alert">{error}</p> : null;

  const saveItem = async (id: string, draft: ItemDraft, was?: MenuItem) => {
    const position = after(menu.items.filter((i) => i.categoryId === draft.categoryId && i.id !== id));
    const saved = await change(async (token, storeId) => {
      const item = await putItem(config, token, storeId, id, draft, was, position);
      setMenu((now) => now && { ...now, items: [...now.items.filter((i) => i.id !== id), item] });
    });
    if (saved) {
      setEditing(null);
      if (!was) setNewItemId(newId("i"));
      onNotice(t("itemSaved"));
    }
  };
  const removeItem = async (item: MenuItem) => {
    if (confirming !== item.id) return setConfirming(item.id);
    setConfirming(null);
    const removed = await change(async (token, storeId) => {
      await deleteItem(config, token, storeId, item.id);
      setMenu((now) => now && { ...now, items: now.items.filter((i) => i.id !== item.id) });
    });
    if (removed) onNotice(t("itemDeleted"));
  };
  const addCategory = async (e: Event) => {
    e.preventDefault();
    const name = newCategory.trim();
    const added = await change(async (token, storeId) => {
      const category = await putCategory(config, token, storeId, newId("c"), name, after(menu.categories));
      setMenu((now) => now && { ...now, categories: [...now.categories, category] });
    });
    if (added) setNewCategory("");
  };
  const removeCategory = async (category: Category) => {
    if (confirming !== category.id) return setConfirming(category.id);
    setConfirming(null);
    await change(async (token, storeId) => {
      await deleteCategory(config, token, storeId, category.id);
      setMenu((now) => now && { ...now, categories: now.categories.filter((c) => c.id !== category.id) });
    });
  };

  const byPlace = (a: { position: number; id: string }, b: { position: number; id: string }) =>
    a.position - b.position || a.id.localeCompare(b.id);
  const categories = [...menu.categories].sort(byPlace);
  const deletion = (id: string, label: string, onClick: () => void) => (
    <button type="button" class="secondary" aria-pressed={confirming === id} aria-label={confirming === id ? undefined : label} onClick={onClick}>
      {confirming === id ? t("confirmDelete") : t("delete")}
    </button>
  );
  return (
    <section class="editor" aria-label={t("editMenu")}>
      <h2>{t("editMenu")}</h2>
      {categories.map((category) => {
        const items = menu.items.filter((i) => i.categoryId === category.id).sort(byPlace);
        return (
          <div class="category" key={category.id} data-category={category.id}>
            <header>
              <h3>{category.name}</h3>
              {items.length === 0 &&
                deletion(category.id, `${category.name} ${t("delete")}`, () => void removeCategory(category))}
            </header>
            <ul>
              {items.map((item) =>
                editing === item.id ? (
                  <li key={item.id} data-item={item.id}>
                    <ItemForm
                      item={item}
                      categories={categories}
                      categoryId={category.id}
                      onSave={(draft) => saveItem(item.id, draft, item)}
                      onCancel={() => setEditing(null)}
                    />
                  </li>
                ) : (
                  <li key={item.id} data-item={item.id}>
                    <span>{item.name}</span>
                    {!item.available && <strong>{t("soldOut")}</strong>}
                    <small>{won(item.price)}</small>
                    <button type="button" class="secondary" aria-label={`${item.name} ${t("edit")}`} onClick={() => setEditing(item.id)}>
                      {t("edit")}
                    </button>
                    {deletion(item.id, `${item.name} ${t("delete")}`, () => void removeItem(item))}
                  </li>
                ),
              )}
            </ul>
            {editing === `new:${category.id}` ? (
              <ItemForm
                categories={categories}
                categoryId={category.id}
                onSave={(draft) => saveItem(newItemId, draft)}
                onCancel={() => setEditing(null)}
              />
            ) : (
              <button type="button" aria-label={`${category.name} ${t("addItem")}`} onClick={() => setEditing(`new:${category.id}`)}>
                {t("addItem")}
              </button>
            )}
          </div>
        );
      })}
      <form class="new-category" onSubmit={(e) => void addCategory(e)}>
        <label>
          {t("newCategory")}
          <input required maxLength={100} value={newCategory} onInput={(e) => setNewCategory(e.currentTarget.value)} />
        </label>
        <button type="submit">{t("addCategory")}</button>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
