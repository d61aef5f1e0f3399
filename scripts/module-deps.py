#!/usr/bin/env python3
"""Dependency direction between the crate's top-level modules (issue 16).

Reads every `crate::<module>` path in `src/<module>.rs` and `src/<module>/**.rs` (use lines
and inline paths; comments and doc comments are skipped) and prints the graph, the intended
layering violations and every import cycle (strongly connected component of more than one
module). Exit status 1 when there is a cycle, so CI can keep it at zero.

    python3 scripts/module-deps.py            # report; exit 1 on a cycle
    python3 scripts/module-deps.py --dot      # Graphviz of the graph
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
# `telemetry` may be used anywhere; `budget` is a leaf used by http and engine.
LAYERS = ["cli", "http", "engine", "cards", "rules", "clinical", "knowledge"]

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
    upward = [
        (a, b)
        for a in graph
        for b in graph[a]
        if a in LAYERS and b in LAYERS and LAYERS.index(b) < LAYERS.index(a)
    ]
    for a, b in sorted(upward):
        print(f"against the direction {' -> '.join(LAYERS)}: {a} uses {b}")
    found = cycles(graph, mods)
    for c in found:
        print("import cycle:", " <-> ".join(c))
    print(f"{len(mods)} modules, {sum(len(v) for v in graph.values())} edges, "
          f"{len(found)} cycle(s), {len(upward)} edge(s) against the layering")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
