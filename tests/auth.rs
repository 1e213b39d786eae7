//! Accounts and sign-in, through the local runner over HTTP.

use e2e::{PASSWORD, Reply, Stack, StatusCode, text_of};
use serde_json::json;

#[tokio::test]
async fn sign_up_sign_in_and_read_the_profile() {
    let stack = Stack::start();
    let signup = stack
        .post(
            "/v1/auth/signup",
            &json!({"email": " Kim@Example.com ", "password": PASSWORD, "name": " 김민수 ", "role": "OWNER",
                    "phone": "+82 10-1234-5678"}),
            None,
        )
        .await;
    assert_eq!(signup.status, StatusCode::CREATED, "{:?}", signup.body);
    assert_eq!(signup.body["email"], "kim@example.com");
    assert_eq!(signup.body["name"], "김민수");
    assert_eq!(signup.body["role"], "OWNER");
    assert_eq!(signup.body["phone"], "01012345678");
    assert!(signup.body.get("passwordHash").is_none());
    let user_id = signup.body["userId"].as_str().unwrap();

    let login = stack.login("KIM@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.body);
    assert_eq!(login.body["tokenType"], "Bearer");
    assert_eq!(login.body["expiresIn"], 900);
    let access = login.body["accessToken"].as_str().unwrap();

    let me = stack.get("/v1/me", Some(access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, signup.body);

    // The stored account holds an argon2id hash, never the password.
    let items = stack.scan().await;
    let profile = items
        .iter()
        .find(|i| text_of(i, "PK") == format!("USER#{user_id}"))
        .expect("a profile item");
    assert!(text_of(profile, "passwordHash").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    // Nothing personal is stored in the clear: not the password, the address (in any case), or the name.
    let dump = format!("{items:?}").to_lowercase();
    for secret in [
        PASSWORD,
        "kim@example.com",
        "김민수",
        "01012345678",
        "1234-5678",
    ] {
        assert!(!dump.contains(secret), "{secret} is stored in the clear");
    }
    assert!(text_of(profile, "email").starts_with("enc1:"));
    assert!(text_of(profile, "name").starts_with("enc1:"));
    assert!(text_of(profile, "phone").starts_with("enc1:"));
    assert!(text_of(profile, "phoneIndex").starts_with("bi1:"));
    // Sign-up and sign-in are events (the audit trail is made of them): the sign-up an outbox
    // item, the sign-in its session, stamped with the request that made it.
    let actions: Vec<&str> = items.iter().map(|i| text_of(i, "eventType")).collect();
    assert!(actions.contains(&"user.signed_up"), "{actions:?}");
    let session = items
        .iter()
        .find(|i| text_of(i, "SK") == "SESSION")
        .expect("a session item");
    assert_eq!(text_of(session, "userId"), user_id);
    assert!(
        session["signedIn"]
            .as_m()
            .is_ok_and(|stamp| stamp.contains_key("requestId")),
        "{session:?}"
    );
}

#[tokio::test]
async fn bad_sign_ups_are_refused_and_change_nothing() {
    let stack = Stack::start();
    let signup = |body: serde_json::Value| {
        let stack = &stack;
        async move { stack.post("/v1/auth/signup", &body, None).await }
    };
    let valid = |email: &str, role: &str| json!({"email": email, "password": PASSWORD, "name": "Lee", "role": role});

    let cases = [
        (
            json!({"email": "lee@example.com", "password": "short", "name": "Lee", "role": "CUSTOMER"}),
            422,
            "WEAK_PASSWORD",
        ),
        (
            json!({"email": "lee@example.com", "password": "password123", "name": "Lee", "role": "CUSTOMER"}),
            422,
            "WEAK_PASSWORD",
        ),
        (valid("lee@example.com", "ADMIN"), 422, "VALIDATION_FAILED"),
        (valid("lee@example.com", "STAFF"), 422, "VALIDATION_FAILED"),
        (valid("lee@example.com", "ROOT"), 422, "VALIDATION_FAILED"),
        (valid("not-an-email", "CUSTOMER"), 422, "VALIDATION_FAILED"),
        (
            json!({"email": "lee@example.com", "password": PASSWORD, "name": "Lee", "role": "CUSTOMER", "phone": "call me"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"email": "lee@example.com", "password": PASSWORD, "name": "Lee", "role": "CUSTOMER", "isAdmin": true}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"email": "lee@example.com", "password": PASSWORD, "role": "CUSTOMER"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"email": "lee@example.com", "password": PASSWORD, "name": "", "role": "CUSTOMER"}),
            422,
            "VALIDATION_FAILED",
        ),
    ];
    for (body, status, code) in cases {
        let reply = signup(body.clone()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{body}: {:?}",
            reply.body
        );
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
    }

    // Malformed JSON, a missing content type and an oversized body.
    let raw = |body: String, content_type: &'static str| {
        stack
            .http()
            .post(stack.url("/v1/auth/signup"))
            .header("content-type", content_type)
            .body(body)
    };
    let reply = stack
        .send(raw("{\"email\": ".into(), "application/json"))
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (400, "MALFORMED_JSON")
    );
    let reply = stack
        .send(raw(
            valid("lee@example.com", "CUSTOMER").to_string(),
            "text/plain",
        ))
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (415, "UNSUPPORTED_MEDIA_TYPE")
    );
    let huge = json!({"email": "lee@example.com", "password": PASSWORD, "name": "x".repeat(70_000), "role": "CUSTOMER"});
    let reply = stack.send(raw(huge.to_string(), "application/json")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (413, "PAYLOAD_TOO_LARGE")
    );

    // Every error body quotes the request id API Gateway gave the request.
    assert_eq!(
        reply.body["error"]["requestId"].as_str(),
        reply.header("apigw-requestid")
    );

    // None of that created anything: the address is still free, once.
    assert!(
        stack
            .scan()
            .await
            .iter()
            .all(|i| text_of(i, "eventType") != "user.signed_up")
    );
    let first = signup(valid("lee@example.com", "CUSTOMER")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = signup(valid("LEE@example.com", "OWNER")).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "EMAIL_TAKEN"));
    let users = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| text_of(i, "SK") == "PROFILE")
        .count();
    assert_eq!(users, 1);
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// The audit records of `action`, once the stream's recorder has written one (or 20 seconds have
/// passed), and a moment after it for any twin to arrive.
async fn audited(stack: &Stack, action: &str) -> Vec<Item> {
    let records = || async {
        stack
            .scan()
            .await
            .into_iter()
            .filter(|i| text_of(i, "PK").starts_with("AUDIT#") && text_of(i, "action") == action)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while records().await.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    records().await
}

/// Spends `token` at the refresh route.
async fn spend_refresh(stack: &Stack, token: String) -> Reply {
    stack
        .post("/v1/auth/refresh", &json!({"refreshToken": token}), None)
        .await
}

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    let stack = Stack::start();
    let (user_id, _, first) = stack.account("park@example.com", "CUSTOMER").await;

    let refresh = |token: String| spend_refresh(&stack, token);
    let rotated = refresh(first.clone()).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let second = rotated.body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let me = stack
        .get("/v1/me", rotated.body["accessToken"].as_str())
        .await;
    assert_eq!(me.status, StatusCode::OK);

    // No refresh token is stored.
    let dump = format!("{:?}", stack.scan().await);
    assert!(!dump.contains(&first) && !dump.contains(&second));

    // The spent token comes back: refused, and the whole family is revoked with it.
    let reused = refresh(first).await;
    assert_eq!(
        (reused.status.as_u16(), reused.code()),
        (401, "REFRESH_TOKEN_REUSED")
    );
    let successor = refresh(second).await;
    assert_eq!(
        (successor.status.as_u16(), successor.code()),
        (401, "SESSION_REVOKED")
    );
    // The session's end is its revocation's one write, and that write is the event the audit
    // trail records (no outbox item beside it).
    let items = stack.scan().await;
    let session = items
        .iter()
        .find(|i| text_of(i, "SK") == "SESSION")
        .expect("the session");
    assert!(session.contains_key("revokedAt"), "{session:?}");
    assert!(
        !items
            .iter()
            .any(|i| text_of(i, "eventType") == "user.refresh_reused"),
        "an outbox item beside the session's end"
    );
    let reuse = audited(&stack, "user.refresh_reused").await;
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!(
        e2e::audit_event_id(&reuse[0]),
        format!("{}.refresh_reused", text_of(session, "sessionId"))
    );
    assert_eq!(text_of(&reuse[0], "target"), format!("USER#{user_id}"));

    // A new sign-in is a new, independent session.
    let login = stack.login("park@example.com", PASSWORD).await;
    let fresh = refresh(login.body["refreshToken"].as_str().unwrap().to_owned()).await;
    assert_eq!(fresh.status, StatusCode::OK);

    let unknown = refresh("not-a-token".into()).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (401, "INVALID_REFRESH_TOKEN")
    );
}

