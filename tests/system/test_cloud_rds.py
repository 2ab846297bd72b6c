"""`sluice serve` as RDS for Aurora Serverless v2, driven by the aws CLI: clusters and instances
that are real PostgreSQL servers (owned by the postgres user, TLS on, Aurora's max_connections),
reached by their endpoint names with sslmode=verify-full, kept across restarts."""
import os
import socket

from sluice_harness import harness
from sluice_harness.cloud import Serve, ca_bundle_file, create_aurora, post_form, psql, serve, wait_available  # noqa: F401

PASSWORD = "meal-planner-pw-1"


def connect_info(host, ca, dbname="meals", sslmode="verify-full"):
    return harness.conninfo(host=host, port=5432, user="app", dbname=dbname, sslmode=sslmode,
                            sslrootcert=ca, connect_timeout=10)


def postgres_pids(home):
    """PostgreSQL servers whose data is under `home`."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
                    if b"postgres\0-D\0" + home.encode() in cmdline:
                        out.append(int(pid))
            except OSError:
                pass
    return out


def test_cluster_and_instance_are_a_real_postgresql(serve):
    cluster = serve.aws("rds", "create-db-cluster", "--db-cluster-identifier", "Meal-Planner-DB",
                        "--engine", "aurora-postgresql", "--master-username", "app",
                        "--master-user-password", PASSWORD, "--database-name", "meals",
                        "--serverless-v2-scaling-configuration", "MinCapacity=0.5,MaxCapacity=4")["DBCluster"]
    assert cluster["DBClusterIdentifier"] == "meal-planner-db"  # RDS keeps identifiers in lower case
    assert cluster["Status"] == "creating"
    assert cluster["DBClusterArn"] == "arn:aws:rds:us-east-1:000000000000:cluster:meal-planner-db"
    assert cluster["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4.0}
    host_suffix = cluster["Endpoint"].split(".", 1)[1]
    region_id = host_suffix.split(".")[0].removeprefix("cluster-")
    assert len(region_id) == 12 and region_id.isalnum() and region_id.islower()
    assert cluster["Endpoint"] == f"meal-planner-db.cluster-{region_id}.us-east-1.rds.sluice.internal"
    assert cluster["ReaderEndpoint"] == f"meal-planner-db.cluster-ro-{region_id}.us-east-1.rds.sluice.internal"

    instance = serve.aws("rds", "create-db-instance", "--db-instance-identifier", "meal-planner-db-1",
                         "--db-cluster-identifier", "meal-planner-db", "--engine", "aurora-postgresql",
                         "--db-instance-class", "db.serverless")["DBInstance"]
    assert instance["DBInstanceStatus"] == "creating" and "Endpoint" not in instance
    instance = wait_available(serve, "meal-planner-db-1")
    assert instance["Endpoint"] == {"Address": f"meal-planner-db-1.{region_id}.us-east-1.rds.sluice.internal",
                                    "Port": 5432, "HostedZoneId": "Z2R2ITUGPM61AM"}
    assert instance["DBClusterIdentifier"] == "meal-planner-db" and instance["DBInstanceClass"] == "db.serverless"
    described = serve.aws("rds", "describe-db-clusters", "--db-cluster-identifier", "meal-planner-db")["DBClusters"][0]
    assert described["Status"] == "available"
    assert described["DBClusterMembers"] == [{"DBInstanceIdentifier": "meal-planner-db-1", "IsClusterWriter": True,
                                              "DBClusterParameterGroupStatus": "in-sync", "PromotionTier": 1}]

    ca = ca_bundle_file(serve)
    # Every endpoint name reaches the writer, verified against sluice's CA, over TLS.
    for host in (cluster["Endpoint"], cluster["ReaderEndpoint"], instance["Endpoint"]["Address"]):
        row = psql(connect_info(host, ca),
                   "select current_database(), current_user, ssl, setting from pg_stat_ssl, pg_settings "
                   "where pid = pg_backend_pid() and name = 'max_connections'", PASSWORD).stdout.strip()
        assert row == "meals|app|t|823"  # Aurora's max_connections for MaxCapacity 4
    # The certificate names the endpoint: another name for the same address does not verify.
    address = socket.gethostbyname(cluster["Endpoint"])
    assert address.startswith("127.")
    wrong = psql(connect_info(address, ca), "select 1", PASSWORD, check=False)
    assert wrong.returncode != 0 and "does not match host name" in wrong.stderr
    bad_password = psql(connect_info(cluster["Endpoint"], ca), "select 1", "not-the-password", check=False)
    assert bad_password.returncode != 0 and "password authentication failed" in bad_password.stderr

    # PostgreSQL runs as postgres, its data owned by postgres, under the state folder.
    pids = postgres_pids(serve.home)
    assert pids, "no postgres process"
    assert any(os.stat(f"/proc/{pid}").st_uid == harness.postgres_uid_gid()[0] for pid in pids)
    data = os.path.join(serve.home, "rds", "meal-planner-db", "data")
    assert os.stat(data).st_uid == harness.postgres_uid_gid()[0]


def test_errors_leave_nothing_behind(serve):
    create_aurora(serve, "good", PASSWORD)
    cases = [
        (["create-db-cluster", "--db-cluster-identifier", "good", "--engine", "aurora-postgresql",
          "--master-username", "app", "--master-user-password", PASSWORD], "DBClusterAlreadyExistsFault"),
        (["create-db-cluster", "--db-cluster-identifier", "1bad", "--engine", "aurora-postgresql",
          "--master-username", "app", "--master-user-password", PASSWORD], "InvalidParameterValue"),
        (["create-db-cluster", "--db-cluster-identifier", "nouser", "--engine", "aurora-postgresql",
          "--master-user-password", PASSWORD], "InvalidParameterValue"),
        (["create-db-cluster", "--db-cluster-identifier", "shortpw", "--engine", "aurora-postgresql",
          "--master-username", "app", "--master-user-password", "short"], "InvalidParameterValue"),
        (["create-db-cluster", "--db-cluster-identifier", "mysql", "--engine", "aurora-mysql",
          "--master-username", "app", "--master-user-password", PASSWORD], "InvalidParameterValue"),
        (["create-db-cluster", "--db-cluster-identifier", "badacu", "--engine", "aurora-postgresql",
          "--master-username", "app", "--master-user-password", PASSWORD,
          "--serverless-v2-scaling-configuration", "MinCapacity=8,MaxCapacity=4"], "InvalidParameterValue"),
        (["create-db-cluster", "--db-cluster-identifier", "badsg", "--engine", "aurora-postgresql",
          "--master-username", "app", "--master-user-password", PASSWORD,
          "--vpc-security-group-ids", "sg-0123456789abcdef0"], "InvalidParameterValue"),
        (["create-db-instance", "--db-instance-identifier", "orphan", "--db-cluster-identifier", "nosuch",
          "--engine", "aurora-postgresql", "--db-instance-class", "db.serverless"], "DBClusterNotFoundFault"),
        (["create-db-instance", "--db-instance-identifier", "good-1", "--db-cluster-identifier", "good",
          "--engine", "aurora-postgresql", "--db-instance-class", "db.serverless"], "DBInstanceAlreadyExists"),
        (["create-db-instance", "--db-instance-identifier", "second", "--db-cluster-identifier", "good",
          "--engine", "aurora-postgresql", "--db-instance-class", "db.serverless"], "InvalidParameterCombination"),
        (["describe-db-clusters", "--db-cluster-identifier", "nosuch"], "DBClusterNotFoundFault"),
        (["describe-db-instances", "--db-instance-identifier", "nosuch"], "DBInstanceNotFound"),
        (["delete-db-cluster", "--db-cluster-identifier", "good", "--skip-final-snapshot"],
         "InvalidDBClusterStateFault"),
        (["delete-db-instance", "--db-instance-identifier", "nosuch"], "DBInstanceNotFound"),
    ]
    for args, code in cases:
        r = serve.aws("rds", *args, check=False)
        assert r.returncode != 0 and f"({code})" in r.stderr, (args, r.stderr)
    assert [c["DBClusterIdentifier"] for c in serve.aws("rds", "describe-db-clusters")["DBClusters"]] == ["good"]
    assert [i["DBInstanceIdentifier"] for i in serve.aws("rds", "describe-db-instances")["DBInstances"]] == ["good-1"]
    assert sorted(os.listdir(os.path.join(serve.home, "rds"))) == ["good"]
    # The HTTP status is the model's: 404 for a cluster that is not there.
    status, body = post_form(serve, "Action=DescribeDBClusters&Version=2014-10-31&DBClusterIdentifier=nosuch")
    assert status == 404 and "<Code>DBClusterNotFoundFault</Code>" in body
    status, body = post_form(serve, "Action=CreateDBCluster&Version=2014-10-31&DBClusterIdentifier=x")
    assert status == 400 and "Engine" in body


def test_delete_stops_postgresql_and_removes_its_data(serve):
    instance = create_aurora(serve, "doomed", PASSWORD)
    address = socket.gethostbyname(instance["Endpoint"]["Address"])
    harness.wait_port(address, 5432, 5)
    deleted = serve.aws("rds", "delete-db-instance", "--db-instance-identifier", "doomed-1")["DBInstance"]
    assert deleted["DBInstanceStatus"] == "deleting"
    with socket.socket() as s:
        assert s.connect_ex((address, 5432)) != 0, "PostgreSQL still listens after delete-db-instance"
    no_snapshot = serve.aws("rds", "delete-db-cluster", "--db-cluster-identifier", "doomed", check=False)
    assert no_snapshot.returncode != 0 and "SkipFinalSnapshot" in no_snapshot.stderr
    serve.aws("rds", "delete-db-cluster", "--db-cluster-identifier", "doomed", "--skip-final-snapshot")
    assert not os.path.exists(os.path.join(serve.home, "rds", "doomed"))
    assert serve.aws("rds", "describe-db-clusters")["DBClusters"] == []
    with open("/etc/hosts") as f:
        assert "doomed" not in f.read()


def test_restart_keeps_the_database_and_its_data(serve):
    instance = create_aurora(serve, "durable", PASSWORD)
    ca = ca_bundle_file(serve)
    host = instance["Endpoint"]["Address"]
    psql(connect_info(host, ca), "create table meal(name text); insert into meal values ('soup')", PASSWORD)
    assert serve.stop() == 0
    assert postgres_pids(serve.home) == [], "sluice serve left PostgreSQL running"
    with open("/etc/hosts") as f:
        assert host not in f.read(), "the names stay published after sluice serve stopped"

    again = Serve(home=serve.home)
    serve.proc, serve.port, serve.url = again.proc, again.port, again.url
    wait_available(serve, "durable-1")
    assert psql(connect_info(host, ca), "select name from meal", PASSWORD).stdout.strip() == "soup"
