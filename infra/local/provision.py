#!/usr/bin/env python3
"""Create template.yaml's tables, keys, queues and buckets on a local AWS emulator (moto's server), and
print a JSON manifest of its functions (binary, memory, timeout, resolved environment, routes) for the
local runner.

Reading the template itself is what keeps the local stack and the deployed one from drifting apart: a
resource added to template.yaml exists locally on the next start, with the same keys, indexes and TTL.

    provision.py --template template.yaml --endpoint http://127.0.0.1:5000 [--param Stage=dev]
"""

import argparse
import json
import re
import sys
import time
import urllib.request

import boto3
import yaml

ACCOUNT_ID = "123456789012"
REGION = "ap-northeast-2"
STACK_NAME = "ordersync-local"


# ----------------------------------------------------------------------------- template loading
class Intrinsic:
    """A CloudFormation short-form intrinsic such as !Ref or !GetAtt."""

    def __init__(self, name, value):
        self.name = name
        self.value = value


class TemplateLoader(yaml.SafeLoader):
    pass


def _construct_intrinsic(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if tag_suffix == "Ref" else "Fn::" + tag_suffix
    return {name: value}


TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=TemplateLoader)


# ----------------------------------------------------------------------------- intrinsic resolution
class Resolver:
    def __init__(self, template, overrides):
        self.refs = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::NoValue": None,
        }
        for name, spec in (template.get("Parameters") or {}).items():
            if name in overrides:
                self.refs[name] = overrides[name]
            elif "Default" in spec:
                self.refs[name] = spec["Default"]
        self.attrs = {}
        self.conditions = (template.get("Conditions") or {})
        # Without an emulator, attributes resolve to stand-ins so the function list can be printed.
        self.stand_ins = False

    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg not in self.refs:
                    raise KeyError(f"!Ref {arg} is not provisioned locally")
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                if (logical, attr) not in self.attrs and self.stand_ins:
                    return f"arn:local:{logical}.{attr}"
                if (logical, attr) not in self.attrs:
                    raise KeyError(f"!GetAtt {logical}.{attr} is not provisioned locally")
                return self.attrs[(logical, attr)]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self._sub(text, extra)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key.startswith("Fn::"):
                raise KeyError(f"{key} is not supported by the local provisioner")
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name):
        """Whether the template's condition `name` holds for the parameters given."""
        return self._truth(self.conditions[name])

    def _truth(self, expr):
        (key, arg), = expr.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(a) for a in arg)
        if key == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if key in ("Condition", "Fn::Condition"):
            return self.condition(arg)
        raise KeyError(f"condition {key} is not supported by the local provisioner")

    def _sub(self, text, extra):
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            end = text.index("}", start)
            out.append(text[i:start])
            name = text[start + 2:end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in extra:
                out.append(str(extra[name]))
            elif "." in name:
                out.append(str(self.resolve({"Fn::GetAtt": name})))
            else:
                out.append(str(self.resolve({"Ref": name})))
            i = end + 1
        return "".join(out)


# ----------------------------------------------------------------------------- resources
def create_table(ddb, resolver, logical, props):
    name = props.get("TableName") or f"{STACK_NAME}-{logical}"
    args = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    if props.get("TableClass"):
        args["TableClass"] = props["TableClass"]
    table = ddb.create_table(**args)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    resolver.refs[logical] = name
    resolver.attrs[(logical, "Arn")] = table["TableArn"]
    if table.get("LatestStreamArn"):
        resolver.attrs[(logical, "StreamArn")] = table["LatestStreamArn"]


def create_key(kms, resolver, logical, props):
    args = {"Description": props.get("Description", logical)}
    for field in ("KeySpec", "KeyUsage"):
        if props.get(field):
            args[field] = props[field]
    meta = kms.create_key(**args)["KeyMetadata"]
    if props.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    resolver.refs[logical] = meta["KeyId"]
    resolver.attrs[(logical, "Arn")] = meta["Arn"]
    resolver.attrs[(logical, "KeyId")] = meta["KeyId"]


def create_alias(kms, resolver, logical, props):
    kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    resolver.refs[logical] = props["AliasName"]


def create_queue(sqs, resolver, logical, props):
    name = props.get("QueueName") or f"{STACK_NAME}-{logical}"
    attributes = {}
    for field in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                  "ReceiveMessageWaitTimeSeconds", "FifoQueue", "ContentBasedDeduplication"):
        if field in props:
            attributes[field] = str(props[field]).lower() if isinstance(props[field], bool) else str(props[field])
    if props.get("RedrivePolicy"):
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    resolver.refs[logical] = url
    resolver.attrs[(logical, "Arn")] = arn
    resolver.attrs[(logical, "QueueName")] = name
    resolver.attrs[(logical, "QueueUrl")] = url