/// Invariants: a session accepts one refresh token at a time; a token that is forged or altered
/// is refused and changes nothing; a refresh whose answer is lost (made, then sent again by the
/// SDK) is not taken for a reuse; and of copies of one token presented at once, one refreshes and
/// the session ends, so that no token of it works afterwards.
#[tokio::test]
async fn refresh_tokens_cannot_be_forged_and_racing_copies_end_the_session() {
    let stack = Stack::start();
    let (_, _, first) = stack.account("kang@example.com", "CUSTOMER").await;
    let refresh = |token: String| spend_refresh(&stack, token);
    let session = || async {
        stack
            .scan()
            .await
            .into_iter()
            .find(|i| text_of(i, "SK") == "SESSION")
            .expect("the session")
    };
    let before = session().await;

    let parts: Vec<&str> = first.split('.').collect();
    assert_eq!(parts.len(), 3, "{first}");
    let (sid, generation, mac) = (parts[0], parts[1], parts[2]);
    let mut flipped = mac.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [
        format!("{sid}.{}.{mac}", generation.parse::<u64>().unwrap() + 1),
        format!("{sid}.{generation}.{flipped}"),
        format!("{}.{generation}.{mac}", uuid::Uuid::new_v4()),
        format!("{sid}.{generation}"),
        format!("{first}.{mac}"),
    ] {
        let reply = refresh(forged.clone()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "INVALID_REFRESH_TOKEN"),
            "{forged}"
        );
    }
    assert_eq!(
        session().await,
        before,
        "a forged token changed the session"
    );

    // The refresh's write is made and its answer lost: the SDK's second send finds it made.
    stack
        .aws_faults(
            json!([{"function": "AuthRefreshFunction", "service": "dynamodb",
            "operation": "UpdateItem", "contains": "SESSION#", "fault": "lost", "times": 1}]),
        )
        .await;
    let lost = refresh(first).await;
    assert_eq!(lost.status, StatusCode::OK, "{:?}", lost.body);
    assert_eq!(stack.aws_faults_fired().await["rules"][0]["fired"], 1);
    stack.aws_faults(json!([])).await;
    let second = refresh(lost.body["refreshToken"].as_str().unwrap().to_owned()).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.body);
    let copied = second.body["refreshToken"].as_str().unwrap().to_owned();

    let replies = futures::future::join_all((0..6).map(|_| refresh(copied.clone()))).await;
    let mut refreshed = Vec::new();
    let mut reused = 0;
    for reply in &replies {
        match (reply.status.as_u16(), reply.code()) {
            (200, _) => refreshed.push(reply.body["refreshToken"].as_str().unwrap().to_owned()),
            (401, "REFRESH_TOKEN_REUSED") => reused += 1,
            // A copy that came after another copy had ended the session.
            (401, "SESSION_REVOKED") => {}
            // API Gateway's own answers when an instance could not start in time (six at once
            // on two cores): such a copy may have refreshed or not.
            (500 | 502 | 503 | 504, "") => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refreshed.len() <= 1, "{} copies refreshed", refreshed.len());
    assert!(reused >= 1, "{replies:?}");
    assert!(session().await.contains_key("revokedAt"));
    // However many copies found it reused, the session ended once: one record of it.
    let reuse = audited(&stack, "user.refresh_reused").await;
    assert_eq!(reuse.len(), 1, "{reused} copies found it reused: {reuse:?}");
    for token in refreshed.into_iter().chain([copied]) {
        let after = refresh(token).await;
        assert_eq!(
            (after.status.as_u16(), after.code()),
            (401, "SESSION_REVOKED")
        );
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let stack = Stack::start();
    let (user_id, access, refresh) = stack.account("choi@example.com", "CUSTOMER").await;

    let anonymous = stack.post("/v1/auth/logout", &json!({}), None).await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (401, "UNAUTHENTICATED")
    );

    // The revocation is made and its answer lost: the SDK's second send finds the session ended,
    // which is a sign-out made.
    stack
        .aws_faults(
            json!([{"function": "AuthLogoutFunction", "service": "dynamodb",
            "operation": "UpdateItem", "contains": "SESSION#", "fault": "lost", "times": 1}]),
        )
        .await;
    let logout = stack
        .post("/v1/auth/logout", &json!({}), Some(&access))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{:?}", logout.body);
    assert_eq!(stack.aws_faults_fired().await["rules"][0]["fired"], 1);
    stack.aws_faults(json!([])).await;
    let after = stack
        .post("/v1/auth/refresh", &json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(
        (after.status.as_u16(), after.code()),
        (401, "SESSION_REVOKED")
    );
    // Signed out again (a retry whose answer was lost): answered alike, and the session ended
    // once — one audit record, by the user, of the session's end.
    let again = stack
        .post("/v1/auth/logout", &json!({}), Some(&access))
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let out = audited(&stack, "user.signed_out").await;
    assert_eq!(out.len(), 1, "{out:?}");
    let session = stack
        .scan()
        .await
        .into_iter()
        .find(|i| text_of(i, "SK") == "SESSION")
        .expect("the session");
    assert_eq!(
        e2e::audit_event_id(&out[0]),
        format!("{}.signed_out", text_of(&session, "sessionId"))
    );
    assert_eq!(text_of(&out[0], "target"), format!("USER#{user_id}"));
    let actor = out[0]["actor"].as_m().expect("an actor");
    assert_eq!(actor["id"].as_s().unwrap(), &user_id);
    assert!(!text_of(&out[0], "requestId").is_empty(), "{out:?}");
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes() {
    let stack = Stack::start();
    stack.account("jung@example.com", "CUSTOMER").await;

    for attempt in 1..=5 {
        let reply = stack.login("jung@example.com", "wrong password!").await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "INVALID_CREDENTIALS"),
            "attempt {attempt}"
        );
    }
    // Locked now, even with the right password.
    let locked = stack.login("jung@example.com", PASSWORD).await;
    assert_eq!(
        (locked.status.as_u16(), locked.code()),
        (429, "TOO_MANY_REQUESTS")
    );
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    // The counter lives in DynamoDB and expires by TTL.
    let items = stack.scan().await;
    let counter = items
        .iter()
        .find(|i| text_of(i, "SK") == "LOCKOUT")
        .expect("a lockout item");
    assert_eq!(counter["attempts"].as_n().unwrap(), "5");
    assert!(counter.contains_key("expiresAt"));
    let failed = items
        .iter()
        .filter(|i| text_of(i, "eventType") == "user.sign_in_failed")
        .count();
    assert_eq!(failed, 5);

    // Other accounts are unaffected; unknown addresses fail the same way as wrong passwords.
    stack.account("han@example.com", "CUSTOMER").await;
    let unknown = stack.login("nobody@example.com", PASSWORD).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (401, "INVALID_CREDENTIALS")
    );
}

