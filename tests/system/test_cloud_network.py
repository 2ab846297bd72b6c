"""Security groups that mean something: a proxy endpoint is a socket inside its VPC's network
namespace, and a client inside a network interface of that VPC (`sluice exec`, or a function's
Hyperplane interface) gets in only when the proxy's security groups admit the interface's groups or
address and the interface's own groups let the connection out. The host is a switchable
exception."""
import hashlib
import os
import subprocess
import zipfile

from sluice_harness import harness
from sluice_harness.cloud import Serve, ca_bundle_file, psql, serve  # noqa: F401
from test_cloud_rds_proxy import DB_PASSWORD, create_proxy, stack, wait_target
from test_cloud_lambda import ROLE


def interface(serve_, subnet, *groups):
    args = ["ec2", "create-network-interface", "--subnet-id", subnet, "--description", "a client"]
    if groups:
        args += ["--groups", *groups]
    return serve_.aws(*args)["NetworkInterface"]


def psql_in(serve_, eni, host, ca, timeout=20):
    """psql through `sluice exec` inside the interface: the CompletedProcess."""
    conninfo = harness.conninfo(host=host, port=5432, user="app", dbname="meals", sslmode="verify-full",
                                sslrootcert=ca, connect_timeout=5)
    env = dict(harness.clean_libpq_env(), PGPASSWORD=DB_PASSWORD)
    return subprocess.run([Serve.binary(), "--endpoint-url", serve_.url, "exec", "--network-interface-id", eni,
                           "--", "psql", "-X", "-At", "-d", conninfo, "-c", "select inet_client_addr() is not null"],
                          capture_output=True, text=True, env=env, timeout=timeout)


def admitted(serve_, eni, host, ca):
    return psql_in(serve_, eni, host, ca).returncode == 0


def make_zip(serve_):
    path = os.path.join(serve_.home, "function.zip")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho hello\n")
    return path


def lambda_interfaces(serve_):
    return serve_.aws("ec2", "describe-network-interfaces", "--filters",
                      "Name=interface-type,Values=lambda")["NetworkInterfaces"]


