"""Unmodified boto3 and the aws CLI against a real ignis server.

Run by crates/ignis/tests/aws.rs, which starts the server and passes:
IGNIS_URL, IGNIS_ADMIN_KEY (native API, to count records),
DEV_AKID/DEV_SECRET (a developer key's SigV4 credentials),
VIEWER_AKID/VIEWER_SECRET (a viewer key's), AWS_CLI (the aws program).
Every check raises on failure; the process exits non-zero.
"""

import base64
import datetime
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from unittest import mock

import boto3
import botocore
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["IGNIS_URL"]
ADMIN_KEY = os.environ["IGNIS_ADMIN_KEY"]
REGION = "us-east-1"

# botocore's retries on (legacy mode: 429 and 5xx, up to 5 attempts), as
# users run it: a sync call must still run the function exactly once.
RETRIES = Config(retries={"max_attempts": 5, "mode": "legacy"}, read_timeout=60)


def client(akid, secret):
    return boto3.client(
        "lambda",
        endpoint_url=URL,
        region_name=REGION,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        config=RETRIES,
    )


dev = client(os.environ["DEV_AKID"], os.environ["DEV_SECRET"])
viewer = client(os.environ["VIEWER_AKID"], os.environ["VIEWER_SECRET"])


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}", flush=True)


