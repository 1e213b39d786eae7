#!/usr/bin/env python3
"""An order create's (or a sign-in's) time as a customer waits for it, with every DynamoDB call
of the function made to take DELAY_MS (the local runner's latency fault, as a round trip to
DynamoDB takes on AWS), against a running `make dev`. Prints the median and quartiles of N.

    make dev &    # then:
    python3 infra/bench/create-latency.py [N] [DELAY_MS] [create|sign-in]

What it shows is the number of waits in a row (docs/PERFORMANCE.md, "An order create waits on
the table three times"): each costs DELAY_MS, whatever the emulator's own speed.
"""
import json
import statistics
import sys
import time
import urllib.request
import uuid

API = "http://127.0.0.1:3000"
LOCAL = "http://127.0.0.1:3001/__local"


def call(method, url, body=None, token=None, key=None):
    request = urllib.request.Request(url, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if key:
        request.add_header("idempotency-key", key)
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(request, data) as answer:
            text = answer.read()
            try:
                return answer.status, json.loads(text) if text else None
            except ValueError:  # the runner's controls answer in words
                return answer.status, text.decode()
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def account(email, role):
    password = "kimchi-jjigae at 7pm"
    call("POST", f"{API}/v1/auth/signup",
         {"email": email, "password": password, "name": "Kim", "role": role})
    status, body = call("POST", f"{API}/v1/auth/login", {"email": email, "password": password})
    assert status == 200, body
    return body["accessToken"]


def held(function, delay, n, attempt):
    """`attempt()` n times (after three that warm the instance) with `function`'s DynamoDB calls
    held `delay` ms each: each one's time in ms."""
    status, _ = call("POST", f"{LOCAL}/faults/aws", {"rules": [
        {"function": function, "service": "dynamodb", "fault": "latency", "delayMs": delay}]})
    assert status in (200, 204), status
    try:
        times = []
        for i in range(n + 3):
            start = time.monotonic()
            attempt(i)
            if i >= 3:
                times.append((time.monotonic() - start) * 1000)
        return times
    finally:
        call("POST", f"{LOCAL}/faults/aws", {"rules": []})


def sign_ins(n, delay):
    email = f"bench-signin-{uuid.uuid4().hex[:8]}@example.com"
    account(email, "CUSTOMER")

    def sign_in(_):
        status, body = call("POST", f"{API}/v1/auth/login",
                            {"email": email, "password": "kimchi-jjigae at 7pm"})
        assert status == 200, body
    return held("AuthLoginFunction", delay, n, sign_in)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    delay = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    what = sys.argv[3] if len(sys.argv) > 3 else "create"
    if what == "sign-in":
        report("sign-in", n, delay, sign_ins(n, delay))
        return
    run = uuid.uuid4().hex[:8]
    owner = account(f"bench-owner-{run}@example.com", "OWNER")
    day = [{"open": "00:00", "close": "00:00"}]
    status, store = call("POST", f"{API}/v1/stores", {
        "name": "Bench", "phone": "02-123-4567", "address": "Seoul", "timeZone": "Asia/Seoul",
        "maxQueuedOrders": 500,
        "weeklyHours": {d: day for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    }, owner, str(uuid.uuid4()))
    assert status == 201, store
    store_id = store["storeId"]
    for path, body in [("categories/mains", {"name": "Mains"}),
                       ("items/kimbap", {"categoryId": "mains", "name": "Kimbap", "price": 4500})]:
        status, answer = call("PUT", f"{API}/v1/stores/{store_id}/menu/{path}", body, owner)
        assert status in (200, 201), answer
    # Enough customers that no one meets the per-customer limit.
    customers = [account(f"bench-customer-{run}-{i}@example.com", "CUSTOMER")
                 for i in range(n // 10 + 1)]
    order = {"storeId": store_id, "items": [{"itemId": "kimbap", "quantity": 1}],
             "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"}

    def create(i):
        status, body = call("POST", f"{API}/v1/orders", order, customers[i % len(customers)],
                            str(uuid.uuid4()))
        assert status == 201, body
    report("order create", n, delay, held("OrdersCreateFunction", delay, n, create))


def report(what, n, delay, times):
    q = statistics.quantiles(times, n=4)
    print(f"{what}, {n} in a row, each DynamoDB call {delay} ms late: "
          f"median {statistics.median(times):.1f} ms (quartiles {q[0]:.1f}–{q[2]:.1f})")


if __name__ == "__main__":
    main()
