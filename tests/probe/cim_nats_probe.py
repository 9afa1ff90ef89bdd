"""cim-nats-probe: a tiny NATS client for CIM's deployment tests.

Used by the nixosTest suites (tests/*.nix) and by `cargo xtask test`'s live
check of the configurations the NixOS modules render. It speaks plain NATS
(nats-py), independent of CIM's own Rust code, so it checks what a stock
client sees:

    cim-nats-probe [--server URL] [--user U --password-file F]
                   [--inbox-prefix P] COMMAND ...

    login                        connect and exchange a PING: exit 0 if the
                                 server accepts the user and password
    ping SERVICE [--expect N]    $SRV.PING.<SERVICE>: print the replies (JSON
                                 lines); exit 1 if fewer than N answer
    request SUBJECT [JSON]       send a request, print the reply body; exit 1
                                 on no reply, 3 on a service error reply
    denied-publish SUBJECT       exit 0 if the server refuses the publish
                                 (permissions violation), 1 if it allowed it
    denied-subscribe SUBJECT     the same for a subscription
    allowed-publish SUBJECT      exit 0 if the server accepts the publish
    matrix CHECKS [--watch STREAM]...
                                 run a list of checks (JSON: [{"check",
                                 "subject", "body", "why"}, ...], check one
                                 of the three above or "request") over one
                                 connection, one by one, each publish a
                                 request acted on if let through; with
                                 --watch, the stream's message count and
                                 configuration (STREAM.INFO) must be the
                                 same before and after each; print each;
                                 exit 0 if all hold, 1 otherwise
    put-object BUCKET FILE       store FILE in a JetStream object store bucket
                                 under its raw CID (as cim-store names
                                 objects, docs/spec/jetstream.md §2); print it

Exit codes beyond each command's: 2 cannot connect, 4 the server refused the
user (authorization violation), 5 the server refused a subscription or
publish the command itself needed (permissions violation).

Replies arrive on `--inbox-prefix`, by default `_INBOX_<user>` when a user
is given: the host module lets each CIM user subscribe to its own inbox
prefix only (`_INBOX_<user>.>`), as the components' `[nats] inbox_prefix`.

Only stdlib and nats-py; no CIM code.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import sys

import nats
from nats.errors import NoRespondersError, TimeoutError

EXIT_CONNECT = 2
EXIT_AUTHORIZATION = 4
EXIT_PERMISSION = 5


class Refused(Exception):
    """The server refused what the command needed; `code` is the exit code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def inbox_prefix(args):
    return args.inbox_prefix or (f"_INBOX_{args.user}" if args.user else None)


async def connect(args, errors):
    async def on_error(err):
        errors.append(str(err))

    options = {
        "servers": args.server.split(","),
        "error_cb": on_error,
        "allow_reconnect": False,
        "connect_timeout": args.timeout,
    }
    if args.user:
        options["user"] = args.user
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as file:
            options["password"] = file.read().strip()
    prefix = inbox_prefix(args)
    if prefix:
        options["inbox_prefix"] = prefix
    try:
        return await nats.connect(**options)
    except Exception as err:  # nats-py raises several kinds here
        if "authorization violation" in str(err).lower() or any("authorization violation" in e.lower() for e in errors):
            raise Refused(EXIT_AUTHORIZATION, f"the server refuses user {args.user or '(none)'}: {err}") from None
        raise


def violation(errors, subject, prefix=False):
    """The server's permissions violation naming `subject` (or, with
    `prefix`, a subject starting with it), if any. nats-py reports the
    server's error in lower case, so the subject is compared so too."""
    wanted = (f'"{subject}' if prefix else f'"{subject}"').lower()
    for error in errors:
        if "permissions violation" in error.lower() and wanted in error.lower():
            return error
    return None


def status(msg):
    """The status of a NATS status message (e.g. "503", no responders), or None."""
    return (msg.headers or {}).get("Status") if msg.headers else None


async def checked_subscribe(nc, subject, errors, timeout):
    """Subscribes and makes sure the server did not refuse it."""
    sub = await nc.subscribe(subject)
    await nc.flush(timeout=timeout)
    await asyncio.sleep(0.1)
    denied = violation(errors, subject)
    if denied:
        raise Refused(EXIT_PERMISSION, f"cannot receive replies on {subject}: {denied}")
    return sub


async def login(nc, args):
    await nc.flush(timeout=args.timeout)
    print(f"logged in as {args.user or '(no user)'} at {nc.connected_url.netloc}")
    return 0