def error_code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e
    raise AssertionError(f"{fn.__name__} did not fail")


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def native(method, path, body=None):
    req = urllib.request.Request(
        URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def records(name, marker):
    """Invocation records of `name` whose event carried `marker` (the
    handler prints it, so it is in the record's stdout)."""
    recs = native("GET", f"/api/v1/functions/{name}/invocations?limit=1000")["invocations"]
    return [r for r in recs if marker in (r.get("stdout") or "")]


def wait_for(what, secs, cond):
    end = time.time() + secs
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


PY = """
import os, time
def handler(event, context):
    print("marker", event.get("marker"))
    if event.get("fail"):
        raise ValueError("boom from " + context.function_name)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"v": VERSION, "greeting": os.environ.get("GREETING"), "event": event}
"""


def py_zip(version):
    return zip_of({"main.py": PY.replace("VERSION", str(version))})


JS = "exports.handler = async (event) => ({ js: true, n: event.n });\n"

ROLE = "arn:aws:iam::000000000000:role/ignis-test"


def test_create_get_list():
    code = py_zip(1)
    c = dev.create_function(
        FunctionName="aws-py",
        Runtime="python3.12",
        Role=ROLE,
        Handler="main.handler",
        Code={"ZipFile": code},
        Timeout=1,
        MemorySize=128,
        Description="made by boto3",
        Environment={"Variables": {"GREETING": "hi"}},
    )
    check(c["State"] == "Active" and c["LastUpdateStatus"] == "Successful", "created Active/Successful")
    check(c["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode(), "CodeSha256 is base64(sha256(zip))")
    check(c["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:aws-py", c["FunctionArn"])
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", c["LastModified"]) is not None, "LastModified format")
    check(c["Version"] == "$LATEST" and c["Timeout"] == 1 and c["MemorySize"] == 128, "version, timeout, memory")
    check(c["Role"] == ROLE and c["Description"] == "made by boto3", "role and description kept")
    check(c["Environment"]["Variables"] == {"GREETING": "hi"}, "environment")
    dev.get_waiter("function_active_v2").wait(FunctionName="aws-py")
    check(True, "boto3's function_active_v2 waiter returns")

    g = dev.get_function(FunctionName="aws-py")
    check(g["Configuration"]["FunctionName"] == "aws-py" and g["Code"]["Location"], "GetFunction")
    arn = dev.get_function_configuration(FunctionName=c["FunctionArn"])
    check(arn["FunctionName"] == "aws-py" and ":$LATEST" not in arn["FunctionArn"], "by ARN, unqualified ARN back")
    q = dev.get_function_configuration(FunctionName="aws-py:$LATEST")
    check(q["FunctionArn"].endswith(":aws-py:$LATEST"), "qualified request, qualified ARN")
    code_, status, _ = error_code(dev.get_function, FunctionName="aws-py:$LATEST", Qualifier="1")
    check(code_ == "InvalidParameterValueException" and status == 400, "qualifier disagreement")
    csc = dev.get_function_code_signing_config(FunctionName="aws-py")
    check(csc["CodeSigningConfigArn"] == "" and csc["FunctionName"] == "aws-py", "no code signing config")

    for i in range(3):
        dev.create_function(
            FunctionName=f"aws-js-{i}", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
            Code={"ZipFile": zip_of({"index.js": JS})},
        )
    pages = list(dev.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}))
    names = [f["FunctionName"] for p in pages for f in p["Functions"]]
    check(len(pages) >= 2, f"ListFunctions over {len(pages)} pages")
    check(sorted(names) == sorted(set(names)) and {"aws-py", "aws-js-0", "aws-js-1", "aws-js-2"} <= set(names), f"every function once: {names}")
    first = dev.list_functions(MaxItems=1)
    check(len(first["Functions"]) == 1 and "NextMarker" in first, "MaxItems and NextMarker")
    js = json.loads(dev.invoke(FunctionName="aws-js-1", Payload=json.dumps({"n": 7}))["Payload"].read())
    check(js == {"js": True, "n": 7}, "a Node.js function runs")


def test_invoke():
    r = dev.invoke(FunctionName="aws-py", Payload=json.dumps({"marker": "sync-1"}), LogType="Tail")
    body = json.loads(r["Payload"].read())
    check(r["StatusCode"] == 200 and body["v"] == 1 and body["greeting"] == "hi", "sync invoke result")
    check(r["ExecutedVersion"] == "$LATEST" and "FunctionError" not in r, "ExecutedVersion, no error")
    log = base64.b64decode(r["LogResult"]).decode()
    check("marker sync-1" in log, f"LogResult has the log: {log!r}")
    r = dev.invoke(FunctionName="aws-py", Payload=json.dumps({"marker": "sync-2"}))
    check("LogResult" not in r, "no LogResult unless asked")

    r = dev.invoke(FunctionName="aws-py", Payload=json.dumps({"fail": True, "marker": "fail-1"}))
    err = json.loads(r["Payload"].read())
    check(r["StatusCode"] == 200 and r.get("FunctionError") == "Unhandled", "a function error is 200 Unhandled")
    check(err["errorType"] == "ValueError" and "boom from aws-py" in err["errorMessage"], f"Lambda error body: {err}")
    check(isinstance(err["stackTrace"], list), "stackTrace is a list")

    r = dev.invoke(FunctionName="aws-py", Payload=json.dumps({"sleep": 3, "marker": "slow-1"}))
    err = json.loads(r["Payload"].read())
    check(r.get("FunctionError") == "Unhandled" and err["errorType"] == "Sandbox.Timedout", f"timeout: {err}")
    check(err["errorMessage"] == "Task timed out after 1.00 seconds", err["errorMessage"])

    r = dev.invoke(FunctionName="aws-py", InvocationType="DryRun", Payload=b"{}")
    check(r["StatusCode"] == 204, "DryRun is 204")
    code_, status, _ = error_code(dev.invoke, FunctionName="aws-py", Payload=b"not json")
    check(code_ == "InvalidRequestContentException" and status == 400, "a payload that is not JSON")

    # Exactly once per sync call, retries on: every marker has one record.
    for m in ["sync-1", "sync-2", "fail-1"]:
        recs = wait_for(f"the record of {m}", 10, lambda: records("aws-py", m))
        check(len(recs) == 1, f"{m} ran exactly once ({len(recs)})")
    # A timed-out call's log dies with its sandbox: count timeouts instead.
    timeouts = lambda: [r for r in native("GET", "/api/v1/functions/aws-py/invocations?limit=1000&status=timeout")["invocations"]]
    recs = wait_for("the timed-out call's record", 10, timeouts)
    check(len(recs) == 1, f"the timed-out call ran exactly once ({len(recs)})")

    r = dev.invoke(FunctionName="aws-py", InvocationType="Event", Payload=json.dumps({"marker": "event-1"}))
    check(r["StatusCode"] == 202, "Event is 202")
    recs = wait_for("the asynchronous call's record", 30, lambda: records("aws-py", "event-1"))
    check(recs[0]["trigger"] == "async" and recs[0]["status"] == "success", "the event ran, asynchronously")


def test_update_versions_aliases():
    c = dev.update_function_configuration(FunctionName="aws-py", Timeout=5, Environment={"Variables": {"GREETING": "yo"}})
    check(c["Timeout"] == 5 and c["Environment"]["Variables"] == {"GREETING": "yo"}, "UpdateFunctionConfiguration")
    body = json.loads(dev.invoke(FunctionName="aws-py", Payload=b"{}")["Payload"].read())
    check(body["greeting"] == "yo", "the new configuration runs")

    v1 = dev.publish_version(FunctionName="aws-py", Description="first")
    check(v1["Version"] != "$LATEST" and v1["FunctionArn"].endswith(":" + v1["Version"]), f"published {v1['Version']}")
    old_sha = v1["CodeSha256"]
    code2 = py_zip(2)
    c = dev.update_function_code(FunctionName="aws-py", ZipFile=code2)
    check(c["CodeSha256"] == base64.b64encode(hashlib.sha256(code2).digest()).decode() != old_sha, "UpdateFunctionCode")
    v2 = dev.publish_version(FunctionName="aws-py")
    versions = [v["Version"] for v in dev.list_versions_by_function(FunctionName="aws-py")["Versions"]]
    check(versions == ["$LATEST", v1["Version"], v2["Version"]], f"ListVersionsByFunction {versions}")

    a = dev.create_alias(FunctionName="aws-py", Name="prod", FunctionVersion=v1["Version"])
    check(a["AliasArn"].endswith(":aws-py:prod") and a["FunctionVersion"] == v1["Version"], "CreateAlias")
    run = lambda **kw: json.loads(dev.invoke(FunctionName="aws-py", Payload=b"{}", **kw)["Payload"].read())["v"]
    r = dev.invoke(FunctionName="aws-py", Qualifier="prod", Payload=b"{}")
    check(json.loads(r["Payload"].read())["v"] == 1 and r["ExecutedVersion"] == v1["Version"], "through the alias: version 1")
    check(run(Qualifier=v2["Version"]) == 2, "name + Qualifier=version")
    check(json.loads(dev.invoke(FunctionName=f"aws-py:{v2['Version']}", Payload=b"{}")["Payload"].read())["v"] == 2, "name:version")

    # An unpublished change to $LATEST never reaches prod.
    dev.update_function_code(FunctionName="aws-py", ZipFile=py_zip(3))
    check(run() == 3 and all(run(Qualifier="prod") == 1 for _ in range(5)), "$LATEST changed, prod did not")

    dev.update_alias(FunctionName="aws-py", Name="prod", FunctionVersion=v2["Version"])
    check(run(Qualifier="prod") == 2, "UpdateAlias: prod runs version 2 at once")
    dev.update_alias(FunctionName="aws-py", Name="prod", FunctionVersion=v1["Version"])
    check(run(Qualifier="prod") == 1, "rollback in one call")
    w = dev.update_alias(FunctionName="aws-py", Name="prod", RoutingConfig={"AdditionalVersionWeights": {v2["Version"]: 0.5}})
    check(w["RoutingConfig"]["AdditionalVersionWeights"] == {v2["Version"]: 0.5}, "weighted routing")
    seen = {run(Qualifier="prod") for _ in range(40)}
    check(seen == {1, 2}, f"both versions run under 50/50: {seen}")
    aliases = dev.list_aliases(FunctionName="aws-py")["Aliases"]
    check([x["Name"] for x in aliases] == ["prod"], "ListAliases")
    check(dev.get_alias(FunctionName="aws-py", Name="prod")["Name"] == "prod", "GetAlias")
    dev.delete_alias(FunctionName="aws-py", Name="prod")
    code_, status, _ = error_code(dev.get_alias, FunctionName="aws-py", Name="prod")
    check(code_ == "ResourceNotFoundException" and status == 404, "DeleteAlias")


def test_errors():
    code_, status, e = error_code(dev.get_function, FunctionName="does-not-exist")
    check(code_ == "ResourceNotFoundException" and status == 404, "unknown function")
    check(e.response["ResponseMetadata"]["RequestId"], "x-amzn-RequestId is set")
    code_, status, _ = error_code(
        dev.create_function, FunctionName="bad-rt", Runtime="java21", Role=ROLE, Handler="x.y",
        Code={"ZipFile": zip_of({"main.py": ""})},
    )
    check(code_ == "InvalidParameterValueException" and status == 400, "bad runtime")
    code_, status, _ = error_code(
        dev.create_function, FunctionName="aws-py", Runtime="python3.12", Role=ROLE, Handler="main.handler",
        Code={"ZipFile": py_zip(1)},
    )
    check(code_ == "ResourceConflictException" and status == 409, "name taken")
    wrong = client(os.environ["DEV_AKID"], "x" * 40)
    code_, status, _ = error_code(wrong.list_functions)
    check(code_ == "InvalidSignatureException" and status == 403, "wrong secret")
    unknown = client("AKIGAAAAAAAAAAAAAAAA", "x" * 40)
    code_, status, _ = error_code(unknown.list_functions)
    check(code_ == "UnrecognizedClientException" and status == 403, "unknown access key id")
    code_, status, _ = error_code(
        viewer.create_function, FunctionName="by-viewer", Runtime="python3.12", Role=ROLE,
        Handler="main.handler", Code={"ZipFile": py_zip(1)},
    )
    check(code_ == "AccessDeniedException" and status == 403, "a key without the role")
    check(viewer.get_function(FunctionName="aws-py")["Configuration"]["Environment"]["Variables"]["GREETING"] == "********", "a viewer sees no env values")
    code_, status, _ = error_code(viewer.invoke, FunctionName="aws-py", Payload=b"{}")
    check(code_ == "AccessDeniedException", "a viewer may not invoke")
    # A signature made 16 minutes ago (the client's clock injected).
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=16)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=past):
        code_, status, e = error_code(client(os.environ["DEV_AKID"], os.environ["DEV_SECRET"]).list_functions)
    check(code_ == "InvalidSignatureException" and status == 403 and "expired" in str(e), "a signature older than 15 minutes")
    code_, status, _ = error_code(dev.list_layers)
    check(code_ == "UnsupportedOperationException" and status == 400, "an unsupported operation is a typed 400")


