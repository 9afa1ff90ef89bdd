# Least privilege: each component's NATS user can do its own work and
# nothing of another's — not write another component's aggregates or KV
# bucket, not serve (subscribe to) another's requests or read its replies,
# not register or deregister as another, not administer streams, buckets or
# others' consumers. Tried as an attacker would, from inside each container,
# with the password that container holds, over its private link; the shared
# streams must be left exactly as they were.
{ common }:
{
  name = "cim-permissions";

  nodes.host = common.componentContainers;

  testScript = common.helpers + ''
    # tests/permission-matrix.json, expanded for every component by
    # tests/permission-matrix.nix: user -> checks. The live check of
    # `cargo xtask nix` runs the same (nix/eval/rendered/permission-matrix.json).
    MATRIX = json.loads(${builtins.toJSON (builtins.toJSON common.permissionMatrix)})
    # The store's streams (store -> stream), whose configuration and
    # messages must stay as they are, and the components' buckets, whose
    # configuration must (their entries change with every heartbeat).
    STREAMS = json.loads(${builtins.toJSON (builtins.toJSON common.streams)})
    BUCKET_STREAMS = json.loads(${builtins.toJSON (builtins.toJSON common.bucketStreams)})
    CONTAINER = {c["user"]: f"cim-{name}" for name, c in COMPONENTS.items()}
    # The store's streams each user reads: the probe counts their messages
    # before and after each of its attempts.
    READS = {c["user"]: [STREAMS[store] for store in c["reads"]] for c in COMPONENTS.values()}
    # Another user's consumer on every stream, the admin's, which the
    # matrix tries to delete and pause (tests/permission-matrix.json).
    VICTIM = "cim-matrix-victim"
    assert sorted(MATRIX) == sorted(CONTAINER), (sorted(MATRIX), sorted(CONTAINER))


    def streams_state():
        """Each stream's configuration, and the store's message counts, as
        the admin sees them."""
        state = {}
        for stream in list(STREAMS.values()) + BUCKET_STREAMS:
            info = request(host, f"$JS.API.STREAM.INFO.{stream}", {})
            assert "error" not in info, info
            counted = stream in STREAMS.values()
            state[stream] = (info["config"], info["state"]["messages"] if counted else None)
        return state


    start_all()
    host.wait_for_unit("nats.service")
    host.wait_for_unit("cim-provision.service")
    for component in COMPONENTS.values():
        host.wait_until_succeeds(probe("ping", component["package"]))

    with subtest("the components do their work without a single permission violation"):
        # Start-up (attaching to the provisioned streams and buckets,
        # built-in schemas, registration), and a unit written and read, need
        # nothing beyond their permissions.
        host.wait_until_succeeds(probe("request", "cim.service.ius.kinds.list", "{}") + " | grep -q text-document")
        request(host, "cim.service.ius.units.create", {"kind": "text-document", "id": "perm-1", "content": {"text": "x"}})
        request(host, "cim.service.ius.units.get", {"id": "perm-1"})
        log = host.succeed("journalctl -u nats.service --no-pager")
        assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]

    with subtest("each component's user logs in from its container"):
        # Every check below needs a working login: a refused one would make
        # the probe exit 4, never the 0 a check expects.
        for user, container in CONTAINER.items():
            host.succeed(probe("login", user=user, container=container))

    with subtest("each component's user is refused everything but its own work, and the streams are untouched"):
        events = STREAMS["events"]
        assert streams_state()[events][1] > 0, "the matrix runs against a stream that holds events"
        for stream in list(STREAMS.values()) + BUCKET_STREAMS:
            config = {"durable_name": VICTIM, "ack_policy": "explicit"}
            created = request(host, f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{VICTIM}", {"stream_name": stream, "config": config})
            assert "error" not in created, created
        for user, checks in MATRIX.items():
            before = streams_state()
            host.log(f"{user}: {len(checks)} checks")
            watch = [arg for stream in READS[user] for arg in ("--watch", stream)]
            host.succeed(probe("matrix", json.dumps(checks), *watch, user=user, container=CONTAINER[user]))
            after = streams_state()
            for stream, was in before.items():
                assert after[stream] == was, f"{user}'s attempts changed {stream}: {was} -> {after[stream]}"
        for stream in list(STREAMS.values()) + BUCKET_STREAMS:
            info = request(host, f"$JS.API.CONSUMER.INFO.{stream}.{VICTIM}", {})
            assert "error" not in info, f"the admin's consumer on {stream} is gone: {info}"
            request(host, f"$JS.API.CONSUMER.DELETE.{stream}.{VICTIM}", {})

    with subtest("a container's password opens its own user and no other"):
        for user, container in CONTAINER.items():
            for other in ["admin"] + [u for u in CONTAINER if u != user]:
                status = exit_code(host, probe("login", user=other, container=container))
                assert status == 4, f"{container}'s password as {other}: exit {status}, not 4 (refused)"

    with subtest("and the components kept working"):
        for component in COMPONENTS.values():
            host.succeed(probe("ping", component["package"]))
        request(host, "cim.service.ius.units.get", {"id": "perm-1"})
        host.succeed("cim-admin verify")
  '';
}
