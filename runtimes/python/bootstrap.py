"""ignis Python bootstrap: the sandbox side of the channel protocol.

Usage:
    python3 bootstrap.py --socket PATH [--code-dir DIR]
    python3 bootstrap.py --device PATH [--code-dir DIR] [--drop-privileges UID]
    python3 bootstrap.py --reseed DIR   (Node.js's root helper, see reseed_helper)

The protocol is specified in docs/protocol.md. Standard library only
(Python 3.11). Protocol messages travel only on the channel; the handler's
prints are captured per call and never reach it.
"""

import base64
import importlib
import importlib.util
import io
import json
import os
import socket
import sys
import time
import traceback
import zipfile

# Defaults of the limits the host sends in `init` (`limits`): the host is
# the one place they are set.
LOG_CAP = 65536  # bytes of UTF-8 per stream and call
MAX_RESPONSE_BYTES = 6291456
DEFAULT_CODE_DIR = "/var/task"
SKEW_THRESHOLD_MS = 1000.0

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_value_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_value_encoder_ascii = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, allow_nan=False
).encode
_loads = json.loads
_time = time.time
_perf = time.perf_counter


# --------------------------------------------------------------------------
# A restored microVM clone's own identity (docs/protocol.md, `restore`)

RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)


def reseed_kernel(seed, now_ms):
    """As root: sets the wall clock (frozen at snapshot time in a clone),
    credits `seed` to the kernel's entropy pool and forces its CRNG to
    reseed, so that clones of one snapshot stop sharing a random stream."""
    import fcntl
    import struct

    if isinstance(now_ms, (int, float)):
        time.clock_settime(time.CLOCK_REALTIME, now_ms / 1000.0)
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        fcntl.ioctl(fd, RNDADDENTROPY, struct.pack("ii", len(seed) * 8, len(seed)) + seed)
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def parse_seed(msg):
    seed = msg.get("seed")
    try:
        raw = bytes.fromhex(seed)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) < 16:
        raise ValueError("restore needs a `seed` of at least 16 bytes in hex")
    return raw


def apply_limits(limits):
    """Takes the host's `limits` from `init` (missing ones keep the defaults)."""
    global LOG_CAP, MAX_RESPONSE_BYTES
    if not isinstance(limits, dict):
        return
    for key, name in (("max_log_bytes", "LOG_CAP"), ("max_response_bytes", "MAX_RESPONSE_BYTES")):
        value = limits.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            globals()[name] = value


def drop_privileges(uid):
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def reseed_helper(fifo_dir):
    """`--reseed DIR`: the Node.js bootstrap's root helper (Node.js has no
    ioctl). It makes two FIFOs in DIR, waits for one `restore` message on
    `DIR/in`, reseeds the kernel and answers `ok MS` on `DIR/out`. FIFOs and
    plain syscalls: Node.js's child-process streams cost ~0.6 s in a clone
    under TCG (code run for the first time since the snapshot)."""
    import fcntl  # noqa: F401  (imported now, not in the clone)
    import struct  # noqa: F401

    path_in = os.path.join(fifo_dir, "in")
    path_out = os.path.join(fifo_dir, "out")
    for p in (path_in, path_out):
        os.mkfifo(p + ".tmp", 0o600)
        os.rename(p + ".tmp", p)
    fd = os.open(path_in, os.O_RDONLY)  # waits for a writer
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            os._exit(0)  # closed without a message: no restore for this VM
        data += chunk
    woke = _perf()
    try:
        msg = _loads(data)
        reseed_kernel(parse_seed(msg), msg.get("now_ms"))
        answer = b"ok %.3f\n" % ((_perf() - woke) * 1000.0)
    except BaseException as e:  # always answer: the bootstrap waits for it
        answer = ("err %s\n" % _exc_message(e)).encode("utf-8", "replace")
    out = os.open(path_out, os.O_WRONLY)  # waits for the reader
    os.write(out, answer)
    os._exit(0)  # no interpreter teardown: it costs a clone's start time


