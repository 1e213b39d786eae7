"""infra/local/moto_server.py's query answers as moto's own does: the same items, pages and order.

Random items (some outside the index: it is sparse) in a table with a global secondary index,
then 150 random queries of the table and of the index — key conditions with and without a
sort-key range, both directions, page limits, every page followed — each answered by the patched
`Table.query` and by moto's, in process. Prints what it compared as JSON; exits non-zero on the first difference.

    .venv/bin/python tests/moto_patches.py      (run by tests/project.rs)
"""

import importlib.util
import json
import os
import random
import sys

import boto3
from moto import mock_aws
from moto.dynamodb.models.table import Table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def patched_query():
    moto_query = Table.query
    spec = importlib.util.spec_from_file_location(
        "moto_server", os.path.join(ROOT, "infra/local/moto_server.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ours = Table.query
    assert ours is not moto_query, "moto_server.py no longer patches Table.query"
    return moto_query, ours


def pages(client, query):
    out, query = [], dict(query)
    while True:
        answer = client.query(**query)
        out.append(answer["Items"])
        if "LastEvaluatedKey" not in answer:
            return out
        query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def main():
    moto_query, ours = patched_query()
    rng = random.Random(7)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ["PK", "SK", "G", "GS"]
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI1",
                    "KeySchema": [
                        {"AttributeName": "G", "KeyType": "HASH"},
                        {"AttributeName": "GS", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(300):
            item = {
                "PK": {"S": f"P{rng.randint(0, 12)}"},
                "SK": {"S": f"S{rng.randint(0, 50):03}"},
                "n": {"N": str(n)},
            }
            if rng.random() < 0.7:
                item["G"] = {"S": f"G{rng.randint(0, 5)}"}
                item["GS"] = {"S": f"{rng.randint(0, 30):03}"}
            client.put_item(TableName="t", Item=item)
        items = 0
        for _ in range(150):
            forward = rng.random() < 0.5
            if rng.random() < 0.5:
                query = {
                    "KeyConditionExpression": "PK = :h",
                    "ExpressionAttributeValues": {":h": {"S": f"P{rng.randint(0, 14)}"}},
                }
                if rng.random() < 0.4:
                    query["KeyConditionExpression"] += " AND SK > :r"
                    query["ExpressionAttributeValues"][":r"] = {"S": f"S{rng.randint(0, 50):03}"}
            else:
                query = {
                    "IndexName": "GSI1",
                    "KeyConditionExpression": "G = :h",
                    "ExpressionAttributeValues": {":h": {"S": f"G{rng.randint(0, 6)}"}},
                }
                if rng.random() < 0.4:
                    query["KeyConditionExpression"] += " AND GS >= :r"
                    query["ExpressionAttributeValues"][":r"] = {"S": f"{rng.randint(0, 30):03}"}
            query.update(TableName="t", ScanIndexForward=forward)
            limit = rng.choice([None, 2, 5, 25])
            if limit:
                query["Limit"] = limit
            Table.query = ours
            answered = pages(client, query)
            Table.query = moto_query
            expected = pages(client, query)
            if answered != expected:
                sys.exit(f"{query}: {answered} where moto answers {expected}")
            items += sum(len(page) for page in answered)
    print(json.dumps({"queries": 150, "items": items}))


if __name__ == "__main__":
    main()
