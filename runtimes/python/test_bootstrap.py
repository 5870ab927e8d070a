"""Tests of the Python bootstrap, run against the real script in a subprocess
(no Docker): python3 -m unittest discover -s runtimes/python -v
"""

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP = os.path.join(HERE, "bootstrap.py")
MAX_RESPONSE = 6291456
CAP = 65536


def make_zip(files, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            if isinstance(content, str):
                content = textwrap.dedent(content)
            zf.writestr(name, content)
    return buf.getvalue()


def now_ms():
    return int(time.time() * 1000)


class Sandbox:
    """One bootstrap process and its channel."""

    def __init__(self, mode="socket"):
        self.dir = tempfile.mkdtemp(prefix="ignis-py-")
        self.code_dir = os.path.join(self.dir, "code")
        self.sock_path = os.path.join(self.dir, "channel.sock")
        self.conn = None
        self.master = None
        self.slave = None
        if mode == "socket":
            args = ["--socket", self.sock_path]
        else:
            import pty
            import tty

            self.master, slave = pty.openpty()
            tty.setraw(slave)
            args = ["--device", os.ttyname(slave)]
            # Kept open until cleanup: a pty whose slave nobody holds reads EIO.
            self.slave = slave
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-B", BOOTSTRAP, *args, "--code-dir", self.code_dir],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if mode == "socket":
            deadline = time.monotonic() + 10
            while not os.path.exists(self.sock_path):
                if self.proc.poll() is not None:
                    raise AssertionError(
                        "bootstrap exited: %s" % self.proc.stderr.read().decode()
                    )
                if time.monotonic() > deadline:
                    raise AssertionError("the socket never appeared")
                time.sleep(0.005)
            assert not os.path.exists(self.sock_path + ".tmp")
            self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.conn.connect(self.sock_path)
            self.conn.settimeout(30)
            self.reader = self.conn.makefile("rb")
        else:
            self.reader = os.fdopen(os.dup(self.master), "rb", buffering=0)

    def send_raw(self, data):
        if self.conn is not None:
            self.conn.sendall(data)
        else:
            view = memoryview(data)
            while view:
                n = os.write(self.master, view[:4096])
                view = view[n:]

    def send(self, msg):
        self.send_raw(json.dumps(msg).encode() + b"\n")

    def recv(self):
        if self.conn is not None:
            line = self.reader.readline()
        else:
            line = b""
            while not line.endswith(b"\n"):
                c = os.read(self.master, 1)
                if not c:
                    break
                line += c
        if not line:
            raise EOFError("channel closed; stderr: %s" % self.stderr_text())
        assert line.endswith(b"\n"), line[:200]
        return json.loads(line)

    def init(self, files=None, handler="main.handler", env=None, zip_bytes=None, **extra):
        if zip_bytes is None:
            zip_bytes = make_zip(files or {})
        msg = {
            "type": "init",
            "function": "hello",
            "version": 3,
            "handler": handler,
            "env": env or {},
            "code_zip_b64": base64.b64encode(zip_bytes).decode(),
            "memory_mb": 128,
            "timeout_ms": 3000,
            "sandbox_id": "sb-test",
            "now_ms": now_ms(),
        }
        msg.update(extra)
        self.send(msg)
        return self.recv()

    def invoke(self, events, concurrent=False, timeout_ms=3000, prefix="inv"):
        items = [
            {
                "id": "%s-%d" % (prefix, i),
                "event": ev,
                "deadline_ms": now_ms() + timeout_ms,
                "timeout_ms": timeout_ms,
            }
            for i, ev in enumerate(events)
        ]
        self.send({"type": "invoke", "items": items, "concurrent": concurrent})
        return [self.recv() for _ in items]

    def invoke1(self, event=None, **kw):
        return self.invoke([event], **kw)[0]

    def stderr_text(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read().decode(errors="replace")

    def close(self):
        """Closes the channel (socket mode); returns the exit code."""
        self.reader.close()
        self.conn.close()
        return self.proc.wait(timeout=10)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr, self.reader, self.conn):
            if f is not None:
                f.close()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None
        shutil.rmtree(self.dir, ignore_errors=True)


HELLO = {"main.py": "def handler(event, context):\n    return 'hello world'\n"}


class BootstrapTest(unittest.TestCase):
    def sandbox(self, files=None, handler="main.handler", expect_ready=True, **kw):
        sb = Sandbox()
        self.addCleanup(sb.cleanup)
        reply = sb.init(files, handler=handler, **kw)
        if expect_ready:
            self.assertEqual(reply["type"], "ready", reply)
        sb.ready = reply
        return sb

    def assertOk(self, res, value):
        self.assertEqual(res["type"], "result")
        self.assertTrue(res["ok"], res)
        self.assertEqual(res["value"], value)

    def assertError(self, res, kind):
        self.assertEqual(res["type"], "result")
        self.assertFalse(res["ok"], res)
        self.assertNotIn("value", res)
        self.assertEqual(res["error"]["type"], kind, res)
        return res["error"]

    # -- basics

    def test_hello_world_and_clean_exit(self):
        sb = self.sandbox(HELLO)
        res = sb.invoke1({})
        self.assertOk(res, "hello world")
        self.assertEqual(res["id"], "inv-0")
        self.assertEqual(res["stdout"], "")
        self.assertEqual(res["stderr"], "")
        self.assertFalse(res["logs_truncated"])
        self.assertIsInstance(res["duration_ms"], (int, float))
        self.assertGreaterEqual(res["duration_ms"], 0)
        self.assertEqual(sb.close(), 0)

    def test_event_echo(self):
        sb = self.sandbox({"main.py": "def handler(event, context):\n    return event\n"})
        for ev in [
            {"a": [1, 2.5, None, True], "s": "héllo ✓ 🎉", "n": {"x": {}}},
            "just a string",
            42,
            None,
            [],
        ]:
            self.assertOk(sb.invoke1(ev), ev)

    def test_env_vars(self):
        sb = self.sandbox(
            {
                "main.py": """
                import os
                AT_IMPORT = os.environ.get("GREETING")
                def handler(event, context):
                    keys = ["GREETING", "EMPTY", "IGNIS_FUNCTION_NAME", "IGNIS_FUNCTION_VERSION",
                            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
                    return {"import": AT_IMPORT, **{k: os.environ.get(k) for k in keys}}
                """
            },
            env={"GREETING": "bonjour", "EMPTY": ""},
        )
        res = sb.invoke1({})
        self.assertOk(
            res,
            {
                "import": "bonjour",
                "GREETING": "bonjour",
                "EMPTY": "",
                "IGNIS_FUNCTION_NAME": "hello",
                "IGNIS_FUNCTION_VERSION": "3",
                "AWS_LAMBDA_FUNCTION_NAME": "hello",
                "AWS_LAMBDA_FUNCTION_VERSION": "3",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            },
        )

    def test_context(self):
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    return {
                        "function_name": context.function_name,
                        "function_version": context.function_version,
                        "memory_limit_in_mb": context.memory_limit_in_mb,
                        "aws_request_id": context.aws_request_id,
                        "invoked_function_arn": context.invoked_function_arn,
                        "log_group_name": context.log_group_name,
                        "log_stream_name": context.log_stream_name,
                        "remaining": context.get_remaining_time_in_millis(),
                    }
                """
            }
        )
        res = sb.invoke1({}, timeout_ms=2000)
        self.assertTrue(res["ok"], res)
        v = res["value"]
        self.assertEqual(v["function_name"], "hello")
        self.assertEqual(v["function_version"], "3")
        self.assertEqual(v["memory_limit_in_mb"], "128")
        self.assertEqual(v["aws_request_id"], "inv-0")
        self.assertEqual(v["invoked_function_arn"], "arn:ignis:function:hello")
        self.assertIsInstance(v["log_group_name"], str)
        self.assertIsInstance(v["log_stream_name"], str)
        self.assertIsInstance(v["remaining"], int)
        self.assertGreater(v["remaining"], 1000)
        self.assertLessEqual(v["remaining"], 2000)

    def test_remaining_time_past_deadline_is_zero(self):
        sb = self.sandbox(
            {"main.py": "def handler(e, c):\n    return c.get_remaining_time_in_millis()\n"}
        )
        sb.send(
            {
                "type": "invoke",
                "items": [{"id": "late", "event": {}, "deadline_ms": now_ms() - 5000}],
            }
        )
        self.assertOk(sb.recv(), 0)

    def test_sequential_items_time_from_their_own_start(self):
        sb = self.sandbox(
            {
                "main.py": """
                import time
                def handler(event, context):
                    left = context.get_remaining_time_in_millis()
                    time.sleep(event)
                    return left
                """
            }
        )
        first, second = sb.invoke([0.4, 0], timeout_ms=1000)
        self.assertGreater(first["value"], 800)
        # Timed from its own start, not from the batch's deadline_ms.
        self.assertGreater(second["value"], 800)

    def test_second_file_and_nested_handler(self):
        sb = self.sandbox(
            {
                "pkg/mod.py": """
                import helper
                from pkg import sibling
                def fn(event, context):
                    return helper.shout(sibling.NAME)
                """,
                "pkg/sibling.py": "NAME = 'sibling'\n",
                "helper.py": "def shout(s):\n    return s.upper() + '!'\n",
                "data/file.txt": "read me",
            },
            handler="pkg/mod.fn",
        )
        self.assertOk(sb.invoke1({}), "SIBLING!")

    def test_handler_file_named_like_a_loaded_module(self):
        sb = self.sandbox(
            {"json.py": "def handler(e, c):\n    return 'mine'\n"}, handler="json.handler"
        )
        self.assertOk(sb.invoke1({}), "mine")
        sb = self.sandbox(
            {"v1.2/app.py": "def handler(e, c):\n    return 'dotted'\n"}, handler="v1.2/app.handler"
        )
        self.assertOk(sb.invoke1({}), "dotted")

    def test_package_with_init_and_relative_files(self):
        sb = self.sandbox(
            {
                "app/__init__.py": "",
                "app/core.py": """
                from . import util
                def run(event, context):
                    with open("data/file.txt") as f:
                        return util.tag(f.read())
                """,
                "app/util.py": "def tag(s):\n    return '<' + s + '>'\n",
                "data/file.txt": "read me",
            },
            handler="app/core.run",
        )
        self.assertOk(sb.invoke1({}), "<read me>")

    def test_async_handler(self):
        sb = self.sandbox(
            {
                "main.py": """
                import asyncio
                async def handler(event, context):
                    await asyncio.sleep(0.01)
                    if event == "fail":
                        raise KeyError("k")
                    return {"async": event}
                """
            }
        )
        self.assertOk(sb.invoke1(1), {"async": 1})
        err = self.assertError(sb.invoke1("fail"), "FunctionError")
        self.assertEqual(err["message"], "KeyError: 'k'")
        self.assertOk(sb.invoke1(2), {"async": 2})

    def test_stored_zip(self):
        sb = Sandbox()
        self.addCleanup(sb.cleanup)
        z = make_zip(HELLO, compression=zipfile.ZIP_STORED)
        self.assertEqual(sb.init(zip_bytes=z)["type"], "ready")
        self.assertOk(sb.invoke1({}), "hello world")

    # -- errors

    def test_exception_is_function_error(self):
        sb = self.sandbox(
            {
                "main.py": """
                def inner():
                    raise ValueError("boom")
                def handler(event, context):
                    print("before")
                    inner()
                """
            }
        )
        res = sb.invoke1({})
        err = self.assertError(res, "FunctionError")
        self.assertEqual(err["message"], "ValueError: boom")
        self.assertIn("Traceback", err["stack"])
        self.assertIn("main.py", err["stack"])
        self.assertIn("inner", err["stack"])
        self.assertIn("ValueError: boom", err["stack"])
        self.assertNotIn("bootstrap.py", err["stack"])
        self.assertEqual(res["stdout"], "before\n")
        # The sandbox goes on.
        self.assertError(sb.invoke1({}), "FunctionError")

    def test_system_exit_does_not_kill_the_bootstrap(self):
        sb = self.sandbox(
            {
                "main.py": """
                import sys
                def handler(event, context):
                    if event == "exit":
                        sys.exit(3)
                    return "alive"
                """
            }
        )
        err = self.assertError(sb.invoke1("exit"), "FunctionError")
        self.assertEqual(err["message"], "SystemExit: 3")
        self.assertOk(sb.invoke1("again"), "alive")
        self.assertEqual(sb.close(), 0)

    def test_non_serializable_result(self):
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    if event == "object":
                        return object()
                    if event == "set":
                        return {1, 2}
                    if event == "nan":
                        return float("nan")
                    if event == "circular":
                        a = []
                        a.append(a)
                        return a
                    if event == "bytes":
                        return b"raw"
                    return "fine"
                """
            }
        )
        for ev in ["object", "set", "nan", "circular", "bytes"]:
            err = self.assertError(sb.invoke1(ev), "InvalidResult")
            self.assertIn("JSON", err["message"])
        self.assertOk(sb.invoke1("x"), "fine")

    def test_response_too_large(self):
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    return "x" * event
                """
            }
        )
        # A string of n characters serializes to n + 2 bytes.
        self.assertOk(sb.invoke1(MAX_RESPONSE - 2), "x" * (MAX_RESPONSE - 2))
        err = self.assertError(sb.invoke1(MAX_RESPONSE - 1), "ResponseTooLarge")
        self.assertIn(str(MAX_RESPONSE), err["message"])
        self.assertOk(sb.invoke1(3), "xxx")

    def test_response_size_counts_utf8_bytes(self):
        sb = self.sandbox({"main.py": "def handler(e, c):\n    return 'é' * e\n"})
        # 2 bytes per character: 3145728 characters are 6291458 bytes.
        self.assertError(sb.invoke1(MAX_RESPONSE // 2), "ResponseTooLarge")
        self.assertOk(sb.invoke1(10), "é" * 10)

    def test_lone_surrogates(self):
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    print("log \\ud800")
                    if event == "raise":
                        raise ValueError("bad \\ud800")
                    return "value \\ud800"
                """
            }
        )
        res = sb.invoke1("raise")
        self.assertEqual(res["error"]["message"], "ValueError: bad ?")
        self.assertEqual(res["stdout"], "log ?\n")
        # A value is passed on as it is (escaped).
        self.assertOk(sb.invoke1("ok"), "value \ud800")

    # -- init errors

    def test_handler_module_not_found(self):
        sb = self.sandbox(HELLO, handler="nope.handler", expect_ready=False)
        self.assertEqual(sb.ready["type"], "init_error")
        self.assertEqual(sb.ready["error"]["type"], "HandlerNotFound")
        self.assertIn("nope", sb.ready["error"]["message"])
        # Calls after a failed init get the init error.
        err = self.assertError(sb.invoke1({}), "HandlerNotFound")
        self.assertIn("nope", err["message"])

    def test_handler_function_not_found(self):
        for handler in ["main.missing", "main.VALUE", "main", "", "main."]:
            sb = self.sandbox(
                {"main.py": HELLO["main.py"] + "VALUE = 3\n"},
                handler=handler,
                expect_ready=False,
            )
            self.assertEqual(sb.ready["type"], "init_error", handler)
            self.assertEqual(sb.ready["error"]["type"], "HandlerNotFound", handler)

    def test_import_errors(self):
        cases = {
            "syntax": {"main.py": "def handler(:\n"},
            "raises": {"main.py": "raise RuntimeError('at import')\n"},
            "dependency": {"main.py": "import not_a_module_anywhere\n"},
            "exit": {"main.py": "import sys\nsys.exit(1)\n"},
        }
        for name, files in cases.items():
            sb = self.sandbox(files, expect_ready=False)
            self.assertEqual(sb.ready["type"], "init_error", name)
            self.assertEqual(sb.ready["error"]["type"], "ImportError", name)
            self.assertTrue(sb.ready["error"]["stack"], name)
        sb = self.sandbox(cases["raises"], expect_ready=False)
        self.assertEqual(sb.ready["error"]["message"], "RuntimeError: at import")
        self.assertIn("main.py", sb.ready["error"]["stack"])
        self.assertNotIn("bootstrap.py", sb.ready["error"]["stack"])
        sb = self.sandbox(cases["syntax"], expect_ready=False)
        self.assertTrue(sb.ready["error"]["message"].startswith("SyntaxError: "))
        self.assertIn("main.py", sb.ready["error"]["stack"])

    def test_invalid_archives(self):
        evil = io.BytesIO()
        with zipfile.ZipFile(evil, "w") as zf:
            zf.writestr("../escape.py", "x = 1\n")
        absolute = io.BytesIO()
        with zipfile.ZipFile(absolute, "w") as zf:
            zf.writestr("/abs.py", "x = 1\n")
        # zipfile.writestr strips a leading "/"; patch the name back in.
        abs_bytes = absolute.getvalue().replace(b"abs.py", b"/bs.py")
        for name, data in [
            ("garbage", b"this is not a zip"),
            ("dotdot", evil.getvalue()),
            ("absolute", abs_bytes),
        ]:
            sb = Sandbox()
            self.addCleanup(sb.cleanup)
            reply = sb.init(zip_bytes=data)
            self.assertEqual(reply["type"], "init_error", name)
            self.assertEqual(reply["error"]["type"], "InvalidArchive", name)
            self.assertFalse(os.path.exists(os.path.join(sb.dir, "escape.py")))

    def test_import_output_in_ready(self):
        sb = self.sandbox(
            {
                "main.py": """
                import sys
                print("loading")
                print("warn", file=sys.stderr)
                def handler(event, context):
                    return 1
                """
            }
        )
        self.assertEqual(sb.ready["stdout"], "loading\n")
        self.assertEqual(sb.ready["stderr"], "warn\n")
        self.assertFalse(sb.ready["logs_truncated"])
        res = sb.invoke1({})
        self.assertEqual(res["stdout"], "")

    # -- batches and logs

    def test_batch_of_three(self):
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    print("item", context.aws_request_id)
                    return event * 2
                """
            }
        )
        results = sb.invoke([1, 2, 3])
        self.assertEqual([r["id"] for r in results], ["inv-0", "inv-1", "inv-2"])
        self.assertEqual([r["value"] for r in results], [2, 4, 6])
        self.assertEqual([r["stdout"] for r in results], ["item inv-%d\n" % i for i in range(3)])
        # concurrent: true is ignored (still in order).
        results = sb.invoke([5, 6, 7], concurrent=True, prefix="c")
        self.assertEqual([r["value"] for r in results], [10, 12, 14])

    def test_large_output_truncated(self):
        sb = self.sandbox(
            {
                "main.py": """
                import sys
                def handler(event, context):
                    if event == "big":
                        for _ in range(100):
                            print("o" * 1000)
                        sys.stderr.write("e" * 70000)
                        sys.stderr.write("more")
                    elif event == "utf8":
                        # 3-byte characters: the cut must not split one.
                        sys.stdout.write("€" * 30000)
                    elif event == "exact":
                        sys.stdout.write("x" * 65536)
                    else:
                        print("small")
                    return "done"
                """
            }
        )
        res = sb.invoke1("big")
        self.assertOk(res, "done")
        self.assertTrue(res["logs_truncated"])
        self.assertEqual(len(res["stdout"].encode()), CAP)
        self.assertEqual(res["stderr"], "e" * CAP)

        res = sb.invoke1("utf8")
        self.assertTrue(res["logs_truncated"])
        self.assertEqual(res["stdout"], "€" * (CAP // 3))

        res = sb.invoke1("exact")
        self.assertFalse(res["logs_truncated"])
        self.assertEqual(len(res["stdout"]), CAP)

        # The next call starts afresh.
        res = sb.invoke1("small")
        self.assertFalse(res["logs_truncated"])
        self.assertEqual(res["stdout"], "small\n")

    def test_prints_do_not_corrupt_the_channel(self):
        sb = self.sandbox(
            {
                "main.py": """
                import sys, os
                def handler(event, context):
                    print('{"type":"result","id":"fake","ok":true,"value":1}')
                    print("line\\nbreaks\\n\\n", end="")
                    sys.stdout.buffer.write(b"bytes\\n")
                    sys.stdout.flush()
                    sys.__stdout__.write("to the real stdout\\n")
                    sys.__stdout__.flush()
                    os.write(1, b"raw fd 1\\n")
                    return {"printed": True}
                """
            }
        )
        res = sb.invoke1({})
        self.assertOk(res, {"printed": True})
        self.assertEqual(
            res["stdout"],
            '{"type":"result","id":"fake","ok":true,"value":1}\nline\nbreaks\n\nbytes\n',
        )
        self.assertOk(sb.invoke1({}), {"printed": True})
        self.assertEqual(sb.close(), 0)
        out = sb.proc.stdout.read().decode()
        self.assertIn("to the real stdout", out)

    def test_logging_configured_at_import_is_captured_per_call(self):
        sb = self.sandbox(
            {
                "main.py": """
                import logging
                logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
                log = logging.getLogger("fn")
                def handler(event, context):
                    log.info("call %s", event)
                    return event
                """
            }
        )
        a, b = sb.invoke(["a", "b"])
        self.assertEqual(a["stderr"], "INFO call a\n")
        self.assertEqual(b["stderr"], "INFO call b\n")

    def test_user_replacing_stdout_is_undone(self):
        sb = self.sandbox(
            {
                "main.py": """
                import io, sys
                def handler(event, context):
                    if event == "swap":
                        sys.stdout = io.StringIO()
                    print("hi", event)
                    return event
                """
            }
        )
        sb.invoke1("swap")
        res = sb.invoke1("next")
        self.assertEqual(res["stdout"], "hi next\n")

    # -- protocol robustness

    def test_unknown_and_invalid_messages(self):
        sb = self.sandbox(HELLO)
        sb.send({"type": "frobnicate", "extra": 1})
        msg = sb.recv()
        self.assertEqual(msg["type"], "error")
        self.assertIn("frobnicate", msg["message"])
        sb.send_raw(b"{not json\n")
        self.assertEqual(sb.recv()["type"], "error")
        sb.send({"type": "init", "handler": "main.handler"})
        self.assertEqual(sb.recv()["type"], "error")
        # Unknown fields are ignored.
        sb.send(
            {
                "type": "invoke",
                "future": True,
                "items": [{"id": "x", "event": 1, "deadline_ms": now_ms() + 1000, "new": 2}],
            }
        )
        self.assertOk(sb.recv(), "hello world")
        self.assertEqual(sb.close(), 0)

    def test_restore_is_the_first_message_only(self):
        sb = Sandbox()
        self.addCleanup(sb.cleanup)
        sb.send({"type": "restore", "seed": "zz"})
        self.assertIn("seed", sb.recv()["message"])
        sb2 = Sandbox()
        self.addCleanup(sb2.cleanup)
        sb2.send({"type": "restore", "seed": "ab" * 32, "now_ms": now_ms()})
        # Not a microVM's root bootstrap: the kernel is left alone.
        restored = sb2.recv()
        self.assertEqual(restored["type"], "restored")
        self.assertIs(restored["kernel_reseeded"], False)
        self.assertEqual(sb2.init(HELLO)["type"], "ready")
        sb2.send({"type": "restore", "seed": "ab" * 32})
        self.assertIn("first message", sb2.recv()["message"])
        self.assertOk(sb2.invoke1(1), "hello world")

    def test_large_code_archive_and_event(self):
        blob = os.urandom(3 * 1024 * 1024)
        sb = self.sandbox(
            {
                "main.py": """
                def handler(event, context):
                    with open("blob.bin", "rb") as f:
                        return [len(f.read()), len(event)]
                """,
                "blob.bin": blob,
            }
        )
        self.assertOk(sb.invoke1("y" * 5_000_000), [len(blob), 5_000_000])

    def test_bad_arguments(self):
        proc = subprocess.run(
            [sys.executable, "-S", "-B", BOOTSTRAP, "--bogus"],
            capture_output=True,
            timeout=10,
        )
        self.assertEqual(proc.returncode, 2)
        self.assertIn(b"usage", proc.stderr)

    @unittest.skipUnless(sys.platform.startswith("linux"), "needs a pty")
    def test_device_mode(self):
        sb = Sandbox(mode="device")
        self.addCleanup(sb.cleanup)
        # On a device the bootstrap announces itself first.
        self.assertEqual(sb.recv(), {"type": "booted"})
        self.assertEqual(sb.init(HELLO)["type"], "ready")
        results = sb.invoke([1, 2])
        self.assertEqual([r["value"] for r in results], ["hello world"] * 2)


if __name__ == "__main__":
    unittest.main()