# --------------------------------------------------------------------------
# Output capture


class _BytesSink:
    """`sys.stdout.buffer` of a capture: bytes are decoded and captured."""

    def __init__(self, text):
        self._text = text

    def write(self, b):
        self._text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        pass

    def writable(self):
        return True


class Capture(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr for the bootstrap's whole life.

    While a call (or the import at init) runs, writes are collected, capped at
    LOG_CAP bytes of UTF-8; at other times they go to the real stream. One
    permanent object means references kept by user code (a logging handler
    made at import, say) still reach the current call's capture.
    """

    def __init__(self, real, name):
        super().__init__()
        self._real = real
        self._name = name
        self._chunks = None
        self._n = 0
        self.truncated = False
        self.buffer = _BytesSink(self)

    # -- bootstrap side
    def begin(self):
        self._chunks = []
        self._n = 0
        self.truncated = False

    def end(self):
        chunks = self._chunks
        self._chunks = None
        if not chunks:
            return ""
        return b"".join(chunks).decode("utf-8", "replace")

    # -- file API
    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        chunks = self._chunks
        if chunks is None:
            real = self._real
            if real is not None:
                try:
                    real.write(s)
                    real.flush()
                except Exception:
                    pass
            return len(s)
        if not s:
            return 0
        n = self._n
        if n >= LOG_CAP:
            self.truncated = True
            return len(s)
        b = s.encode("utf-8", "replace")
        room = LOG_CAP - n
        if len(b) <= room:
            chunks.append(b)
            self._n = n + len(b)
        else:
            cut = room
            while cut > 0 and (b[cut] & 0xC0) == 0x80:
                cut -= 1
            if cut:
                chunks.append(b[:cut])
            self._n = LOG_CAP
            self.truncated = True
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def close(self):
        # Closing sys.stdout must not break the capture of later calls.
        pass

    @property
    def closed(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("captured %s has no file descriptor" % self._name)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def name(self):
        return "<%s>" % self._name

    @property
    def line_buffering(self):
        return False


# --------------------------------------------------------------------------
# Channel transports


class SocketChannel:
    def __init__(self, conn):
        self._conn = conn
        self._file = conn.makefile("rb", buffering=65536)
        self._sendall = conn.sendall

    def readline(self):
        """The next line (without its newline), or None at EOF."""
        line = self._file.readline()
        if not line:
            return None
        if line[-1:] != b"\n":
            # Last line without a newline, then EOF: still a message.
            return line
        return line[:-1]

    def send(self, data):
        self._sendall(data)


class DeviceChannel:
    """A character device (virtio-serial port): read returns EOF while the
    host end is not connected, so EOF means 'retry later', never 'done'."""

    def __init__(self, path):
        self._fd = os.open(path, os.O_RDWR | getattr(os, "O_NOCTTY", 0))
        self._buf = bytearray()

    def readline(self):
        buf = self._buf
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0:
                line = bytes(buf[:i])
                del buf[: i + 1]
                return line
            start = len(buf)
            try:
                chunk = os.read(self._fd, 262144)
            except InterruptedError:
                continue
            except OSError as e:
                import errno

                if e.errno in (errno.EAGAIN, errno.EIO):
                    time.sleep(0.01)
                    continue
                raise
            if not chunk:
                time.sleep(0.01)
                continue
            buf += chunk

    def send(self, data):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except InterruptedError:
                continue
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[n:]


def listen_socket(path):
    tmp = path + ".tmp"
    for p in (tmp, path):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(tmp)
    os.chmod(tmp, 0o666)
    srv.listen(1)
    os.rename(tmp, path)  # the socket appearing is the "booted" signal
    conn, _ = srv.accept()
    srv.close()
    return conn


# --------------------------------------------------------------------------
# Context


class Context:
    __slots__ = (
        "function_name",
        "function_version",
        "memory_limit_in_mb",
        "aws_request_id",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "identity",
        "client_context",
        "_deadline_ms",
        "_skew_ms",
    )

    def get_remaining_time_in_millis(self):
        left = self._deadline_ms - (_time() * 1000.0 + self._skew_ms)
        return int(left) if left > 0 else 0

    def __repr__(self):
        return "Context(function_name=%r, aws_request_id=%r)" % (
            self.function_name,
            self.aws_request_id,
        )


# --------------------------------------------------------------------------
# Errors


class InitFailure(Exception):
    def __init__(self, kind, message, stack=""):
        super().__init__(message)
        self.body = {"type": kind, "message": message, "stack": stack}


def _exc_message(e):
    text = str(e)
    name = type(e).__name__
    return "%s: %s" % (name, text) if text else name


def _user_stack(e, code_dir):
    """The traceback from the first frame in the function's code on (the
    bootstrap's and importlib's frames say nothing to the user)."""
    tb = e.__traceback__
    prefix = os.path.join(code_dir, "")
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(prefix):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def _exc_stack(e, skip=0):
    tb = e.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


# --------------------------------------------------------------------------
# The bootstrap


def _safe_member(name):
    """Whether a zip entry name stays inside the code directory."""
    if not name or "\x00" in name:
        return False
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return False
    parts = name.replace("\\", "/").split("/")
    return ".." not in parts


class Bootstrap:
    def __init__(self, channel, code_dir, out, err, drop_uid=None):
        self.channel = channel
        # In a microVM the bootstrap starts as root so that a restored clone
        # can reseed the kernel; it becomes `drop_uid` before any user code.
        self.drop_uid = drop_uid
        self.first_message_seen = False
        self.code_dir = code_dir
        self.out = out
        self.err = err
        self.handler = None
        self.init_error = None  # error body when init failed
        self.initialized = False
        self.function = ""
        self.version = ""
        self.memory_mb = 0
        self.sandbox_id = ""
        self.skew_ms = 0.0

    # -- I/O
    def send(self, msg):
        self.channel.send((_dumps(msg) + "\n").encode("utf-8", "replace"))

    def serve(self):
        readline = self.channel.readline
        while True:
            line = readline()
            if line is None:
                return
            if not line.strip():
                continue
            try:
                msg = _loads(line)
            except ValueError as e:
                self.send({"type": "error", "message": "invalid JSON: %s" % e})
                continue
            if not isinstance(msg, dict):
                self.send({"type": "error", "message": "a message must be a JSON object"})
                continue
            kind = msg.get("type")
            if kind == "restore":
                self.restore(msg)
                continue
            self.first_message_seen = True
            if self.drop_uid is not None:
                drop_privileges(self.drop_uid)
                self.drop_uid = None
            if kind == "invoke":
                self.invoke(msg)
            elif kind == "init":
                self.init(msg)
            else:
                self.send({"type": "error", "message": "unknown message type %r" % (kind,)})

    # -- restore: the first message to a clone restored from a snapshot
    def restore(self, msg):
        if self.first_message_seen:
            self.send({"type": "error", "message": "restore must be the first message"})
            return
        self.first_message_seen = True
        started = _perf()
        try:
            seed = parse_seed(msg)
            # Only a microVM's root bootstrap touches the kernel and the clock.
            kernel = self.drop_uid is not None and os.geteuid() == 0
            if kernel:
                reseed_kernel(seed, msg.get("now_ms"))
            # The language's generators, from the kernel (reseeded above) and
            # the host's seed, so that they differ even where the kernel
            # could not be reseeded.
            if "random" in sys.modules:
                sys.modules["random"].seed(os.urandom(32) + seed)
            if self.drop_uid is not None:
                drop_privileges(self.drop_uid)
                self.drop_uid = None
        except Exception as e:
            self.send({"type": "error", "message": "restore failed: %s" % _exc_message(e)})
            return
        self.send(
            {
                "type": "restored",
                "kernel_reseeded": kernel,
                "ms": round((_perf() - started) * 1000.0, 3),
            }
        )

    # -- init
    def init(self, msg):
        if self.initialized:
            self.send({"type": "error", "message": "init was already received"})
            return
        self.initialized = True
        out, err = self.out, self.err
        sys.stdout, sys.stderr = out, err
        out.begin()
        err.begin()
        error = None
        try:
            self._init(msg)
        except InitFailure as f:
            error = f.body
        except BaseException as e:  # anything else while loading is an import problem
            error = {
                "type": "ImportError",
                "message": _exc_message(e),
                "stack": _user_stack(e, self.code_dir),
            }
        finally:
            sys.stdout, sys.stderr = out, err
            stdout, stderr = out.end(), err.end()
        truncated = out.truncated or err.truncated
        if error is None:
            self.send(
                {"type": "ready", "stdout": stdout, "stderr": stderr, "logs_truncated": truncated}
            )
        else:
            self.init_error = error
            self.send(
                {
                    "type": "init_error",
                    "error": error,
                    "stdout": stdout,
                    "stderr": stderr,
                    "logs_truncated": truncated,
                }
            )

    def _init(self, msg):
        apply_limits(msg.get("limits"))
        now_ms = msg.get("now_ms")
        if isinstance(now_ms, (int, float)):
            skew = float(now_ms) - _time() * 1000.0
            # The same clock (Docker) differs only by the message's transit;
            # a guest with its own clock (microVM) may be far off.
            self.skew_ms = skew if abs(skew) > SKEW_THRESHOLD_MS else 0.0
        self.function = str(msg.get("function") or "")
        version = msg.get("version")
        self.version = "" if version is None else str(version)
        try:
            self.memory_mb = int(msg.get("memory_mb") or 0)
        except (TypeError, ValueError):
            self.memory_mb = 0
        self.sandbox_id = str(msg.get("sandbox_id") or "")
        code_dir = self.code_dir

        # Code.
        b64 = msg.get("code_zip_b64")
        if b64:
            try:
                data = base64.b64decode(b64, validate=False)
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    infos = zf.infolist()
                    for info in infos:
                        if not _safe_member(info.filename):
                            raise InitFailure(
                                "InvalidArchive",
                                "unsafe path in the code archive: %r" % info.filename,
                            )
                    os.makedirs(code_dir, exist_ok=True)
                    for info in infos:
                        zf.extract(info, code_dir)
                        mode = (info.external_attr >> 16) & 0o777
                        if mode & 0o111 and not info.is_dir():
                            try:
                                os.chmod(os.path.join(code_dir, info.filename), mode | 0o644)
                            except OSError:
                                pass
            except InitFailure:
                raise
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
                raise InitFailure("InvalidArchive", "bad code archive: %s" % _exc_message(e))
            except (NotImplementedError, RuntimeError) as e:  # unsupported method, encrypted
                raise InitFailure("InvalidArchive", "bad code archive: %s" % _exc_message(e))
            except OSError as e:  # out of space on the code tmpfs, say
                raise InitFailure(
                    "InvalidArchive", "extracting the code archive: %s" % _exc_message(e)
                )
        else:
            os.makedirs(code_dir, exist_ok=True)

        # Environment.
        env = msg.get("env") or {}
        if isinstance(env, dict):
            for k, v in env.items():
                if isinstance(k, str) and k and "=" not in k and "\x00" not in k:
                    os.environ[k] = "" if v is None else str(v)
        fixed = {
            "IGNIS_FUNCTION_NAME": self.function,
            "IGNIS_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_FUNCTION_NAME": self.function,
            "AWS_LAMBDA_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "LAMBDA_TASK_ROOT": code_dir,
        }
        os.environ.update(fixed)

        # Module path.
        try:
            os.chdir(code_dir)
        except OSError:
            pass
        if code_dir in sys.path:
            sys.path.remove(code_dir)
        sys.path.insert(0, code_dir)
        importlib.invalidate_caches()

        # Handler.
        spec = msg.get("handler")
        if not isinstance(spec, str) or "." not in spec.strip("."):
            raise InitFailure(
                "HandlerNotFound", "bad handler %r: expected PATH.FUNCTION" % (spec,)
            )
        path, func = spec.rsplit(".", 1)
        path = path.strip("/")
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        if not parts or not func or ".." in parts:
            raise InitFailure(
                "HandlerNotFound", "bad handler %r: expected PATH.FUNCTION" % (spec,)
            )
        file_py = os.path.join(code_dir, *parts) + ".py"
        pkg_init = os.path.join(code_dir, *parts, "__init__.py")
        if os.path.isfile(file_py):
            origin = file_py
        elif os.path.isfile(pkg_init):
            origin = pkg_init
        else:
            raise InitFailure(
                "HandlerNotFound",
                "handler module %r not found (no %s in the code archive)"
                % ("/".join(parts), "/".join(parts) + ".py"),
            )
        if any("." in p for p in parts) or parts[0] in sys.modules:
            # A dotted file name cannot be imported by module name, and a name
            # taken by a module already loaded (json.py, say) would find that one.
            name = "_ignis_handler_" + "_".join(parts).replace(".", "_")
            mspec = importlib.util.spec_from_file_location(name, origin)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[name] = module
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(".".join(parts))
        fn = getattr(module, func, None)
        if fn is None:
            raise InitFailure(
                "HandlerNotFound",
                "module %r has no function %r" % ("/".join(parts), func),
            )
        if not callable(fn):
            raise InitFailure(
                "HandlerNotFound",
                "%s.%s is not callable (it is a %s)" % ("/".join(parts), func, type(fn).__name__),
            )
        self.handler = fn

    # -- invoke
    def invoke(self, msg):
        items = msg.get("items")
        if not isinstance(items, list):
            self.send({"type": "error", "message": "invoke without an items list"})
            return
        send = self.channel.send
        first = True
        for item in items:
            if not isinstance(item, dict):
                self.send({"type": "error", "message": "an invoke item must be an object"})
                continue
            send(self.run_item(item, first))
            first = False

    def run_item(self, item, first):
        """Runs one call; returns the encoded `result` line."""
        item_id = item.get("id")
        if self.handler is None:
            error = self.init_error or {
                "type": "NotInitialized",
                "message": "invoke before a successful init",
                "stack": "",
            }
            return self._line(item_id, False, None, error, "", "", False, 0.0)

        # Deadline: the host's for the first call of a batch; a later call
        # run after the previous one is timed from its own start.
        skew = self.skew_ms
        deadline = item.get("deadline_ms")
        if not isinstance(deadline, (int, float)):
            deadline = 0
        if not first:
            timeout = item.get("timeout_ms")
            if isinstance(timeout, (int, float)) and timeout > 0:
                own = _time() * 1000.0 + skew + timeout
                if own > deadline:
                    deadline = own

        ctx = Context()
        ctx.function_name = self.function
        ctx.function_version = self.version
        # A string, as in the AWS Lambda Python runtime (it comes from the environment there).
        ctx.memory_limit_in_mb = str(self.memory_mb)
        ctx.aws_request_id = item_id
        ctx.invoked_function_arn = "arn:ignis:function:" + self.function
        ctx.log_group_name = "/ignis/functions/" + self.function
        ctx.log_stream_name = self.sandbox_id
        ctx.identity = None
        ctx.client_context = None
        ctx._deadline_ms = deadline
        ctx._skew_ms = skew

        out, err = self.out, self.err
        sys.stdout, sys.stderr = out, err
        out.begin()
        err.begin()
        handler = self.handler
        event = item.get("event")
        t0 = _perf()
        try:
            value = handler(event, ctx)
            if type(value).__name__ == "coroutine" and hasattr(value, "send"):
                # An `async def` handler: run it to completion.
                import asyncio

                value = asyncio.run(value)
            ok = True
        except BaseException as e:  # SystemExit / KeyboardInterrupt too: the call fails, not us
            ok = False
            error = {"type": "FunctionError", "message": _exc_message(e), "stack": _exc_stack(e, 1)}
            del e
        duration = (_perf() - t0) * 1000.0
        sys.stdout, sys.stderr = out, err
        stdout, stderr = out.end(), err.end()
        truncated = out.truncated or err.truncated

        if ok:
            try:
                vjson = _value_encoder(value)
                vbytes = vjson.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: keep them escaped
                vbytes = _value_encoder_ascii(value).encode("ascii")
            except BaseException as e:
                ok = False
                error = {
                    "type": "InvalidResult",
                    "message": "the result is not JSON-serializable: %s" % _exc_message(e),
                    "stack": "",
                }
                vbytes = None
            if ok and len(vbytes) > MAX_RESPONSE_BYTES:
                ok = False
                error = {
                    "type": "ResponseTooLarge",
                    "message": "the result is %d bytes, the limit is %d bytes"
                    % (len(vbytes), MAX_RESPONSE_BYTES),
                    "stack": "",
                }
            if ok:
                return self._line(item_id, True, vbytes, None, stdout, stderr, truncated, duration)
        return self._line(item_id, False, None, error, stdout, stderr, truncated, duration)

    @staticmethod
    def _line(item_id, ok, vbytes, error, stdout, stderr, truncated, duration):
        msg = {
            "type": "result",
            "id": item_id,
            "ok": ok,
            "stdout": stdout,
            "stderr": stderr,
            "logs_truncated": truncated,
            "duration_ms": round(duration, 3),
        }
        if not ok:
            msg["error"] = error
        # "replace": a lone surrogate in an error message becomes "?" (the
        # host rejects strings that are not valid Unicode).
        head = _dumps(msg).encode("utf-8", "replace")
        if vbytes is None:
            return head + b"\n"
        return b"".join((head[:-1], b',"value":', vbytes, b"}\n"))


# --------------------------------------------------------------------------
# Entry point


def parse_args(argv):
    opts = {"socket": None, "device": None, "code_dir": DEFAULT_CODE_DIR, "drop_privileges": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if key in ("--socket", "--device", "--code-dir", "--drop-privileges"):
            if not eq:
                i += 1
                if i >= len(argv):
                    raise SystemExit("bootstrap: %s needs a value" % key)
                val = argv[i]
            opts[key[2:].replace("-", "_")] = val
        else:
            raise SystemExit(
                "bootstrap: unknown argument %r\n"
                "usage: bootstrap.py (--socket PATH | --device PATH) [--code-dir DIR]" % arg
            )
        i += 1
    if bool(opts["socket"]) == bool(opts["device"]):
        raise SystemExit(
            "usage: bootstrap.py (--socket PATH | --device PATH) [--code-dir DIR]"
        )
    if opts["drop_privileges"] is not None:
        try:
            opts["drop_privileges"] = int(opts["drop_privileges"])
        except ValueError:
            raise SystemExit("bootstrap: --drop-privileges needs a numeric uid")
    return opts


def main(argv):
    if len(argv) == 2 and argv[0] == "--reseed":
        reseed_helper(argv[1])
        return
    opts = parse_args(argv)
    code_dir = os.path.abspath(opts["code_dir"])
    real_out = sys.__stdout__
    real_err = sys.__stderr__
    out = Capture(real_out, "stdout")
    err = Capture(real_err, "stderr")
    if opts["socket"]:
        channel = SocketChannel(listen_socket(opts["socket"]))
    else:
        channel = DeviceChannel(opts["device"])
        # On a device the host cannot see a socket appear: say we are up.
        channel.send(b'{"type":"booted"}\n')
    sys.stdout, sys.stderr = out, err
    boot = Bootstrap(channel, code_dir, out, err, opts["drop_privileges"])
    try:
        boot.serve()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the host went away: the same as EOF


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):
            sys.__stderr__.write(e.code + "\n")
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except BaseException:
        try:
            sys.__stderr__.write("ignis bootstrap: fatal error\n" + traceback.format_exc())
        except Exception:
            pass
        code = 1
    for f in (sys.__stdout__, sys.__stderr__):
        try:
            f.flush()
        except Exception:
            pass
    # os._exit: threads the handler left behind must not keep us alive.
    os._exit(code)
