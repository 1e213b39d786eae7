"""Every answer is the document's, field by field.

    documented.py <openapi.yaml> <answers.json>

`answers.json` is a list of `{"method", "path", "status", "body"}` (what a client sent and was
answered; `path` without the query), or of `{"schema", "body"}` for a message that is no HTTP
answer (a WebSocket push: `Push`). Each answer must have a status its operation lists, and a body
that its schema there accepts — with no field in an object that the document describes by its
`properties` but does not name. The document itself stays open to additions, as clients are told
(unknown fields are to be ignored); this check is what keeps it complete. Prints every mismatch and
exits 1 if there is one. Run by the e2e harness (`Stack::assert_answers_documented`) with the
Python of `.venv` (schemathesis brings PyYAML and jsonschema).
"""

import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator


def resolve(document, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def described(document, schema):
    """The fields a schema names: its `properties`, and those of each `allOf` part."""
    schema = resolve(document, schema)
    fields = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        fields.update(described(document, part))
    return fields


def undocumented(document, schema, value, at):
    """The fields of `value` that no `properties` of the schema name, wherever it names some."""
    schema = resolve(document, schema)
    found = []
    if isinstance(value, dict):
        fields = described(document, schema)
        for name, field in value.items():
            if name not in fields:
                if fields:
                    found.append(f"{at}.{name}")
            else:
                found += undocumented(document, fields[name], field, f"{at}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += undocumented(document, schema["items"], item, f"{at}[{i}]")
    return found


def operations(document):
    """(method, template, its pattern, operation) for every operation, literal paths first."""
    found = []
    for template, item in document["paths"].items():
        pattern = re.compile(
            "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        )
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                found.append((method, template, pattern, operation))
    # `/v1/me/stores` before `/v1/me/{…}`-like templates: fewer parameters first.
    found.sort(key=lambda entry: entry[1].count("{"))
    return found


# API Gateway's own answers, on any route, as the document's description lists them.
GATEWAY = {
    "404": "Not Found",
    "413": "Request Entity Too Large",
    "429": "Too Many Requests",
    "500": "Internal Server Error",
    "503": "Service Unavailable",
}


def conforms(document, schema, body, where):
    """What keeps `body` from being `schema`'s: its errors, and the fields it does not name."""
    root = dict(resolve(document, schema))
    root["components"] = document["components"]
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{where}: at {error.json_path}: {error.message}" for error in validator.iter_errors(body)]
    problems += [
        f"{where}: {field} is not in the document"
        for field in undocumented(document, schema, body, "$")
    ]
    return problems


def check(document, answer, known):
    if "schema" in answer:
        # A message that is no HTTP answer (a WebSocket push): the named schema's.
        name = answer["schema"]
        return conforms(document, {"$ref": f"#/components/schemas/{name}"}, answer["body"], name)
    method, path, status = answer["method"].lower(), answer["path"], str(answer["status"])
    if method == "options":
        # A CORS preflight: API Gateway answers it from the API's `CorsConfiguration`
        # (template.yaml), before any operation.
        return []
    if path == "/app" or path.startswith("/app/"):
        # The order board's files, which the local runner serves beside the API (a bucket's
        # on AWS): not the API.
        return []
    if status in GATEWAY and answer["body"] == {"message": GATEWAY[status]}:
        return []
    for op_method, template, pattern, operation in known:
        if op_method == method and pattern.match(path):
            break
    else:
        return [f"{method.upper()} {path}: no operation of the document"]
    where = f"{method.upper()} {template} → {status}"
    response = operation["responses"].get(status)
    if response is None:
        return [f"{where}: the operation does not list {status}"]
    response = resolve(document, response)
    content = response.get("content", {}).get("application/json")
    body = answer["body"]
    if content is None:
        return [] if body is None else [f"{where}: a body where none is documented: {body!r}"]
    return conforms(document, content.get("schema", {}), body, where)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        document = yaml.safe_load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        answers = json.load(f)
    known = operations(document)
    problems = []
    for answer in answers:
        for problem in check(document, answer, known):
            if problem not in problems:
                problems.append(problem)
    for problem in problems:
        print(problem)
    print(f"{len(answers)} answers, {len(problems)} not as documented")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
