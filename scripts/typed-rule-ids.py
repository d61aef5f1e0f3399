#!/usr/bin/env python3
"""Rewrites string rule ids ("LR-04") to the typed form (RuleId::Lr04) in the given files.

Idempotent: a second run changes nothing. Usage (from the crate root):

    python3 scripts/typed-rule-ids.py            # the default files below
    python3 scripts/typed-rule-ids.py FILE...    # only these
    cargo fmt

What it does:
- every string literal that is exactly a catalogue id ("SCOPE-01", "MET-12", "ORD-20" …)
  outside comments becomes `RuleId::<Prefix><NN>` (e.g. "HIST-03" → RuleId::Hist03); ids
  inside longer strings (messages, card text) are left alone;
- a file under src/rules/ that now names `RuleId::` without importing it gets
  `use super::RuleId;`, a test file `use rps_cds::rules::RuleId;`;
- in src/rules/registry.rs (where the ids are spelt as strings on purpose: the table
  creates them) only the block between `// BEGIN transitional string ids` and
  `// END transitional string ids` is removed: after the rewrite no call site passes a
  string, and without the From<&str> / PartialEq<&str> impls a misspelt id no longer
  compiles.

A rule id that has no registry row yet becomes a RuleId variant that does not exist: the
build fails and names it, which is the point.
"""

import glob
import os
import re
import sys

PREFIXES = "SCOPE|DATA|MDT|WORK|HIST|LR|MET|SYS|SURV|ORD|PATH"
# An exact id literal: not preceded by a word character or a quote-escape, not part of a
# longer string.
LITERAL = re.compile(r'(?<![\w\\])"(' + PREFIXES + r')-(\d{2})"')
BLOCK = re.compile(
    r"\n?// BEGIN transitional string ids\n.*?// END transitional string ids\n", re.S
)
REGISTRY = os.path.join("src", "rules", "registry.rs")


def default_files():
    files = sorted(glob.glob("src/rules/*.rs"))
    files += [
        "tests/clinical/rules.rs",
        "tests/clinical/rules_fhir.rs",
        "tests/support/findings.rs",
    ]
    return [f for f in files if os.path.exists(f)]


def variant(prefix, number):
    return "RuleId::" + prefix[0] + prefix[1:].lower() + number


def rewrite_code(text):
    out = []
    for line in text.split("\n"):
        code, sep, comment = line.partition("//")
        # `//` inside a string literal ("https://…") is not a comment: only split when the
        # part before it has balanced quotes.
        if sep and code.count('"') % 2 == 1:
            code, sep, comment = line, "", ""
        code = LITERAL.sub(lambda m: variant(m.group(1), m.group(2)), code)
        out.append(code + sep + comment)
    return "\n".join(out)


def ensure_import(path, text):
    bare = re.search(r"(?<![\w:])RuleId::", text)
    imported = re.search(r"^(pub )?use [^;]*\bRuleId\b[^;]*;", text, re.M)
    if not bare or imported:
        return text
    module = "super" if path.startswith("src/") else "rps_cds::rules"
    # Into the module's existing `use super::{…}` list when there is one (rustfmt sorts it).
    grouped = re.compile(r"^use " + re.escape(module) + r"::\{", re.M)
    if grouped.search(text):
        return grouped.sub(lambda m: m.group(0) + "RuleId, ", text, count=1)
    single = re.compile(r"^use " + re.escape(module) + r"::(\w+);", re.M)
    if single.search(text):
        return single.sub(lambda m: f"use {module}::{{RuleId, {m.group(1)}}};", text, count=1)
    line = f"use {module}::RuleId;"
    lines = text.split("\n")
    for i, l in enumerate(lines):
        if l.startswith("use "):
            lines.insert(i, line)
            return "\n".join(lines)
    return line + "\n" + text


def process(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if os.path.normpath(path) == REGISTRY:
        new = BLOCK.sub("\n", text)
    else:
        new = ensure_import(path, rewrite_code(text))
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        print(f"rewrote {path}")


def main(argv):
    files = argv[1:] or default_files()
    for path in files:
        process(path)


if __name__ == "__main__":
    main(sys.argv)
