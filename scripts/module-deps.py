#!/usr/bin/env python3
"""Dependency direction between the crate's top-level modules (issue 16).

Reads every `crate::<module>` path in `src/<module>.rs` and `src/<module>/**.rs` (use lines
and inline paths; comments and doc comments are skipped) and prints the graph, every edge
against the layering below, every import of `config` outside cli/http/engine, and every
import cycle (strongly connected component of more than one module). Exit status 1 when
there is any of these, or a module the layering does not list, so CI keeps them at zero
(`.ci/run` calls it before the tests).

    python3 scripts/module-deps.py            # report; exit 1 on a violation
    python3 scripts/module-deps.py --dot      # Graphviz of the graph
    python3 scripts/module-deps.py --layering # the allowed imports of each module, and why
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
# The main chain: cli -> http -> engine -> cards -> rules -> clinical -> knowledge.
LAYERS = ["cli", "http", "engine", "cards", "rules", "clinical", "knowledge"]

# Every module and the modules it may import, with why. `telemetry` (logs, metrics) may be
# imported by every module and imports none. A new module must be added here.
LAYERING = {
    "telemetry": ((), "logs and metrics, usable anywhere: imports no other module"),
    "budget": ((), "the in-flight byte budget: a leaf"),
    "knowledge": ((), "reviewed clinical data and the vocabulary it is written in "
                      "(Hook, Indicator, parameters, value sets): the bottom of the chain"),
    "display": (("knowledge",), "the one display vocabulary (catalogue §6), below clinical "
                                "and rules; shows parameters as thresholds"),
    "fhir": (("budget",), "FHIR R4 without clinical meaning: validation, OperationOutcome, "
                          "the prefetch client (owns FhirClientConfig, AccessToken), the "
                          "set-aside resource"),
    "auth": ((), "CDS client JWTs; owns AuthConfig"),
    "audit": (("knowledge",), "the audit store; owns StorageConfig; records parameter sets"),
    "clinical": (("knowledge", "display", "fhir"), "facts read from validated FHIR, and the "
                                                   "card's view of a fact (FactUse)"),
    "rules": (("clinical", "display", "knowledge", "fhir"), "the catalogue over the picture"),
    "cds_hooks": (("fhir", "knowledge"), "the CDS Hooks protocol model (request, response, "
                                         "discovery, feedback)"),
    "cards": (("rules", "clinical", "display", "knowledge", "cds_hooks"),
              "findings to CDS Hooks cards"),
    "config": (("audit", "auth", "fhir"), "composes the leaf modules' configuration types"),
    "engine": (("cards", "rules", "clinical", "display", "knowledge", "cds_hooks", "fhir",
                "audit", "budget", "config"), "the one pipeline the server and the CLI share"),
    "http": (("engine", "cards", "rules", "clinical", "display", "knowledge", "cds_hooks",
              "fhir", "audit", "auth", "budget", "config"), "the actix-web server"),
    "cli": (("http", "engine", "cards", "rules", "clinical", "display", "knowledge",
             "cds_hooks", "fhir", "audit", "auth", "budget", "config"),
            "the binary's commands: serve, evaluate, audit, admin"),
}
ANYWHERE = {"telemetry"}
# Only the edges read configuration; every other module takes its own configuration type.
CONFIG_USERS = {"cli", "http", "engine"}

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def modules():
    mods = {}
    for p in ROOT.iterdir():
        if p.name in ("lib.rs", "main.rs"):
            continue
        if p.suffix == ".rs":
            mods[p.stem] = [p]
        elif p.is_dir():
            mods[p.name] = sorted(p.rglob("*.rs"))
    return mods


def code(text):
    # Drop line comments (incl. doc comments) and string contents that could name paths.
    text = re.sub(r"//[^\n]*", "", text)
    return text


def edges(mods):
    graph = defaultdict(set)
    for name, files in mods.items():
        for f in files:
            t = code(f.read_text())
            targets = set(PATH.findall(t))
            for group in USE_GROUP.findall(t):
                targets |= {m.strip().split("::")[0] for m in group.split(",") if m.strip()}
            for m in targets:
                if m in mods and m != name:
                    graph[name].add(m)
    return graph


def cycles(graph, nodes):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    declared = {m: set(allowed) for m, (allowed, _) in LAYERING.items()}
    if cycles(declared, declared):
        print("the layering in scripts/module-deps.py has a cycle:", cycles(declared, declared))
        return 2
    if "--layering" in sys.argv:
        for m in sorted(LAYERING, key=lambda m: (len(LAYERING[m][0]), m)):
            allowed, why = LAYERING[m]
            print(f"{m} -> {', '.join(allowed) or '-'}: {why}")
        print(f"and every module -> {', '.join(sorted(ANYWHERE))}; only "
              f"{', '.join(sorted(CONFIG_USERS))} import config")
        return 0
    mods = modules()
    graph = edges(mods)
    if "--dot" in sys.argv:
        print("digraph modules {")
        for a in sorted(graph):
            for b in sorted(graph[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    for a in sorted(mods):
        print(f"{a:10} -> {', '.join(sorted(graph.get(a, ()))) or '-'}")
    unlisted = sorted(set(mods) - set(LAYERING))
    for m in unlisted:
        print(f"module {m} is not in the layering of scripts/module-deps.py: add it")
    against = sorted(
        (a, b)
        for a in graph
        for b in graph[a]
        if a in LAYERING and b not in ANYWHERE and b not in LAYERING[a][0]
    )
    for a, b in against:
        allowed = ", ".join(sorted(set(LAYERING[a][0]) | ANYWHERE))
        print(f"against the layering: {a} uses {b} ({a} may use {allowed})")
    config = sorted(a for a in graph if "config" in graph[a] and a not in CONFIG_USERS)
    for a in config:
        print(f"{a} imports config: only {', '.join(sorted(CONFIG_USERS))} may; "
              f"give {a} its own configuration type")
    found = cycles(graph, mods)
    for c in found:
        print("import cycle:", " <-> ".join(c))
    print(f"{len(mods)} modules, {sum(len(v) for v in graph.values())} edges, "
          f"{len(found)} cycle(s), {len(against)} edge(s) against the layering "
          f"({' -> '.join(LAYERS)}, telemetry anywhere), {len(config)} config import(s) "
          f"outside {'/'.join(sorted(CONFIG_USERS))}")
    return 1 if found or against or config or unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
