//! Menus through the local runner: the round trip, option rules, sold-out switching, ETag and 304,
//! the cache's freshness bound, cross-store writes refused, and racing writes each applied once.

use std::time::Duration;

use e2e::{Stack, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

async fn menu_with_options(stack: &Stack, owner: &str, store: &str) {
    let base = format!("/v1/stores/{store}/menu");
    for (id, name, position) in [("soups", "Soups", 2), ("rolls", "Rolls", 1)] {
        let reply = stack
            .put(
                &format!("{base}/categories/{id}"),
                &json!({"name": name, "position": position}),
                Some(owner),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    let size = json!({"name": "Size", "kind": "SINGLE_CHOICE", "required": true, "min": 1, "max": 1,
        "values": [{"id": "regular", "name": "Regular", "price": 0}, {"id": "large", "name": "Large", "price": 1000}]});
    let toppings = json!({"name": "Toppings", "kind": "MULTI_CHOICE", "min": 0, "max": 2,
        "values": [{"id": "cheese", "name": "Cheese", "price": 500}, {"id": "tuna", "name": "Tuna", "price": 800},
                   {"id": "egg", "name": "Egg", "price": 300}]});
    for (id, group) in [("size", size), ("toppings", toppings)] {
        let reply = stack
            .put(&format!("{base}/option-groups/{id}"), &group, Some(owner))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    for (id, category, price, groups, position) in [
        ("ramyeon", "soups", 4500, json!(["size"]), 0),
        ("tuna-kimbap", "rolls", 4000, json!(["toppings"]), 2),
        ("kimbap", "rolls", 3500, json!(["size", "toppings"]), 1),
    ] {
        let item = json!({"categoryId": category, "name": id, "price": price, "optionGroupIds": groups,
            "position": position, "description": "맛있어요"});
        let reply = stack
            .put(&format!("{base}/items/{id}"), &item, Some(owner))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert!(reply.body["menuVersion"].as_u64().unwrap() > 1);
    }
}

fn ids(menu: &Value, list: &str) -> Vec<String> {
    menu[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_menu_round_trip_with_etags() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("menu-owner@example.com", "OWNER").await;
    let store = stack.store(&owner, json!({})).await;
    let empty = stack.get(&format!("/v1/stores/{store}/menu"), None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body["items"], json!([]));
    menu_with_options(&stack, &owner, &store).await;

    let path = format!("/v1/stores/{store}/menu");
    let mut menu = stack.get(&path, None).await;
    // A menu read within the cache time of the first (empty) read may still be that one.
    for _ in 0..20 {
        if menu.body["items"].as_array().is_some_and(|i| i.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        menu = stack.get(&path, None).await;
    }
    // Items come in display order: category position, then item position.
    assert_eq!(ids(&menu.body, "categories"), ["rolls", "soups"]);
    assert_eq!(
        ids(&menu.body, "items"),
        ["kimbap", "tuna-kimbap", "ramyeon"]
    );
    assert_eq!(ids(&menu.body, "optionGroups"), ["size", "toppings"]);
    assert_eq!(menu.body["items"][0]["price"], 3500);
    assert_eq!(menu.body["items"][0]["available"], true);
    let etag = menu.header("etag").unwrap().to_owned();
    // The store, the menu version, and the image-URL window it was rendered in.
    assert!(
        etag.starts_with(&format!("\"{store}.{}.", menu.body["version"])),
        "{etag}"
    );
    assert_eq!(menu.header("cache-control"), Some("no-cache"));

    let not_modified = stack
        .send(
            stack
                .http()
                .get(stack.url(&path))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.body, Value::Null);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let stale_tag = stack
        .send(
            stack
                .http()
                .get(stack.url(&path))
                .header("if-none-match", "\"old.1\""),
        )
        .await;
    assert_eq!(stale_tag.status, StatusCode::OK);
}

#[tokio::test]
async fn sold_out_switches_show_within_the_cache_bound() {
    // One second of menu caching, so the bound is quick to wait out.
    let stack = Stack::start_with(&["MenuCacheSeconds=1"]);
    let (_, owner, _) = stack.account("sold-out@example.com", "OWNER").await;
    let store = stack.store(&owner, json!({})).await;
    menu_with_options(&stack, &owner, &store).await;
    let path = format!("/v1/stores/{store}/menu");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = stack.get(&path, None).await;
    assert_eq!(before.body["items"][0]["available"], true);
    let etag = before.header("etag").unwrap().to_owned();

    let switched = stack
        .patch(
            &format!("{path}/items/kimbap/availability"),
            &json!({"available": false}),
            Some(&owner),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK);
    assert_eq!(switched.body["available"], false);
    assert_eq!(
        switched.body["price"], 3500,
        "the rest of the item is untouched"
    );

    // Past the bound, every read sees the change, and the old validator no longer matches.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = stack
        .send(
            stack
                .http()
                .get(stack.url(&path))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body["items"][0]["available"], false);
    assert_ne!(after.header("etag").unwrap(), etag);
    assert_eq!(after.body["version"], switched.body["menuVersion"]);

    // The owner reprices the item from a page read before it sold out, naming neither its
    // availability nor its place: it stays sold out, where it was. Named, they are set.
    let repriced = stack
        .put(
            &format!("{path}/items/kimbap"),
            &json!({"categoryId": "rolls", "name": "kimbap", "price": 3900,
                    "optionGroupIds": ["size", "toppings"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::OK, "{:?}", repriced.body);
    assert_eq!(
        (
            &repriced.body["price"],
            &repriced.body["available"],
            &repriced.body["position"]
        ),
        (&json!(3900), &json!(false), &json!(1)),
        "{:?}",
        repriced.body
    );
    let (_, customer, _) = stack
        .account("sold-out-customer@example.com", "CUSTOMER")
        .await;
    stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"weeklyHours": e2e::always_open()}),
            Some(&owner),
        )
        .await;
    let refused = stack
        .order(
            &customer,
            &json!({"storeId": store, "items": [{"itemId": "kimbap", "quantity": 1,
                    "options": [{"groupId": "size", "valueIds": ["regular"]}]}],
                    "fulfilment": {"type": "PICKUP"}, "phone": "010-1111-2222"}),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "ITEM_SOLD_OUT"),
        "{:?}",
        refused.body
    );
    let back = stack
        .put(
            &format!("{path}/items/kimbap"),
            &json!({"categoryId": "rolls", "name": "kimbap", "price": 3900, "available": true,
                    "position": 3, "optionGroupIds": ["size", "toppings"]}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (&back.body["available"], &back.body["position"]),
        (&json!(true), &json!(3))
    );
}

#[tokio::test]
async fn invalid_menus_are_refused_naming_the_field() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("strict@example.com", "OWNER").await;
    let store = stack.store(&owner, json!({})).await;
    let base = format!("/v1/stores/{store}/menu");
    stack
        .put(
            &format!("{base}/categories/rolls"),
            &json!({"name": "Rolls"}),
            Some(&owner),
        )
        .await;
    let value = |id: &str, price: i64| json!({"id": id, "name": id, "price": price});

    let cases = [
        (
            "option-groups/g",
            json!({"name": "G", "kind": "MULTI_CHOICE", "min": 3, "max": 2, "values": [value("a", 0)]}),
            "min",
        ),
        (
            "option-groups/g",
            json!({"name": "G", "kind": "SINGLE_CHOICE", "required": true, "min": 1, "max": 1, "values": []}),
            "values",
        ),
        (
            "option-groups/g",
            json!({"name": "G", "kind": "MULTI_CHOICE", "min": 0, "max": 2, "values": [value("a", 0), value("a", 100)]}),
            "values[1].id",
        ),
        (
            "option-groups/g",
            json!({"name": "G", "kind": "MULTI_CHOICE", "min": 0, "max": 2, "values": [value("a", -100)]}),
            "values[0].price",
        ),
        (
            "option-groups/g",
            json!({"name": "G", "kind": "SOMETIMES", "min": 0, "max": 2, "values": []}),
            "kind",
        ),
        (
            "items/x",
            json!({"categoryId": "rolls", "name": "X", "price": -1}),
            "price",
        ),
        (
            "items/x",
            json!({"categoryId": "rolls", "name": "X", "price": 10_000_001}),
            "price",
        ),
        (
            "items/x",
            json!({"categoryId": "nope", "name": "X", "price": 1000}),
            "categoryId",
        ),
        (
            "items/x",
            json!({"categoryId": "rolls", "name": "X", "price": 1000, "optionGroupIds": ["nope"]}),
            "optionGroupIds",
        ),
        (
            "items/x",
            json!({"categoryId": "rolls", "name": "X", "price": 1000, "imageKey": "stolen.png"}),
            "imageKey",
        ),
        (
            "items/bad%20id",
            json!({"categoryId": "rolls", "name": "X", "price": 1000}),
            "itemId",
        ),
        ("categories/c", json!({"name": ""}), "name"),
    ];
    for (path, body, field) in cases {
        let reply = stack
            .put(&format!("{base}/{path}"), &body, Some(&owner))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {:?}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{path}: {message}");
    }
    // Nothing was written: the menu still has just the category.
    let menu = stack.get(&base, None).await;
    assert_eq!(menu.body["items"], json!([]));
    assert_eq!(menu.body["optionGroups"], json!([]));

    // Deletes that would leave dangling references are conflicts.
    stack
        .put(
            &format!("{base}/items/kimbap"),
            &json!({"categoryId": "rolls", "name": "K", "price": 1}),
            Some(&owner),
        )
        .await;
    let busy = stack
        .delete(&format!("{base}/categories/rolls"), Some(&owner))
        .await;
    assert_eq!(
        (busy.status.as_u16(), busy.code()),
        (409, "CATEGORY_NOT_EMPTY")
    );
    let gone = stack
        .delete(&format!("{base}/items/ghost"), Some(&owner))
        .await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "ITEM_NOT_FOUND"));
    // A replaced item answers 200; a deleted one is gone.
    let replaced = stack
        .put(
            &format!("{base}/items/kimbap"),
            &json!({"categoryId": "rolls", "name": "K2", "price": 2}),
            Some(&owner),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(
        stack
            .delete(&format!("{base}/items/kimbap"), Some(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        stack
            .delete(&format!("{base}/categories/rolls"), Some(&owner))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn every_menu_write_refuses_other_stores_people() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("mine@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("theirs@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("eater@example.com", "CUSTOMER").await;
    let (other_staff_id, invited, _) = stack.account("their-staff@example.com", "CUSTOMER").await;
    let store = stack.store(&owner, json!({})).await;
    let other_store = stack.store(&other_owner, json!({})).await;
    stack
        .hire(&other_owner, &other_store, &other_staff_id, &invited)
        .await;
    let other_staff = stack
        .login("their-staff@example.com", e2e::PASSWORD)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    menu_with_options(&stack, &owner, &store).await;
    let base = format!("/v1/stores/{store}/menu");

    let group = json!({"name": "G", "kind": "MULTI_CHOICE", "min": 0, "max": 1, "values": []});
    let item = json!({"categoryId": "rolls", "name": "X", "price": 1});
    let writes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (
            reqwest::Method::PUT,
            format!("{base}/categories/drinks"),
            Some(json!({"name": "Drinks"})),
        ),
        (
            reqwest::Method::DELETE,
            format!("{base}/categories/soups"),
            None,
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/items/kimbap"),
            Some(item),
        ),
        (
            reqwest::Method::DELETE,
            format!("{base}/items/kimbap"),
            None,
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/option-groups/size"),
            Some(group),
        ),
        (
            reqwest::Method::DELETE,
            format!("{base}/option-groups/toppings"),
            None,
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/items/kimbap/availability"),
            Some(json!({"available": false})),
        ),
        (
            reqwest::Method::PATCH,
            format!("/v1/stores/{store}"),
            Some(json!({"name": "Mine now"})),
        ),
    ];
    let version = stack.get(&base, None).await.body["version"].clone();
    for (method, path, body) in &writes {
        for (who, token) in [
            ("another owner", Some(&other_owner)),
            ("a customer", Some(&customer)),
            ("another store's staff", Some(&other_staff)),
            ("nobody", None),
        ] {
            let reply = stack
                .send_json(
                    method.clone(),
                    path,
                    body.as_ref(),
                    token.map(String::as_str),
                )
                .await;
            let expected = if token.is_some() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                reply.status, expected,
                "{who}: {method} {path}: {:?}",
                reply.body
            );
        }
    }
    // Nothing changed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let store_now = stack.get(&format!("/v1/stores/{store}"), None).await;
    assert_eq!(store_now.body["name"], "김밥천국 종로점");
    let stack_menu = stack.get(&base, None).await;
    assert_eq!(stack_menu.body["version"], version);
}

/// An owner's writes racing on one menu (two tablets, a script): the menu is one item written under
/// its version, so a write is applied once or refused with `409 MENU_BUSY`, never lost or applied
/// twice. After a seeded random interleaving (`MENU_SEED=<n>` replays one; the seed is printed):
/// every item whose PUT answered 201 is on the stored menu and every refused one is not; each
/// success saw a version of its own; the menu's version counts exactly the writes that succeeded.
#[tokio::test]
async fn racing_menu_writes_are_each_applied_once_or_refused() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("busy-menu@example.com", "OWNER").await;
    let store = stack.store(&owner, json!({})).await;
    let base = format!("/v1/stores/{store}/menu");
    let first = stack
        .put(
            &format!("{base}/categories/mains"),
            &json!({"name": "Mains"}),
            Some(&owner),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let start = first.body["menuVersion"].as_u64().unwrap();
    let seed = e2e::seed("MENU_SEED");
    let mut rng = StdRng::seed_from_u64(seed);
    let writes: Vec<(String, u64, i64)> = (0..12)
        .map(|i| {
            (
                format!("dish-{i}"),
                rng.random_range(0..30),
                rng.random_range(1_000..20_000),
            )
        })
        .collect();
    let replies = futures::future::join_all(writes.iter().map(|(id, delay, price)| {
        let (stack, base, owner) = (&stack, &base, &owner);
        async move {
            tokio::time::sleep(Duration::from_millis(*delay)).await;
            let item = json!({"categoryId": "mains", "name": id, "price": price});
            stack
                .put(&format!("{base}/items/{id}"), &item, Some(owner))
                .await
        }
    }))
    .await;

    let mut applied = Vec::new();
    let mut versions = Vec::new();
    for ((id, _, price), reply) in writes.iter().zip(&replies) {
        match reply.status {
            StatusCode::CREATED => {
                assert_eq!(reply.body["id"], json!(id), "MENU_SEED={seed}");
                assert_eq!(reply.body["price"], json!(price), "MENU_SEED={seed}");
                applied.push((id.clone(), *price));
                versions.push(reply.body["menuVersion"].as_u64().unwrap());
            }
            StatusCode::CONFLICT => assert_eq!(reply.code(), "MENU_BUSY", "MENU_SEED={seed}"),
            other => panic!("MENU_SEED={seed}: {id} answered {other}: {:?}", reply.body),
        }
    }
    assert!(!applied.is_empty(), "MENU_SEED={seed}: no write succeeded");
    versions.sort_unstable();
    let expected: Vec<u64> = (start + 1..=start + applied.len() as u64).collect();
    assert_eq!(
        versions, expected,
        "MENU_SEED={seed}: each success has a version of its own"
    );

    let stored = stack.menu_record(&store).await;
    assert_eq!(
        stored.version,
        start + applied.len() as u64,
        "MENU_SEED={seed}"
    );
    let mut on_menu: Vec<(String, i64)> = stored
        .menu
        .items
        .iter()
        .map(|item| (item.id.clone(), item.price))
        .collect();
    on_menu.sort();
    applied.sort();
    assert_eq!(
        on_menu, applied,
        "MENU_SEED={seed}: the menu holds exactly the applied writes"
    );
    eprintln!(
        "MENU_SEED={seed}: {} of {} racing writes applied",
        applied.len(),
        writes.len()
    );
}