async def ping(nc, args, errors):
    inbox = nc.new_inbox()
    replies = []
    sub = await checked_subscribe(nc, inbox, errors, args.timeout)
    subject = f"$SRV.PING.{args.service}"
    await nc.publish(subject, b"", reply=inbox)
    deadline = asyncio.get_running_loop().time() + args.timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        try:
            msg = await sub.next_msg(timeout=left)
        except TimeoutError:
            break
        if status(msg) == "503":
            # "No responders": nobody subscribes to the subject.
            break
        try:
            replies.append(json.loads(msg.data))
        except ValueError:
            print(f"not a $SRV.PING reply (not JSON): {msg.data[:200]!r}", file=sys.stderr)
            return 1
        if len(replies) >= args.expect and not args.wait_all:
            break
    for reply in replies:
        print(json.dumps(reply, sort_keys=True))
    denied = violation(errors, subject)
    if denied:
        raise Refused(EXIT_PERMISSION, denied)
    if len(replies) < args.expect:
        print(f"only {len(replies)} of {args.expect} {args.service} instances answered", file=sys.stderr)
        return 1
    return 0


async def request(nc, args, errors):
    try:
        msg = await nc.request(args.subject, args.body.encode(), timeout=args.timeout)
    except NoRespondersError:
        print(f"no service answers on {args.subject} (no responders)", file=sys.stderr)
        return 1
    except TimeoutError:
        denied = violation(errors, args.subject) or violation(errors, inbox_prefix(args) or "_INBOX", prefix=True)
        if denied:
            raise Refused(EXIT_PERMISSION, denied) from None
        print(f"no reply on {args.subject} within {args.timeout}s", file=sys.stderr)
        return 1
    if status(msg) == "503":
        print(f"no service answers on {args.subject} (no responders)", file=sys.stderr)
        return 1
    print(msg.data.decode(errors="replace"))
    if msg.headers and "Nats-Service-Error" in msg.headers:
        return 3
    return 0


async def check_publish(nc, args, errors, want_denied):
    await nc.publish(args.subject, args.body.encode())
    # The server answers a refused publish with -ERR before the PONG of the
    # flush, so after the flush the error callback has run.
    await nc.flush(timeout=args.timeout)
    await asyncio.sleep(0.2)
    return report(errors, args.subject, f"publish to {args.subject}", want_denied)


async def check_subscribe(nc, args, errors):
    await nc.subscribe(args.subject)
    await nc.flush(timeout=args.timeout)
    await asyncio.sleep(0.2)
    return report(errors, args.subject, f"subscription to {args.subject}", True)


async def stream_counts(nc, streams, timeout):
    """Each watched stream's message count and configuration, read with
    STREAM.INFO over this connection (a stream the user reads)."""
    state = {}
    for stream in streams:
        msg = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"{}", timeout=timeout)
        info = json.loads(msg.data)
        if "error" in info:
            raise Refused(EXIT_PERMISSION, f"cannot watch {stream}: {info['error']}")
        state[stream] = (info["state"]["messages"], json.dumps(info["config"], sort_keys=True))
    return state


async def attempt(nc, check, errors, timeout):
    """One check's publish or subscription, as an attacker would make it: a
    publish is a request (reply on the probe's own inbox), so what the
    server lets through is acted on. Returns once the server has refused it
    or, for an allowed JetStream API request, answered it."""
    kind, subject = check["check"], check["subject"]
    if kind == "denied-subscribe":
        sub = await nc.subscribe(subject)
        await nc.flush(timeout=timeout)
        await asyncio.sleep(0.02)
        if not violation(errors, subject):
            await sub.unsubscribe()
        return
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, check.get("body", "").encode(), reply=inbox)
    # The server answers a refused publish with -ERR before the PONG of the
    # flush, and nats-py runs the error callback as it reads it.
    await nc.flush(timeout=timeout)
    await asyncio.sleep(0.02)
    if not violation(errors, subject) and subject.startswith("$JS.API."):
        try:
            await sub.next_msg(timeout=timeout)
        except TimeoutError:
            pass
    await sub.unsubscribe()


