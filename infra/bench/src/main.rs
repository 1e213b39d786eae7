//! `make bench`: what OrderSync costs to start, to run and to bill, measured on this machine.
//!
//! 1. Every function binary (and a hello-world `lambda_runtime` binary built in the same run): its
//!    size; its cold init — process start until it asks a Lambda Runtime API on loopback for its
//!    first event — as the median of `--starts` starts; its first and warm handler time for the
//!    sample event in `events/` (its placeholders filled: live tokens, a store with the samples'
//!    menu, its paid order), with what it answered; its peak RSS.
//! 2. Our own CPU per request over `--requests` warm requests through the local stack for sign-in,
//!    menu read, order create, payment confirm and status move: the user + system CPU time the
//!    function's process accrued, divided by the requests. Time spent waiting for DynamoDB, KMS or
//!    Toss is not CPU time — the process sleeps in epoll — so backend latency is excluded by
//!    construction. The table's stream readers and the notifier are stopped meanwhile (as on AWS,
//!    where they run on machines of their own, they do not share the measured process's cores).
//!
//!    Where perf's uprobes can be had (`src/allocs.rs`), each operation's allocations per request
//!    too, counted over its call-counting requests, and those of its calls made by `sdk-floor` as
//!    a function and of hello-world's events: a count, which this VM's day does not move.
//! 3. One order's whole life (sign-in → menu → create → confirm → accept → preparing → ready →
//!    complete, and what the consumers do with its events): Lambda invocations and their durations,
//!    AWS calls by operation (from the functions' spans), and the cost of a million such orders.
//!
//! 3b. The AWS SDK's floor in the same run (`src/bin/sdk-floor.rs`): CPU per GetItem, PutItem,
//!    Query and TransactWriteItems made as the functions make them, through the same front, and per
//!    Toss confirm made with our Toss client to the same stand-in (the stand-in counts a payment
//!    confirm's Toss calls, the meter its AWS calls). Each
//!    operation of step 2 is then set against it: its AWS calls per request (from its spans), what
//!    they cost the SDK, the runtime's per-event floor (hello-world's), and the excess — our own
//!    code — next to issue #20's targets; cold init and binary size against theirs. Then the same
//!    calls as a function makes them: `sdk-floor` under a Runtime API, given each operation's
//!    calls an event at a time, and the excess over that.
//! 3c. The status move's function rung by rung (`src/bin/status-ladder.rs`): the runtime and
//!    `lambda_http` alone, then our request wrapper, the token check, the move planned (its reads),
//!    written, answered. Each rung's CPU per event, and what it adds to the one below. Then the
//!    order create's (`src/bin/create-ladder.rs`): the token, the store, menu and order read, the
//!    customer's limit, the board counted, the order made.
//!
//! 4. With `--cost` (`make cost`, `make bench`): the cost meter's reading of one order's life and of a
//!    batch of orders at once (`--batch`), priced per million orders next to the target (`cost.rs`).
//! 5. With `--load CUSTOMERSxORDERS` (`make load`): many customers ordering at once, every consumer
//!    running, then every order, payment, refund, push and the day's report checked (`load.rs`).
//!
//! Results are printed and written to `target/bench/results.json` (`cost.json` for the meter).

mod allocs;
mod cost;
mod load;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

const PASSWORD: &str = "bench password 1234";

struct Args {
    starts: usize,
    requests: usize,
    bin_dir: PathBuf,
    /// Only the cost meter.
    cost_only: bool,
    batch: usize,
    /// Only these functions' sizes and cold starts (next to hello-world's), then stop.
    only: Option<Vec<String>>,
    /// A pause after each measured request (and after each event of the function floor and the
    /// ladder): caches go cold between requests, as a quiet store's do (0: back to back).
    pace: Duration,
    /// Record the call stack of each allocation the probes count, one `perf.data` per function
    /// here: glibc's (hello-world's, our C code's); the Rust heap's go to mimalloc, which stripped
    /// binaries do not name.
    alloc_stacks: Option<PathBuf>,
    /// Record a CPU profile of each operation's measured requests, one `perf.data` per function.
    cpu_profiles: Option<PathBuf>,
    /// While CPU is measured, every DynamoDB call is answered no sooner than this after it was
    /// made (0: as the emulator answers): ours and the floors' calls wait alike, however large
    /// the table has grown (a longer wait costs the same call more CPU: docs/PERFORMANCE.md).
    pad_ms: u64,
    /// Only the load run (`load.rs`): this many customers ordering at once, this many orders each.
    load: Option<load::Shape>,
    /// The load run's draws (its orders' fates); random when not given.
    seed: Option<u64>,
}

fn args() -> Args {
    let mut args = Args {
        starts: 20,
        requests: 1000,
        bin_dir: PathBuf::from("target/release"),
        cost_only: false,
        batch: 20,
        only: None,
        pace: Duration::ZERO,
        alloc_stacks: None,
        cpu_profiles: None,
        pad_ms: 0,
        load: None,
        seed: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--cost" {
            args.cost_only = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--batch" => args.batch = value.parse().unwrap_or(20),
            "--starts" => args.starts = value.parse().unwrap_or(20),
            "--requests" => args.requests = value.parse().unwrap_or(1000),
            "--bin-dir" => args.bin_dir = PathBuf::from(value),
            "--only" => args.only = Some(value.split(',').map(str::to_owned).collect()),
            "--pace-ms" => args.pace = Duration::from_millis(value.parse().unwrap_or(0)),
            "--pad-ms" => args.pad_ms = value.parse().unwrap_or(0),
            "--alloc-stacks" => args.alloc_stacks = Some(PathBuf::from(value)),
            "--cpu-profiles" => args.cpu_profiles = Some(PathBuf::from(value)),
            "--load" => match value.parse() {
                Ok(shape) => args.load = Some(shape),
                Err(why) => {
                    eprintln!("--load {why}");
                    std::process::exit(2);
                }
            },
            "--seed" => args.seed = value.parse().ok(),
            other => {
                eprintln!(
                    "usage: ordersync-bench [--starts N] [--requests N] [--bin-dir DIR] [--cost] [--batch N] [--only f1,f2] [--pace-ms MS] [--pad-ms MS] [--alloc-stacks DIR] [--cpu-profiles DIR] [--load CUSTOMERSxORDERS] [--seed N] ({other}?)"
                );
                std::process::exit(2);
            }
        }
    }
    args
}

