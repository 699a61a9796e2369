#!/usr/bin/env python3
"""config.schema: every example config (tests/config/examples/, the
config code blocks of README.md and docs/*.md, and the configs that test
scripts write and pass to -f or verify-config) validates against
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


def check(name, text, fmt, valid=True):
    if os.environ.get("CHECK_EXAMPLES_VERBOSE"):
        print("checking", name, fmt, "valid" if valid else "BAD")
    """valid=False: an intentionally broken config; verify-config must
    reject it (so the mark cannot hide a config that is fine)."""
    global checked
    checked += 1
    if not valid:
        if verify(text, fmt) == 0:
            failures.append(f"{name}: marked BAD, but verify-config accepts it")
        return
    try:
        doc = to_json(render(text), fmt)
    except Exception as e:  # noqa: BLE001 - report any parser's error
        failures.append(f"{name}: does not parse as {fmt}: {e}")
        return
    for err in validator.iter_errors(doc):
        path = ".".join(str(p) for p in err.absolute_path) or "(root)"
        failures.append(f"{name}: schema: {path}: {err.message}")
    rc, err = verify(text, fmt), verify.stderr
    if rc != 0:
        failures.append(f"{name}: verify-config exit {rc}: {err}")


def verify(text, fmt):
    """Exit status of `verify-config -f` on text; its stderr in verify.stderr."""
    ext = {"yml": "yaml"}.get(fmt, fmt)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"example.{ext}")
        with open(path, "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORD_")}
        r = subprocess.run([binary, "verify-config", "-f", path], capture_output=True,
                           text=True, env=env, timeout=30)
        verify.stderr = r.stderr.strip()
        return r.returncode


examples = os.path.join(src, "tests/config/examples")
for fn in sorted(os.listdir(examples)):
    fmt = fn.rsplit(".", 1)[-1]
    with open(os.path.join(examples, fn)) as f:
        check(f"tests/config/examples/{fn}", f.read(), fmt)

# README and docs/: fenced blocks tagged json, yaml or toml are configs.
readme = open(os.path.join(src, "README.md")).read()
docs = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(src, "docs"))
                              if f.endswith(".md"))
for doc in docs:
    text = open(os.path.join(src, doc)).read()
    for m in re.finditer(r"^```(json|yaml|yml|toml)\n(.*?)^```", text, re.M | re.S):
        line = text[: m.start()].count("\n") + 1
        check(f"{doc}:{line}", m.group(2), m.group(1))

# Test scripts: a file written by a heredoc, printf or echo and then given to
# `-f`, `--config-file` or `verify-config` is a config. Its format is the
# heredoc's delimiter (JSON, YAML, TOML) or the file's extension. A config
# that is broken on purpose is written with the delimiter BAD.
WRITES = [
    # cat >FILE <<'DELIM' ... DELIM
    re.compile(r"""cat\s*>\s*(?P<file>"[^"]+"|\S+)\s*<<-?\s*['"]?(?P<delim>\w+)['"]?[^\n]*\n"""
               r"(?P<text>.*?)^\s*(?P=delim)$", re.M | re.S),
    # printf 'TEXT' >FILE, echo 'TEXT' >FILE
    re.compile(r"""(?P<cmd>printf|echo)\s+'(?P<text>[^']*)'\s*>\s*(?P<file>"[^"]+"|\S+)"""),
]
FORMATS = {"JSON": "json", "YAML": "yaml", "TOML": "toml"}
script_configs = 0
tests_dir = os.path.join(src, "tests")
for root, _, files in os.walk(tests_dir):
    for fn in sorted(files):
        if not fn.endswith(".sh"):
            continue
        rel = os.path.relpath(os.path.join(root, fn), src)
        script = open(os.path.join(root, fn)).read()
        for rx in WRITES:
            for m in rx.finditer(script):
                target = m.group("file").strip('"')
                used = re.search(r"(?:-f|--config-file|verify-config(?:\s+--ide)?)\s+\"?"
                                 + re.escape(target) + r'"?(?:\s|$)', script)
                if not used:
                    continue
                delim = m.groupdict().get("delim")
                ext = target.rsplit(".", 1)[-1] if "." in target else ""
                fmt = FORMATS.get(delim or "") or {"yml": "yaml"}.get(ext, ext)
                text = m.group("text")
                if m.groupdict().get("cmd") == "printf":
                    text = text.replace("\\n", "\n")
                line = script[: m.start()].count("\n") + 1
                if fmt not in ("json", "yaml", "toml"):
                    # e.g. cat >"$CFG" <<'EOF': say what it is.
                    failures.append(f"{rel}:{line}: config {target} of unknown format; "
                                    f"use the delimiter JSON, YAML or TOML")
                    continue
                check(f"{rel}:{line}", text, fmt, valid=delim != "BAD")
                script_configs += 1
