# Least privilege: each component's NATS user can do its own work and
# nothing of another's — not write another component's aggregates or KV
# bucket, not serve (subscribe to) another's requests, not administer
# streams. Checked from inside each container, with the password file that
# container holds, over its private link.
{ common }:
{
  name = "cim-permissions";

  nodes.host = common.componentContainers;

  testScript = common.helpers + ''
    # The matrix is shared with `cargo xtask test`'s live check.
    MATRIX = json.loads("""${builtins.toJSON (builtins.fromJSON (builtins.readFile ./permission-matrix.json))}""")

    start_all()
    host.wait_for_unit("nats.service")
    host.wait_until_succeeds(probe("ping", "cim-registry"))
    host.wait_until_succeeds(probe("ping", "cim-ius"))

    with subtest("the components do their work without a single permission violation"):
        # Start-up (streams, buckets, built-in schemas, registration), and
        # a unit written and read, need nothing beyond their permissions.
        host.wait_until_succeeds(probe("request", "cim.service.ius.kinds.list", "{}") + " | grep -q text-document")
        request(host, "cim.service.ius.units.create", {"kind": "text-document", "id": "perm-1", "content": {"text": "x"}})
        request(host, "cim.service.ius.units.get", {"id": "perm-1"})
        log = host.succeed("journalctl -u nats.service --no-pager")
        assert "Violation" not in log, [line for line in log.splitlines() if "Violation" in line]

    with subtest("each component's user is refused the other's subjects"):
        for user, subject, why in MATRIX["denied_publish"]:
            host.log(f"{user} may not publish to {subject}: {why}")
            host.succeed(probe("denied-publish", subject, user=user, container=f"cim-{user}"))
        for user, subject, why in MATRIX["denied_subscribe"]:
            host.log(f"{user} may not subscribe to {subject}: {why}")
            host.succeed(probe("denied-subscribe", subject, user=user, container=f"cim-{user}"))

    with subtest("and allowed its own"):
        for user, subject, why in MATRIX["allowed_publish"]:
            host.log(f"{user} may publish to {subject}: {why}")
            host.succeed(probe("allowed-publish", subject, user=user, container=f"cim-{user}"))
        reply = json.loads(host.succeed(probe("request", "cim.service.registry.schemas.list", "{}", user="ius", container="cim-ius")))
        assert "types" in reply, reply

    with subtest("a container's password does not open another user"):
        host.fail(
            "nixos-container run cim-ius -- cim-nats-probe --server nats://10.233.0.1:4222 "
            f"--user registry --password-file {SECRETS}/ius/nats-password ping cim-ius"
        )

    with subtest("and the components kept working"):
        host.succeed(probe("ping", "cim-ius"))
        host.succeed(probe("ping", "cim-registry"))
        request(host, "cim.service.ius.units.get", {"id": "perm-1"})
  '';
}
