#!/usr/bin/env python3
"""moto's server, with DynamoDB writes serialised.

moto runs requests on threads, and rolls a failed TransactWriteItems back by restoring a copy of the
whole table taken when the transaction began: a transaction that fails while another request writes
undoes that write. DynamoDB isolates transactions; here one lock around every DynamoDB write gives the
same effect (requests still run concurrently; writes take turns).

    moto_server.py -H 127.0.0.1 -p PORT      (the arguments of moto_server)
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITE_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
