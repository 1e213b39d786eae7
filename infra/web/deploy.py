#!/usr/bin/env python3
"""Upload the built web app (web/dist) to the template's WebAppBucket, with the config.json that
points it at the stack's WebSocket API, and have CloudFront forget the files that are not hashed.

    deploy.py --stack ordersync-prod              # reads the stack's outputs
    deploy.py --bucket B --websocket wss://… [--distribution ID] [--endpoint http://127.0.0.1:…]

The page calls the HTTP API on its own origin (CloudFront forwards /v1/* to it), so config.json's
`api` is "". index.html and config.json are sent `no-cache` (a new deployment shows at the next
load); the hashed assets are immutable for a year. Old assets stay: a tab still running the last
version can load what it asks for.
"""

import argparse
import json
import mimetypes
import pathlib
import sys
import time

import boto3

PREFIX = "app/"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


def outputs(stack, region):
    cfn = boto3.client("cloudformation", region_name=region)
    found = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in found}


def upload(s3, bucket, dist, websocket):
    dist = pathlib.Path(dist)
    if not (dist / "index.html").is_file():
        sys.exit(f"{dist}/index.html is missing: run `make web` first")
    sent = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        relative = path.relative_to(dist).as_posix()
        hashed = relative.startswith("assets/")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "application/javascript":
            content_type += "; charset=utf-8"
        s3.put_object(
            Bucket=bucket,
            Key=PREFIX + relative,
            Body=path.read_bytes(),
            ContentType=content_type,
            CacheControl=IMMUTABLE if hashed else NO_CACHE,
        )
        sent.append(PREFIX + relative)
    config = {"api": "", "websocket": websocket}
    s3.put_object(
        Bucket=bucket,
        Key=PREFIX + "config.json",
        Body=json.dumps(config).encode(),
        ContentType="application/json",
        CacheControl=NO_CACHE,
    )
    sent.append(PREFIX + "config.json")
    return sent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="read the bucket, WebSocket URL and distribution from this stack's outputs")
    parser.add_argument("--bucket")
    parser.add_argument("--websocket")
    parser.add_argument("--distribution")
    parser.add_argument("--dist", default="web/dist")
    parser.add_argument("--region", default="ap-northeast-2")
    parser.add_argument("--endpoint", help="an emulator's address (tests); AWS itself otherwise")
    args = parser.parse_args()

    bucket, websocket, distribution = args.bucket, args.websocket, args.distribution
    if args.stack:
        out = outputs(args.stack, args.region)
        bucket = bucket or out["WebAppBucketName"]
        websocket = websocket or out["WebSocketUrl"]
        distribution = distribution or out.get("WebAppDistributionId")
    if not bucket or not websocket:
        parser.error("give --stack, or --bucket and --websocket")

    s3 = boto3.client("s3", region_name=args.region, endpoint_url=args.endpoint)
    sent = upload(s3, bucket, args.dist, websocket)
    if distribution:
        boto3.client("cloudfront").create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={
                "Paths": {"Quantity": 3, "Items": ["/app/", "/app/index.html", "/app/config.json"]},
                "CallerReference": f"deploy-web-{time.time_ns()}",
            },
        )
    print(json.dumps({"bucket": bucket, "objects": sent}))


if __name__ == "__main__":
    main()
