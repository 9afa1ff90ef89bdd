# The host alone: NATS healthy with JetStream flushing before every
# acknowledgement, passwords generated outside the store, the store
# provisioned by cim-provision, and no way in without a valid user.
{ common }:
{
  name = "cim-host";

  nodes.host = { };

  testScript = common.helpers + ''
    start_all()
    host.wait_for_unit("nats.service")

    with subtest("NATS is healthy, with JetStream flushing before it acknowledges"):
        host.wait_until_succeeds("curl -sf 'http://127.0.0.1:8222/healthz?js-enabled-only=true'")
        varz = json.loads(host.succeed("curl -sf http://127.0.0.1:8222/varz"))
        assert varz["jetstream"]["config"]["sync_always"] is True, varz["jetstream"]["config"]
        # The monitoring port is local only; the client port is not exposed
        # beyond the container links (none here).
        host.fail("curl -sf http://$(hostname -I | cut -d' ' -f1):8222/varz")

    with subtest("the passwords are root-only files outside the Nix store"):
        for user in ("admin",):
            path = f"{SECRETS}/{user}/nats-password"
            assert host.succeed(f"stat -c %a:%U {path}").strip() == "600:root"
            # NATS's configuration in the store has no password; the one it
            # runs with is rendered at start into its private runtime dir.
            base = host.succeed("ls /nix/store/*-nats-base.conf").split()
            assert base, "no nats-base.conf in the store"
            host.fail(f"grep -l password {' '.join(base)}")
            host.succeed(f"grep -qF \"$(cat {path})\" /run/nats/nats.conf")
        assert host.succeed("stat -c %a:%U /run/nats /run/nats/nats.conf").split() == ["700:nats", "600:nats"]

    with subtest("the store's stream and buckets are provisioned"):
        host.wait_for_unit("cim-provision.service")
        jsz = json.loads(host.succeed("curl -sf 'http://127.0.0.1:8222/jsz?accounts=true&streams=true'"))
        streams = {s["name"] for a in jsz["account_details"] for s in a.get("stream_detail", [])}
        assert {"CIM_EVENTS", "OBJ_cim-objects", "KV_cim-names"} <= streams, streams
        status = json.loads(host.succeed("cim-admin --json status"))
        assert status["events"]["stream"] == "CIM_EVENTS", status
        assert status["objects"]["bucket"] == "cim-objects", status
        assert status["names"]["bucket"] == "cim-names", status

    with subtest("no way in without a valid user and password"):
        host.fail("cim-nats-probe --server nats://127.0.0.1:4222 ping cim-registry")
        host.succeed("echo wrong > /tmp/wrong && ! cim-nats-probe --user admin --password-file /tmp/wrong ping x")

    with subtest("NATS restarts with the same configuration and keeps the store"):
        host.succeed("systemctl restart nats.service")
        host.wait_until_succeeds("curl -sf 'http://127.0.0.1:8222/healthz?js-enabled-only=true'")
        host.succeed("cim-admin verify")
  '';
}