/// An attempt whose count loses its answer (made, then its answer dropped, so the SDK sends it
/// again) is counted once: the window's start, and a count into an open window. Five wrong
/// passwords are still five checks, the sixth sign-in the first refused.
#[tokio::test]
async fn an_attempt_whose_answer_is_lost_is_counted_once() {
    let stack = Stack::start();
    stack.account("lost@example.com", "CUSTOMER").await;
    stack
        .aws_faults(json!([
            {"function": "AuthLoginFunction", "service": "dynamodb", "operation": "PutItem",
             "contains": "LOCKOUT#", "fault": "lost", "times": 1},
            {"function": "AuthLoginFunction", "service": "dynamodb", "operation": "UpdateItem",
             "contains": "LOCKOUT#", "fault": "lost", "times": 1}
        ]))
        .await;
    for attempt in 1..=5 {
        let reply = stack.login("lost@example.com", "wrong password!").await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "INVALID_CREDENTIALS"),
            "attempt {attempt}"
        );
    }
    let fired = stack.aws_faults_fired().await;
    for rule in 0..2 {
        assert_eq!(fired["rules"][rule]["fired"], 1, "{fired}");
    }
    stack.aws_faults(json!([])).await;
    let locked = stack.login("lost@example.com", PASSWORD).await;
    assert_eq!(
        (locked.status.as_u16(), locked.code()),
        (429, "TOO_MANY_REQUESTS")
    );
    let counter = stack
        .scan()
        .await
        .into_iter()
        .find(|i| text_of(i, "SK") == "LOCKOUT")
        .expect("a lockout item");
    assert_eq!(counter["attempts"].as_n().unwrap(), "5");
}

