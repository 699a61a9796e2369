#!/bin/bash
# The pod's environment: fetched from the target, merged over the local one
# (remote wins), PATH and HOME always stay local, -x / -s filter the remote
# set. Checked with coreutils env (dynamic), a static C printer, a static Go
# binary, and a child process that inherits the environment.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_programs cenv go

LOCAL_PATH=$PATH:/opt/mt-e2e-local-bin
LOCAL_HOME=/root/mt-e2e-local-home
# envrun ARGS...: traced, with a known local environment.
envrun() {
	PATH=$LOCAL_PATH HOME=$LOCAL_HOME MT_LOCAL_ONLY=local-42 DATABASE_URL=local-db traced "$@"
}
# expect_pod_env WHAT: the remote variables are all there.
expect_pod_env() {
	expect_out_has "MT_POD_MARKER=$POD_ENV_MARKER" "$1: pod marker"
	expect_out_has "DATABASE_URL=$POD_DATABASE_URL" "$1: pod DATABASE_URL (remote wins over local)"
	expect_out_has "KUBERNETES_SERVICE_HOST=10.96.0.1" "$1: pod KUBERNETES_SERVICE_HOST"
	if ! baseline; then
		expect_out_has "PATH=$LOCAL_PATH" "$1: PATH stays local"
		expect_out_has "HOME=$LOCAL_HOME" "$1: HOME stays local"
		expect_out_lacks "PATH=$POD_PATH" "$1: not the pod's PATH"
		expect_out_has "MT_LOCAL_ONLY=local-42" "$1: local-only variables are kept"
	fi
}

run envrun env
expect_rc 0 "env under the tracer"
expect_pod_env "env"
run envrun "$MT_PROG_DIR/env_printer"
expect_pod_env "static C env_printer"
run envrun "$MT_PROG_DIR/go_client" env
expect_pod_env "static Go"
run envrun sh -c 'exec env'
expect_pod_env "child of a traced shell"

if ! baseline; then
	run envrun -x MT_POD_MARKER -- env
	expect_rc 0 "-x MT_POD_MARKER"
	expect_out_match '^DATABASE_URL=' "-x keeps the other remote variables"
	expect_eq "" "$(printf '%s\n' "$OUT" | grep '^MT_POD_MARKER=' || true)" "-x MT_POD_MARKER removes it"
	run envrun -x 'MT_POD_MARKER;KUBERNETES_SERVICE_*' -- env
	expect_eq "" "$(printf '%s\n' "$OUT" | grep -E '^(MT_POD_MARKER|KUBERNETES_SERVICE_HOST|KUBERNETES_SERVICE_PORT)=' || true)" \
		"-x with a ';' list and a glob removes all of them"
	expect_out_has "DATABASE_URL=$POD_DATABASE_URL" "-x list keeps DATABASE_URL"

	run envrun -s 'DATABASE_*' -- env
	expect_rc 0 "-s 'DATABASE_*'"
	expect_out_has "DATABASE_URL=$POD_DATABASE_URL" "-s keeps DATABASE_URL"
	expect_out_has "DATABASE_POOL_SIZE=5" "-s keeps DATABASE_POOL_SIZE"
	expect_eq "" "$(printf '%s\n' "$OUT" | grep -E '^(MT_POD_MARKER|KUBERNETES_SERVICE_HOST)=' || true)" \
		"-s drops the remote variables it does not include"
	expect_out_has "MT_LOCAL_ONLY=local-42" "-s does not touch local variables"

	run envrun --override-env-vars-include 'MT_POD_MARKER;PATH;HOME' -- "$MT_PROG_DIR/env_printer"
	expect_out_has "MT_POD_MARKER=$POD_ENV_MARKER" "--override-env-vars-include (long form)"
	expect_out_has "PATH=$LOCAL_PATH" "PATH stays local even when included"
	expect_out_has "HOME=$LOCAL_HOME" "HOME stays local even when included"
	expect_out_has "DATABASE_URL=local-db" "a remote variable not included leaves the local value"

	run envrun --override-env-vars-exclude MT_POD_MARKER -- "$MT_PROG_DIR/go_client" env
	expect_eq "" "$(printf '%s\n' "$OUT" | grep '^MT_POD_MARKER=' || true)" \
		"--override-env-vars-exclude (long form), static Go"
fi
if ! baseline; then
	# feature.env.override and feature.env.unset from a config file.
	cat >"$T/env.json" <<'JSON'
{"feature": {"env": {"override": {"MT_POD_MARKER": "overridden", "MT_EXTRA": "set-by-config"},
                     "unset": ["database_url"]}}}
