#!/usr/bin/env python3
"""moto's server, with DynamoDB made safe for concurrent clients and cheap to transact on.

Four changes to moto's DynamoDB, nothing else:

- One lock around every DynamoDB operation. moto runs requests on threads, and its tables are plain
  dicts: a read can even insert into one (a `defaultdict` lookup), so a request iterating a table
  while another touches it fails with "dictionary changed size during iteration". DynamoDB isolates
  its operations; taking turns gives the same effect.
- Item-level rollback for TransactWriteItems. moto backs every transaction up by deep-copying each
  table it touches, and restores the copy on failure: O(table) per transaction, which made a test
  with a few hundred orders take minutes. Here only the items the transaction names are saved (and
  the length of the table's stream), and only they are put back.
- `ClientRequestToken` for TransactWriteItems, as DynamoDB honours it: a transaction repeated with
  the token of one that succeeded in the last ten minutes succeeds again without being applied
  twice (the SDK sends one token per call and repeats it on every retry, so a transaction whose
  answer was lost is not refused by its own first run); with other parameters it is refused with
  `IdempotentParameterMismatchException`.
- A query reads what it needs. moto's `Table.query` lists every item of the table, sorted, for
  every query: the table's, to keep one partition of it; an index's, to keep its matches and sort
  them again by the index's keys. Here a query of the table is given its partition alone, and an
  index's the items unsorted (its own sort, by the index's keys and then the table's, is a total
  order): the same answers, without sorting the whole table on every query — a third of the
  emulator's time under `make load`.

And no line is logged per request: the local runner discards moto's output, and formatting and
writing werkzeug's request lines took ~7 % of its time.

    moto_server.py -H 127.0.0.1 -p PORT      (the arguments of moto_server)
    moto_server.py -H 127.0.0.1 -p 0         (a free port, bound here and printed: "port N")

Port 0 is how the local runner starts it: a port picked elsewhere and handed over could be taken by
another process before moto binds it, and that process would then be mistaken for the emulator.
"""

import copy
import functools
import hashlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return locked


class _TablesAreNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: tables pass through uncopied
    (the rollback below restores items instead), everything else is copied as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _transact_with_item_rollback(original):
    @functools.wraps(original)
    def transact(self, transact_items):
        saved = []
        stream_lengths = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op.get("Item") or op.get("Key") or {}
            if table.hash_key_attr not in attrs:
                continue
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = (
                DynamoType(attrs[table.range_key_attr])
                if table.range_key_attr and table.range_key_attr in attrs
                else None
            )
            # `.get`, not `[]`: the items are a defaultdict, and a lookup must not insert.
            bucket = table.items.get(hash_value)
            if range_value is None:
                current = bucket
            else:
                current = bucket.get(range_value) if bucket else None
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
            if table.stream_shard is not None:
                stream_lengths.setdefault(id(table), (table, len(table.stream_shard.items)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if range_value is None:
                    if item is None:
                        table.items.pop(hash_value, None)
                    else:
                        table.items[hash_value] = item
                    continue
                bucket = table.items[hash_value]
                if item is None:
                    bucket.pop(range_value, None)
                else:
                    bucket[range_value] = item
                if not bucket:
                    table.items.pop(hash_value, None)
            for table, length in stream_lengths.values():
                del table.stream_shard.items[length:]
            raise

    return transact


# token -> (sha256 of the request, when it succeeded, its answer)
_TOKENS = {}
_TOKEN_SECONDS = 600


class _IdempotentParameterMismatch(DynamodbException):
    def __init__(self):
        super().__init__(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            message="a request with this ClientRequestToken had other parameters",
        )


def _idempotent_transactions(original):
    @functools.wraps(original)
    def handler(self):
        token = self.body.get("ClientRequestToken") if isinstance(self.body, dict) else None
        if not token:
            return original(self)
        # Binary attributes arrive decoded (bytes): hashed as their hex.
        canonical = json.dumps(self.body, sort_keys=True, default=lambda b: b.hex())
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        now = time.monotonic()
        with _LOCK:
            for old in [t for t, (_, at, _) in _TOKENS.items() if now - at > _TOKEN_SECONDS]:
                del _TOKENS[old]
            seen = _TOKENS.get(token)
            if seen is not None:
                if seen[0] != digest:
                    raise _IdempotentParameterMismatch()
                return seen[2]
            answer = original(self)
            _TOKENS[token] = (digest, now, answer)
            return answer

    return handler


def _items_of(table, bucket):
    """The items of one of `table.items`' values: a partition (a dict by sort key), or an item."""
    return list(bucket.values()) if table.range_key_attr else [bucket]


def _query_reads_what_it_needs(original):
    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        hash_key = call.arguments.get("hash_key")
        if call.arguments.get("index_name"):
            items = [item for bucket in self.items.values() for item in _items_of(self, bucket)]
        elif hash_key is not None:
            # `.get`, not `[]`: the items are a defaultdict, and a lookup must not insert.
            bucket = self.items.get(hash_key)
            items = _items_of(self, bucket) if bucket is not None else []
        else:
            return original(self, *args, **kwargs)
        # Read by `original` as `self.all_items()`; the backend's lock keeps other requests out
        # meanwhile (every DynamoDBBackend operation takes it).
        self.all_items = lambda: items
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    return query


Table.query = _query_reads_what_it_needs(Table.query)
DynamoHandler.transact_write_items = _idempotent_transactions(DynamoHandler.transact_write_items)
dynamodb_models.copy = _TablesAreNotCopied
DynamoDBBackend.transact_write_items = _transact_with_item_rollback(
    DynamoDBBackend.transact_write_items
)
for _name, _attr in list(vars(DynamoDBBackend).items()):
    if not _name.startswith("_") and inspect.isfunction(_attr):
        setattr(DynamoDBBackend, _name, _serialised(_attr))

logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _serve_on_a_free_port(host):
    """moto's `main`, on a port the OS picks and this process holds from the start."""
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler)
    # moto builds URLs (queue URLs, among others) from it.
    os.environ["MOTO_PORT"] = str(server.server_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    if "-p" in args and args[args.index("-p") + 1] == "0":
        _serve_on_a_free_port(args[args.index("-H") + 1] if "-H" in args else "127.0.0.1")
    else:
        main()
