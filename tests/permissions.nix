# Least privilege: each component's NATS user can do its own work and
# nothing of another's — not write another component's aggregates or KV
# bucket, not serve (subscribe to) another's requests, not register as
# another, not administer streams. Checked from inside each container, with
# the password that container holds, over its private link.
{ common }:
{
  name = "cim-permissions";

  nodes.host = common.componentContainers;

  testScript = common.helpers + ''
    # The matrix is shared with `cargo xtask test`'s live check.
    MATRIX = json.loads("""${builtins.toJSON (builtins.fromJSON (builtins.readFile ./permission-matrix.json))}""")
    CONTAINER = {c["user"]: f"cim-{name}" for name, c in COMPONENTS.items()}

    start_all()
    host.wait_for_unit("nats.service")
    for component in COMPONENTS.values():
        host.wait_until_succeeds(probe("ping", component["package"]))

    with subtest("the components do their work without a single permission violation"):
        # Start-up (streams, buckets, built-in schemas, registration), and
        # a unit written and read, need nothing beyond their permissions.
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

    with subtest("each component's user is refused the other's subjects"):
        for user, subject, why in MATRIX["denied_publish"]:
            host.log(f"{user} may not publish to {subject}: {why}")
            host.succeed(probe("denied-publish", subject, user=user, container=CONTAINER[user]))
        for user, subject, why in MATRIX["denied_subscribe"]:
            host.log(f"{user} may not subscribe to {subject}: {why}")
            host.succeed(probe("denied-subscribe", subject, user=user, container=CONTAINER[user]))

    with subtest("and allowed its own"):
        for user, subject, why in MATRIX["allowed_publish"]:
            host.log(f"{user} may publish to {subject}: {why}")
            host.succeed(probe("allowed-publish", subject, user=user, container=CONTAINER[user]))
        for user, subject, body, why in MATRIX["allowed_request"]:
            host.log(f"{user} may request {subject}: {why}")
            reply = json.loads(host.succeed(probe("request", subject, body, user=user, container=CONTAINER[user])))
            assert "error" not in reply, reply

    with subtest("a container's password opens its own user and no other"):
        for user, container in CONTAINER.items():
            for other in ["admin"] + [u for u in CONTAINER if u != user]:
                status = exit_code(host, probe("login", user=other, container=container))
                assert status == 4, f"{container}'s password as {other}: exit {status}, not 4 (refused)"

    with subtest("and the components kept working"):
        for component in COMPONENTS.values():
            host.succeed(probe("ping", component["package"]))
        request(host, "cim.service.ius.units.get", {"id": "perm-1"})
  '';
}