async def matrix(nc, args, errors):
    """Runs a list of checks over one connection, one after the other. With
    --watch, the message counts and configurations of those streams are read
    before and after every attempt, and a check holds only if they did not
    change."""
    checks = json.loads(args.checks)
    kinds = {"denied-publish", "allowed-publish", "denied-subscribe", "request"}
    unknown = [c.get("check") for c in checks if c.get("check") not in kinds]
    if unknown:
        print(f"unknown checks: {unknown}", file=sys.stderr)
        return 1
    watched = args.watch or []
    failed = 0
    for check in checks:
        kind, subject, why = check["check"], check["subject"], check.get("why", "")
        before = await stream_counts(nc, watched, args.timeout)
        if kind == "request":
            try:
                msg = await nc.request(subject, check.get("body", "{}").encode(), timeout=args.timeout)
                ok = status(msg) != "503" and not (msg.headers and "Nats-Service-Error" in msg.headers)
                outcome = "answered" if ok else f"refused: {msg.data[:200]!r}"
            except (NoRespondersError, TimeoutError) as err:
                ok, outcome = False, f"no answer ({type(err).__name__})"
        else:
            await attempt(nc, check, errors, args.timeout)
            denied = violation(errors, subject)
            ok = bool(denied) == (kind != "allowed-publish")
            outcome = "denied" if denied else "allowed"
        after = await stream_counts(nc, watched, args.timeout)
        changed = [
            f"{s}: {before[s][0]} -> {after[s][0]} messages" + (", configuration changed" if before[s][1] != after[s][1] else "")
            for s in watched
            if before[s] != after[s]
        ]
        if changed:
            ok = False
            outcome += "; " + "; ".join(changed)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {kind} {subject}: {outcome} ({why})")
    counts = ", ".join(f"{s} {n} messages" for s, (n, _) in (await stream_counts(nc, watched, args.timeout)).items())
    print(
        f"{len(checks) - failed} of {len(checks)} checks hold"
        + (f" ({counts}, counted before and after each)" if watched else "")
        + (f", {failed} FAIL" if failed else "")
    )
    return 1 if failed else 0


def raw_cid(data):
    """CIDv1, codec raw (0x55), sha2-256, base32 lower case: `bafkrei...`."""
    binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode().lower().rstrip("=")


async def put_object(nc, args):
    with open(args.file, "rb") as file:
        data = file.read()
    cid = raw_cid(data)
    store = await nc.jetstream().object_store(args.bucket)
    await store.put(cid, data)
    print(cid)
    return 0


def report(errors, subject, what, want_denied):
    # Only a violation naming this very subject counts: the probe's own
    # connection must have worked (a failed login never gets here).
    denied = violation(errors, subject)
    print(f"{what}: {'denied' if denied else 'allowed'}" + (f" ({denied})" if denied else ""))
    others = [e for e in errors if e != denied]
    if others:
        print(f"other errors: {others}", file=sys.stderr)
    return 0 if bool(denied) == want_denied else 1


async def run(args):
    errors = []
    nc = await connect(args, errors)
    try:
        if args.command == "login":
            return await login(nc, args)
        if args.command == "ping":
            return await ping(nc, args, errors)
        if args.command == "request":
            return await request(nc, args, errors)
        if args.command == "denied-publish":
            return await check_publish(nc, args, errors, True)
        if args.command == "allowed-publish":
            return await check_publish(nc, args, errors, False)
        if args.command == "matrix":
            return await matrix(nc, args, errors)
        if args.command == "put-object":
            return await put_object(nc, args)
        if args.command == "denied-subscribe":
            return await check_subscribe(nc, args, errors)
        raise AssertionError(args.command)
    finally:
        await nc.close()


def main():
    parser = argparse.ArgumentParser(prog="cim-nats-probe", description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--inbox-prefix", help="reply subject prefix [default: _INBOX_<user>]")
    parser.add_argument("--timeout", type=float, default=5.0)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("login")
    ping_cmd = commands.add_parser("ping")
    ping_cmd.add_argument("service")
    ping_cmd.add_argument("--expect", type=int, default=1)
    ping_cmd.add_argument("--wait-all", action="store_true", help="collect replies until the timeout")
    request_cmd = commands.add_parser("request")
    request_cmd.add_argument("subject")
    request_cmd.add_argument("body", nargs="?", default="{}")
    for name in ("denied-publish", "allowed-publish", "denied-subscribe"):
        sub = commands.add_parser(name)
        sub.add_argument("subject")
        sub.add_argument("body", nargs="?", default="")
    matrix_cmd = commands.add_parser("matrix")
    matrix_cmd.add_argument("checks", help="the checks as JSON")
    matrix_cmd.add_argument(
        "--watch", action="append", metavar="STREAM", help="a stream whose message count must not change (repeatable)"
    )
    put_cmd = commands.add_parser("put-object")
    put_cmd.add_argument("bucket")
    put_cmd.add_argument("file")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except Refused as err:
        print(f"cim-nats-probe: {err}", file=sys.stderr)
        sys.exit(err.code)
    except (OSError, asyncio.TimeoutError, nats.errors.Error) as err:
        print(f"cim-nats-probe: {err or type(err).__name__}", file=sys.stderr)
        sys.exit(EXIT_CONNECT)


if __name__ == "__main__":
    main()
