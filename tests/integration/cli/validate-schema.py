#!/usr/bin/env python3
"""Validate a runtime-spec document (state, config.json, features) for test_cli.sh.

    validate-schema.py [--allow-status S]... SCHEMA_DIR SCHEMA DOC
        DOC (a file, or - for stdin) against SCHEMA_DIR/SCHEMA (draft-04, as the runtime-spec
        ships them: golang-github-opencontainers-specs-dev puts them in
        /usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema). Every "$ref"
        is resolved inside SCHEMA_DIR, never over the network. --allow-status adds a value
        to the state schema's "status" enum: runtime.md lets a runtime define more states
        ("paused", as runc reports it), the schema's enum lists only the spec's four.
    validate-schema.py --features DOC
        DOC against features.md and features-linux.md (runtime-spec 1.3). Debian's package
        ships no features schema, so the rules are written here from the spec's text: the
        two REQUIRED versions (SemVer, min <= max), every other property optional or null,
        no property the spec does not define, the types, and names that must be ones
        config.json recognises (hooks, namespaces, seccomp actions, operators, flags).

Prints one line per problem on stderr ("DOC: JSON.PATH: what") and exits 1; exits 0 silently when
the document is valid; 2 for a usage error or when jsonschema is missing.
"""
import json
import os
import re
import sys

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$")

# From the spec's text (config.md, config-linux.md, features*.md of runtime-spec 1.3).
HOOKS = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"}
NAMESPACES = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"}
SECCOMP_ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                   "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
                   "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
SECCOMP_OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                     "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}
SECCOMP_ARCHS = {"SCMP_ARCH_" + a for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL",
    "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC",
    "PARISC64", "RISCV64", "LOONGARCH64", "M68K", "SH", "SHEB")}
SECCOMP_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
CAPABILITY = re.compile(r"^CAP_[A-Z_]+$")


def load(path):
    if path == "-":
        return json.load(sys.stdin)
    with open(path) as f:
        return json.load(f)


def validator_for(schema_dir, name, extra_status):
    """A draft-04 validator for schema_dir/name whose $refs stay inside schema_dir."""
    try:
        import jsonschema
    except ImportError:
        sys.exit("validate-schema: python3-jsonschema is not installed")
    schema_dir = os.path.abspath(schema_dir)
    store = {}
    for entry in sorted(os.listdir(schema_dir)):
        if entry.endswith(".json"):
            store["file://%s/%s" % (schema_dir, entry)] = load(os.path.join(schema_dir, entry))
    uri = "file://%s/%s" % (schema_dir, name)
    if uri not in store:
        sys.exit("validate-schema: %s: no such schema in %s" % (name, schema_dir))
    root = store[uri]
    if extra_status:
        status = root.get("properties", {}).get("status", {})
        if "enum" not in status:
            sys.exit("validate-schema: --allow-status: %s has no status enum" % name)
        status["enum"] = status["enum"] + [s for s in extra_status if s not in status["enum"]]
    try:  # jsonschema >= 4.18: the referencing library
        from referencing import Registry
        from referencing.jsonschema import DRAFT4

        registry = Registry().with_resources(
            (u, DRAFT4.create_resource(s)) for u, s in store.items())
        return jsonschema.Draft4Validator(dict(root, id=uri), registry=registry)
    except ImportError:  # Debian 12's jsonschema 4.10
        resolver = jsonschema.RefResolver(base_uri=uri, referrer=root, store=store)
        return jsonschema.Draft4Validator(root, resolver=resolver)


def json_path(parts):
    out = ""
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(document)"


def validate_schema(schema_dir, name, doc, extra_status):
    v = validator_for(schema_dir, name, extra_status)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return ["%s: %s" % (json_path(e.absolute_path), e.message) for e in errors]


