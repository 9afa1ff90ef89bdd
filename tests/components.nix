# Each component of components.toml in its own container: it starts, reaches
# NATS through its private link as its own user, serves its micro service
# (`$SRV.PING`) and registers with the Component Registry. The container runs
# in its own user namespace, and holds its own password (a credential passed
# by systemd-nspawn) and nobody else's.
{ common }:
{
  name = "cim-components";

  nodes.host = common.componentContainers;

  testScript = common.helpers + ''
    start_all()
    host.wait_for_unit("nats.service")

    for name, component in COMPONENTS.items():
        container = f"cim-{name}"
        package, user, port = component["package"], component["user"], component["http_port"]
        with subtest(f"{container} runs in its container"):
            host.wait_for_unit(f"container@{container}.service")
            host.wait_until_succeeds(f"nixos-container run {container} -- systemctl is-active {package}.service")
            host.wait_until_succeeds(f"nixos-container run {container} -- curl -sf http://127.0.0.1:{port}/readyz")

        with subtest(f"{container} has private users: its root is not the host's"):
            uid_map = host.succeed(f"nixos-container run {container} -- cat /proc/self/uid_map").split()
            assert uid_map[0] == "0" and uid_map[1] != "0", uid_map

        with subtest(f"{container} serves its micro service"):
            host.wait_until_succeeds(probe("ping", package))
            reply = json.loads(host.succeed(probe("ping", package)).splitlines()[0])
            assert reply["name"] == package, reply

        with subtest(f"{container} holds its own password only"):
            own = host.succeed(f"cat {SECRETS}/{user}/nats-password").strip()
            inside = host.succeed(f"nixos-container run {container} -- cat {CONTAINER_PASSWORD}").strip()
            assert inside == own, f"{container}'s credential is not {user}'s password"
            # No password file of the host is visible inside.
            host.fail(f"nixos-container run {container} -- test -e {SECRETS}")
            # It logs in as its user, and as no other with that password.
            host.succeed(probe("login", user=user, container=container))
            for other in ["admin"] + [c["user"] for c in COMPONENTS.values() if c["user"] != user]:
                status = exit_code(host, probe("login", user=other, container=container))
                assert status == 4, f"{container}'s password as {other}: exit {status}, not 4 (refused)"

    with subtest("all are registered with the Component Registry"):
        packages = {c["package"] for c in COMPONENTS.values()}
        for package in packages:
            host.wait_until_succeeds(
                probe("request", "cim.service.registry.components.list", json.dumps({"name": package}))
                + f" | grep -q {package}"
            )
        listed = request(host, "cim.service.registry.components.list", {})
        names = {c["registration"]["name"] for c in listed["components"]}
        assert packages <= names, names
        graph = request(host, "cim.service.registry.components.graph", {})
        assert {n["name"] for n in graph["nodes"]} >= packages, graph
  '';
}
