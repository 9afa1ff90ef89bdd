# The whole stack: a unit created through the Information Unit System (in its
# container, validated against the schema the Component Registry holds, in
# the other container), its chain verified by the operator's `cim` on the
# host, the IUS container restarted, and everything verified again: the
# projection rebuilt from the stream is identical.
#
# The operator works with `cim` (`cim-admin` on the host: `cim` as the admin
# NATS user); the probe asks the IUS directly, to compare its view.
{ common }:
{
  name = "cim-full-stack";

  nodes.host = {
    services.cim.containers = {
      registry.enable = true;
      ius.enable = true;
    };
  };

  testScript = common.helpers + ''
    start_all()
    host.wait_for_unit("cim-provision.service")
    host.wait_until_succeeds(probe("ping", "cim-registry"))
    host.wait_until_succeeds(probe("ping", "cim-ius"))

    with subtest("create and change a unit through the IUS"):
        # The IUS registers its built-in schemas at start; retry until it has.
        host.wait_until_succeeds(probe("request", "cim.service.ius.kinds.list", "{}") + " | grep -q text-document")
        created = json.loads(host.succeed(
            "cim-admin --json units create text-document '{\"text\": \"Hello, CIM\"}'"
            " --id full-stack-1 --metadata '{\"title\": \"Greeting\"}' --tag test"
        ))
        assert created["version"] == 1, created
        updated = json.loads(host.succeed(
            "cim-admin --json units update full-stack-1 --expect 1"
            " --patch '[{\"op\": \"replace\", \"path\": \"/content/text\", \"value\": \"Hello again\"}]'"
        ))
        assert updated["version"] == 2, updated
        # A unit that breaks its kind's schema is refused (exit 3: an error reply).
        bad = probe("request", "cim.service.ius.units.create", json.dumps({
            "kind": "text-document", "id": "bad-1", "content": {"text": 42},
        }))
        host.succeed(f"if {bad} > /tmp/refused.json; then exit 1; else test $? -eq 3; fi")
        refusal = json.loads(host.succeed("cat /tmp/refused.json"))
        assert refusal["error"]["code"] == "schema_violation", refusal
        state = request(host, "cim.service.ius.units.get", {"id": "full-stack-1"})
        assert state["state_cid"] == updated["state_cid"], (state, updated)

    with subtest("its chain verifies, through the IUS and through cim"):
        verified = json.loads(host.succeed("cim-admin --json units verify full-stack-1"))
        assert verified["problems"] == [] and verified["verified"] == 2, verified
        host.succeed("cim-admin verify --aggregate unit/full-stack-1")
        events = json.loads(host.succeed("cim-admin --json events read unit/full-stack-1"))
        assert [e["cid"] for e in events] == [created["event_cid"], updated["event_cid"]], events
        before = request(host, "cim.service.ius.projection.status", {})

    with subtest("restart the IUS container; the same state comes back"):
        host.succeed("systemctl restart container@cim-ius.service")
        host.wait_for_unit("container@cim-ius.service")
        host.wait_until_succeeds(probe("ping", "cim-ius"))
        host.wait_until_succeeds(probe("request", "cim.service.ius.units.get", '{"id": "full-stack-1"}'))
        after = request(host, "cim.service.ius.projection.status", {})
        assert after["digest"] == before["digest"], (before, after)
        state = request(host, "cim.service.ius.units.get", {"id": "full-stack-1"})
        assert state["state_cid"] == updated["state_cid"], state

    with subtest("and everything verifies again"):
        verified = request(host, "cim.service.ius.units.verify", {"id": "full-stack-1"})
        assert verified["problems"] == [], verified
        host.succeed("cim-admin verify")
  '';
}
