# Each component in its own container: it starts, reaches NATS through its
# private link as its own user, serves its micro service (`$SRV.PING`) and
# registers with the Component Registry. A container sees its own password
# and nobody else's.
{ common }:
{
  name = "cim-components";

  nodes.host = common.componentContainers;

  testScript = common.helpers + ''
    COMPONENTS = {"registry": 9101, "ius": 9102}

    start_all()
    host.wait_for_unit("nats.service")

    for name, port in COMPONENTS.items():
        container = f"cim-{name}"
        with subtest(f"{container} runs in its container"):
            host.wait_for_unit(f"container@{container}.service")
            host.wait_until_succeeds(f"nixos-container run {container} -- systemctl is-active cim-{name}.service")
            host.wait_until_succeeds(f"nixos-container run {container} -- curl -sf http://127.0.0.1:{port}/readyz")

        with subtest(f"{container} serves its micro service"):
            host.wait_until_succeeds(probe("ping", container))
            reply = json.loads(host.succeed(probe("ping", container)).splitlines()[0])
            assert reply["name"] == container, reply

        with subtest(f"{container} holds its own password only"):
            host.succeed(f"nixos-container run {container} -- test -r {SECRETS}/{name}/nats-password")
            for other in ["admin"] + [o for o in COMPONENTS if o != name]:
                host.fail(f"nixos-container run {container} -- test -e {SECRETS}/{other}/nats-password")

    with subtest("both are registered with the Component Registry"):
        host.wait_until_succeeds(probe("request", "cim.service.registry.components.list", '{"name": "cim-ius"}') + " | grep -q cim-ius")
        listed = request(host, "cim.service.registry.components.list", {})
        names = {c["registration"]["name"] for c in listed["components"]}
        assert {"cim-registry", "cim-ius"} <= names, names
        graph = request(host, "cim.service.registry.components.graph", {})
        assert {n["name"] for n in graph["nodes"]} >= {"cim-registry", "cim-ius"}, graph
  '';
}
