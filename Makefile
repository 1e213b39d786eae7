# The two commands a newcomer needs are `make dev` and `make test`; the rest are their parts.
.PHONY: bootstrap browser build web dev test lint check bench soak cost load sam-build deploy-web

# moto's server, cfn-lint, the SAM CLI and cargo-lambda, in ./.venv (no-op when already installed).
bootstrap:
	./infra/bootstrap

# Debian's Chromium and a CJK font, for the browser tests (no-op when installed).
browser:
	./infra/browser

# The web app (web/: the order board), built into web/dist, which the local runner serves at /app/.
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

# All targets, not just the binaries: tests enable dev-dependency features, and one feature set
# means one build shared by `make dev` and `make test`.
build:
	cargo build --workspace --all-targets

# The whole system on http://127.0.0.1:$(PORT): local AWS stack, every route, every consumer.
PORT ?= 3000
dev: bootstrap build web
	./target/debug/local-runner --port $(PORT) --env-file target/local/lambda.env

# Everything the tests need, then every test (unit, template, end-to-end through the local runner).
test: bootstrap browser build web
	cd web && npm test
	cargo test --workspace

# Release binaries (the deployment profile), then sizes, cold starts next to a hello-world, handler
# times, peak memory, our CPU per request and AWS calls per order (see docs/PERFORMANCE.md).
# Never part of `make test`: timings do not gate anything.
STARTS ?= 20
REQUESTS ?= 1000
bench: bootstrap
	cargo build --release --workspace --bins
	./target/release/ordersync-bench --starts $(STARTS) --requests $(REQUESTS)
	./target/release/ordersync-bench --cost --batch $(BATCH)

# The cost meter alone, on the debug build (counts do not depend on the profile): one order's life
# and a batch of BATCH orders, billed as AWS bills them, per million orders (docs/COST.md).
BATCH ?= 20
cost: bootstrap build
	./target/debug/ordersync-bench --bin-dir target/debug --cost --batch $(BATCH)

# Minutes of mixed traffic under random faults — Toss failing, the confirming process killed, AWS
# throttling, failing and losing answers — then the payment ledger's invariant checked for every
# order (tests/interleavings.rs; docs/FAILURE_MODES.md). Loopback only, bounded in orders and time.
ORDERS ?= 400
soak: bootstrap build
	LEDGER_ORDERS=$(ORDERS) LEDGER_AWS_FAULTS=1 cargo test -p e2e --test interleavings -- --nocapture

# Many customers ordering at once from one store (CUSTOMERS, ORDERS_EACH orders each) with every
# consumer running, the store's board and each customer's phone listening; then every order,
# payment, refund, push and the day's report checked, and the answers' and pushes' delays printed
# (infra/bench/src/load.rs; docs/PERFORMANCE.md). SEED= replays a run's draws. Exit status 1 when
# something did not hold; its timings gate nothing.
CUSTOMERS ?= 40
ORDERS_EACH ?= 5
load: bootstrap build
	./target/debug/ordersync-bench --bin-dir target/debug --load $(CUSTOMERS)x$(ORDERS_EACH) $(if $(SEED),--seed $(SEED))

lint: bootstrap
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=ap-northeast-2 .venv/bin/sam validate --lint --template template.yaml

# The deployment build, as `sam build` makes it: every function in release mode by cargo-lambda,
# into .aws-sam/build. Here for x86_64: the arm64 Rust target (the template's default
# Architecture) cannot be fetched on these machines; deploy arm64 from a machine that has it.
# ~30 minutes on two cores, so CI does not run it. FUNCTION=MeFunction builds one.
ARCH ?= x86_64
sam-build: bootstrap
	PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=ap-northeast-2 \
		.venv/bin/sam build --beta-features $(FUNCTION) --parameter-overrides Architecture=$(ARCH)

# Uploads the built web app to a deployed stack's WebAppBucket (with its config.json) and has
# CloudFront forget index.html and config.json: make deploy-web STACK=ordersync-prod. AWS credentials
# from the environment, as for sam deploy.
deploy-web: bootstrap web
	.venv/bin/python infra/web/deploy.py --stack $(STACK)

# What CI runs.
check: lint test