/// Invariant: however many sign-ins arrive at once, at most five passwords are checked per account
/// and window — each refusal beyond them is a 429 that checked nothing.
#[tokio::test]
async fn concurrent_guesses_cannot_buy_more_than_five_password_checks() {
    let stack = Stack::start();
    stack.account("guessed@example.com", "CUSTOMER").await;

    let guesses = (0..100).map(|i| {
        let stack = &stack;
        async move {
            stack
                .login("guessed@example.com", &format!("wrong password {i}"))
                .await
        }
    });
    let replies = futures::future::join_all(guesses).await;
    let mut checked = 0;
    for reply in &replies {
        match (reply.status.as_u16(), reply.code()) {
            (401, "INVALID_CREDENTIALS") => checked += 1,
            (429, "TOO_MANY_REQUESTS") => assert!(reply.header("retry-after").is_some()),
            // API Gateway's own answers (no error body of ours) when an instance could not start
            // or a request waited past the function's time-out — 100 at once on two cores, beside
            // other tests. If such a request took an attempt, the attempt stays counted.
            (500 | 502 | 503 | 504, "") => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // Whatever the storm left of the budget, guessing on one at a time ends in a 429 too.
    loop {
        let reply = stack
            .login("guessed@example.com", "one more wrong password")
            .await;
        match (reply.status.as_u16(), reply.code()) {
            (401, "INVALID_CREDENTIALS") => checked += 1,
            (429, "TOO_MANY_REQUESTS") => break,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(checked <= 5, "{checked} passwords checked");

    let items = stack.scan().await;
    let failed = items
        .iter()
        .filter(|i| text_of(i, "eventType") == "user.sign_in_failed")
        .count();
    assert!(failed <= 5, "{failed} failed sign-ins recorded");
    let counter = items
        .iter()
        .find(|i| text_of(i, "SK") == "LOCKOUT")
        .expect("a lockout item");
    assert_eq!(counter["attempts"].as_n().unwrap(), "5");

    // The right password is refused too until the window ends: the budget is spent.
    let owner = stack.login("guessed@example.com", PASSWORD).await;
    assert_eq!(
        (owner.status.as_u16(), owner.code()),
        (429, "TOO_MANY_REQUESTS")
    );
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let stack = Stack::start();
    let reply = stack.get("/v1/nothing-here", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // The right path with the wrong method is no route either.
    let reply = stack.get("/v1/auth/login", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// A browser app on the template's `CorsAllowedOrigin` (the customer app's dev server by default)
/// calls the API as it will on AWS: its preflight is answered without a route, its answers carry
/// the permission; any other origin gets none.
#[tokio::test]
async fn a_browser_app_on_the_allowed_origin_may_call_the_api_and_no_other_origin() {
    const APP: &str = "http://localhost:5173";
    let stack = Stack::start();
    let (_, token, _) = stack.account("cors@example.com", "CUSTOMER").await;
    let preflight = |origin: &'static str| {
        stack
            .http()
            .request(reqwest::Method::OPTIONS, stack.url("/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let allowed = stack.send(preflight(APP)).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(APP));
    let methods = allowed.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.split(',').any(|m| m == "GET"), "{methods}");
    let headers = allowed.header("access-control-allow-headers").unwrap_or("");
    assert!(
        headers.split(',').any(|h| h == "authorization"),
        "{headers}"
    );
    let other = stack.send(preflight("https://evil.example")).await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    let me = |origin: &'static str| {
        stack
            .http()
            .get(stack.url("/v1/me"))
            .header("origin", origin)
            .bearer_auth(&token)
    };
    let read = stack.send(me(APP)).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["email"], "cors@example.com");
    assert_eq!(read.header("access-control-allow-origin"), Some(APP));
    let exposed = read.header("access-control-expose-headers").unwrap_or("");
    assert!(exposed.split(',').any(|h| h == "etag"), "{exposed}");
    let elsewhere = stack.send(me("https://evil.example")).await;
    assert_eq!(elsewhere.header("access-control-allow-origin"), None);
}

/// `DELETE /v1/me` closes the caller's account once they give its password again: the profile, the
/// address's claim and their places on stores' staff go; their orders stay (the law keeps them
/// five years, under the account's id) and the store still reads them; the address may sign up
/// again, as a new account. A store's owner is refused, and so is a wrong password, which is a
/// sign-in attempt on the address's own counter; neither changes anything.
#[tokio::test]
async fn closing_an_account_frees_its_address_and_keeps_its_orders() {
    let stack = Stack::start();
    let (store, owner, staff, _) = stack.staffed_store("close").await;
    let staff_id = stack.get("/v1/me", Some(&staff)).await.body["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = stack.login("staff-close@example.com", PASSWORD).await.body["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The staff member's account orders too.
    let placed = stack
        .order(
            &staff,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
                    "fulfilment": {"type": "PICKUP"}, "phone": "010-1111-2222"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    stack.mark_paid(&order).await;
    let close = |token: &str, body: serde_json::Value| {
        let token = token.to_owned();
        let stack = &stack;
        async move {
            stack
                .send_json(reqwest::Method::DELETE, "/v1/me", Some(&body), Some(&token))
                .await
        }
    };
    let users_items = |items: &[Item], user: &str| {
        items
            .iter()
            .filter(|i| {
                text_of(i, "PK") == format!("USER#{user}")
                    || text_of(i, "SK") == format!("STAFF#{user}")
                    || (text_of(i, "SK") == "EMAIL" && text_of(i, "userId") == user)
            })
            .count()
    };
    let before = stack.scan().await;
    assert_eq!(
        users_items(&before, &staff_id),
        4,
        "profile, claim, both sides of the place"
    );

    // Refused, and nothing changes: without a token, without a password, with a field it does not
    // take, for the owner of a store, with a wrong password.
    let anonymous = stack
        .send_json(
            reqwest::Method::DELETE,
            "/v1/me",
            Some(&json!({"password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let bare = stack.delete("/v1/me", Some(&staff)).await;
    assert_eq!((bare.status.as_u16(), bare.code()), (400, "MALFORMED_JSON"));
    let extra = close(&staff, json!({"password": PASSWORD, "userId": "someone"})).await;
    assert_eq!(
        (extra.status.as_u16(), extra.code()),
        (422, "VALIDATION_FAILED")
    );
    let owning = close(&owner, json!({"password": PASSWORD})).await;
    assert_eq!(
        (owning.status.as_u16(), owning.code()),
        (409, "STORE_OWNER")
    );
    let wrong = close(&staff, json!({"password": "not my password"})).await;
    assert_eq!(
        (wrong.status.as_u16(), wrong.code()),
        (403, "WRONG_PASSWORD")
    );
    let after_refusals = stack.scan().await;
    assert_eq!(users_items(&after_refusals, &staff_id), 4);
    assert_eq!(
        stack.get("/v1/me", Some(&owner)).await.status,
        StatusCode::OK
    );
    // The wrong password spent one of the address's sign-in attempts.
    let claim = after_refusals
        .iter()
        .find(|i| text_of(i, "SK") == "EMAIL" && text_of(i, "userId") == staff_id)
        .unwrap();
    let counter = after_refusals
        .iter()
        .find(|i| text_of(i, "PK") == format!("LOCKOUT#{}", text_of(claim, "PK")))
        .expect("the address's attempt counter");
    assert_eq!(counter["attempts"].as_n().unwrap(), "1");

    let closed = close(&staff, json!({"password": PASSWORD})).await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{:?}", closed.body);

    let after = stack.scan().await;
    assert_eq!(users_items(&after, &staff_id), 0, "nothing of the account");
    let kept = after
        .iter()
        .find(|i| text_of(i, "PK") == format!("ORDER#{order}"))
        .expect("the order, kept");
    assert_eq!(text_of(kept, "GSI2PK"), format!("CUSTOMER#{staff_id}"));
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&owner))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    // Off the store's staff: their token no longer moves its orders.
    let moved = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "ACCEPTED", "etaMinutes": 5}),
            Some(&staff),
        )
        .await;
    assert!(moved.status.is_client_error(), "{:?}", moved.body);

    // Gone for its holder: its profile, its password, its session, a second closing.
    let me = stack.get("/v1/me", Some(&staff)).await;
    assert_eq!((me.status.as_u16(), me.code()), (404, "USER_NOT_FOUND"));
    let signin = stack.login("staff-close@example.com", PASSWORD).await;
    assert_eq!(
        (signin.status.as_u16(), signin.code()),
        (401, "INVALID_CREDENTIALS")
    );
    let renewed = spend_refresh(&stack, refresh).await;
    assert_eq!(
        (renewed.status.as_u16(), renewed.code()),
        (401, "INVALID_REFRESH_TOKEN")
    );
    let twice = close(&staff, json!({"password": PASSWORD})).await;
    assert_eq!(
        (twice.status.as_u16(), twice.code()),
        (404, "USER_NOT_FOUND")
    );

    // Recorded once, by its holder.
    let records = audited(&stack, "user.deleted").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(text_of(&records[0], "target"), format!("USER#{staff_id}"));
    assert_eq!(
        records[0]["actor"].as_m().unwrap()["id"].as_s().unwrap(),
        &staff_id
    );

    // The address is free: a new account, with nothing of the old one.
    let (new_id, new_token, _) = stack.account("staff-close@example.com", "CUSTOMER").await;
    assert_ne!(new_id, staff_id);
    let places = stack.get("/v1/me/stores", Some(&new_token)).await;
    assert_eq!(places.body["stores"], json!([]), "{:?}", places.body);
    let orders = stack.get("/v1/me/orders", Some(&new_token)).await;
    assert_eq!(orders.body["orders"], json!([]), "{:?}", orders.body);
}

/// `POST /v1/me/password` changes the password once the current one is given: every session that
/// began before ends at its next refresh (a stolen refresh token with them), the answer is a new
/// session's tokens, and only the new password signs in. A weak or unchanged new password, a
/// wrong current one, or a body it does not take change nothing.
#[tokio::test]
async fn changing_the_password_ends_every_earlier_session() {
    let stack = Stack::start();
    let (user_id, access, first_refresh) = stack.account("seo@example.com", "CUSTOMER").await;
    let other_device = stack.login("seo@example.com", PASSWORD).await.body["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    const NEW: &str = "tteokbokki at midnight";
    let change = |body: serde_json::Value| {
        let stack = &stack;
        let access = access.clone();
        async move { stack.post("/v1/me/password", &body, Some(&access)).await }
    };
    let hash = |items: &[Item]| {
        items
            .iter()
            .find(|i| text_of(i, "PK") == format!("USER#{user_id}"))
            .map(|i| text_of(i, "passwordHash").to_owned())
            .unwrap()
    };
    let before = hash(&stack.scan().await);

    let anonymous = stack
        .post(
            "/v1/me/password",
            &json!({"currentPassword": PASSWORD, "newPassword": NEW}),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for (body, status, code) in [
        (
            json!({"currentPassword": PASSWORD}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": NEW, "role": "ADMIN"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": "password123"}),
            422,
            "WEAK_PASSWORD",
        ),
        (
            json!({"currentPassword": PASSWORD, "newPassword": PASSWORD}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"currentPassword": "not my password", "newPassword": NEW}),
            403,
            "WRONG_PASSWORD",
        ),
    ] {
        let refused = change(body.clone()).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (status, code),
            "{body}: {:?}",
            refused.body
        );
    }
    assert_eq!(hash(&stack.scan().await), before, "nothing changed");

    let changed = change(json!({"currentPassword": PASSWORD, "newPassword": NEW})).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_ne!(hash(&stack.scan().await), before);

    // The sessions from before end at their next refresh, the caller's own with them.
    for (name, token) in [("this device", first_refresh), ("another", other_device)] {
        let refused = spend_refresh(&stack, token).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (401, "SESSION_REVOKED"),
            "{name}"
        );
    }
    // The answer's session is the account's.
    let renewed = spend_refresh(
        &stack,
        changed.body["refreshToken"].as_str().unwrap().to_owned(),
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    let me = stack
        .get(
            "/v1/me",
            Some(renewed.body["accessToken"].as_str().unwrap()),
        )
        .await;
    assert_eq!(me.body["userId"], user_id.as_str());

    // Only the new password signs in, and a session it begins is kept.
    let old = stack.login("seo@example.com", PASSWORD).await;
    assert_eq!(
        (old.status.as_u16(), old.code()),
        (401, "INVALID_CREDENTIALS")
    );
    let signed_in = stack.login("seo@example.com", NEW).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    let kept = spend_refresh(
        &stack,
        signed_in.body["refreshToken"].as_str().unwrap().to_owned(),
    )
    .await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);

    // Recorded once, by its holder.
    let records = audited(&stack, "user.password_changed").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(text_of(&records[0], "target"), format!("USER#{user_id}"));
}

/// `PATCH /v1/me` changes the name or the phone and nothing else: each sealed in the table as at
/// sign-up, the phone removed by `""`; the address and the role cannot be set, and a refused body
/// changes nothing.
#[tokio::test]
async fn a_person_changes_their_name_and_phone_and_nothing_else() {
    let stack = Stack::start();
    let (user_id, access, _) = stack.account("yoon@example.com", "CUSTOMER").await;
    let profile_item = |items: Vec<Item>| {
        items
            .into_iter()
            .find(|i| {
                text_of(i, "PK") == format!("USER#{user_id}") && text_of(i, "SK") == "PROFILE"
            })
            .unwrap()
    };
    let before = profile_item(stack.scan().await);

    for (body, code) in [
        (json!({}), "VALIDATION_FAILED"),
        (json!({"name": "   "}), "VALIDATION_FAILED"),
        (json!({"name": null}), "VALIDATION_FAILED"),
        (json!({"phone": "call me"}), "VALIDATION_FAILED"),
        (json!({"role": "ADMIN"}), "VALIDATION_FAILED"),
        (json!({"email": "other@example.com"}), "VALIDATION_FAILED"),
        (
            json!({"name": "Yoon", "userId": "someone-else"}),
            "VALIDATION_FAILED",
        ),
    ] {
        let refused = stack.patch("/v1/me", &body, Some(&access)).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (422, code),
            "{body}: {:?}",
            refused.body
        );
    }
    assert_eq!(profile_item(stack.scan().await), before, "nothing changed");

    let renamed = stack
        .patch(
            "/v1/me",
            &json!({"name": " 윤서연 ", "phone": "+82 10-5555-0101"}),
            Some(&access),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "윤서연");
    assert_eq!(renamed.body["phone"], "01055550101");
    assert_eq!(renamed.body["email"], "yoon@example.com");
    assert_eq!(renamed.body["role"], "CUSTOMER");
    let me = stack.get("/v1/me", Some(&access)).await;
    assert_eq!(me.body, renamed.body);
    // Sealed, as at sign-up: neither value is in the table in the clear.
    let stored = profile_item(stack.scan().await);
    let text = format!("{stored:?}");
    assert!(
        !text.contains("윤서연") && !text.contains("55550101"),
        "{text}"
    );
    assert!(stored.contains_key("phoneIndex"));
    assert_eq!(stored["passwordHash"], before["passwordHash"]);
    assert_eq!(stored["role"], before["role"]);

    // Only the phone: the name stays; then the phone removed.
    let phoned = stack
        .patch("/v1/me", &json!({"phone": "010-5555-0202"}), Some(&access))
        .await;
    assert_eq!(
        (phoned.body["name"].as_str(), phoned.body["phone"].as_str()),
        (Some("윤서연"), Some("01055550202"))
    );
    let removed = stack
        .patch("/v1/me", &json!({"phone": ""}), Some(&access))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert!(removed.body.get("phone").is_none(), "{:?}", removed.body);
    let stored = profile_item(stack.scan().await);
    assert!(!stored.contains_key("phone") && !stored.contains_key("phoneIndex"));
}