def test_delete():
    dev.delete_function(FunctionName="aws-js-2")
    code_, _, _ = error_code(dev.get_function, FunctionName="aws-js-2")
    check(code_ == "ResourceNotFoundException", "DeleteFunction")


def test_cli():
    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["DEV_AKID"], AWS_SECRET_ACCESS_KEY=os.environ["DEV_SECRET"],
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def aws(*args):
        p = subprocess.run([os.environ["AWS_CLI"], "lambda", *args, "--endpoint-url", URL], env=env,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"aws lambda {args[0]}: {p.stderr}")
        return p.stdout

    with tempfile.TemporaryDirectory() as d:
        zpath = os.path.join(d, "f.zip")
        with open(zpath, "wb") as f:
            f.write(py_zip(9))
        out = json.loads(aws("create-function", "--function-name", "cli-py", "--runtime", "python3.11",
                             "--role", ROLE, "--handler", "main.handler", "--zip-file", f"fileb://{zpath}"))
        check(out["State"] == "Active", "aws lambda create-function")
        outfile = os.path.join(d, "out.json")
        meta = json.loads(aws("invoke", "--function-name", "cli-py", "--payload", '{"marker": "cli-1"}', outfile))
        with open(outfile) as f:
            check(meta["StatusCode"] == 200 and json.load(f)["v"] == 9, "aws lambda invoke")
        names = [x["FunctionName"] for x in json.loads(aws("list-functions"))["Functions"]]
        check("cli-py" in names and "aws-py" in names, "aws lambda list-functions (both APIs' functions)")
        v = json.loads(aws("publish-version", "--function-name", "cli-py"))["Version"]
        aws("create-alias", "--function-name", "cli-py", "--name", "live", "--function-version", v)
        meta = json.loads(aws("invoke", "--function-name", "cli-py", "--qualifier", "live", outfile))
        check(meta["ExecutedVersion"] == v, "aws lambda invoke --qualifier alias")
        aws("delete-function", "--function-name", "cli-py")
        p = subprocess.run([os.environ["AWS_CLI"], "lambda", "get-function", "--function-name", "cli-py",
                            "--endpoint-url", URL], env=env, capture_output=True, text=True)
        check(p.returncode != 0 and "ResourceNotFoundException" in p.stderr, "aws lambda delete-function")


def test_native_sees_it():
    f = native("GET", "/api/v1/functions/aws-py")
    cfg = f.get("config", f)
    check(cfg["runtime"] == "python3" and cfg["timeout_ms"] == 5000, "the native API sees the Lambda function")


if __name__ == "__main__":
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}")
    test_create_get_list()
    test_invoke()
    test_update_versions_aliases()
    test_errors()
    test_delete()
    test_native_sees_it()
    test_cli()
    print("all passed")