def create_bucket(s3, resolver, logical, props):
    name = props.get("BucketName") or f"{STACK_NAME}-{logical}".lower()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
    if rules:
        # The emulator keeps the rules but expires nothing: they are set so that tests can read what
        # a deployed bucket would do with each object.
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [lifecycle_rule(r) for r in rules]})
    resolver.refs[logical] = name
    resolver.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"
    resolver.attrs[(logical, "RegionalDomainName")] = f"{name}.s3.{REGION}.amazonaws.com"


def lifecycle_rule(rule):
    """A template's lifecycle rule (CloudFormation's shape) in the S3 API's."""
    unknown = set(rule) - {"Id", "Status", "Prefix", "ExpirationInDays", "Transitions",
                           "NoncurrentVersionExpiration"}
    if unknown:
        raise SystemExit(f"lifecycle rule {rule.get('Id')}: {', '.join(sorted(unknown))} "
                         "not supported by the local provisioner")
    out = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    transitions = rule.get("Transitions") or []
    if transitions:
        out["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in transitions]
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    return out


def register_websocket_api(_client, resolver, logical, props):
    # moto has no WebSocket API; the local runner serves it. Only its id is needed, for the functions'
    # environment (the runner points WEBSOCKET_ENDPOINT at itself).
    resolver.refs[logical] = f"local{logical.lower()}"


CREATORS = {
    "AWS::ApiGatewayV2::Api": (None, register_websocket_api),
    "AWS::DynamoDB::Table": ("dynamodb", create_table),
    "AWS::KMS::Key": ("kms", create_key),
    "AWS::KMS::Alias": ("kms", create_alias),
    "AWS::SQS::Queue": ("sqs", create_queue),
    "AWS::S3::Bucket": ("s3", create_bucket),
}


def provision(template, resolver, endpoint):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    clients = {}
    pending = {
        logical: res for logical, res in (template.get("Resources") or {}).items()
        if res["Type"] in CREATORS
    }
    # Resources may refer to each other (an alias to its key, a queue to its DLQ): create whatever can be
    # resolved, and repeat until nothing is left or nothing moves.
    while pending:
        progressed = False
        for logical, res in list(pending.items()):
            service, create = CREATORS[res["Type"]]
            try:
                props = resolver.resolve(res.get("Properties") or {})
            except KeyError:
                continue
            if service and service not in clients:
                clients[service] = session.client(service, endpoint_url=endpoint)
            create(clients.get(service), resolver, logical, props)
            del pending[logical]
            progressed = True
        if not progressed:
            raise SystemExit(f"cannot resolve references of: {', '.join(pending)}")


# ----------------------------------------------------------------------------- functions
def websocket_routes(template):
    """{function logical id: [route keys]} of the WebSocket API's routes ($connect, $disconnect), found
    through each route's integration to the function in its URI."""
    resources = template.get("Resources") or {}
    routes = {}
    for res in resources.values():
        if res["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        props = res.get("Properties") or {}
        target = props.get("Target", {}).get("Fn::Sub", "")
        match = re.search(r"integrations/\$\{(\w+)\}", target)
        integration = resources.get(match.group(1)) if match else None
        uri = ((integration or {}).get("Properties") or {}).get("IntegrationUri", {}).get("Fn::Sub", "")
        function = re.search(r"\$\{(\w+)\.Arn\}", uri)
        if function:
            routes.setdefault(function.group(1), []).append(props["RouteKey"])
    return routes


def function_manifest(template, resolver):
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    ws_routes = websocket_routes(template)
    functions = []
    for logical, res in (template.get("Resources") or {}).items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        env = dict(((globals_fn.get("Environment") or {}).get("Variables")) or {})
        env.update(((props.get("Environment") or {}).get("Variables")) or {})
        env = {k: str(v) for k, v in resolver.resolve(env).items() if v is not None}
        routes, sources = [], []
        for event in (props.get("Events") or {}).values():
            ep = event.get("Properties") or {}
            if event["Type"] == "HttpApi":
                routes.append({"method": ep["Method"].upper(), "path": ep["Path"]})
            elif event["Type"] in ("SQS", "DynamoDB", "S3", "Schedule", "ScheduleV2"):
                sources.append({"type": event["Type"], **{k: resolver.resolve(v) for k, v in ep.items()}})
        functions.append({
            "name": logical,
            "runtime": props.get("Runtime", globals_fn.get("Runtime")),
            "architectures": resolver.resolve(props.get("Architectures", globals_fn.get("Architectures"))),
            "buildMethod": (res.get("Metadata") or {}).get("BuildMethod"),
            "binary": props["CodeUri"].rstrip("/").rsplit("/", 1)[-1],
            "memory": int(resolver.resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
            "timeout": props.get("Timeout", globals_fn.get("Timeout", 3)),
            # What Lambda adds to the function's log and to X-Ray, for the cost meter.
            "tracing": resolver.resolve(props.get("Tracing", globals_fn.get("Tracing", "PassThrough"))),
            "logging": resolver.resolve(props.get("LoggingConfig", globals_fn.get("LoggingConfig")) or {}),
            "env": env,
            "routes": routes,
            "websocket": ws_routes.get(logical, []),
            "sources": sources,
            "grants": grants(props, resolver),
        })
    return functions


def http_api_cors(template, resolver):
    """The HTTP API's CorsConfiguration, resolved, for the runner's gateway to apply (or None)."""
    for res in (template.get("Resources") or {}).values():
        if res.get("Type") == "AWS::Serverless::HttpApi":
            cors = (res.get("Properties") or {}).get("CorsConfiguration")
            if isinstance(cors, dict):
                return resolver.resolve(cors)
    return None


def grants(props, resolver):
    """The function's policy statements that allow actions, resolved: what the local front lets the
    function do (infra/runner/src/iam.rs), as IAM would in AWS."""
    granted = []
    for policy in props.get("Policies") or []:
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement") or []:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action")
            actions = [actions] if isinstance(actions, str) else actions or []
            resources = resolver.resolve(statement.get("Resource", "*"))
            conditions = {}
            for operator, tests in resolver.resolve(statement.get("Condition") or {}).items():
                conditions[operator] = {
                    k: v if isinstance(v, list) else [v] for k, v in tests.items()}
            granted.append({
                "actions": actions,
                "resources": resources if isinstance(resources, list) else [resources],
                "conditions": conditions,
            })
    return granted


def wait_for(endpoint, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            return
        except Exception:  # noqa: BLE001 - any failure means "not up yet"
            if time.monotonic() > deadline:
                raise SystemExit(f"the emulator at {endpoint} did not come up in {seconds}s")
            time.sleep(0.05)


def table_classes(template, resolver):
    """Each table's class (billing only: the emulator has one), for the runner's meter to price."""
    return {
        resolver.refs.get(logical, logical): resolver.resolve(res.get("Properties", {}).get("TableClass", "STANDARD"))
        for logical, res in (template.get("Resources") or {}).items()
        if res.get("Type") == "AWS::DynamoDB::Table"
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--endpoint", help="emulator URL; without it only the manifest is printed")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE parameter override")
    args = parser.parse_args()

    template = load_template(args.template)
    resolver = Resolver(template, dict(p.split("=", 1) for p in args.param))
    if args.endpoint:
        wait_for(args.endpoint)
        provision(template, resolver, args.endpoint)
    else:
        # Without an emulator, stand-in physical ids keep the function list resolvable.
        resolver.stand_ins = True
        for logical, res in (template.get("Resources") or {}).items():
            resolver.refs.setdefault(logical, logical)
            resolver.attrs[(logical, "Arn")] = f"arn:local:{logical}"
    manifest = {
        "region": REGION,
        "endpoint": args.endpoint,
        "resources": resolver.refs | {f"{k[0]}.{k[1]}": v for k, v in resolver.attrs.items()},
        "functions": function_manifest(template, resolver),
        "cors": http_api_cors(template, resolver),
        "tableClasses": table_classes(template, resolver),
    }
    json.dump(manifest, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