class Features:
    """The features document's rules (features.md, features-linux.md)."""

    def __init__(self):
        self.errors = []

    def bad(self, path, what):
        self.errors.append("%s: %s" % (path, what))

    def object(self, doc, path, known):
        if not isinstance(doc, dict):
            self.bad(path, "must be an object")
            return {}
        for key in doc:
            if key not in known:
                self.bad("%s.%s" % (path, key) if path else key,
                         "not a property the runtime-spec defines for the features document")
        return doc

    def strings(self, doc, key, path, allowed=None, pattern=None):
        v = doc.get(key)
        where = "%s.%s" % (path, key) if path else key
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.bad(where, "must be an array of strings")
            return []
        if len(set(v)) != len(v):
            self.bad(where, "has duplicates")
        for i, s in enumerate(v):
            if allowed is not None and s not in allowed:
                self.bad("%s[%d]" % (where, i), '"%s" is not a name the spec defines' % s)
            if pattern is not None and not pattern.match(s):
                self.bad("%s[%d]" % (where, i), '"%s" is malformed' % s)
        return v

    def bools(self, doc, path, keys):
        for key in keys:
            v = doc.get(key)
            if v is not None and not isinstance(v, bool):
                self.bad("%s.%s" % (path, key), "must be a boolean")

    def section(self, doc, key, path, bools, sub=()):
        v = doc.get(key)
        if v is None:
            return None
        v = self.object(v, "%s.%s" % (path, key), set(bools) | set(sub))
        self.bools(v, "%s.%s" % (path, key), bools)
        return v

    def versions(self, doc):
        parsed = []
        for key in ("ociVersionMin", "ociVersionMax"):
            v = doc.get(key)
            if not isinstance(v, str):
                self.bad(key, "required, must be a string")
            elif not SEMVER.match(v):
                self.bad(key, '"%s" is not SemVer 2.0.0' % v)
            else:
                parsed.append(tuple(int(x) for x in SEMVER.match(v).groups()[:3]))
        if len(parsed) == 2 and parsed[0] > parsed[1]:
            self.bad("ociVersionMax", "must not be less than ociVersionMin")

    def linux(self, doc):
        linux = doc.get("linux")
        if linux is None:
            return
        linux = self.object(linux, "linux", {
            "namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux",
            "intelRdt", "mountExtensions", "netDevices"})
        self.strings(linux, "namespaces", "linux", NAMESPACES)
        self.strings(linux, "capabilities", "linux", pattern=CAPABILITY)
        self.section(linux, "cgroup", "linux", ("v1", "v2", "systemd", "systemdUser", "rdma"))
        seccomp = self.section(linux, "seccomp", "linux", ("enabled",),
                               ("actions", "operators", "archs", "knownFlags",
                                "supportedFlags"))
        if seccomp:
            self.strings(seccomp, "actions", "linux.seccomp", SECCOMP_ACTIONS)
            self.strings(seccomp, "operators", "linux.seccomp", SECCOMP_OPERATORS)
            self.strings(seccomp, "archs", "linux.seccomp", SECCOMP_ARCHS)
            known = self.strings(seccomp, "knownFlags", "linux.seccomp", SECCOMP_FLAGS)
            self.strings(seccomp, "supportedFlags", "linux.seccomp", set(known))
        for key in ("apparmor", "selinux", "netDevices"):
            self.section(linux, key, "linux", ("enabled",))
        self.section(linux, "intelRdt", "linux", ("enabled", "schemata"))
        ext = self.section(linux, "mountExtensions", "linux", (), ("idmap",))
        if ext:
            self.section(ext, "idmap", "linux.mountExtensions", ("enabled",))

    def check(self, doc):
        doc = self.object(doc, "", {
            "ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations",
            "potentiallyUnsafeConfigAnnotations"})
        self.versions(doc)
        self.strings(doc, "hooks", "", HOOKS)
        for i, opt in enumerate(self.strings(doc, "mountOptions", "")):
            if "=" in opt:  # features.md: no filesystem data options
                self.bad("mountOptions[%d]" % i, '"%s" is filesystem data, not a flag' % opt)
        self.strings(doc, "potentiallyUnsafeConfigAnnotations", "")
        self.linux(doc)
        ann = doc.get("annotations")
        if ann is not None:
            if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
                self.bad("annotations", "must be an object of strings")
            elif any(not k for k in ann):
                self.bad("annotations", "keys must not be empty")
        return self.errors


def main(argv):
    args, extra_status = argv[1:], []
    while len(args) >= 2 and args[0] == "--allow-status":
        extra_status.append(args[1])
        args = args[2:]
    try:
        if len(args) == 2 and args[0] == "--features" and not extra_status:
            name, errors = args[1], Features().check(load(args[1]))
        elif len(args) == 3:
            name, errors = args[2], validate_schema(args[0], args[1], load(args[2]),
                                                    extra_status)
        else:
            sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
            return 2
    except (OSError, ValueError) as e:
        print("validate-schema: %s" % e, file=sys.stderr)
        return 1
    for e in errors:
        print("%s: %s" % (name, e), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
