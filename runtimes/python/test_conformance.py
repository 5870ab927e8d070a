"""The conformance suite (runtimes/conformance/), replayed against the
Python bootstrap. The Node.js suite replays the same cases."""

import base64
import json
import os
import time
import unittest
import io
import zipfile

from test_bootstrap import Sandbox

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance")


def zip_dir(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, _, files in os.walk(path):
            for name in sorted(files):
                full = os.path.join(root, name)
                zf.write(full, os.path.relpath(full, path))
    return buf.getvalue()


def fill(value, code, now):
    """Replaces the placeholders of an input message."""
    if isinstance(value, dict):
        return {k: fill(v, code, now) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, code, now) for v in value]
    if value == "@code":
        return code
    if value == "@now":
        return now
    if isinstance(value, str) and value.startswith("@now+"):
        return now + int(value[5:])
    return value


def mismatch(expected, actual, path="$"):
    """Why `actual` does not match `expected`, or None (README.md's rules)."""
    if expected == "@any":
        return None
    if isinstance(expected, str) and expected.startswith("@contains:"):
        if isinstance(actual, str) and expected[len("@contains:"):] in actual:
            return None
        return "%s: %r does not contain %r" % (path, actual, expected[10:])
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return "%s: expected an object, got %r" % (path, actual)
        for k, v in expected.items():
            if v == "@absent":
                if k in actual:
                    return "%s.%s: expected absent, got %r" % (path, k, actual[k])
                continue
            if k not in actual:
                return "%s.%s: missing" % (path, k)
            why = mismatch(v, actual[k], "%s.%s" % (path, k))
            if why:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return "%s: expected %r, got %r" % (path, expected, actual)
        for i, (e, a) in enumerate(zip(expected, actual)):
            why = mismatch(e, a, "%s[%d]" % (path, i))
            if why:
                return why
        return None
    if expected != actual or type(expected) is not type(actual):
        return "%s: expected %r, got %r" % (path, expected, actual)
    return None


class Conformance(unittest.TestCase):
    def test_every_case(self):
        cases = sorted(
            d for d in os.listdir(CASES) if os.path.isdir(os.path.join(CASES, d))
        )
        self.assertGreaterEqual(len(cases), 5)
        for case in cases:
            with self.subTest(case=case):
                self.run_case(os.path.join(CASES, case))

    def run_case(self, path):
        code = base64.b64encode(zip_dir(os.path.join(path, "code"))).decode()
        now = int(time.time() * 1000)
        with open(os.path.join(path, "input.ndjson")) as f:
            inputs = [fill(json.loads(l), code, now) for l in f if l.strip()]
        with open(os.path.join(path, "expected.ndjson")) as f:
            expected = [json.loads(l) for l in f if l.strip()]
        sb = Sandbox()
        try:
            for msg in inputs:
                sb.send(msg)
            for i, exp in enumerate(expected):
                got = sb.recv()
                why = mismatch(exp, got)
                self.assertIsNone(why, "message %d: %s (got %s)" % (i + 1, why, json.dumps(got)[:500]))
        finally:
            sb.cleanup()


if __name__ == "__main__":
    unittest.main()
