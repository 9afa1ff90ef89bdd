# The host alone: NATS healthy with JetStream flushing before every
# acknowledgement, passwords generated outside the store, the store
# provisioned by cim-provision (the store's and every component's
# buckets), and no way in without a valid user.
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
        path = f"{SECRETS}/admin/nats-password"
        assert host.succeed(f"stat -c %a:%U {path}").strip() == "600:root"
        password = host.succeed(f"cat {path}").strip()
        # NATS's configuration in the store has no password; the one it
        # runs with is rendered at start into its private runtime dir, with
        # bcrypt hashes: not even that file holds the password itself.
        base = host.succeed("ls /nix/store/*-nats-base.conf").split()
        assert base, "no nats-base.conf in the store"
        host.fail(f"grep -l password {' '.join(base)}")
        conf = json.loads(host.succeed("cat /run/nats/nats.conf"))
        users = conf["accounts"]["CIM"]["users"]
        assert {u["user"] for u in users} == {"admin"}, users
        assert all(u["password"].startswith("$2a$11$") for u in users), users
        host.fail(f"grep -qF {shlex.quote(password)} /run/nats/nats.conf")
        assert host.succeed("stat -c %a:%U /run/nats /run/nats/nats.conf").split() == ["700:nats", "600:nats"]

    with subtest("the store's stream and buckets are provisioned"):
        host.wait_for_unit("cim-provision.service")
        jsz = json.loads(host.succeed("curl -sf 'http://127.0.0.1:8222/jsz?accounts=true&streams=true'"))
        streams = {s["name"] for a in jsz["account_details"] for s in a.get("stream_detail", [])}
        assert {"CIM_EVENTS", "OBJ_cim-objects", "KV_cim-names"} <= streams, streams
        # Every component's KV bucket too: components only attach to them.
        buckets = {f"KV_cim-{b}" for c in COMPONENTS.values() for b in c["buckets"]}
        assert buckets <= streams, (buckets, streams)
        status = json.loads(host.succeed("cim-admin --json status"))
        assert status["events"]["stream"] == "CIM_EVENTS", status
        assert status["objects"]["bucket"] == "cim-objects", status
        assert status["names"]["bucket"] == "cim-names", status

    with subtest("no way in without a valid user and password"):
        # The probe exits 4 when the server refuses the login, 0 when it
        # accepts it: each case is told apart from any other failure.
        host.succeed(probe("login"))
        host.succeed("echo wrong > /tmp/wrong")
        assert exit_code(host, probe("login", password_file="/tmp/wrong")) == 4
        assert exit_code(host, f"cim-nats-probe --server {HOST_NATS} login") == 4

    with subtest("NATS restarts with the same configuration and keeps the store"):
        host.succeed("systemctl restart nats.service")
        host.wait_until_succeeds("curl -sf 'http://127.0.0.1:8222/healthz?js-enabled-only=true'")
        host.succeed("cim-admin verify")
  '';
}