def test_security_groups_decide_who_reaches_the_proxy(serve):
    s = stack(serve)  # the guide's group, with its self-referencing rule on 5432
    proxy = create_proxy(serve, s)
    serve.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
              "--db-cluster-identifiers", "meal-planner-db")
    wait_target(serve, "AVAILABLE")
    ca = ca_bundle_file(serve)

    # The proxy has an interface of its own in its first subnet, as RDS Proxy does.
    enis = serve.aws("ec2", "describe-network-interfaces")["NetworkInterfaces"]
    assert [(e["RequesterManaged"], e["SubnetId"]) for e in enis] == [(True, s["subnets"][0])]
    proxy_ip = enis[0]["PrivateIpAddress"]

    member = interface(serve, s["subnets"][1], s["group"])
    assert member["VpcId"] == s["vpc"] and member["Groups"][0]["GroupId"] == s["group"]
    assert member["PrivateIpAddress"].startswith("10.0.2.")
    # Inside the interface the endpoint's name is the proxy's VPC address.
    r = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "exec", "--network-interface-id",
                        member["NetworkInterfaceId"], "--", "getent", "hosts", proxy["Endpoint"]],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.split()[0] == proxy_ip, r.stdout + r.stderr
    harness.wait_for(lambda: admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "a member of the group admitted")

    outsider_group = serve.aws("ec2", "create-security-group", "--group-name", "outsider", "--description",
                               "not admitted", "--vpc-id", s["vpc"])["GroupId"]
    outsider = interface(serve, s["subnets"][1], outsider_group)
    refused = psql_in(serve, outsider["NetworkInterfaceId"], proxy["Endpoint"], ca)
    assert refused.returncode != 0, refused.stdout

    # Removing the guide's rule blocks the members' new connections; adding it back admits them.
    serve.aws("ec2", "revoke-security-group-ingress", "--group-id", s["group"], "--protocol", "tcp",
              "--port", "5432", "--source-group", s["group"])
    harness.wait_for(lambda: not admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the member refused once the rule is gone")
    serve.aws("ec2", "authorize-security-group-ingress", "--group-id", s["group"], "--protocol", "tcp",
              "--port", "5432", "--source-group", s["group"])
    harness.wait_for(lambda: admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the member admitted again")

    # Both directions apply: the member's own group must also let the connection out.
    all_out = "IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]"
    serve.aws("ec2", "revoke-security-group-egress", "--group-id", s["group"], "--ip-permissions", all_out)
    harness.wait_for(lambda: not admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the member refused once its group lets nothing out")
    to_proxy = ("--group-id", s["group"], "--protocol", "tcp", "--port", "5432", "--source-group", s["group"])
    serve.aws("ec2", "authorize-security-group-egress", *to_proxy)
    harness.wait_for(lambda: admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the member admitted by an egress rule to the proxy's group")
    serve.aws("ec2", "revoke-security-group-egress", *to_proxy)
    serve.aws("ec2", "authorize-security-group-egress", "--group-id", s["group"], "--ip-permissions", all_out)
    harness.wait_for(lambda: admitted(serve, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the member admitted again with the default egress rule")

    # A function in the VPC gets a Hyperplane interface of its own, with the endpoint names and the
    # same admission as any client.
    function = serve.aws("lambda", "create-function", "--function-name", "in-vpc", "--runtime", "provided.al2023",
                         "--handler", "bootstrap", "--role", ROLE, "--zip-file", f"fileb://{make_zip(serve)}",
                         "--vpc-config", f"SubnetIds={s['subnets'][1]},SecurityGroupIds={s['group']}")
    assert function["VpcConfig"]["SubnetIds"] == [s["subnets"][1]]
    function_eni = lambda_interfaces(serve)[0]
    harness.wait_for(lambda: admitted(serve, function_eni["NetworkInterfaceId"], proxy["Endpoint"], ca), 20,
                     0.5, "the function's interface admitted")

    # A CIDR rule admits by address.
    serve.aws("ec2", "authorize-security-group-ingress", "--group-id", s["group"], "--protocol", "tcp",
              "--port", "5432", "--cidr", outsider["PrivateIpAddress"] + "/32")
    harness.wait_for(lambda: admitted(serve, outsider["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                     "the outsider admitted by its address")

    # The host itself is the documented exception (on by default).
    host = psql(harness.conninfo(host=proxy["Endpoint"], port=5432, user="app", dbname="meals",
                                 sslmode="verify-full", sslrootcert=ca, connect_timeout=5), "select 1", DB_PASSWORD)
    assert host.stdout.strip() == "1"

    # Interfaces in use by a group or subnet keep them; a service's own interface is not the user's.
    r = serve.aws("ec2", "delete-security-group", "--group-id", outsider_group, check=False)
    assert r.returncode != 0 and "DependencyViolation" in r.stderr
    r = serve.aws("ec2", "delete-network-interface", "--network-interface-id", enis[0]["NetworkInterfaceId"],
                  check=False)
    assert r.returncode != 0 and "InvalidParameterValue" in r.stderr
    serve.aws("ec2", "delete-network-interface", "--network-interface-id", outsider["NetworkInterfaceId"])
    gone = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "exec", "--network-interface-id",
                           outsider["NetworkInterfaceId"], "--", "true"], capture_output=True, text=True, timeout=20)
    assert gone.returncode != 0


def test_without_host_access_only_members_get_in():
    serve_ = Serve(extra=("--host-access", "off"))
    try:
        s = stack(serve_)
        proxy = create_proxy(serve_, s)
        serve_.aws("rds", "register-db-proxy-targets", "--db-proxy-name", "meal-planner-proxy",
                   "--db-cluster-identifiers", "meal-planner-db")
        wait_target(serve_, "AVAILABLE")
        ca = ca_bundle_file(serve_)
        host = psql(harness.conninfo(host=proxy["Endpoint"], port=5432, user="app", dbname="meals",
                                     sslmode="verify-full", sslrootcert=ca, connect_timeout=5), "select 1",
                    DB_PASSWORD, check=False)
        assert host.returncode != 0
        member = interface(serve_, s["subnets"][0], s["group"])
        harness.wait_for(lambda: admitted(serve_, member["NetworkInterfaceId"], proxy["Endpoint"], ca), 20, 0.5,
                         "a member admitted")
    finally:
        serve_.stop()
    # Its namespaces (named after a hash of its home) are gone with it.
    tag = "sl" + hashlib.sha256(serve_.home.encode()).hexdigest()[:6]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert tag not in namespaces, namespaces


def test_functions_in_a_vpc_share_hyperplane_interfaces(serve):
    """One requester-managed interface per (subnet, security group set), shared by the functions
    that have the same pair, deleted with the last of them; the user cannot delete it."""
    vpc = serve.aws("ec2", "create-vpc", "--cidr-block", "10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = serve.aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.1.1.0/24")["Subnet"]["SubnetId"]
    groups = [serve.aws("ec2", "create-security-group", "--group-name", name, "--description", name,
                        "--vpc-id", vpc)["GroupId"] for name in ("app", "extra")]
    package = make_zip(serve)

    def create(name, *group_ids):
        serve.aws("lambda", "create-function", "--function-name", name, "--runtime", "provided.al2023",
                  "--handler", "bootstrap", "--role", ROLE, "--zip-file", f"fileb://{package}",
                  "--vpc-config", f"SubnetIds={subnet},SecurityGroupIds={','.join(group_ids)}")

    create("first", *groups)
    create("second", *reversed(groups))  # the same set
    enis = lambda_interfaces(serve)
    assert len(enis) == 1, enis
    eni = enis[0]
    assert (eni["InterfaceType"], eni["RequesterManaged"], eni["SubnetId"], eni["VpcId"]) == \
        ("lambda", True, subnet, vpc)
    assert eni["Description"].startswith("AWS Lambda VPC ENI-first-"), eni["Description"]
    assert sorted(g["GroupId"] for g in eni["Groups"]) == sorted(groups)
    assert serve.aws("ec2", "describe-network-interfaces", "--filters",
                     "Name=interface-type,Values=interface")["NetworkInterfaces"] == []
    # Inside the VPC like any interface: `sluice exec` runs in its namespace.
    inside = subprocess.run([Serve.binary(), "--endpoint-url", serve.url, "exec", "--network-interface-id",
                             eni["NetworkInterfaceId"], "--", "ip", "-4", "-o", "addr", "show", "eth0"],
                            capture_output=True, text=True, timeout=20)
    assert inside.returncode == 0 and eni["PrivateIpAddress"] + "/32" in inside.stdout, inside.stdout + inside.stderr

    create("third", groups[0])  # another set: another interface
    assert len(lambda_interfaces(serve)) == 2
    r = serve.aws("ec2", "delete-network-interface", "--network-interface-id", eni["NetworkInterfaceId"],
                  check=False)
    assert r.returncode != 0 and "InvalidParameterValue" in r.stderr
    r = serve.aws("ec2", "delete-security-group", "--group-id", groups[1], check=False)
    assert r.returncode != 0 and "DependencyViolation" in r.stderr

    serve.aws("lambda", "delete-function", "--function-name", "first")
    assert [e["NetworkInterfaceId"] for e in lambda_interfaces(serve)].count(eni["NetworkInterfaceId"]) == 1
    serve.aws("lambda", "delete-function", "--function-name", "second")
    assert [e["Groups"][0]["GroupId"] for e in lambda_interfaces(serve)] == [groups[0]]
    # Leaving the VPC releases the last one.
    serve.aws("lambda", "update-function-configuration", "--function-name", "third", "--vpc-config",
              "SubnetIds=[],SecurityGroupIds=[]")
    assert lambda_interfaces(serve) == []
    serve.aws("ec2", "delete-security-group", "--group-id", groups[1])
