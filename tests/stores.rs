//! Stores and staff through the local runner: the round trip, opening hours in the store's zone and
//! across midnight, staff powers, and every cross-store access refused.

use e2e::{Stack, StatusCode};
use jiff::civil::Time;
use serde_json::json;

#[tokio::test]
async fn a_store_round_trip() {
    let stack = Stack::start();
    let (owner_id, owner, _) = stack.account("owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("customer@example.com", "CUSTOMER").await;

    let refused = stack
        .post(
            "/v1/stores",
            &json!({"name": "x", "phone": "0212345678", "address": "y"}),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (403, "FORBIDDEN")
    );

    let store_id = stack.store(&owner, json!({"prepMinutes": 20})).await;
    let store = stack.get(&format!("/v1/stores/{store_id}"), None).await;
    assert_eq!(store.status, StatusCode::OK);
    assert_eq!(store.body["ownerId"], owner_id.as_str());
    assert_eq!(store.body["name"], "김밥천국 종로점");
    assert_eq!(store.body["phone"], "021234567");
    assert_eq!(store.body["timeZone"], "Asia/Seoul");
    assert_eq!(store.body["prepMinutes"], 20);
    assert_eq!(store.body["minOrderAmount"], 0);
    assert_eq!(store.body["maxQueuedOrders"], 30);
    // No hours set yet: closed, and it says why.
    assert_eq!(
        store.body["status"],
        json!({"open": false, "reason": "OUTSIDE_HOURS"})
    );

    let path = format!("/v1/stores/{store_id}");
    let patched = stack
        .patch(
            &path,
            &json!({"minOrderAmount": 12000, "acceptingOrders": false}),
            Some(&owner),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["minOrderAmount"], 12000);
    assert_eq!(patched.body["prepMinutes"], 20);
    assert_eq!(patched.body["status"]["reason"], "CLOSED_BY_STORE");

    // Mass assignment and bad values are refused and change nothing.
    for (body, field) in [
        (json!({"ownerId": "someone-else"}), "ownerId"),
        (json!({"version": 99}), "version"),
        (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
        (json!({"minOrderAmount": -5}), "minOrderAmount"),
        (
            json!({"weeklyHours": {"mon": [{"open": "25:00", "close": "02:00"}]}}),
            "weeklyHours",
        ),
    ] {
        let reply = stack.patch(&path, &body, Some(&owner)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{:?}",
            reply.body
        );
    }
    let after = stack.get(&path, None).await;
    assert_eq!(after.body["ownerId"], owner_id.as_str());
    assert_eq!(after.body["minOrderAmount"], 12000);

    // A day that ends at midnight may say so as people do; a time that is none is refused in
    // words, naming where it is.
    let until_midnight = stack
        .patch(
            &path,
            &json!({"weeklyHours": {"sat": [{"open": "11:00", "close": "24:00"}]}}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        until_midnight.status,
        StatusCode::OK,
        "{:?}",
        until_midnight.body
    );
    assert_eq!(
        until_midnight.body["weeklyHours"]["sat"],
        json!([{"open": "11:00", "close": "00:00"}])
    );
    let not_a_time = stack
        .patch(
            &path,
            &json!({"weeklyHours": {"sat": [{"open": "24:00", "close": "02:00"}]}}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (not_a_time.status.as_u16(), not_a_time.code()),
        (422, "VALIDATION_FAILED")
    );
    let message = not_a_time.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("weeklyHours.sat[0].open: a time of day, HH:MM"),
        "{message}"
    );
    // Two spans of a day that overlap are a slip, said so; the hours stay as they were.
    let overlapping = stack
        .patch(
            &path,
            &json!({"weeklyHours": {"sat": [
                {"open": "11:00", "close": "15:00"},
                {"open": "14:30", "close": "21:00"}
            ]}}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (overlapping.status.as_u16(), overlapping.code()),
        (422, "VALIDATION_FAILED")
    );
    assert_eq!(
        overlapping.body["error"]["message"],
        "weeklyHours.sat[1]: overlaps the day's interval 11:00–15:00"
    );
    let unchanged = stack.get(&path, Some(&owner)).await;
    assert_eq!(
        unchanged.body["weeklyHours"]["sat"],
        json!([{"open": "11:00", "close": "00:00"}])
    );
    // So is a night past midnight that runs into the next day's first span.
    let hours_before = unchanged.body["weeklyHours"].clone();
    let into_the_morning = stack
        .patch(
            &path,
            &json!({"weeklyHours": {
                "fri": [{"open": "18:00", "close": "02:00"}],
                "sat": [{"open": "01:00", "close": "10:00"}]
            }}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (
            into_the_morning.status.as_u16(),
            into_the_morning.body["error"]["message"].as_str()
        ),
        (
            422,
            Some(
                "weeklyHours.sat[0]: overlaps fri's interval 18:00–02:00, which runs past midnight"
            )
        )
    );
    let unchanged = stack.get(&path, Some(&owner)).await;
    assert_eq!(unchanged.body["weeklyHours"], hours_before);
    // A patch of one day keeps the others: Friday's hours set, Saturday's as they were.
    let friday = json!([{"open": "09:00", "close": "10:00"}]);
    let friday_set = stack
        .patch(
            &path,
            &json!({"weeklyHours": {"fri": friday}}),
            Some(&owner),
        )
        .await;
    assert_eq!(friday_set.status, StatusCode::OK, "{:?}", friday_set.body);
    let mut expected = hours_before.clone();
    expected["fri"] = friday;
    assert_eq!(friday_set.body["weeklyHours"], expected);
    assert_eq!(
        friday_set.body["weeklyHours"]["sat"],
        json!([{"open": "11:00", "close": "00:00"}])
    );
    // A date as written, said in the same words; a zone as the time zone database spells it.
    let not_a_date = stack
        .patch(
            &path,
            &json!({"exceptions": [{"date": "2026-12-2"}]}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        not_a_date.body["error"]["message"], "exceptions[0].date: a date as YYYY-MM-DD",
        "{:?}",
        not_a_date.body
    );
    let zoned = stack
        .patch(&path, &json!({"timeZone": "asia/seoul"}), Some(&owner))
        .await;
    assert_eq!(zoned.body["timeZone"], "Asia/Seoul", "{:?}", zoned.body);

    let missing = stack.get("/v1/stores/nope", None).await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "STORE_NOT_FOUND")
    );
}

/// A zone where it is now between 03:00 and 19:00, so that an hour either side stays on today.
fn a_zone_in_daytime() -> (&'static str, jiff::Zoned) {
    let now = jiff::Timestamp::now();
    [
        "Asia/Seoul",
        "Europe/London",
        "America/New_York",
        "Pacific/Auckland",
        "Asia/Kolkata",
        "America/Los_Angeles",
    ]
    .into_iter()
    .map(|zone| (zone, now.in_tz(zone).unwrap()))
    .find(|(_, local)| (3..19).contains(&local.hour()))
    .expect("one of six zones spread around the world is in its daytime")
}

fn hhmm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn weekday_key(day: jiff::civil::Weekday) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][day.to_monday_zero_offset() as usize]
}

#[tokio::test]
async fn opening_hours_follow_the_store_zone_and_run_past_midnight() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("hours@example.com", "OWNER").await;
    let (zone, local) = a_zone_in_daytime();
    let yesterday = local.date().yesterday().unwrap().weekday();
    let today = local.date().weekday();
    let hour_later = hhmm(
        local
            .time()
            .saturating_add(jiff::SignedDuration::from_hours(1)),
    );
    let hour_ago = hhmm(
        local
            .time()
            .saturating_sub(jiff::SignedDuration::from_hours(1)),
    );

    // Only yesterday has hours: 22:00 until an hour from now, i.e. past midnight into today.
    let overnight = json!({weekday_key(yesterday): [{"open": "22:00", "close": hour_later}]});
    let store = stack
        .store(&owner, json!({"timeZone": zone, "weeklyHours": overnight}))
        .await;
    let path = format!("/v1/stores/{store}");
    assert_eq!(
        stack.get(&path, None).await.body["status"],
        json!({"open": true}),
        "{zone} {local}"
    );

    // The same night ended an hour ago: closed.
    let ended = json!({weekday_key(yesterday): [{"open": "22:00", "close": hour_ago}]});
    let reply = stack
        .patch(&path, &json!({"weeklyHours": ended}), Some(&owner))
        .await;
    assert_eq!(reply.body["status"]["reason"], "OUTSIDE_HOURS");

    // Today's hours around now, and last night's closed (a patch changes only the days it names):
    // open here; twelve hours away the same clock times are closed.
    let around_now = json!({
        weekday_key(today): [{"open": hour_ago, "close": hour_later}],
        weekday_key(yesterday): [],
    });
    let reply = stack
        .patch(&path, &json!({"weeklyHours": around_now}), Some(&owner))
        .await;
    assert_eq!(reply.body["status"], json!({"open": true}));
    let far = if local.offset().seconds() > 0 {
        "America/Los_Angeles"
    } else {
        "Asia/Tokyo"
    };
    let reply = stack
        .patch(&path, &json!({"timeZone": far}), Some(&owner))
        .await;
    assert_eq!(reply.body["status"]["open"], false, "{far}");

    // A date exception closes today whatever the week says.
    let reply = stack
        .patch(
            &path,
            &json!({"timeZone": zone, "exceptions": [{"date": local.date().to_string()}]}),
            Some(&owner),
        )
        .await;
    assert_eq!(reply.body["status"]["reason"], "CLOSED_TODAY");
}

#[tokio::test]
async fn staff_work_their_store_and_nothing_else() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("owner-a@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("owner-b@example.com", "OWNER").await;
    let (staff_id, staff, staff_refresh) = stack.account("staff@example.com", "CUSTOMER").await;
    let store_a = stack.store(&owner, json!({})).await;
    let store_b = stack.store(&other_owner, json!({})).await;
    let menu_a = format!("/v1/stores/{store_a}/menu");
    stack
        .put(
            &format!("{menu_a}/categories/rolls"),
            &json!({"name": "Rolls"}),
            Some(&owner),
        )
        .await;
    let item = json!({"categoryId": "rolls", "name": "Kimbap", "price": 3500});
    let created = stack
        .put(&format!("{menu_a}/items/kimbap"), &item, Some(&owner))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let availability = format!("{menu_a}/items/kimbap/availability");

    // Not staff yet: refused.
    let early = stack
        .patch(&availability, &json!({"available": false}), Some(&staff))
        .await;
    assert_eq!(early.status, StatusCode::FORBIDDEN);
    // Only the owner adds staff, and only existing users.
    let staff_path = format!("/v1/stores/{store_a}/staff/{staff_id}");
    assert_eq!(
        stack
            .put(&staff_path, &json!({}), Some(&other_owner))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack
            .put(&staff_path, &json!({}), Some(&staff))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ghost = stack
        .put(
            &format!("/v1/stores/{store_a}/staff/nobody"),
            &json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (ghost.status.as_u16(), ghost.code()),
        (404, "USER_NOT_FOUND")
    );
    // The owner invites; nothing changes until the user accepts.
    let invited = stack.put(&staff_path, &json!({}), Some(&owner)).await;
    assert_eq!(invited.status.as_u16(), 202, "{:?}", invited.body);
    assert_eq!(invited.body["status"], "INVITED");
    assert!(invited.body["expiresAt"].is_string());
    let pending = stack
        .patch(&availability, &json!({"available": false}), Some(&staff))
        .await;
    assert_eq!(
        pending.status,
        StatusCode::FORBIDDEN,
        "invited is not staff"
    );
    let listed = stack.get("/v1/me/invitations", Some(&staff)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["invitations"][0]["storeId"], store_a.as_str());
    assert_eq!(
        listed.body["invitations"].as_array().unwrap().len(),
        1,
        "{:?}",
        listed.body
    );
    // Only the invited user can accept, and only what was offered.
    let (_, stranger, _) = stack.account("stranger@example.com", "CUSTOMER").await;
    for (token, store) in [(&stranger, &store_a), (&staff, &store_b)] {
        let refused = stack.accept_invitation(store, token).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (404, "INVITATION_NOT_FOUND")
        );
    }
    let joined = stack.accept_invitation(&store_a, &staff).await;
    assert_eq!(joined.status, StatusCode::OK, "{:?}", joined.body);
    assert_eq!(joined.body["status"], "STAFF");
    // An invitation is spent by its acceptance, but a retried acceptance (its answer lost) is
    // answered as the first was; inviting staff again changes nothing.
    let again = stack.accept_invitation(&store_a, &staff).await;
    assert_eq!(
        (again.status.as_u16(), &again.body["status"]),
        (200, &json!("STAFF")),
        "{:?}",
        again.body
    );
    let reinvited = stack.put(&staff_path, &json!({}), Some(&owner)).await;
    assert_eq!(
        (reinvited.status.as_u16(), &reinvited.body["status"]),
        (200, &json!("STAFF"))
    );

    // Staff toggle availability at once (their membership is what counts) …
    let sold_out = stack
        .patch(&availability, &json!({"available": false}), Some(&staff))
        .await;
    assert_eq!(sold_out.status, StatusCode::OK, "{:?}", sold_out.body);
    assert_eq!(sold_out.body["available"], false);
    // … and their account stays what it was: a customer, who still orders and pays.
    let refreshed = stack
        .post(
            "/v1/auth/refresh",
            &json!({"refreshToken": staff_refresh}),
            None,
        )
        .await;
    let staff = refreshed.body["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.get("/v1/me", Some(&staff)).await.body["role"],
        "CUSTOMER"
    );
    let (_, cafe_owner, _) = stack.account("cafe-owner@example.com", "OWNER").await;
    let cafe = stack.open_store_with_menu(&cafe_owner, json!({})).await;
    let lunch = stack
        .order(
            &staff,
            &json!({"storeId": cafe, "items": [{"itemId": "latte", "quantity": 1}],
                    "fulfilment": {"type": "PICKUP"}, "phone": "010-1111-2222"}),
        )
        .await;
    assert_eq!(lunch.status, StatusCode::CREATED, "{:?}", lunch.body);

    // Staff may not change prices, settings or staff, nor touch another store.
    let reprice = json!({"categoryId": "rolls", "name": "Kimbap", "price": 100});
    assert_eq!(
        stack
            .put(&format!("{menu_a}/items/kimbap"), &reprice, Some(&staff))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let settings = stack
        .patch(
            &format!("/v1/stores/{store_a}"),
            &json!({"minOrderAmount": 0}),
            Some(&staff),
        )
        .await;
    assert_eq!(settings.status, StatusCode::FORBIDDEN);
    let other = format!("/v1/stores/{store_b}/menu/items/kimbap/availability");
    assert_eq!(
        stack
            .patch(&other, &json!({"available": true}), Some(&staff))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Another owner cannot remove this store's staff.
    assert_eq!(
        stack.delete(&staff_path, Some(&other_owner)).await.status,
        StatusCode::FORBIDDEN
    );

    // Removed, they are refused again.
    assert_eq!(
        stack.delete(&staff_path, Some(&owner)).await.status,
        StatusCode::NO_CONTENT
    );
    let after = stack
        .patch(&availability, &json!({"available": true}), Some(&staff))
        .await;
    assert_eq!(after.status, StatusCode::FORBIDDEN);
    // Nor can they come back through the invitation they spent.
    let rejoin = stack.accept_invitation(&store_a, &staff).await;
    assert_eq!(
        (rejoin.status.as_u16(), rejoin.code()),
        (404, "INVITATION_NOT_FOUND")
    );

    // Hired again, they may also leave on their own; a user cannot remove anyone else.
    stack.hire(&owner, &store_a, &staff_id, &staff).await;
    let (stranger_id, _, _) = stack.account("stranger2@example.com", "CUSTOMER").await;
    assert_eq!(
        stack
            .delete(
                &format!("/v1/stores/{store_a}/staff/{stranger_id}"),
                Some(&staff)
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.delete(&staff_path, Some(&staff)).await.status,
        StatusCode::NO_CONTENT
    );
    let left = stack
        .patch(&availability, &json!({"available": true}), Some(&staff))
        .await;
    assert_eq!(left.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stack.get("/v1/me", Some(&staff)).await.body["role"],
        "CUSTOMER"
    );
}

/// `GET /v1/stores/{storeId}/staff`: the owner sees everyone who works at the store, by their
/// current names, and everyone it has invited, and nobody else's staff; no one else sees the list.
/// A lapsed invitation, an accepted one, a withdrawn one and a declined one are not on it.
#[tokio::test]
async fn an_owner_sees_who_works_at_the_store_and_whom_it_invited() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("owner-a@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("owner-b@example.com", "OWNER").await;
    let (cook_id, cook, _) = stack.account("cook@example.com", "CUSTOMER").await;
    let (server_id, server, _) = stack.account("server@example.com", "CUSTOMER").await;
    let (other_staff_id, other_staff, _) = stack.account("elsewhere@example.com", "CUSTOMER").await;
    let store = stack.store(&owner, json!({})).await;
    let other_store = stack.store(&other_owner, json!({})).await;
    let path = format!("/v1/stores/{store}/staff");
    for (token, name) in [(&cook, "김민수"), (&server, "이지은")] {
        let named = stack
            .patch("/v1/me", &json!({"name": name}), Some(token))
            .await;
        assert_eq!(named.status, StatusCode::OK, "{:?}", named.body);
    }

    let empty = stack.get(&path, Some(&owner)).await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.body, json!({"staff": [], "invitations": []}));

    // The cook joins; the server is invited twice (a renewal) and has not answered; another
    // store's member is not this store's.
    stack.hire(&owner, &store, &cook_id, &cook).await;
    let staff_of = |id: &str| format!("/v1/stores/{store}/staff/{id}");
    for _ in 0..2 {
        let invited = stack
            .put(&staff_of(&server_id), &json!({}), Some(&owner))
            .await;
        assert_eq!(invited.status.as_u16(), 202, "{:?}", invited.body);
    }
    stack
        .hire(&other_owner, &other_store, &other_staff_id, &other_staff)
        .await;
    let listed = stack.get(&path, Some(&owner)).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let staff = listed.body["staff"].as_array().unwrap();
    assert_eq!(staff.len(), 1, "{:?}", listed.body);
    assert_eq!(staff[0]["userId"], cook_id.as_str());
    assert_eq!(staff[0]["name"], "김민수");
    assert!(staff[0]["addedAt"].is_string(), "{:?}", listed.body);
    let invitations = listed.body["invitations"].as_array().unwrap();
    assert_eq!(invitations.len(), 1, "{:?}", listed.body);
    assert_eq!(invitations[0]["userId"], server_id.as_str());
    // An invitee's name is theirs until they join: any owner can invite any id.
    assert!(invitations[0].get("name").is_none(), "{:?}", listed.body);
    let sent: jiff::Timestamp = invitations[0]["invitedAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lapses: jiff::Timestamp = invitations[0]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(lapses.as_second() - sent.as_second(), 7 * 24 * 3600);
    // What the server was told when invited is what the owner is told.
    let theirs = stack.get("/v1/me/invitations", Some(&server)).await;
    assert_eq!(
        theirs.body["invitations"][0]["expiresAt"], invitations[0]["expiresAt"],
        "{:?}",
        theirs.body
    );

    // Names are read as they are now.
    stack
        .patch("/v1/me", &json!({"name": "김민수 (주방)"}), Some(&cook))
        .await;
    let renamed = stack.get(&path, Some(&owner)).await;
    assert_eq!(renamed.body["staff"][0]["name"], "김민수 (주방)");

    // Nobody else sees it: staff, another owner, a stranger, nobody signed in.
    for (token, status) in [
        (Some(cook.as_str()), 403),
        (Some(other_owner.as_str()), 403),
        (Some(server.as_str()), 403),
        (None, 401),
    ] {
        let refused = stack.get(&path, token).await;
        assert_eq!(refused.status.as_u16(), status, "{:?}", refused.body);
        assert!(refused.body.get("staff").is_none(), "{:?}", refused.body);
    }
    let missing = stack
        .get("/v1/stores/st_nosuchstore/staff", Some(&owner))
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (404, "STORE_NOT_FOUND")
    );
    // An operator sees it.
    let admin = stack.admin("admin@example.com").await;
    let seen = stack.get(&path, Some(&admin)).await;
    assert_eq!(seen.body, renamed.body);

    // A lapsed invitation (written as one sent eight days ago, before its TTL removed it) is
    // not listed.
    let (late_id, _, _) = stack.account("late@example.com", "CUSTOMER").await;
    let sent = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(8 * 24);
    let sent_at = format!("{sent:.3}");
    let db = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    db.put_item()
        .table_name(e2e::TABLE)
        .item("PK", s(&format!("USER#{late_id}")))
        .item("SK", s(&format!("INVITED#{store}")))
        .item("storeId", s(&store))
        .item("storeName", s("Test"))
        .item("invitedBy", s("someone"))
        .item("invitedAt", s(&sent_at))
        .item(
            "expiresAt",
            aws_sdk_dynamodb::types::AttributeValue::N(
                (sent.as_second() + 7 * 24 * 3600).to_string(),
            ),
        )
        .item("GSI1PK", s(&format!("INVITED#STORE#{store}")))
        .item("GSI1SK", s(&sent_at))
        .send()
        .await
        .unwrap();
    let without_lapsed = stack.get(&path, Some(&owner)).await;
    assert_eq!(without_lapsed.body, renamed.body);

    // Accepted, the invitation becomes a place; declined or withdrawn, it is gone.
    assert_eq!(
        stack.accept_invitation(&store, &server).await.status,
        StatusCode::OK
    );
    let joined = stack.get(&path, Some(&owner)).await;
    let ids: Vec<&str> = joined.body["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [cook_id.as_str(), server_id.as_str()],
        "longest-serving first"
    );
    assert_eq!(joined.body["invitations"], json!([]));
    let (newcomer_id, newcomer, _) = stack.account("newcomer@example.com", "CUSTOMER").await;
    stack
        .put(&staff_of(&newcomer_id), &json!({}), Some(&owner))
        .await;
    assert_eq!(
        stack.get(&path, Some(&owner)).await.body["invitations"][0]["userId"],
        newcomer_id.as_str()
    );
    // The newcomer declines (a user removes their own invitation).
    assert_eq!(
        stack
            .delete(&staff_of(&newcomer_id), Some(&newcomer))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    stack
        .put(&staff_of(&late_id), &json!({}), Some(&owner))
        .await;
    assert_eq!(
        stack.delete(&staff_of(&late_id), Some(&owner)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        stack.delete(&staff_of(&cook_id), Some(&owner)).await.status,
        StatusCode::NO_CONTENT
    );
    let last = stack.get(&path, Some(&owner)).await;
    assert_eq!(last.body["invitations"], json!([]), "{:?}", last.body);
    assert_eq!(last.body["staff"].as_array().unwrap().len(), 1);
    assert_eq!(last.body["staff"][0]["userId"], server_id.as_str());
    stack.assert_answers_documented();
}

/// `POST /v1/stores/{storeId}/staff`: an owner invites by the address the person signs in with,
/// compared as sign-in compares it; what it cannot invite is refused with nothing written.
#[tokio::test]
async fn an_owner_invites_by_the_address_a_person_signs_in_with() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("owner-a@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("owner-b@example.com", "OWNER").await;
    let (cook_id, cook, _) = stack.account("cook@example.com", "CUSTOMER").await;
    let admin = stack.admin("admin@example.com").await;
    let store = stack.store(&owner, json!({})).await;
    let path = format!("/v1/stores/{store}/staff");
    let invitations = |items: &[std::collections::HashMap<
        String,
        aws_sdk_dynamodb::types::AttributeValue,
    >]| {
        items
            .iter()
            .filter(|item| {
                matches!(item.get("SK"), Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk.starts_with("INVITED#"))
            })
            .count()
    };

    // Refused, and nothing written: not the store's owner; an address no account has, not an
    // address, the owner's own, an admin's; a field the request does not take.
    let body = json!({"email": "cook@example.com"});
    for (token, status) in [(&cook, 403), (&other_owner, 403)] {
        let refused = stack.post(&path, &body, Some(token)).await;
        assert_eq!(refused.status.as_u16(), status, "{:?}", refused.body);
    }
    for (body, status, code) in [
        (
            json!({"email": "nobody@example.com"}),
            404,
            "USER_NOT_FOUND",
        ),
        (json!({"email": "not an address"}), 422, "VALIDATION_FAILED"),
        (
            json!({"email": "owner-a@example.com"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"email": "admin@example.com"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"email": "cook@example.com", "role": "STAFF"}),
            422,
            "VALIDATION_FAILED",
        ),
        (json!({}), 422, "VALIDATION_FAILED"),
    ] {
        let refused = stack.post(&path, &body, Some(&owner)).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (status, code),
            "{body}: {:?}",
            refused.body
        );
    }
    assert_eq!(invitations(&stack.scan().await), 0, "nothing was written");

    // Invited by their address as they might type it: the same account.
    let invited = stack
        .post(
            &path,
            &json!({"email": "  Cook@Example.COM "}),
            Some(&owner),
        )
        .await;
    assert_eq!(invited.status.as_u16(), 202, "{:?}", invited.body);
    assert_eq!(invited.body["userId"], cook_id.as_str());
    assert_eq!(invited.body["status"], "INVITED");
    assert_eq!(
        stack.get(&path, Some(&owner)).await.body["invitations"][0]["userId"],
        cook_id.as_str()
    );
    let theirs = stack.get("/v1/me/invitations", Some(&cook)).await;
    assert_eq!(theirs.body["invitations"][0]["storeId"], store.as_str());
    assert_eq!(invitations(&stack.scan().await), 1);

    // Joined, they are staff: inviting them again changes nothing.
    assert_eq!(
        stack.accept_invitation(&store, &cook).await.status,
        StatusCode::OK
    );
    let again = stack.post(&path, &body, Some(&owner)).await;
    assert_eq!(
        (again.status.as_u16(), &again.body["status"]),
        (200, &json!("STAFF")),
        "{:?}",
        again.body
    );
    assert_eq!(invitations(&stack.scan().await), 0);
    // An operator may invite to any store, as by id.
    let (_, _, _) = stack.account("helper@example.com", "CUSTOMER").await;
    let by_admin = stack
        .post(&path, &json!({"email": "helper@example.com"}), Some(&admin))
        .await;
    assert_eq!(by_admin.status.as_u16(), 202, "{:?}", by_admin.body);
}

/// `GET /v1/me/stores` lists the stores a user may run — owned and staffed, by name, under their
/// current names — and nobody else's; staff who are removed drop out of it.
#[tokio::test]
async fn each_user_lists_the_stores_they_run_and_no_others() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("owner-mine@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("owner-theirs@example.com", "OWNER").await;
    let (staff_id, staff, _) = stack.account("staff-mine@example.com", "CUSTOMER").await;
    let (_, stranger, _) = stack.account("stranger-mine@example.com", "CUSTOMER").await;
    let named = |name: &str| json!({"name": name});
    let kimbap = stack.store(&owner, named("김밥천국 종로점")).await;
    let cafe = stack.store(&owner, named("Cafe Latte")).await;
    let theirs = stack.store(&other_owner, named("Another Cafe")).await;
    stack.hire(&other_owner, &theirs, &staff_id, &staff).await;
    let renamed = stack
        .patch(
            &format!("/v1/stores/{cafe}"),
            &json!({"name": "Cafe Mocha"}),
            Some(&owner),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);

    let listed = |token: &str| {
        let token = token.to_owned();
        let stack = &stack;
        async move {
            let reply = stack.get("/v1/me/stores", Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            reply.body["stores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s["storeId"].as_str().unwrap(),
                        s["name"].as_str().unwrap(),
                        s["place"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(&owner).await,
        [
            format!("{cafe} Cafe Mocha OWNER"),
            format!("{kimbap} 김밥천국 종로점 OWNER"),
        ]
    );
    assert_eq!(
        listed(&other_owner).await,
        [format!("{theirs} Another Cafe OWNER")]
    );
    assert_eq!(
        listed(&staff).await,
        [format!("{theirs} Another Cafe STAFF")]
    );
    assert!(listed(&stranger).await.is_empty());
    let unsigned = stack.get("/v1/me/stores", None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.code(), "UNAUTHENTICATED");

    // Removed from the staff, the store is no longer theirs to pick.
    let removed = stack
        .delete(
            &format!("/v1/stores/{theirs}/staff/{staff_id}"),
            Some(&other_owner),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(listed(&staff).await.is_empty());
}

/// An owner's `Idempotency-Key` opens one store, however often and however concurrently the
/// request is sent, and whatever happens to its answers: every 201 under the key names that store,
/// the owner lists it once, the table holds one store, one menu and one `OWNS#` item for it; the
/// key with another body is refused and opens nothing; another owner's same key is their own.
/// Without a key, each request opens a store.
#[tokio::test]
async fn a_key_opens_one_store_however_often_it_is_sent() {
    use futures::StreamExt;
    let stack = Stack::start();
    let (owner_id, owner, _) = stack.account("owner-key@example.com", "OWNER").await;
    let (other_owner_id, other_owner, _) = stack.account("owner-key2@example.com", "OWNER").await;
    let body =
        |name: &str| json!({"name": name, "phone": "02-123-4567", "address": "서울 종로구 1"});
    let open = |token: String, key: &'static str, body: serde_json::Value| {
        let stack = &stack;
        async move { stack.store_keyed(&token, key, &body).await }
    };
    // The first transaction lands and its answer is lost; its twins wait on DynamoDB meanwhile.
    stack
        .aws_faults(json!([
            {"function": "StoresCreateFunction", "service": "dynamodb",
             "operation": "TransactWriteItems", "fault": "lost", "times": 1},
            {"function": "StoresCreateFunction", "service": "dynamodb", "operation": "GetItem",
             "fault": "latency", "delayMs": 300, "times": 3}]))
        .await;
    let replies: Vec<e2e::Reply> = futures::stream::iter(0..6)
        .map(|_| open(owner.clone(), "open-kimbap", body("김밥천국")))
        .buffer_unordered(6)
        .collect()
        .await;
    let fired = stack.aws_faults_fired().await;
    stack.aws_faults(json!([])).await;
    assert!(
        fired["rules"][0]["fired"].as_u64().unwrap_or(0) > 0,
        "no answer was lost: {fired}"
    );
    let store_id = replies[0].body["storeId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["storeId"], store_id.as_str());
        assert_eq!(reply.body["name"], "김밥천국");
    }
    // Long after, and after a change: the store as it stands.
    let renamed = stack
        .patch(
            &format!("/v1/stores/{store_id}"),
            &json!({"name": "김밥천국 종로점"}),
            Some(&owner),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    let again = open(owner.clone(), "open-kimbap", body("김밥천국")).await;
    assert_eq!(
        (again.status, &again.body["storeId"], &again.body["name"]),
        (
            StatusCode::CREATED,
            &json!(store_id),
            &json!("김밥천국 종로점")
        )
    );
    let reused = open(owner.clone(), "open-kimbap", body("Cafe Latte")).await;
    assert_eq!(
        (reused.status.as_u16(), reused.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    let invalid = open(owner.clone(), "open kimbap", body("Cafe Latte")).await;
    assert_eq!(
        (invalid.status.as_u16(), invalid.code()),
        (400, "IDEMPOTENCY_KEY_INVALID")
    );
    let theirs = open(other_owner.clone(), "open-kimbap", body("김밥천국")).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{:?}", theirs.body);
    assert_ne!(theirs.body["storeId"], store_id.as_str());
    assert_eq!(theirs.body["ownerId"], other_owner_id.as_str());
    // No key: each request is a store of its own.
    let first = stack.store(&owner, json!({"name": "Cafe Latte"})).await;
    let second = stack.store(&owner, json!({"name": "Cafe Latte"})).await;
    assert_ne!(first, second);

    let mine = stack.get("/v1/me/stores", Some(&owner)).await;
    let mut listed: Vec<&str> = mine.body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["storeId"].as_str())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![store_id.as_str(), first.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let items = stack.scan().await;
    let count = |pk: &str, sk: &str| {
        items
            .iter()
            .filter(|item| {
                item["PK"].as_s().is_ok_and(|p| p == pk) && item["SK"].as_s().is_ok_and(|s| s == sk)
            })
            .count()
    };
    let store_pk = format!("STORE#{store_id}");
    assert_eq!(count(&store_pk, "STORE"), 1);
    assert_eq!(count(&store_pk, "MENU"), 1);
    assert_eq!(
        count(&format!("USER#{owner_id}"), &format!("OWNS#{store_id}")),
        1
    );
    let owned_by_owner = items
        .iter()
        .filter(|item| item["SK"].as_s().is_ok_and(|s| s == "STORE"))
        .filter(|item| item.get("ownerId").and_then(|o| o.as_s().ok()) == Some(&owner_id))
        .count();
    assert_eq!(owned_by_owner, 3, "the key's store and the two without one");
}

/// Every id in a path is checked before a key is built from it: an id DynamoDB could not take as a
/// key (over 2 KB) is a 422 naming the parameter, never a 500, and changes nothing.
#[tokio::test]
async fn ids_in_paths_are_checked_before_they_reach_the_table() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("ids-owner@example.com", "OWNER").await;
    let store_id = stack.store(&owner, json!({})).await;

    let long = "x".repeat(3000);
    let odd = "a%2Fb";
    for (method, path, parameter) in [
        ("GET", format!("/v1/stores/{long}"), "storeId"),
        ("GET", format!("/v1/stores/{long}/menu"), "storeId"),
        ("GET", format!("/v1/stores/{long}/staff"), "storeId"),
        ("GET", format!("/v1/orders/{long}"), "orderId"),
        ("GET", format!("/v1/orders/{odd}"), "orderId"),
        (
            "PUT",
            format!("/v1/stores/{store_id}/menu/categories/{long}"),
            "categoryId",
        ),
        (
            "DELETE",
            format!("/v1/stores/{store_id}/staff/{long}"),
            "userId",
        ),
        (
            "PUT",
            format!("/v1/stores/{store_id}/staff/{odd}"),
            "userId",
        ),
    ] {
        let body = json!({"name": "x"});
        let reply = match method {
            "GET" => stack.get(&path, Some(&owner)).await,
            "PUT" => stack.put(&path, &body, Some(&owner)).await,
            _ => stack.delete(&path, Some(&owner)).await,
        };
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, "VALIDATION_FAILED"),
            "{method} {}",
            &path[..path.len().min(60)]
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(parameter), "{message}");
    }
    let written = stack.scan().await;
    assert!(
        !written
            .iter()
            .any(|item| format!("{item:?}").contains("xxxxxxxx")
                || format!("{item:?}").contains("a%2Fb")),
        "nothing was written"
    );
}
