"""Request body validation of the fake API server (apiserver.py): strict
decoding against the OpenAPI subset, and the hand-coded semantic checks
that give 422 Invalid."""
import json
import os
import re

from api_store import RESOURCES, APIError, bad_request

# The official schemas the fake validates bodies against: a copy of
# shared/reference/k8s-openapi-subset.json kept in the tree (tests/data/),
# so the tests need nothing outside the repository.
SCHEMA_PATH = os.environ.get("MTC_OPENAPI_SUBSET", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "k8s-openapi-subset.json"))

DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# ------------------------------------------------------------------ validation

with open(SCHEMA_PATH) as _f:
    DEFS = json.load(_f)["definitions"]

GO_TYPES = {"string": "string", "integer": "int32", "boolean": "bool", "number": "float64",
            "object": "map[string]interface {}", "array": "[]interface {}"}


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def validate_schema(value, schema, path, unknown, errs, required_missing):
    """Walk VALUE against an OpenAPI v2 SCHEMA: collect unknown fields
    (strict decoding), type errors and missing required fields."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = dict(DEFS.get(name, {}), _def=name)
    if value is None:
        return
    t = schema.get("type")
    fmt = schema.get("format")
    if fmt == "int-or-string":
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            errs.append((path, json_type(value), "intstr.IntOrString"))
        return
    if schema.get("_def", "").endswith("Quantity"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errs.append((path, json_type(value), "resource.Quantity"))
        return
    if schema.get("_def", "").endswith(("RawExtension", "FieldsV1")):
        return
    if t == "object" or "properties" in schema:
        if not isinstance(value, dict):
            errs.append((path, json_type(value), "struct" if "properties" in schema else "map"))
            return
        props = schema.get("properties")
        if props is None:
            addl = schema.get("additionalProperties")
            if isinstance(addl, dict):
                for k, v in value.items():
                    validate_schema(v, addl, "%s[%s]" % (path, k) if path else k, unknown, errs,
                                    required_missing)
            return
        for k, v in value.items():
            sub = "%s.%s" % (path, k) if path else k
            if k not in props:
                unknown.append(sub)
                continue
            validate_schema(v, props[k], sub, unknown, errs, required_missing)
        for r in schema.get("required", []):
            if value.get(r) in (None, "", []) and not (r == "imageID" or r == "restartCount"):
                required_missing.append("%s.%s" % (path, r) if path else r)
        return
    if t == "array":
        if not isinstance(value, list):
            errs.append((path, json_type(value), "[]" + schema.get("items", {}).get("$ref", "x").split(".")[-1]))
            return
        for i, v in enumerate(value):
            validate_schema(v, schema.get("items", {}), "%s[%d]" % (path, i), unknown, errs, required_missing)
        return
    if t == "string" and not isinstance(value, str):
        errs.append((path, json_type(value), "string"))
    elif t == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        errs.append((path, json_type(value), "int32" if fmt == "int32" else "int64"))
    elif t == "boolean" and not isinstance(value, bool):
        errs.append((path, json_type(value), "bool"))
    elif t == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        errs.append((path, json_type(value), "float64"))


def decode_body(raw, kind, group_version, field_validation):
    """Decode a JSON request body strictly. Returns (obj, warnings)."""
    dups = []

    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                dups.append(k)
            seen[k] = v
        return seen
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request("%s in version \"%s\" cannot be handled as a %s: %s"
                          % (kind, group_version.split("/")[-1], kind, e))
    if not isinstance(obj, dict):
        raise bad_request("%s in version \"%s\" cannot be handled as a %s: json: cannot unmarshal %s into Go value "
                          "of type struct" % (kind, group_version.split("/")[-1], kind, json_type(obj)))
    if obj.get("kind") not in (None, kind) or obj.get("apiVersion") not in (None, group_version):
        raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                          % (obj.get("apiVersion"), group_version) if obj.get("apiVersion") != group_version
                          else "the kind in the data (%s) does not match the expected kind (%s)"
                          % (obj.get("kind"), kind))
    schema = RESOURCES[{"Pod": "pods", "Job": "jobs"}[kind]]["schema"]
    unknown, errs, req = [], [], []
    validate_schema(obj, {"$ref": "#/definitions/" + schema}, "", unknown, errs, req)
    ver = group_version.split("/")[-1]
    if errs:
        p, have, want = errs[0]
        raise bad_request('%s in version "%s" cannot be handled as a %s: json: cannot unmarshal %s into Go struct '
                          'field %s of type %s' % (kind, ver, kind, have, p, want))
    problems = ['unknown field "%s"' % u for u in unknown] + ['duplicate field "%s"' % d for d in dups]
    warnings = []
    if problems:
        if field_validation == "Strict":
            raise bad_request('%s in version "%s" cannot be handled as a %s: strict decoding error: %s'
                              % (kind, ver, kind, ", ".join(problems)))
        if field_validation != "Ignore":
            warnings = problems
    return obj, warnings, req


def invalid(kind, plural, name, causes):
    msg = '%s "%s" is invalid: %s' % (kind, name, "; ".join("%s: %s" % (c["field"], c["message"]) for c in causes)) \
        if len(causes) == 1 else '%s "%s" is invalid: [%s]' % (
            kind, name, ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes))
    return APIError(422, "Invalid", msg, {"name": name, "group": RESOURCES[plural]["group"], "kind": kind,
                                          "causes": causes})


def semantic_checks(kind, plural, obj, req_missing):
    md = obj.setdefault("metadata", {})
    name = md.get("name") or md.get("generateName") or ""
    causes = []
    for r in req_missing:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": r})
    if not md.get("name") and not md.get("generateName"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                       "field": "metadata.name"})
    elif md.get("name") and (len(md["name"]) > 253 or not DNS1123_SUB.match(md["name"])):
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": 'Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case '
                                  "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                                  "character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*"
                                  "[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" % md["name"]})
    for k, v in (md.get("labels") or {}).items():
        if len(v) > 63 or (v and not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", v)):
            causes.append({"reason": "FieldValueInvalid", "field": "metadata.labels",
                           "message": 'Invalid value: "%s": a valid label must be an empty string or consist of '
                                      "alphanumeric characters, '-', '_' or '.'" % v})
    pspec, pre = (obj.get("spec") or {}), "spec"
    if kind == "Job":
        pspec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        pre = "spec.template.spec"
        rp = pspec.get("restartPolicy")
        if rp not in ("Never", "OnFailure"):
            causes.append({"reason": "FieldValueNotSupported", "field": pre + ".restartPolicy",
                           "message": 'Unsupported value: "%s": supported values: "OnFailure", "Never"' % (rp or "Always")
                           if rp else 'Required value: valid values: "OnFailure", "Never"'})
    if not pspec.get("containers") and not any(c["field"] == pre + ".containers" for c in causes):
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": pre + ".containers"})
    seen = set()
    for i, c in enumerate(pspec.get("containers") or []):
        cn = c.get("name") or ""
        if cn and not DNS1123_LABEL.match(cn):
            causes.append({"reason": "FieldValueInvalid", "field": "%s.containers[%d].name" % (pre, i),
                           "message": 'Invalid value: "%s": a lowercase RFC 1123 label must consist of lower case '
                                      "alphanumeric characters or '-'" % cn})
        if cn in seen:
            causes.append({"reason": "FieldValueDuplicate", "field": "%s.containers[%d].name" % (pre, i),
                           "message": 'Duplicate value: "%s"' % cn})
        seen.add(cn)
        if not c.get("image"):
            causes.append({"reason": "FieldValueRequired", "field": "%s.containers[%d].image" % (pre, i),
                           "message": "Required value"})
    if causes:
        raise invalid(kind, plural, name, causes)
