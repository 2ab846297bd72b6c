"""`sluice serve` as EC2's network API (EC2 query protocol), driven by the aws CLI: VPCs, subnets,
security groups and their rules, including the guide's self-referencing 5432 rule."""
import re

from sluice_harness.cloud import post_form, serve  # noqa: F401 - the fixture


def test_vpc_subnets_and_the_guides_security_group_rule(serve):
    vpc = serve.aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16",
                    "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=meal-planner}]")["Vpc"]
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", vpc["VpcId"]) and vpc["CidrBlock"] == "10.0.0.0/16"
    assert vpc["Tags"] == [{"Key": "Name", "Value": "meal-planner"}]
    vpc_id = vpc["VpcId"]
    a = serve.aws("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.0.1.0/24",
                  "--availability-zone", "us-east-1a")["Subnet"]
    b = serve.aws("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.0.2.0/24",
                  "--availability-zone", "us-east-1b")["Subnet"]
    assert a["VpcId"] == vpc_id and a["AvailableIpAddressCount"] == 251 and b["AvailabilityZone"] == "us-east-1b"
    subnets = serve.aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc_id}")["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == ["10.0.1.0/24", "10.0.2.0/24"]

    sg = serve.aws("ec2", "create-security-group", "--group-name", "meal-planner-sg",
                   "--description", "proxy and functions", "--vpc-id", vpc_id)["GroupId"]
    # The guide's rule: the group admits its own members on 5432.
    added = serve.aws("ec2", "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp",
                      "--port", "5432", "--source-group", sg)
    assert added["Return"] is True and added["SecurityGroupRules"][0]["ReferencedGroupInfo"]["GroupId"] == sg
    serve.aws("ec2", "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp",
              "--port", "5432", "--cidr", "192.168.7.9/24")
    group = serve.aws("ec2", "describe-security-groups", "--group-ids", sg)["SecurityGroups"][0]
    assert group["GroupName"] == "meal-planner-sg" and group["VpcId"] == vpc_id
    [permission] = group["IpPermissions"]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"]) == ("tcp", 5432, 5432)
    assert [g["GroupId"] for g in permission["UserIdGroupPairs"]] == [sg]
    assert [r["CidrIp"] for r in permission["IpRanges"]] == ["192.168.7.0/24"]  # canonicalized
    assert group["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    rules = serve.aws("ec2", "describe-security-group-rules", "--filters", f"Name=group-id,Values={sg}")
    assert sum(not r["IsEgress"] for r in rules["SecurityGroupRules"]) == 2

    dup = serve.aws("ec2", "authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp",
                    "--port", "5432", "--source-group", sg, check=False)
    assert dup.returncode != 0 and "InvalidPermission.Duplicate" in dup.stderr
    serve.aws("ec2", "revoke-security-group-ingress", "--group-id", sg, "--protocol", "tcp",
              "--port", "5432", "--source-group", sg)
    again = serve.aws("ec2", "revoke-security-group-ingress", "--group-id", sg, "--protocol", "tcp",
                      "--port", "5432", "--source-group", sg, check=False)
    assert again.returncode != 0 and "InvalidPermission.NotFound" in again.stderr
    names = {g["GroupName"] for g in serve.aws("ec2", "describe-security-groups", "--filters",
                                               f"Name=vpc-id,Values={vpc_id}")["SecurityGroups"]}
    assert names == {"default", "meal-planner-sg"}

    busy = serve.aws("ec2", "delete-vpc", "--vpc-id", vpc_id, check=False)
    assert busy.returncode != 0 and "DependencyViolation" in busy.stderr
    serve.aws("ec2", "delete-security-group", "--group-id", sg)
    for subnet in (a, b):
        serve.aws("ec2", "delete-subnet", "--subnet-id", subnet["SubnetId"])
    serve.aws("ec2", "delete-vpc", "--vpc-id", vpc_id)
    assert serve.aws("ec2", "describe-vpcs")["Vpcs"] == []


def test_ec2_errors(serve):
    vpc_id = serve.aws("ec2", "create-vpc", "--cidr-block", "10.1.0.0/16")["Vpc"]["VpcId"]
    for args, code in [
        (["create-vpc", "--cidr-block", "10.0.0.0/8"], "InvalidVpc.Range"),
        (["create-subnet", "--vpc-id", "vpc-00000000000000000", "--cidr-block", "10.1.1.0/24"], "InvalidVpcID.NotFound"),
        (["create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.2.1.0/24"], "InvalidSubnet.Range"),
        (["describe-security-groups", "--group-ids", "sg-00000000000000000"], "InvalidGroup.NotFound"),
        (["authorize-security-group-ingress", "--group-id", "sg-00000000000000000", "--protocol", "tcp",
          "--port", "5432", "--cidr", "10.0.0.0/8"], "InvalidGroup.NotFound"),
    ]:
        r = serve.aws("ec2", *args, check=False)
        assert r.returncode != 0 and code in r.stderr, (args, r.stderr)
    serve.aws("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.1.1.0/24")
    overlap = serve.aws("ec2", "create-subnet", "--vpc-id", vpc_id, "--cidr-block", "10.1.1.128/25", check=False)
    assert overlap.returncode != 0 and "InvalidSubnet.Conflict" in overlap.stderr
    serve.aws("ec2", "create-security-group", "--group-name", "g", "--description", "d", "--vpc-id", vpc_id)
    dup = serve.aws("ec2", "create-security-group", "--group-name", "g", "--description", "d", "--vpc-id", vpc_id,
                    check=False)
    assert dup.returncode != 0 and "InvalidGroup.Duplicate" in dup.stderr
    group = serve.aws("ec2", "describe-security-groups", "--filters", "Name=group-name,Values=g")["SecurityGroups"][0]
    status, text = post_form(serve, f"Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId={group['GroupId']}"
                             "&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=12abc&IpPermissions.1.ToPort=5432"
                             "&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8")
    assert status == 400 and "<Code>InvalidParameterValue</Code>" in text
    status, text = post_form(serve, "Action=CreateVpc&Version=2016-11-15")
    assert status == 400 and "<Code>MissingParameter</Code>" in text and "CidrBlock" in text
    assert "<Errors><Error>" in text
    # Nothing half-created.
    assert len(serve.aws("ec2", "describe-vpcs")["Vpcs"]) == 1
    assert len(serve.aws("ec2", "describe-subnets")["Subnets"]) == 1
