#!/usr/bin/env python3
"""Writes the `sluice` CLI's service models as a C++ source file.

The CLI speaks the aws CLI's language: its operation and flag names, and the shapes that say how
a request is serialized and a response read, come from botocore's service models, the same files
the aws CLI and boto3 read. This script runs at build time with whichever Python has botocore
(Debian's python3-botocore will do), keeps only the operations `sluice serve` implements and the
shapes they reach, drops the documentation, and adds the CLI names computed by botocore's own
xform_name. Nothing of botocore is copied into the source tree.

usage: cli-models.py OUTPUT.cpp
"""
import glob
import gzip
import json
import os
import sys

import botocore
from botocore import xform_name

# What `sluice serve` implements, per service. A system test checks that each one is served.
SUPPORTED = {
    "ec2": ["CreateVpc", "CreateSubnet", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress",
            "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeSecurityGroupRules",
            "DeleteVpc", "DeleteSubnet", "DeleteSecurityGroup", "CreateNetworkInterface",
            "DescribeNetworkInterfaces", "DeleteNetworkInterface"],
    "iam": ["CreateRole", "GetRole", "ListRoles", "DeleteRole", "PutRolePolicy", "GetRolePolicy",
            "DeleteRolePolicy", "ListRolePolicies", "CreatePolicy", "GetPolicy", "DeletePolicy",
            "AttachRolePolicy", "DetachRolePolicy", "ListAttachedRolePolicies"],
    "lambda": ["CreateFunction", "GetFunction", "GetFunctionConfiguration",
               "UpdateFunctionConfiguration", "ListFunctions", "DeleteFunction", "Invoke",
               "UpdateFunctionCode", "PutFunctionConcurrency", "GetFunctionConcurrency",
               "DeleteFunctionConcurrency", "GetAccountSettings"],
    "logs": ["DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents",
             "CreateLogGroup", "CreateLogStream", "PutLogEvents", "DeleteLogGroup"],
    "rds": ["CreateDBCluster", "CreateDBInstance", "DeleteDBCluster", "DeleteDBInstance",
            "DescribeDBClusters", "DescribeDBInstances", "ModifyDBCluster", "RebootDBInstance",
            "CreateDBProxy", "CreateDBProxyEndpoint", "DeleteDBProxy", "DeleteDBProxyEndpoint",
            "DeregisterDBProxyTargets", "DescribeDBProxies", "DescribeDBProxyEndpoints",
            "DescribeDBProxyTargetGroups", "DescribeDBProxyTargets", "ModifyDBProxy",
            "ModifyDBProxyTargetGroup", "RegisterDBProxyTargets"],
    "secretsmanager": ["CreateSecret", "GetSecretValue", "PutSecretValue", "DescribeSecret",
                       "ListSecrets", "DeleteSecret"],
    "sts": ["GetCallerIdentity", "AssumeRole"],
}

# The parts of a shape that serializing, parsing and help need.
SHAPE_KEYS = ("type", "members", "required", "member", "key", "value", "flattened", "payload",
              "timestampFormat", "locationName", "enum")
MEMBER_KEYS = ("shape", "location", "locationName", "queryName", "flattened", "idempotencyToken",
               "jsonvalue")


def load(service, kind="service-2"):
    data = os.path.join(os.path.dirname(botocore.__file__), "data", service)
    versions = sorted(v for v in os.listdir(data) if glob.glob(os.path.join(data, v, "service-2.json*")))
    paths = sorted(glob.glob(os.path.join(data, versions[-1], kind + ".json*")))
    if not paths:
        return {}
    with (gzip.open(paths[0], "rt") if paths[0].endswith(".gz") else open(paths[0])) as f:
        return json.load(f)


def as_list(value):
    return value if isinstance(value, list) else [value]


def reach(model, name, into):
    if name in into:
        return
    shape = model["shapes"][name]
    kept = {k: shape[k] for k in SHAPE_KEYS if k in shape}
    into[name] = kept
    if "members" in shape:
        kept["members"] = {}
        for member, ref in shape["members"].items():
            kept["members"][member] = {k: ref[k] for k in MEMBER_KEYS if k in ref}
            kept["members"][member]["cli"] = xform_name(member, "-")
            reach(model, ref["shape"], into)
    for part in ("member", "key", "value"):
        if part in shape:
            kept[part] = {k: shape[part][k] for k in MEMBER_KEYS if k in shape[part]}
            reach(model, shape[part]["shape"], into)


def service_model(service, operations):
    model = load(service)
    pagination = load(service, "paginators-1").get("pagination", {})
    meta = model["metadata"]
    out = {"protocol": meta["protocol"], "apiVersion": meta["apiVersion"],
           "signingName": meta.get("signingName", meta["endpointPrefix"]),
           "targetPrefix": meta.get("targetPrefix", ""), "jsonVersion": meta.get("jsonVersion", ""),
           "operations": {}, "shapes": {}}
    for name in operations:
        op = model["operations"][name]
        entry = {"name": name, "method": op["http"]["method"], "requestUri": op["http"]["requestUri"]}
        if "input" in op:
            entry["input"] = op["input"]["shape"]
            reach(model, op["input"]["shape"], out["shapes"])
        if "output" in op:
            entry["output"] = op["output"]["shape"]
            if "resultWrapper" in op["output"]:
                entry["resultWrapper"] = op["output"]["resultWrapper"]
            reach(model, op["output"]["shape"], out["shapes"])
        if name in pagination:
            # The aws CLI follows the tokens itself and prints the pages as one result.
            p = pagination[name]
            entry["paginator"] = {"input_token": as_list(p["input_token"]),
                                  "output_token": as_list(p["output_token"]),
                                  "more_results": p.get("more_results", ""),
                                  "limit_key": p.get("limit_key", ""),
                                  "result_key": as_list(p["result_key"])}
        out["operations"][xform_name(name, "-")] = entry
    return out


def main():
    models = {service: service_model(service, ops) for service, ops in SUPPORTED.items()}
    text = json.dumps(models, separators=(",", ":"), sort_keys=False)
    delimiter = "sluicemodel"
    assert ")" + delimiter not in text
    chunks = [text[i:i + 16000] for i in range(0, len(text), 16000)]
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write("// Generated by scripts/cli-models.py from botocore %s. Do not edit.\n" % botocore.__version__)
        out.write('#include "cli/service_model.hpp"\n\nnamespace sluice::cli {\n\n')
        out.write("std::string embedded_service_models() {\n  std::string text;\n")
        for chunk in chunks:
            out.write('  text += R"%s(%s)%s";\n' % (delimiter, chunk, delimiter))
        out.write("  return text;\n}\n\n}  // namespace sluice::cli\n")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])


if __name__ == "__main__":
    main()