#[tokio::main]
async fn main() {
    let args = args();
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let mut stack = Stack::start(&args.bin_dir, &out).await;
    stack.pace = args.pace;
    stack.alloc_stacks = args.alloc_stacks.clone();
    stack.cpu_profiles = args.cpu_profiles.clone();
    for dir in [&args.alloc_stacks, &args.cpu_profiles]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir).expect("the directory for perf's data");
    }
    let env = read_env(&out.join("lambda.env"));
    stack.toss = env
        .iter()
        .find(|(name, _)| name == "TOSS_API_BASE")
        .map(|(_, base)| base.clone());
    if let Some(shape) = args.load {
        stack.dynamodb_pad(args.pad_ms).await;
        let seed = args.seed.unwrap_or_else(rand::random);
        let (figures, problems) = stack.load(shape, seed).await;
        std::fs::write(
            out.join("load.json"),
            serde_json::to_string_pretty(&json!({"commit": commit(), "machine": machine(),
                "at": now(), "seed": seed, "padMs": args.pad_ms, "figures": figures, "problems": problems}))
            .unwrap_or_default(),
        )
        .expect("write load.json");
        println!("\nwritten to target/bench/load.json");
        stack.stop().await;
        if !problems.is_empty() {
            println!("\n{} problems (seed {seed}):", problems.len());
            for problem in &problems {
                println!("- {problem}");
            }
            std::process::exit(1);
        }
        println!("every order, payment, refund, push and report held (seed {seed})");
        return;
    }
    let setup = stack.setup().await;
    if args.cost_only {
        println!("\n== The cost meter (AWS list prices, us-east-1)");
        let cost = stack.cost(&setup, args.batch).await;
        std::fs::write(
            out.join("cost.json"),
            serde_json::to_string_pretty(&cost).unwrap_or_default(),
        )
        .expect("write cost.json");
        println!("\nwritten to target/bench/cost.json");
        stack.stop().await;
        return;
    }

    println!(
        "\n== Binaries: size, cold init (median of {} starts), handler time, peak RSS",
        args.starts
    );
    println!(
        "{:<22} {:>8} {:>10} {:>7} {:>10} {:>10} {:>9}  answers (first, then warm)",
        "function", "size MB", "init ms", "faults", "first ms", "warm ms", "RSS MB"
    );
    let mut binaries = vec!["hello".to_owned()];
    let mut names: Vec<String> = std::fs::read_dir("functions")
        .expect("functions/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| args.only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    // By name, but what takes the samples' store apart last, so that the others find what they
    // act on (deleting `kimbap` first would leave its image and availability samples a 404).
    names.sort_by_key(|name| {
        (
            name.ends_with("-delete") || name.ends_with("-remove"),
            name.clone(),
        )
    });
    binaries.extend(names);
    let mut table = Vec::new();
    // `--starts 0` skips this part.
    for binary in binaries.iter().filter(|_| args.starts > 0) {
        let path = args.bin_dir.join(binary);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let event = sample_event(binary, &setup);
        let (mut inits, mut faults) = (Vec::new(), Vec::new());
        for _ in 0..args.starts {
            if let Ok(run) = run_binary(&path, binary, &env, &[], 0, Mode::QUIET).await {
                inits.push(run.init);
                faults.push(run.init_faults);
            }
        }
        faults.sort_unstable();
        let init_faults = faults.get(faults.len() / 2).copied().unwrap_or(0);
        let run = run_binary(&path, binary, &env, &[event], 20, Mode::QUIET).await;
        let (first, warm, rss, answers) = match &run {
            Ok(run) => (
                run.first,
                median(&run.warm),
                run.rss_kb,
                run.answers.join(", "),
            ),
            Err(e) => (Duration::ZERO, Duration::ZERO, 0, e.clone()),
        };
        let init = median(&inits);
        println!(
            "{:<22} {:>8.2} {:>10.2} {:>7} {:>10.2} {:>10.3} {:>9.1}  {answers}",
            binary,
            size as f64 / 1e6,
            ms(init),
            init_faults,
            ms(first),
            ms(warm),
            rss as f64 / 1024.0
        );
        table.push(
            json!({"binary": binary, "bytes": size, "initMs": ms(init), "initFaults": init_faults, "firstMs": ms(first),
                          "warmMs": ms(warm), "peakRssKb": rss, "answers": answers}),
        );
    }
    if args.only.is_some() {
        stack.stop().await;
        return;
    }

    // The order's life first, on a quiet stack: the CPU runs leave thousands of events behind.
    println!("\n== One order's life: invocations and AWS calls");
    let lifecycle = stack.lifecycle(&setup).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&lifecycle).unwrap_or_default()
    );

    println!(
        "\n== Our own CPU per request ({} warm requests each, through the local stack)",
        args.requests
    );
    // The stream's readers and the notifier stop until the CPU measurements are done: on AWS they
    // run on machines of their own, here every write had them share the two cores with the next
    // requests (0.6 ms a status move, measured on 2026-12-04: docs/PERFORMANCE.md). The stream
    // keeps their records meanwhile; none of the measured requests waits on them.
    stack.consumers(false).await;
    stack.dynamodb_pad(args.pad_ms).await;
    stack.allocs = match allocs::probes().await {
        Ok(()) => true,
        Err(why) => {
            println!("(allocations not counted: {why})");
            false
        }
    };
    let (cpu, accepted) = stack.cpu_per_request(&setup, args.requests).await;
    // The floor: what the Lambda runtime interface alone costs a process per event (hello-world,
    // under the same kind of Runtime API on loopback). Tens of µs an event, under one 10 ms clock
    // tick over a few hundred events: at least 5,000, which take a second or two.
    let hello = args.bin_dir.join("hello");
    let events = args.requests.max(5_000);
    let floor = cpu_per_event(
        &hello,
        "hello",
        &env,
        &[sample_event("hello", &setup)],
        events,
        QUIET,
        Duration::ZERO,
    )
    .await
    .unwrap_or(0.0);
    for (operation, measured) in &cpu {
        println!(
            "{operation:<16} {:<18} {:>8.1} µs",
            measured.function, measured.micros
        );
    }
    println!("{:<16} {:<18} {floor:>8.1} µs", "runtime floor", "hello");

    // The SDK's floor, in the same run: the same kinds of DynamoDB calls with the same SDK
    // configuration and profile, through the same front to the same emulator.
    println!(
        "\n== The AWS SDK's floor: CPU per DynamoDB call ({} calls each)",
        args.requests
    );
    let sdk_floor = floor_calls(&args.bin_dir, &env, args.requests).await;
    // The same calls again, each answered WAITED_MS later: what waiting does to the CPU of the
    // same instructions (the emulator answers some calls in 5 ms, others — a count over a big
    // board — in 50).
    let waited_floor = if args.pad_ms == 0 {
        stack.dynamodb_latency(WAITED_MS).await;
        let waited = floor_calls(&args.bin_dir, &env, args.requests.min(500)).await;
        stack.dynamodb_latency(0).await;
        waited
    } else {
        Value::Null
    };
    println!(
        "{:<20} {:>8} {:>14}",
        "",
        "",
        format!("+{WAITED_MS} ms a call")
    );
    for kind in [
        "GetItem",
        "BatchGetItem",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "TossConfirm",
    ] {
        println!(
            "{kind:<20} {:>8.1} µs {:>11.1} µs",
            sdk_floor[kind].as_f64().unwrap_or(0.0),
            waited_floor[kind].as_f64().unwrap_or(f64::NAN)
        );
    }

    // The same floor as a function pays it: each operation's calls made by `sdk-floor` under a
    // Runtime API, an event at a time, as the operation's function makes them between its waits.
    println!(
        "\n== The same calls as a function makes them ({} events each)",
        args.requests
    );
    // (Sign-in's excess is argon2id, by design: no floor of its own is worth its thousands of calls.)
    let operations: Vec<(&String, &Measured)> =
        cpu.iter().filter(|(op, _)| *op != "sign-in").collect();
    let calibration = args.bin_dir.join("sdk-floor");
    // Twice: with the floor's plain items (~1.8 KB in four attributes), and with items shaped as an
    // order the bench created (its nested maps and lists, its sealed fields): what the SDK does
    // with the functions' own items, which the plain ones understate.
    let order_shaped = {
        let mut env = env.clone();
        if let Some(order) = accepted.first() {
            env.push(("FLOOR_ITEM_PK".to_owned(), shared::orders::order_pk(order)));
            env.push((
                "FLOOR_ITEM_SK".to_owned(),
                shared::orders::ORDER_SK.to_owned(),
            ));
        }
        env
    };
    let mut function_floor = BTreeMap::new();
    let mut shaped_floor = BTreeMap::new();
    println!(
        "{:<16} {:>12} {:>16}",
        "operation", "plain items", "an order's items"
    );
    for (operation, measured) in &operations {
        let event = floor_event(&measured.calls);
        let mut micros = [floor, floor];
        if !event.is_empty() {
            let event = Bytes::from(Value::Object(event).to_string());
            for (env, micros) in [&env, &order_shaped].into_iter().zip(&mut micros) {
                let events = std::slice::from_ref(&event);
                *micros = cpu_per_event(
                    &calibration,
                    "sdk-floor",
                    env,
                    events,
                    args.requests,
                    QUIET,
                    args.pace,
                )
                .await
                .unwrap_or_else(|err| {
                    eprintln!("sdk-floor as a function failed: {err}");
                    f64::NAN
                });
            }
        }
        println!(
            "{operation:<16} {:>9.1} µs {:>13.1} µs",
            micros[0], micros[1]
        );
        function_floor.insert((*operation).clone(), micros[0]);
        shaped_floor.insert((*operation).clone(), micros[1]);
    }

    // Allocations: each operation's, counted over its call-counting requests, against the same
    // calls' as a function makes them and the runtime's own per event (a count: no day in it).
    let mut allocations = serde_json::Map::new();
    if stack.allocs {
        println!(
            "\n== Allocations per request (malloc + calloc + realloc; {ALLOC_EVENTS} events of each floor)"
        );
        let runtime = allocs_per_event(
            &hello,
            "hello",
            &env,
            &[sample_event("hello", &setup)],
            ALLOC_EVENTS,
        )
        .await
        .map(|counts| counts.per_request(ALLOC_EVENTS));
        println!(
            "{:<16} {:>9} {:>12} {:>9} {:>14} {:>9}   system calls: ours, as function, order-shaped",
            "operation", "ours", "as function", "excess", "order-shaped", "excess"
        );
        for (operation, measured) in &cpu {
            let Some(ours) = &measured.allocs else {
                continue;
            };
            let event = floor_event(&measured.calls);
            let mut floors = [runtime.clone(), runtime.clone()];
            if !(event.is_empty() || operation == "sign-in") {
                let event = Bytes::from(Value::Object(event).to_string());
                for (env, floor) in [&env, &order_shaped].into_iter().zip(&mut floors) {
                    let events = std::slice::from_ref(&event);
                    *floor = allocs_per_event(&calibration, "sdk-floor", env, events, ALLOC_EVENTS)
                        .await
                        .map(|counts| counts.per_request(ALLOC_EVENTS));
                }
            }
            let row = match (ours, &floors[0], &floors[1]) {
                (Ok(ours), Ok(plain), Ok(shaped)) => {
                    let excess = ours.allocations - plain.allocations;
                    let over_shaped = ours.allocations - shaped.allocations;
                    println!(
                        "{operation:<16} {:>9.1} {:>12.1} {excess:>9.1} {:>14.1} {over_shaped:>9.1}   {:.1}, {:.1}, {:.1}",
                        ours.allocations,
                        plain.allocations,
                        shaped.allocations,
                        ours.syscalls,
                        plain.syscalls,
                        shaped.syscalls
                    );
                    json!({"ours": ours.json(), "functionFloor": plain.json(), "excess": excess,
                        "orderShapedFloor": shaped.json(), "excessOverOrderShaped": over_shaped})
                }
                (ours, plain, shaped) => {
                    let why = [
                        ours.as_ref().err(),
                        plain.as_ref().err(),
                        shaped.as_ref().err(),
                    ]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ");
                    println!("{operation:<16} not counted: {why}");
                    json!({"notCounted": why})
                }
            };
            allocations.insert(operation.clone(), row);
        }
        match &runtime {
            Ok(runtime) => {
                println!(
                    "{:<16} {:>9.1}  (hello-world: the runtime's floor; {:.1} system calls)",
                    "runtime floor", runtime.allocations, runtime.syscalls
                );
                allocations.insert("runtime floor".to_owned(), runtime.json());
            }
            Err(why) => println!("runtime floor not counted: {why}"),
        }
    }

    // Issue #20's question, where a move's excess goes: its function built up rung by rung
    // (`src/bin/status-ladder.rs`), each rung given a move of each order the status move accepted
    // (`LADDER`), at the functions' log level.
    let sample = std::fs::read_to_string("events/orders-status.json").unwrap_or_default();
    let mut status = Ladder::new(
        "The status move",
        &args,
        &args.bin_dir.join("status-ladder"),
        floor,
    );
    let mut ladder = Vec::new();
    for (rung, to) in LADDER {
        // A rung that writes can outlast an access token (15 minutes) on a busy emulator.
        let owner = stack.login("bench-owner@example.com").await;
        let moves = ladder_events(&sample, &owner, &accepted, to);
        let (micros, added) = status.rung("orders-status", &env, rung, &moves).await;
        ladder.push(json!({"rung": rung, "to": to, "micros": micros, "addedMicros": added}));
    }

    // The order create's the same way (`src/bin/create-ladder.rs`): each rung given order creates
    // of the kind measured above, each with an idempotency key of its own.
    let sample = std::fs::read_to_string("events/orders-create.json").unwrap_or_default();
    let mut create = Ladder::new(
        "The order create",
        &args,
        &args.bin_dir.join("create-ladder"),
        floor,
    );
    let mut create_ladder = Vec::new();
    // A store of its own, whose board is as empty as the measured creates' was (the bench's store
    // holds the orders paid since: a count over them is a slower call).
    let owner = stack.login("bench-owner@example.com").await;
    let ladder_store = stack.open_store(&owner).await;
    for rung in CREATE_LADDER {
        let customer = stack.login("bench-customer@example.com").await;
        let creates = create_events(&sample, &customer, &ladder_store, rung, args.requests + 1);
        let (micros, added) = create.rung("orders-create", &env, rung, &creates).await;
        create_ladder.push(json!({"rung": rung, "micros": micros, "addedMicros": added}));
    }
    stack.dynamodb_pad(0).await;
    stack.consumers(true).await;

    println!("\n== Our CPU against the floors (issue #20's targets)");
    let rows = against_floor(&cpu, &sdk_floor, floor, &function_floor);
    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>9} {:>12} {:>9}  {:<28} calls per request",
        "operation",
        "ours µs",
        "SDK floor",
        "runtime",
        "excess",
        "as function",
        "excess",
        "target (back to back / fn)"
    );
    for row in &rows {
        println!(
            "{:<16} {:>9.1} {:>10.1} {:>10.1} {:>9.1} {:>12.1} {:>9.1}  {:<28} {}",
            row["operation"].as_str().unwrap_or_default(),
            row["micros"].as_f64().unwrap_or(0.0),
            row["sdkFloorMicros"].as_f64().unwrap_or(0.0),
            row["runtimeFloorMicros"].as_f64().unwrap_or(0.0),
            row["excessMicros"].as_f64().unwrap_or(0.0),
            row["functionFloorMicros"].as_f64().unwrap_or(f64::NAN),
            row["excessOverFunctionMicros"].as_f64().unwrap_or(f64::NAN),
            row["target"].as_str().unwrap_or("—"),
            row["calls"].as_str().unwrap_or_default(),
        );
    }
    let hello_init = table
        .iter()
        .find(|b| b["binary"] == "hello")
        .and_then(|b| b["initMs"].as_f64())
        .unwrap_or(0.0);
    let slowest_init = table
        .iter()
        .filter(|b| b["binary"] != "hello")
        .max_by(|a, b| {
            a["initMs"]
                .as_f64()
                .partial_cmp(&b["initMs"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    let largest = table
        .iter()
        .filter(|b| b["binary"] != "hello")
        .max_by_key(|b| b["bytes"].as_u64().unwrap_or(0));
    if let (Some(slowest), Some(largest)) = (slowest_init, largest) {
        let ratio = slowest["initMs"].as_f64().unwrap_or(0.0) / hello_init.max(f64::EPSILON);
        let mb = largest["bytes"].as_f64().unwrap_or(0.0) / 1e6;
        println!(
            "cold init: slowest {} {:.2} ms = {ratio:.2}× hello-world (target ≤ 1.2×: {})",
            slowest["binary"].as_str().unwrap_or_default(),
            slowest["initMs"].as_f64().unwrap_or(0.0),
            met(ratio <= 1.2)
        );
        let faults = |b: &Value| b["initFaults"].as_u64().unwrap_or(0);
        let hello_faults = table
            .iter()
            .find(|b| b["binary"] == "hello")
            .map(faults)
            .unwrap_or(0);
        let most = table.iter().map(faults).max().unwrap_or(0);
        println!(
            "page faults before the first event: hello-world {hello_faults}, the most {most} (docs/PERFORMANCE.md: where a cold start's extra time goes)"
        );
        println!(
            "binary size: largest {} {mb:.2} MB (target ≤ 8 MB: {})",
            largest["binary"].as_str().unwrap_or_default(),
            met(mb <= 8.0)
        );
    }

    let results = json!({
        "machine": machine(),
        "date": now(),
        "binaries": table,
        "cpuPerRequestMicros": cpu.iter().map(|(k, m)| (k.clone(), json!({"function": m.function, "micros": m.micros, "callsPerRequest": m.calls}))).collect::<serde_json::Map<_, _>>(),
        "runtimeFloorMicros": floor,
        "againstFloor": rows,
        "lifecycle": lifecycle,
        "sdkFloorMicros": sdk_floor,
        "sdkFloorMicrosWaited": {"addedMillis": WAITED_MS, "micros": waited_floor},
        "functionFloorMicros": function_floor,
        "orderShapedFunctionFloorMicros": shaped_floor,
        "allocationsPerRequest": allocations,
        "statusLadder": ladder,
        "createLadder": create_ladder,
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .expect("write results");
    println!("\nwritten to target/bench/results.json");
    stack.stop().await;
}

/// One operation's CPU per request, and the AWS (and Toss) calls it made per request.
struct Measured {
    function: String,
    micros: f64,
    calls: BTreeMap<String, f64>,
    /// Allocations per request, where counted (`allocs`); why not, where they could not be.
    allocs: Option<Result<allocs::PerRequest, String>>,
}

/// `orders-create` → `OrdersCreateFunction`, the template's name (and the log's label).
fn function_name(binary: &str) -> String {
    let mut name: String = binary
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    name.push_str("Function");
    name
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

/// A function built up rung by rung (`RUNG`): each rung's CPU per event, printed with what it
/// added to the rung below (the first, to the runtime's floor).
struct Ladder {
    bin: PathBuf,
    requests: usize,
    pace: Duration,
    below: f64,
}

impl Ladder {
    fn new(title: &str, args: &Args, bin: &Path, floor: f64) -> Self {
        println!("\n== {title}, rung by rung ({} events each)", args.requests);
        println!(
            "{:<12} {floor:>8.1} µs  (hello-world: the runtime's floor)",
            ""
        );
        Self {
            bin: bin.to_owned(),
            requests: args.requests,
            pace: args.pace,
            below: floor,
        }
    }

    /// The CPU per event at `rung` (NaN when it could not be measured), and what it added.
    async fn rung(
        &mut self,
        function: &str,
        env: &[(String, String)],
        rung: &str,
        events: &[Bytes],
    ) -> (f64, f64) {
        let mut env = env.to_vec();
        env.push(("RUNG".to_owned(), rung.to_owned()));
        let micros = cpu_per_event(
            &self.bin,
            function,
            &env,
            events,
            self.requests,
            "info",
            self.pace,
        )
        .await
        .unwrap_or_else(|err| {
            eprintln!("{} at {rung} failed: {err}", self.bin.display());
            f64::NAN
        });
        let added = micros - self.below;
        println!("{rung:<12} {micros:>8.1} µs  {added:+8.1}");
        self.below = micros;
        (micros, added)
    }
}

/// `src/bin/status-ladder.rs`'s rungs, from the bottom, and the status each moves the accepted
/// orders to: the two rungs that write make a move each (to PREPARING, then to READY), the others
/// only plan the first.
const LADDER: [(&str, &str); 9] = [
    ("lambda-http", "PREPARING"),
    ("serve", "PREPARING"),
    ("auth", "PREPARING"),
    ("fetch-plain", "PREPARING"),
    ("fetch", "PREPARING"),
    ("read", "PREPARING"),
    ("plan", "PREPARING"),
    ("commit", "PREPARING"),
    ("move", "READY"),
];

/// What the floor's second run adds to every DynamoDB call's answer.
const WAITED_MS: u64 = 40;

/// `src/bin/create-ladder.rs`'s rungs, from the bottom.
const CREATE_LADDER: [&str; 5] = ["auth", "read", "limit", "count", "create"];

/// `n` order creates by `customer` at `store` from the order create's sample event (`sample`:
/// `events/orders-create.json`), each with an idempotency key of its own (`rung` in it), of the
/// kind the bench measures (one latte, picked up).
fn create_events(sample: &str, customer: &str, store: &str, rung: &str, n: usize) -> Vec<Bytes> {
    let values = BTreeMap::from([("PASTE_A_CUSTOMER_ACCESS_TOKEN", customer.to_owned())]);
    let event: Value =
        serde_json::from_str(&filled(sample.to_owned(), &values)).unwrap_or_default();
    let body = json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
        "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"})
    .to_string();
    let run = uuid::Uuid::new_v4().simple().to_string();
    (0..n)
        .map(|i| {
            let mut event = event.clone();
            event["headers"]["idempotency-key"] = json!(format!("ladder-{rung}-{run}-{i}"));
            event["body"] = json!(body);
            Bytes::from(event.to_string())
        })
        .collect()
}

/// The table's stream readers: the recorder and the notifier.
const CONSUMERS: [&str; 2] = ["events-record", "notifications-push"];

/// The status move's sample event (`sample`: `events/orders-status.json`) for each of `orders`:
/// `owner` moves it `to`.
fn ladder_events(sample: &str, owner: &str, orders: &[String], to: &str) -> Vec<Bytes> {
    orders
        .iter()
        .map(|order| {
            let values = BTreeMap::from([
                ("PASTE_AN_ORDER_ID", order.clone()),
                ("PASTE_AN_OWNER_ACCESS_TOKEN", owner.to_owned()),
            ]);
            let text = filled(sample.to_owned(), &values);
            let mut event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            event["body"] = json!(json!({ "to": to }).to_string());
            Bytes::from(event.to_string())
        })
        .collect()
}

/// The floor's kind of a call the functions' spans name (an update or delete is a put); `None` for
/// KMS calls and Toss's other calls, which have no floor of their own.
fn floor_kind(span: &str) -> Option<&'static str> {
    Some(match span {
        "toss.confirm" => "TossConfirm",
        "dynamodb.GetItem" => "GetItem",
        // (A listing's page is a batch of up to 100: priced as the floor's batch of two.)
        "dynamodb.BatchGetItem" => "BatchGetItem",
        "dynamodb.PutItem" | "dynamodb.UpdateItem" | "dynamodb.DeleteItem" => "PutItem",
        "dynamodb.Query" => "Query",
        "dynamodb.TransactWriteItems" => "TransactWriteItems",
        _ => return None,
    })
}

/// The event that has `sdk-floor`, as a function, make an operation's calls: its calls per
/// request by the floor's kinds, rounded to whole calls.
fn floor_event(calls: &BTreeMap<String, f64>) -> serde_json::Map<String, Value> {
    let mut kinds = BTreeMap::<&str, f64>::new();
    for (span, n) in calls {
        if let Some(kind) = floor_kind(span) {
            *kinds.entry(kind).or_default() += n;
        }
    }
    kinds
        .into_iter()
        .map(|(kind, n)| (kind.to_owned(), json!(n.round() as u64)))
        .filter(|(_, n)| n.as_u64() != Some(0))
        .collect()
}

/// Each operation's CPU next to what its calls cost the SDK and what an event costs the runtime:
/// the excess is ours alone. Twice: against the calls made back to back (`sdk`, per call, plus the
/// `runtime`'s per event) and against the same calls made by a function (`as_function`, per
/// request, the runtime's share included).
fn against_floor(
    cpu: &BTreeMap<String, Measured>,
    sdk: &Value,
    runtime: f64,
    as_function: &BTreeMap<String, f64>,
) -> Vec<Value> {
    let per_call =
        |span: &str| floor_kind(span).map_or(0.0, |kind| sdk[kind].as_f64().unwrap_or(0.0));
    cpu.iter()
        .map(|(operation, m)| {
            // (An empty sum of floats is -0.0.)
            let sdk_floor = 0.0
                + m.calls
                    .iter()
                    .map(|(span, n)| per_call(span) * n)
                    .sum::<f64>();
            let excess = m.micros - sdk_floor - runtime;
            let function_floor = as_function.get(operation).copied().unwrap_or(f64::NAN);
            let excess_over_function = m.micros - function_floor;
            let target = match operation.as_str() {
                "order create" | "payment confirm" | "status move" => format!(
                    "excess ≤ 100: {} / {}",
                    met(excess <= 100.0),
                    met(excess_over_function <= 100.0)
                ),
                "menu read" => format!("all ≤ 50: {}", met(m.micros <= 50.0)),
                _ => "—".to_owned(),
            };
            let calls = m
                .calls
                .iter()
                .map(|(span, n)| format!("{span} ×{n:.2}"))
                .collect::<Vec<_>>()
                .join(", ");
            json!({"operation": operation, "function": m.function, "micros": m.micros,
                   "sdkFloorMicros": sdk_floor, "runtimeFloorMicros": runtime,
                   "excessMicros": excess, "functionFloorMicros": function_floor,
                   "excessOverFunctionMicros": excess_over_function,
                   "target": target, "calls": calls})
        })
        .collect()
}

/// Runs the calibration binary (`src/bin/sdk-floor.rs`) with the functions' environment.
async fn floor_calls(bin_dir: &Path, env: &[(String, String)], calls: usize) -> Value {
    let output = Command::new(bin_dir.join("sdk-floor"))
        .arg(calls.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => {
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
        }
        Ok(out) => {
            eprintln!("sdk-floor failed: {}", String::from_utf8_lossy(&out.stderr));
            Value::Null
        }
        Err(err) => {
            eprintln!("sdk-floor did not start: {err}");
            Value::Null
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn now() -> String {
    let out = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The commit measured (`git describe`: `-dirty` when the tree has changes).
fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}

fn read_env(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What the benchmark set up through the API: who, which store, which order.
struct Setup {
    /// Where the CPU measurements order (its board fills up).
    store: String,
    /// Where the one measured order's life happens.
    quiet_store: String,
    /// What fills the sample events' placeholders: a store with the samples' menu, its paid order.
    samples: BTreeMap<&'static str, String>,
}

/// `events/<binary>.json` with the placeholders in `values` filled in.
fn sample_text(binary: &str, values: &BTreeMap<&'static str, String>) -> String {
    let text =
        std::fs::read_to_string(format!("events/{binary}.json")).unwrap_or_else(|_| "{}".into());
    filled(text, values)
}

/// A sample's `text` with the placeholders in `values` filled in.
fn filled(mut text: String, values: &BTreeMap<&'static str, String>) -> String {
    for (name, value) in values {
        text = text.replace(name, value);
    }
    text
}

/// The sample event of `binary`, made real: live tokens, store and order instead of placeholders.
fn sample_event(binary: &str, setup: &Setup) -> Bytes {
    if binary == "hello" {
        return Bytes::from_static(br#"{"hello":"world"}"#);
    }
    Bytes::from(sample_text(binary, &setup.samples))
}

/// A text field of a JSON answer (`""` if it has none).
fn text_field(answer: &Value, name: &str) -> String {
    answer[name].as_str().unwrap_or_default().to_owned()
}

/// What a function answered, for the table: an API route's status, `ok` for any other function's
/// result, `error` when it failed.
fn answer_label(path: &str, body: &[u8]) -> String {
    if path.ends_with("/error") {
        return "error".into();
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|answer| answer["statusCode"].as_u64())
        .map_or_else(|| "ok".into(), |status| status.to_string())
}

// ------------------------------------------------------------------ one binary under a runtime API

struct Run {
    init: Duration,
    /// Page faults the process took before it asked for its first event: a count, which does not
    /// move with the machine's load as times do.
    init_faults: u64,
    first: Duration,
    warm: Vec<Duration>,
    rss_kb: u64,
    /// CPU time of the warm invocations.
    warm_cpu_ns: u64,
    /// The first invocation's answer, then the warm ones' (distinct, in order): `201, 200`.
    answers: Vec<String>,
    /// Allocations over the warm invocations, where counted ([`Mode::allocations`]).
    allocs: Option<Result<allocs::Counts, String>>,
}

/// How the bench runs a binary under its Runtime API.
#[derive(Clone, Copy)]
struct Mode<'a> {
    /// `RUST_LOG`.
    log: &'a str,
    /// A pause after each warm invocation.
    pace: Duration,
    /// Count the warm invocations' allocations (which slows them: their CPU is not a measurement).
    allocations: bool,
}

impl Mode<'_> {
    const QUIET: Mode<'static> = Mode {
        log: QUIET,
        pace: Duration::ZERO,
        allocations: false,
    };
}

type Next = oneshot::Sender<Bytes>;

/// The log level of a binary the bench runs under its own Runtime API, unless the measurement wants
/// the functions' own (`info`, as the local runner gives them).
const QUIET: &str = "error";

/// Events per floor whose allocations are counted: a count needs no more (each probe hit traps
/// into the kernel, so a counted event is slow).
const ALLOC_EVENTS: usize = 200;

/// Starts `path` against a Runtime API of our own, as `mode` says; measures init, and with
/// `events`, the first invocation (the first event) and `warm` more (the next events in turn,
/// round and round).
async fn run_binary(
    path: &Path,
    name: &str,
    env: &[(String, String)],
    events: &[Bytes],
    warm: usize,
    mode: Mode<'_>,
) -> Result<Run, String> {
    let Mode {
        log,
        pace,
        allocations,
    } = mode;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (next_tx, mut next_rx) = mpsc::unbounded_channel::<Next>();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (next_tx, done_tx) = (next_tx.clone(), done_tx.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (next_tx, done_tx) = (next_tx.clone(), done_tx.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if path.ends_with("/invocation/next") {
                            let (tx, rx) = oneshot::channel();
                            let _ = next_tx.send(tx);
                            let event = rx.await.unwrap_or_default();
                            let deadline = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map(|d| d.as_millis() + 30_000)
                                .unwrap_or_default();
                            return Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .header(
                                        "lambda-runtime-aws-request-id",
                                        uuid::Uuid::new_v4().to_string(),
                                    )
                                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                                    .header(
                                        "lambda-runtime-invoked-function-arn",
                                        "arn:aws:lambda:ap-northeast-2:123456789012:function:bench",
                                    )
                                    .header(
                                        "lambda-runtime-trace-id",
                                        "Root=1-00000000-000000000000000000000000;Sampled=0",
                                    )
                                    .body(Full::new(event))
                                    .unwrap_or_default(),
                            );
                        }
                        if path.ends_with("/response") || path.ends_with("/error") {
                            let _ = done_tx.send(answer_label(&path, &body));
                        }
                        Ok(Response::builder()
                            .status(202)
                            .body(Full::new(Bytes::new()))
                            .unwrap_or_default())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let started = Instant::now();
    let mut command = Command::new(path);
    command
        .env_clear()
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("RUST_LOG", log)
        .stdin(Stdio::null())
        .stdout(match allocations {
            true => Stdio::piped(),
            false => Stdio::null(),
        })
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if allocations {
        // Our binaries report their allocations in their lines (hello-world's are probed).
        command.env(shared::heap::REPORT_VAR, "1");
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<String>();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = line_tx.send(line);
            }
        });
    }
    let result = async {
        let first_next = tokio::time::timeout(Duration::from_secs(10), next_rx.recv())
            .await
            .map_err(|_| "no first /next".to_owned())?
            .ok_or("runtime API closed")?;
        let init = started.elapsed();
        let init_faults = child.id().map(minor_faults).unwrap_or(0);
        let Some(event) = events.first() else {
            return Ok(Run {
                init,
                init_faults,
                first: Duration::ZERO,
                warm: Vec::new(),
                rss_kb: 0,
                warm_cpu_ns: 0,
                answers: Vec::new(),
                allocs: None,
            });
        };
        let invoke = |reply: Next, event: Bytes| {
            let started = Instant::now();
            let _ = reply.send(event);
            started
        };
        let t = invoke(first_next, event.clone());
        let mut next_events = events.iter().cycle().skip(1);
        let answer = tokio::time::timeout(Duration::from_secs(30), done_rx.recv())
            .await
            .map_err(|_| "no response")?;
        let first = t.elapsed();
        let mut answers: Vec<String> = answer.into_iter().collect();
        let counter = match (allocations, child.id()) {
            (false, _) => None,
            (true, None) => Some(Err("the process is gone".to_owned())),
            (true, Some(pid)) => Some(allocs::Counter::started(&[pid], None).await),
        };
        let cpu_before = child.id().map(process_cpu_ns).unwrap_or(0);
        let mut times = Vec::new();
        for _ in 0..warm {
            let next = tokio::time::timeout(Duration::from_secs(10), next_rx.recv())
                .await
                .map_err(|_| "no /next")?
                .ok_or("closed")?;
            let event = next_events.next().cloned().unwrap_or_default();
            let t = invoke(next, event);
            let answer = tokio::time::timeout(Duration::from_secs(30), done_rx.recv())
                .await
                .map_err(|_| "no response")?;
            times.push(t.elapsed());
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
            if let Some(answer) = answer.filter(|a| answers.len() < 2 || !answers[1..].contains(a))
            {
                answers.push(answer);
            }
        }
        let rss_kb = child.id().map(peak_rss_kb).unwrap_or(0);
        let warm_cpu_ns = child
            .id()
            .map(process_cpu_ns)
            .unwrap_or(0)
            .saturating_sub(cpu_before);
        let allocs = allocs::stopped(counter).await.map(|counts| {
            // The first event's line, then the warm ones': each reports what came since the one
            // before it.
            let mut written = Vec::new();
            while let Ok(line) = line_rx.try_recv() {
                written.push(line);
            }
            let reporting = written.iter().filter(|line| line.contains(r#""heap":"#));
            let (reported, lines) = allocs::reported(reporting.skip(1).map(String::as_str));
            counts.and_then(|c| c.with_reported(reported, lines, warm))
        });
        Ok::<_, String>(Run {
            init,
            init_faults,
            first,
            warm: times,
            rss_kb,
            warm_cpu_ns,
            answers,
            allocs,
        })
    }
    .await;
    let _ = child.kill().await;
    server.abort();
    result
}

/// `path` given `n` events under a Runtime API of our own (after a first, unmeasured; `events` in
/// turn, round and round; a pause of `pace` after each): its CPU per event in µs, if it answered
/// every one without an error (a route: with a 2xx status).
async fn cpu_per_event(
    path: &Path,
    name: &str,
    env: &[(String, String)],
    events: &[Bytes],
    n: usize,
    log: &str,
    pace: Duration,
) -> Result<f64, String> {
    let mode = Mode {
        log,
        pace,
        allocations: false,
    };
    let run = answered(run_binary(path, name, env, events, n, mode).await?)?;
    Ok(run.warm_cpu_ns as f64 / n.max(1) as f64 / 1e3)
}

/// [`cpu_per_event`]'s run counting allocations instead: per event, over `n` events.
async fn allocs_per_event(
    path: &Path,
    name: &str,
    env: &[(String, String)],
    events: &[Bytes],
    n: usize,
) -> Result<allocs::Counts, String> {
    let mode = Mode {
        allocations: true,
        ..Mode::QUIET
    };
    answered(run_binary(path, name, env, events, n, mode).await?)?
        .allocs
        .unwrap_or_else(|| Err("not counted".to_owned()))
}

/// The run, if it answered every event without an error (a route: with a 2xx status).
fn answered(run: Run) -> Result<Run, String> {
    if run
        .answers
        .iter()
        .all(|answer| answer == "ok" || answer.starts_with('2'))
    {
        Ok(run)
    } else {
        Err(format!("answered {}", run.answers.join(", ")))
    }
}

/// The numeric fields of `/proc/<pid>/stat` after the command's name, from its state on: `[7]` is
/// minor faults, `[11]` and `[12]` user and system time in clock ticks (proc(5), counted from 3).
fn stat_fields(pid: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// User + system CPU time of a process (all its threads, exited ones included).
fn process_cpu_ns(pid: u32) -> u64 {
    let fields = stat_fields(pid);
    let ticks = |i: usize| fields.get(i).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (ticks(11) + ticks(12)) * 1_000_000_000 / hz
}

/// Minor page faults of a process so far (a fresh page, a copy on write, a page of the binary
/// mapped in).
fn minor_faults(pid: u32) -> u64 {
    stat_fields(pid).get(7).copied().unwrap_or(0)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ------------------------------------------------------------------ the local stack

/// What was written to the file at `path` after its first `offset` bytes (only that is read).
fn log_since(path: &Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut written = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = file.read_to_end(&mut written);
    }
    String::from_utf8_lossy(&written).into_owned()
}

struct Stack {
    runner: Child,
    /// The runner's stderr: its own lines and its functions', each after `[<function>#<instance>] `.
    log: PathBuf,
    api: String,
    /// The WebSocket API's address over HTTP, where the runner's `/__local` controls are.
    local: String,
    http: reqwest::Client,
    bin_dir: PathBuf,
    /// `--pace-ms`.
    pace: Duration,
    /// The Toss stand-in the functions call (`TOSS_API_BASE`), whose `/__stats` count its
    /// confirms and cancels.
    toss: Option<String>,
    /// Whether allocations are counted (`allocs::probes` succeeded).
    allocs: bool,
    /// `--alloc-stacks`: where each operation's allocations' call stacks are recorded.
    alloc_stacks: Option<PathBuf>,
    /// `--cpu-profiles`: where each operation's CPU profile is recorded while it is measured.
    cpu_profiles: Option<PathBuf>,
}

impl Stack {
    async fn start(bin_dir: &Path, out: &Path) -> Stack {
        let log = out.join("runner.log");
        let log_file = std::fs::File::create(&log).expect("runner log");
        let mut runner = Command::new(bin_dir.join("local-runner"))
            // Scheduled sweeps (expiry, reconciliation, archives) cost per minute, not per order: kept
            // out of the measurements.
            .args([
                "--port",
                "0",
                // No `--trace`: span lines cost the functions CPU they do not spend in production.
                // AWS calls are counted by the runner's meter instead.
                // Connections to the emulator stay open, as they do to AWS (moto closes each).
                "--keep-alive",
                "--schedule-interval",
                "86400",
                "--env-file",
            ])
            .arg(out.join("lambda.env"))
            // One load generator stands for many clients: its limits are lifted (the counters are
            // still written, and metered).
            .arg("--param")
            .arg(format!("RateLimits={}", shared::limits::Limits::lifted()))
            .arg("--bin-dir")
            .arg(bin_dir)
            .env("RUST_LOG", "info")
            // Each request's line reports its allocations (a few bytes, which the meter does not
            // bill): counted where perf can count the process's system calls beside them.
            .env(shared::heap::REPORT_VAR, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the local runner (make bench builds it)");
        let stdout = runner.stdout.take().expect("runner stdout");
        let mut line = String::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(90),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let api = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("the runner did not start: see {}", log.display()))
            .to_owned();
        println!("{}", line.trim());
        let local = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .map(|w| w.trim_end_matches(',').replacen("ws://", "http://", 1))
            .unwrap_or_default();
        Stack {
            runner,
            log,
            api,
            local,
            http: reqwest::Client::new(),
            bin_dir: bin_dir.to_owned(),
            pace: Duration::ZERO,
            toss: None,
            allocs: false,
            alloc_stacks: None,
            cpu_profiles: None,
        }
    }

    /// SIGTERM first: the runner stops the emulator it started (a SIGKILL would leave moto running).
    async fn stop(&mut self) {
        if let Some(pid) = self.runner.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(10), self.runner.wait())
            .await
            .is_err()
        {
            let _ = self.runner.start_kill();
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Signs up and in; the access token.
    async fn account(&self, email: &str, role: &str) -> String {
        let (_, signed_in) = self.signed_up(email, role).await;
        text_field(&signed_in, "accessToken")
    }

    /// Signs up and in; the answers to both (the user's id, the tokens).
    async fn signed_up(&self, email: &str, role: &str) -> (Value, Value) {
        let (_, signed_up) = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD, "name": "Bench", "role": role})),
                None,
            )
            .await;
        (signed_up, self.signed_in(email).await)
    }

    async fn login(&self, email: &str) -> String {
        text_field(&self.signed_in(email).await, "accessToken")
    }

    /// The answer to a sign-in: its access and refresh tokens.
    async fn signed_in(&self, email: &str) -> Value {
        let (_, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
                None,
            )
            .await;
        body
    }

    async fn setup(&self) -> Setup {
        let owner = self.account("bench-owner@example.com", "OWNER").await;
        let customer = self.account("bench-customer@example.com", "CUSTOMER").await;
        Setup {
            store: self.open_store(&owner).await,
            quiet_store: self.open_store(&owner).await,
            samples: self.samples(&owner, customer).await,
        }
    }

    /// What fills the sample events' placeholders: the owner; a customer; a staff member invited
    /// (their id and token); a session of its own for `auth-refresh` (`auth-logout` ends the
    /// owner's); a store with the samples' menu; the samples' order, paid. Made by playing the
    /// samples themselves through the API where one does it. No administrator (one is made behind
    /// the API): `audit-admin-list` is measured refusing a token it cannot read.
    async fn samples(&self, owner: &str, customer: String) -> BTreeMap<&'static str, String> {
        let mut values = BTreeMap::new();
        values.insert("PASTE_AN_OWNER_ACCESS_TOKEN", owner.to_owned());
        values.insert("PASTE_AN_ACCESS_TOKEN", owner.to_owned());
        values.insert("PASTE_A_CUSTOMER_ACCESS_TOKEN", customer);
        let (_, session) = self
            .signed_up("bench-session@example.com", "CUSTOMER")
            .await;
        values.insert(
            "PASTE_A_REFRESH_TOKEN",
            text_field(&session, "refreshToken"),
        );
        let (staff, staff_session) = self.signed_up("bench-staff@example.com", "CUSTOMER").await;
        values.insert("PASTE_A_USER_ID", text_field(&staff, "userId"));
        values.insert(
            "PASTE_THE_INVITED_USERS_ACCESS_TOKEN",
            text_field(&staff_session, "accessToken"),
        );
        values.insert("PASTE_A_STORE_ID", self.open_store(owner).await);
        // `auth-login`'s account, the invitation `invitations-accept` accepts, the samples' menu.
        for sample in [
            "auth-signup",
            "staff-add",
            "menu-option-group-put",
            "menu-category-put",
            "menu-item-put",
        ] {
            self.play(sample, &values).await;
        }
        let (_, order) = self.play("orders-create", &values).await;
        values.insert("PASTE_AN_ORDER_ID", text_field(&order, "orderId"));
        self.play("payments-confirm", &values).await;
        values
    }

    /// Sends `binary`'s sample event, placeholders filled, through the API as a client would.
    async fn play(&self, binary: &str, values: &BTreeMap<&'static str, String>) -> (u16, Value) {
        let event: Value =
            serde_json::from_str(&sample_text(binary, values)).unwrap_or(Value::Null);
        let method = event["requestContext"]["http"]["method"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .unwrap_or(reqwest::Method::GET);
        let mut path = event["rawPath"].as_str().unwrap_or_default().to_owned();
        if let Some(query) = event["rawQueryString"].as_str().filter(|q| !q.is_empty()) {
            path = format!("{path}?{query}");
        }
        let headers = &event["headers"];
        let token = headers["authorization"]
            .as_str()
            .and_then(|a| a.strip_prefix("Bearer "));
        let body = event["body"]
            .as_str()
            .and_then(|body| serde_json::from_str(body).ok());
        let key = headers["idempotency-key"].as_str();
        self.call(method, &path, token, body, key).await
    }

    /// A store open around the clock selling one latte.
    async fn open_store(&self, owner: &str) -> String {
        let day = json!([{"open": "00:00", "close": "00:00"}]);
        let (_, store) = self.call(reqwest::Method::POST, "/v1/stores", Some(owner), Some(json!({
            "name": "벤치 김밥", "phone": "02-123-4567", "address": "서울 종로구 종로 1",
            "maxQueuedOrders": 500,
            "weeklyHours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}})), None).await;
        let store = store["storeId"].as_str().expect("a store").to_owned();
        let menu = format!("/v1/stores/{store}/menu");
        self.call(
            reqwest::Method::PUT,
            &format!("{menu}/categories/main"),
            Some(owner),
            Some(json!({"name": "Main"})),
            None,
        )
        .await;
        self.call(
            reqwest::Method::PUT,
            &format!("{menu}/items/latte"),
            Some(owner),
            Some(json!({"categoryId": "main", "name": "Latte", "price": 4500})),
            None,
        )
        .await;
        store
    }

    /// Every live process of `binary`.
    fn pids(&self, binary: &str) -> Vec<u32> {
        let target = std::fs::canonicalize(self.bin_dir.join(binary)).unwrap_or_default();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_string_lossy().parse().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&target)
            })
            .collect()
    }

    /// CPU time (ns) of every live process of `binary` (its threads included).
    fn cpu_ns(&self, binary: &str) -> u64 {
        self.pids(binary).into_iter().map(process_cpu_ns).sum()
    }

    /// Runs `n` requests (after a warm-up): the CPU per request of `binary`, in µs, and the AWS
    /// calls it made per request (counted by the runner's meter, at its front to the emulator) and
    /// its allocations (with `allocs`), both over further requests.
    async fn measure<F, Fut>(&self, binary: &str, n: usize, mut request: F) -> Measured
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        for i in 0..5 {
            request(usize::MAX - i).await;
        }
        let mut profile = match &self.cpu_profiles {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{binary}.perf.data"));
                allocs::Profile::started(&self.pids(binary), &path)
                    .await
                    .inspect_err(|err| eprintln!("no CPU profile of {binary}: {err}"))
                    .ok()
            }
        };
        let before = self.cpu_ns(binary);
        for i in 0..n {
            request(i).await;
            if !self.pace.is_zero() {
                tokio::time::sleep(self.pace).await;
            }
        }
        let after = self.cpu_ns(binary);
        if let Some(profile) = profile.take()
            && let Err(err) = profile.stop().await
        {
            eprintln!("the CPU profile of {binary}: {err}");
        }
        // The calls are counted over further requests, apart: the meter's own work (it reads each
        // item before a write to size it) would otherwise crowd the measured process's two cores.
        // Allocations too, where they can be counted: the same requests, so the same work.
        let counted = n.min(20);
        self.meter(true).await;
        let toss_before = self.toss_calls().await;
        let stacks = self
            .alloc_stacks
            .as_ref()
            .map(|dir| dir.join(format!("{binary}.perf.data")));
        let counter = match self.allocs {
            true => Some(allocs::Counter::started(&self.pids(binary), stacks.as_deref()).await),
            false => None,
        };
        let log_before = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        for i in 0..counted {
            request(n + i).await;
        }
        // After the counter's stop, which waits for the last request's tail: its line is written.
        let allocs = allocs::stopped(counter).await.map(|counts| {
            let written = log_since(&self.log, log_before);
            let label = format!("[{}#", function_name(binary));
            let (reported, lines) =
                allocs::reported(written.lines().filter(|line| line.starts_with(&label)));
            counts
                .and_then(|c| c.with_reported(reported, lines, counted))
                .map(|c| c.per_request(counted))
        });
        let toss_after = self.toss_calls().await;
        let reading = self.meter_reading().await;
        self.meter(false).await;
        let mut calls: BTreeMap<String, f64> = reading["awsCallsByFunction"][function_name(binary)]
            .as_object()
            .map(|calls| {
                calls
                    .iter()
                    .map(|(call, count)| (call.clone(), count.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        // Toss is not behind the meter: its stand-in counts what it ran.
        for (call, after) in toss_after {
            let made = after - toss_before.get(&call).copied().unwrap_or(0.0);
            if made > 0.0 {
                calls.insert(call, made);
            }
        }
        for count in calls.values_mut() {
            *count /= counted.max(1) as f64;
        }
        Measured {
            function: binary.to_owned(),
            micros: after.saturating_sub(before) as f64 / n as f64 / 1e3,
            calls,
            allocs,
        }
    }

    /// The Toss calls its stand-in has run so far (`toss.confirm`, `toss.cancel`): only calls that
    /// ran, not repeats it answered from their idempotency key, nor look-ups.
    async fn toss_calls(&self) -> BTreeMap<String, f64> {
        let Some(toss) = &self.toss else {
            return BTreeMap::new();
        };
        let stats: Value = match self.http.get(format!("{toss}/__stats")).send().await {
            Ok(reply) => reply.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        [
            ("toss.confirm", "confirmsExecuted"),
            ("toss.cancel", "cancelsExecuted"),
        ]
        .into_iter()
        .filter_map(|(call, field)| Some((call.to_owned(), stats[field].as_f64()?)))
        .collect()
    }

    /// Stops (or starts again) the functions the table's stream reaches (`CONSUMERS`): while they
    /// are stopped, the stream keeps its records for them.
    /// Adds `millis` to every DynamoDB call's answer, through the front (0: none).
    async fn dynamodb_latency(&self, millis: u64) {
        self.dynamodb_rule("latency", millis).await;
    }

    /// Answers every DynamoDB call no sooner than `millis` after it was made (0: as it comes).
    async fn dynamodb_pad(&self, millis: u64) {
        self.dynamodb_rule("pad", millis).await;
    }

    /// The front's one rule for DynamoDB calls: `fault` with `millis` (0: no rule).
    async fn dynamodb_rule(&self, fault: &str, millis: u64) {
        let rules = match millis {
            0 => json!({"rules": []}),
            _ => json!({"rules": [{"service": "dynamodb", "fault": fault, "delayMs": millis}]}),
        };
        let _ = self
            .http
            .post(format!("{}/__local/faults/aws", self.local))
            .body(rules.to_string())
            .send()
            .await;
    }

    async fn consumers(&self, running: bool) {
        let action = if running { "start" } else { "stop" };
        for name in CONSUMERS {
            let _ = self
                .http
                .post(format!("{}/__local/functions/{name}/{action}", self.local))
                .send()
                .await;
        }
    }

    /// Each operation's CPU per request; and the orders the status move accepted.
    async fn cpu_per_request(
        &self,
        setup: &Setup,
        n: usize,
    ) -> (BTreeMap<String, Measured>, Vec<String>) {
        use reqwest::Method;
        let mut results = BTreeMap::new();
        let login = self
            .measure("auth-login", n, |_| async {
                self.login("bench-customer@example.com").await;
            })
            .await;
        results.insert("sign-in".to_owned(), login);
        let menu_path = format!("/v1/stores/{}/menu", setup.store);
        let menu = self
            .measure("menu-get", n, |_| {
                let path = menu_path.clone();
                async move {
                    self.call(Method::GET, &path, None, None, None).await;
                }
            })
            .await;
        results.insert("menu read".to_owned(), menu);
        // Access tokens live 15 minutes: each phase signs in afresh.
        let customer = self.login("bench-customer@example.com").await;
        let customer = customer.as_str();
        let orders = std::sync::Mutex::new(Vec::new());
        let order_body = json!({"storeId": setup.store, "items": [{"itemId": "latte", "quantity": 1}],
            "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"});
        let create = self
            .measure("orders-create", n, |i| {
                let (body, orders) = (order_body.clone(), &orders);
                async move {
                    let key = format!("bench-{i}-{}", uuid::Uuid::new_v4().simple());
                    let (_, order) = self
                        .call(
                            Method::POST,
                            "/v1/orders",
                            Some(customer),
                            Some(body),
                            Some(&key),
                        )
                        .await;
                    if let Some(id) = order["orderId"].as_str() {
                        orders
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(id.to_owned());
                    }
                }
            })
            .await;
        results.insert("order create".to_owned(), create);
        let orders = orders.into_inner().unwrap_or_default();
        let customer = self.login("bench-customer@example.com").await;
        let customer = customer.as_str();
        let confirm = self.measure("payments-confirm", n, |i| {
            let order = orders.get(i % orders.len().max(1)).cloned().unwrap_or_default();
            async move {
                self.call(Method::POST, "/v1/payments/confirm", Some(customer),
                    Some(json!({"orderId": order, "paymentKey": format!("tpk_{order}"), "amount": 4500})), None).await;
            }
        }).await;
        results.insert("payment confirm".to_owned(), confirm);
        let owner = self.login("bench-owner@example.com").await;
        let owner = owner.as_str();
        let accept = self
            .measure("orders-status", n, |i| {
                let order = orders
                    .get(i % orders.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                async move {
                    self.call(
                        Method::POST,
                        &format!("/v1/orders/{order}/status"),
                        Some(owner),
                        Some(json!({"to": "ACCEPTED", "etaMinutes": 10})),
                        None,
                    )
                    .await;
                }
            })
            .await;
        results.insert("status move".to_owned(), accept);
        (results, orders)
    }

    /// One order's whole life; then the invocations and AWS calls it caused, from the runner's meter.
    async fn lifecycle(&self, setup: &Setup) -> Value {
        use reqwest::Method;
        let owner = self.login("bench-owner@example.com").await;
        self.meter(true).await;
        let customer = self.login("bench-customer@example.com").await;
        self.call(
            Method::GET,
            &format!("/v1/stores/{}/menu", setup.quiet_store),
            None,
            None,
            None,
        )
        .await;
        let (_, order) = self.call(Method::POST, "/v1/orders", Some(&customer),
            Some(json!({"storeId": setup.quiet_store, "items": [{"itemId": "latte", "quantity": 1}],
                        "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"})),
            Some(&uuid::Uuid::new_v4().to_string())).await;
        let order = text_field(&order, "orderId");
        self.call(
            Method::POST,
            "/v1/payments/confirm",
            Some(&customer),
            Some(json!({"orderId": order, "paymentKey": format!("tpk_{order}"), "amount": 4500})),
            None,
        )
        .await;
        for body in [
            json!({"to": "ACCEPTED", "etaMinutes": 10}),
            json!({"to": "PREPARING"}),
            json!({"to": "READY"}),
            json!({"to": "COMPLETED"}),
        ] {
            self.call(
                Method::POST,
                &format!("/v1/orders/{order}/status"),
                Some(&owner),
                Some(body),
                None,
            )
            .await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        let reading = self.meter_reading().await;
        self.meter(false).await;
        let mut calls: BTreeMap<String, u64> = BTreeMap::new();
        let by_function = reading["awsCallsByFunction"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for function_calls in by_function.values() {
            for (call, count) in function_calls.as_object().into_iter().flatten() {
                *calls.entry(call.clone()).or_default() += count.as_u64().unwrap_or(0);
            }
        }
        let invocations: serde_json::Map<String, Value> = reading["lambda"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(function, billed)| {
                let gb = billed["memoryMb"].as_f64().unwrap_or(128.0) / 1024.0;
                let ms = billed["gbSeconds"].as_f64().unwrap_or(0.0) / gb * 1e3;
                (
                    function.clone(),
                    json!({"count": billed["invocations"], "totalMs": ms}),
                )
            })
            .collect();
        let units = |field: &str| -> f64 {
            reading["dynamodbByOperation"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, units)| units[field].as_f64().unwrap_or(0.0))
                .sum()
        };
        json!({
            "orderId": order,
            "httpApiRequests": reading["apiRequests"],
            "invocations": invocations,
            "awsCalls": calls,
            "awsCallsByFunction": by_function,
            "dynamodbWriteUnits": units("writeUnits"),
            "dynamodbReadUnits": units("readUnits"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logs_tail_is_what_was_written_after_the_offset() {
        let path = std::env::temp_dir().join(format!("ordersync-log-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "[A#1] before\n[A#1] after\n").unwrap();
        assert_eq!(log_since(&path, 13), "[A#1] after\n");
        assert_eq!(log_since(&path, 0), "[A#1] before\n[A#1] after\n");
        assert_eq!(log_since(&path, 1_000), "");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log_since(&path, 0), "");
    }

    #[test]
    fn the_floor_function_makes_an_operations_dynamodb_calls_in_whole_calls() {
        // Calls per request as the meter counts them over twenty requests (a fraction where one
        // request differed), with a KMS call and a Toss cancel, which the floor has no kind for,
        // and a Toss confirm, which it has.
        let calls = BTreeMap::from([
            ("dynamodb.GetItem".to_owned(), 1.95),
            ("dynamodb.UpdateItem".to_owned(), 1.0),
            ("dynamodb.DeleteItem".to_owned(), 0.05),
            ("kms.Decrypt".to_owned(), 0.05),
            ("toss.confirm".to_owned(), 1.0),
            ("toss.cancel".to_owned(), 1.0),
        ]);
        let event = Value::Object(floor_event(&calls));
        assert_eq!(event, json!({"GetItem": 2, "PutItem": 1, "TossConfirm": 1}));
        // An operation without DynamoDB calls (the cached menu read) gives an empty event: its
        // floor is the runtime's.
        assert!(floor_event(&BTreeMap::from([("kms.Decrypt".to_owned(), 1.0)])).is_empty());
    }

    #[test]
    fn the_ladder_moves_each_order_once_as_its_owner() {
        let sample = include_str!("../../../events/orders-status.json");
        let orders = ["ord_a".to_owned(), "ord_b".to_owned()];
        let events = ladder_events(sample, "tok", &orders, "READY");
        assert_eq!(events.len(), 2);
        for (event, order) in events.iter().zip(&orders) {
            assert!(!String::from_utf8_lossy(event).contains("PASTE_"));
            let event: Value = serde_json::from_slice(event).unwrap();
            assert_eq!(event["pathParameters"]["orderId"], json!(order));
            assert_eq!(
                event["rawPath"],
                json!(format!("/v1/orders/{order}/status"))
            );
            assert_eq!(event["headers"]["authorization"], json!("Bearer tok"));
            let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            assert_eq!(body, json!({"to": "READY"}));
        }
    }

    #[test]
    fn the_create_ladder_places_the_measured_order_each_time_under_a_key_of_its_own() {
        let sample = include_str!("../../../events/orders-create.json");
        let events = create_events(sample, "tok", "st_1", "read", 3);
        let mut keys = std::collections::BTreeSet::new();
        for event in &events {
            assert!(!String::from_utf8_lossy(event).contains("PASTE_"));
            let event: Value = serde_json::from_slice(event).unwrap();
            assert_eq!(event["headers"]["authorization"], json!("Bearer tok"));
            keys.insert(
                event["headers"]["idempotency-key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["storeId"], "st_1");
            assert_eq!(body["items"], json!([{"itemId": "latte", "quantity": 1}]));
        }
        assert_eq!(keys.len(), 3, "{keys:?}");
    }
}