JSON
	run traced -f "$T/env.json" -- env
	expect_out_has "MT_POD_MARKER=overridden" "feature.env.override wins over the pod's value"
	expect_out_has "MT_EXTRA=set-by-config" "feature.env.override adds a variable"
	expect_eq "" "$(printf '%s\n' "$OUT" | grep '^DATABASE_URL=' || true)" \
		"feature.env.unset removes a variable (case-insensitively)"

	# feature.env.env_file: over the pod's values, under override.
	cat >"$T/app.env" <<'ENVEOF'
# a dotenv file
MT_POD_MARKER=from-file
export MT_FILE_ONLY = 'single # quoted'
MT_DQ="a\tb \"q\" \$HOME"
MT_UNQ=plain value # a comment
MT_EMPTY=
ENVEOF
	run traced --env-file "$T/app.env" -- env
	expect_out_has "MT_POD_MARKER=from-file" "--env-file: the file's value wins over the pod's"
	expect_out_has "MT_FILE_ONLY=single # quoted" "--env-file: export prefix, blanks around '=', single quotes kept literally"
	expect_out_has "$(printf 'MT_DQ=a\tb "q" $HOME')" "--env-file: double-quoted escapes, no \$ expansion"
	expect_out_has "MT_UNQ=plain value" "--env-file: an unquoted value ends at a ' #' comment"
	expect_out_has "MT_EMPTY=" "--env-file: an empty value"
	printf '{"feature": {"env": {"env_file": "%s", "override": {"MT_POD_MARKER": "ov"}}}}\n' \
		"$T/app.env" >"$T/envfile.json"
	run traced -f "$T/envfile.json" -- "$MT_PROG_DIR/env_printer"
	expect_out_has "MT_POD_MARKER=ov" "feature.env.env_file from a config: override still wins (static program)"
	expect_out_has "MT_FILE_ONLY=single # quoted" "feature.env.env_file from a config: the file's entries reach a static program"
	MIRRORD_OVERRIDE_ENV_VARS_FILE=$T/app.env run traced -- env
	expect_out_has "MT_POD_MARKER=from-file" "MIRRORD_OVERRIDE_ENV_VARS_FILE names the file too"
	# feature.env.mapping: the pod's and the file's values whose names match,
	# the first pattern in the file's order; override still wins, local
	# variables and non-matching names keep their values.
	cat >"$T/map.json" <<JSON
{"feature": {"env": {"env_file": "$T/app.env",
                     "mapping": {"OD_MARK": "mapped-first", "MT_POD": "mapped-second",
                                 "^MT_FILE_ONLY$": "file-mapped", "^DATABASE": "db-mapped",
                                 "LOCAL_ONLY": "not-for-local", "mt_unq": "wrong-case"},
                     "override": {"DATABASE_URL": "ov"}}}}
JSON
	MT_LOCAL_ONLY=keep run traced -f "$T/map.json" -- "$MT_PROG_DIR/env_printer"
	expect_out_has "MT_POD_MARKER=mapped-first" "feature.env.mapping: a pattern anywhere in a pod variable's name, the first in order wins (static program)"
	expect_out_has "MT_FILE_ONLY=file-mapped" "feature.env.mapping rewrites the env file's values too"
	expect_out_has "DATABASE_URL=ov" "feature.env.override wins over feature.env.mapping"
	expect_out_has "MT_LOCAL_ONLY=keep" "feature.env.mapping leaves local variables alone"
	expect_out_has "MT_UNQ=plain value" "feature.env.mapping is case-sensitive"
	cat >"$T/badmap.json" <<'BAD'
{"feature": {"env": {"mapping": {"(unclosed": "x"}}}}
BAD
	run traced -f "$T/badmap.json" -- sh -c 'echo ran'
	expect_rc 2 "feature.env.mapping with a bad regex fails (a config error)"
	expect_err_match 'feature\.env\.mapping.*\(unclosed.*missing closing parenthesis' "feature.env.mapping with a bad regex: the message names the pattern"
	expect_out_lacks "ran" "feature.env.mapping with a bad regex: the program does not run"
	# Bad files: one line naming the problem, exit 1, the program never runs.
	printf 'GOOD=1\nBAD LINE\n' >"$T/bad.env"
	run traced --env-file "$T/bad.env" -- sh -c 'echo ran'
	expect_rc 1 "--env-file with a bad line fails"
	expect_eq "1" "$(grep -c . <<<"$ERR")" "--env-file with a bad line: one line of error"
	expect_err_match 'bad\.env.*line 2: expected' "--env-file with a bad line: the message names the file and the line"
	expect_out_lacks "ran" "--env-file with a bad line: the program does not run"
	printf 'X="unterminated\n' >"$T/bad2.env"
	run traced --env-file "$T/bad2.env" -- true
	expect_err_match 'line 1: no closing double quote' "--env-file: an unterminated quote is named"
	run traced --env-file "$T/missing.env" -- true
	expect_rc 1 "--env-file of a missing file fails"
	expect_err_match 'cannot read .*missing\.env.*No such file' "--env-file of a missing file: the message says so"
fi
e2e_done