if script_configs == 0:
    failures.append("no config found in the test scripts: the extraction above is broken")

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


# ---- the README's field lists and the schema's descriptions against the
# field table (cli/config_fields.h), so neither can drift from the code.
FIELD_RE = re.compile(r'^X\((\w+), "([^"]+)", (\w+), (NULL|"[^"]*"), '
                      r'(NULL|"(?:[^"\\]|\\.)*"), (IMPL_\w+),', re.M)
table = {m.group(2): (None if m.group(4) == "NULL" else m.group(4).strip('"'), m.group(6))
         for m in FIELD_RE.finditer(open(os.path.join(src, "cli/config_fields.h")).read())}


def leaf_paths(node, path=""):
    for k, v in node.items():
        p = f"{path}.{k}" if path else k
        if isinstance(v, dict) and "source" not in v:
            yield from leaf_paths(v, p)
        else:
            yield p


# The regex must have read every field verify-config prints.
if r.returncode == 0:
    printed = set(leaf_paths(json.loads(r.stdout)["config"]))
    if printed != set(table):
        failures.append(f"cli/config_fields.h parsed wrong: only in verify-config "
                        f"{sorted(printed - set(table))}, only parsed {sorted(set(table) - printed)}")

# A backquoted lowercase dotted name is a field path (or a section: every
# field under it); `x: value` and other code are not.
PATH_TOKEN = re.compile(r"`([a-z_][a-z0-9_.]*)`")
NOT_PATHS = {"true", "false", "mirrord_trace"}


def tokens(text):
    return {t for t in PATH_TOKEN.findall(text) if t not in NOT_PATHS}


def covers(tok, field):
    return field == tok or field.startswith(tok + ".")


section = readme[readme.index("What each mirrord field does here"):readme.index("### verify-config")]
lists = {}
for m in re.finditer(r"^- \*\*(Implemented|Accepted with one warning each|Rejected)\*\*"
                     r"(.*?)(?=^- \*\*|\Z)", section, re.M | re.S):
    lists[m.group(1)] = tokens(m.group(2))
if set(lists) != {"Implemented", "Accepted with one warning each", "Rejected"}:
    failures.append(f"README: field lists not found (got {sorted(lists)})")
else:
    listed = {"Implemented": lists["Implemented"],
              "warned": lists["Accepted with one warning each"]}
    for field, (env, impl) in sorted(table.items()):
        if field == "config_file" or field.startswith("mirrord_trace."):
            continue
        # The most specific path that covers the field decides its list.
        best = max(((len(t), name) for name, toks in listed.items()
                    for t in toks if covers(t, field)), default=None)
        want = "Implemented" if impl == "IMPL_YES" else "warned"
        if best is None:
            failures.append(f"README: mirrord field {field} is in no list ({want})")
        elif best[1] != want:
            failures.append(f"README: {field} is listed as {best[1]}, the field table says "
                            f"{impl}")
        ties = {name for name, toks in listed.items() for t in toks
                if covers(t, field) and len(t) == best[0]} if best else set()
        if len(ties) > 1:
            failures.append(f"README: {field} is in both lists")
    for name, toks in listed.items():
        for t in sorted(toks):
            if not any(covers(t, f) for f in table):
                failures.append(f"README: `{t}` ({name}) is not a field of the table")
    for t in sorted(lists["Rejected"]):
        if t in table:
            failures.append(f"README: `{t}` is listed as rejected but is a field")
own = readme[readme.index("mirrord-trace's own settings"):readme.index("What each mirrord field")]
want_own = {f.split(".", 1)[1] for f in table if f.startswith("mirrord_trace.")}
if tokens(own) != want_own:
    failures.append(f"README: mirrord_trace settings listed {sorted(tokens(own))}, "
                    f"the table has {sorted(want_own)}")


def schema_node(path):
    node = schema
    for part in path.split("."):
        props = {}
        for alt in [node] + node.get("anyOf", []):
            props.update(alt.get("properties", {}))
        if part not in props:
            return None
        node = props[part]
    return node


for field, (env, impl) in sorted(table.items()):
    node = schema_node(field)
    if node is None:
        continue  # reported above ("schema lacks field")
    desc = node.get("description", "")
    if impl == "IMPL_YES" and re.search(r"not implemented|no effect", desc):
        failures.append(f"schema: {field} is implemented but its description says: {desc}")
    if impl != "IMPL_YES" and "accepted" not in desc.lower():
        failures.append(f"schema: {field} ({impl}) does not say it is only accepted: {desc}")
    if env and env not in desc:
        failures.append(f"schema: {field}: the description does not name {env}")

for f in failures:
    print(f)
print(f"{checked} example configs checked, {len(failures)} problems")
sys.exit(1 if failures or checked < 5 else 0)
