#!/usr/bin/env python3
"""Writes schemas/fhir.schema.hl7-reading.patch.json: the RFC 6902 patch that makes the
official HL7 FHIR R4 4.0.1 JSON Schema read FHIR JSON as HL7's reference validator does.

1. Every `pattern` gets ASCII whitespace classes. The schema's regexes were written for Java,
   where `\\s` is `[ \\t\\n\\x0B\\f\\r]`; ECMA-262 and the Rust regex engines read `\\s` as
   Unicode whitespace and reject U+00A0, U+2009, U+3000, U+FEFF ... in FHIR strings.
2. Every primitive property without its `_x` sibling (72 `canonical` elements, e.g.
   `Meta.profile`) gets one, as FHIR JSON allows on every primitive (`id` properties are not
   primitive elements and get none, as in the rest of the schema).

Usage: python3 scripts/fhir-schema-patch.py  (from the crate root; deterministic output)
"""
import json
import re
import sys

WS = " \\t\\n\\x0B\\f\\r"  # Java's \s, written as regex escapes
WS_CHARS = {" ": " ", "\\t": "\\t", "\\n": "\\n", "\\x0B": "\\x0B", "\\f": "\\f", "\\r": "\\r"}


def ascii_whitespace(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            esc = pattern[i : i + 2]
            out.append({"\\s": f"[{WS}]", "\\S": f"[^{WS}]"}.get(esc, esc))
            i += 2
        elif c == "[":
            j, items = i + 1, []
            negated = pattern[j : j + 1] == "^"
            if negated:
                j += 1
            while pattern[j] != "]":
                if pattern[j] == "\\":
                    items.append(pattern[j : j + 2])
                    j += 2
                else:
                    items.append(pattern[j])
                    j += 1
            if "\\S" in items:
                # [a \S] = everything except the whitespace characters not listed.
                if negated:
                    sys.exit(f"unsupported negated class with \\S: {pattern}")
                listed = {WS_CHARS.get(x, x) for x in items if x != "\\S"}
                missing = [w for w in WS_CHARS.values() if w not in listed]
                out.append("[^" + "".join(missing) + "]")
            else:
                body = "".join(WS if x == "\\s" else x for x in items)
                out.append("[" + ("^" if negated else "") + body + "]")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def pointer(parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def main():
    schema = json.load(open("schemas/fhir.schema.json"))
    ops = []

    def walk(v, path):
        if isinstance(v, dict):
            for k in sorted(v):
                x = v[k]
                if k == "pattern" and isinstance(x, str) and "\\s" in x.lower():
                    ops.append({"op": "replace", "path": pointer(path + [k]), "value": ascii_whitespace(x)})
                else:
                    walk(x, path + [k])
        elif isinstance(v, list):
            for n, x in enumerate(v):
                walk(x, path + [n])

    walk(schema, [])
    defs = schema["definitions"]
    primitives = {k for k in defs if k[:1].islower() and k != "xhtml"}
    for name in sorted(defs):
        props = defs[name].get("properties", {})
        for prop in sorted(props):
            if prop.startswith("_") or prop in ("id", "resourceType") or "_" + prop in props:
                continue
            spec = props[prop]
            is_array = "items" in spec
            ref = (spec["items"] if is_array else spec).get("$ref", "")
            if ref.rsplit("/", 1)[-1] not in primitives:
                continue
            sibling = {"description": f"Extensions for {prop}"}
            if is_array:
                sibling.update({"items": {"$ref": "#/definitions/Element"}, "type": "array"})
            else:
                sibling["$ref"] = "#/definitions/Element"
            ops.append({"op": "add", "path": pointer(["definitions", name, "properties", "_" + prop]), "value": sibling})
    with open("schemas/fhir.schema.hl7-reading.patch.json", "w") as f:
        json.dump(ops, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"{len(ops)} operations", file=sys.stderr)


if __name__ == "__main__":
    main()
