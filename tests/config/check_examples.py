#!/usr/bin/env python3
"""config.schema: every example config (tests/config/examples/ and the
config code blocks of README.md) validates against
deploy/mirrord-trace.schema.json and loads with `mirrord-trace
verify-config` (exit 0). YAML and TOML examples are converted to JSON for
the schema check. Also checks that every field verify-config prints is
described by the schema, so the schema and the field table cannot drift.

usage: check_examples.py SOURCE_DIR MIRRORD_TRACE_BINARY
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib

import jsonschema
import yaml

src, binary = sys.argv[1], sys.argv[2]
schema = json.load(open(os.path.join(src, "deploy/mirrord-trace.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failures = []
checked = 0


def to_json(text, fmt):
    if fmt == "json":
        return json.loads(text)
    if fmt in ("yaml", "yml"):
        return yaml.safe_load(text) or {}
    if fmt == "toml":
        return tomllib.loads(text)
    raise ValueError(fmt)


def render(text):
    """The templates mirrord-trace supports, with their defaults (as
    verify-config renders them without the variables set)."""
    text = re.sub(r"\{\{\s*get_env\(name=\"[^\"]*\",\s*default=\"([^\"]*)\"\)\s*\}\}",
                  r"\1", text)
    return re.sub(r"\{\{\s*key\s*\}\}", "session-key", text)


def check(name, text, fmt):
    global checked
    checked += 1
    try:
        doc = to_json(render(text), fmt)
    except Exception as e:  # noqa: BLE001 - report any parser's error
        failures.append(f"{name}: does not parse as {fmt}: {e}")
        return
    for err in validator.iter_errors(doc):
        path = ".".join(str(p) for p in err.absolute_path) or "(root)"
        failures.append(f"{name}: schema: {path}: {err.message}")
    ext = {"yml": "yaml"}.get(fmt, fmt)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"example.{ext}")
        with open(path, "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORD_")}
        r = subprocess.run([binary, "verify-config", "-f", path], capture_output=True,
                           text=True, env=env, timeout=30)
        if r.returncode != 0:
            failures.append(f"{name}: verify-config exit {r.returncode}: {r.stderr.strip()}")


examples = os.path.join(src, "tests/config/examples")
for fn in sorted(os.listdir(examples)):
    fmt = fn.rsplit(".", 1)[-1]
    with open(os.path.join(examples, fn)) as f:
        check(f"tests/config/examples/{fn}", f.read(), fmt)

# README: fenced blocks tagged json, yaml or toml are configs.
readme = open(os.path.join(src, "README.md")).read()
for i, m in enumerate(re.finditer(r"^```(json|yaml|yml|toml)\n(.*?)^```", readme, re.M | re.S)):
    line = readme[: m.start()].count("\n") + 1
    check(f"README.md:{line}", m.group(2), m.group(1))

# Every field verify-config knows is in the schema.
r = subprocess.run([binary, "verify-config"], capture_output=True, text=True,
                   env={"PATH": os.environ.get("PATH", "")}, timeout=30)
if r.returncode != 0:
    failures.append(f"verify-config without a config: exit {r.returncode}: {r.stderr}")
else:
    def walk(node, sch, path):
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            props = {}
            for alt in [sch] + sch.get("anyOf", []):
                props.update(alt.get("properties", {}))
            if k not in props:
                if p != "config_file":  # -f / MIRRORD_CONFIG_FILE only
                    failures.append(f"schema lacks field {p}")
                continue
            if isinstance(v, dict) and "source" not in v:
                walk(v, props[k], p)
    walk(json.loads(r.stdout)["config"], schema, "")

for f in failures:
    print(f)
print(f"{checked} example configs checked, {len(failures)} problems")
sys.exit(1 if failures or checked < 5 else 0)
