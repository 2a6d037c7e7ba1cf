#!/usr/bin/env python3
"""Print the import graph between the top-level modules of src/ and its cycles.

Usage: python3 .ci/modgraph.py [SRC_DIR] [--dot] [--inside MODULE]

An edge A -> B means a file under src/A (or src/A.rs) names `crate::B`
(in a `use` line, grouped or not, or inline in code). `super::` paths stay
inside a module by construction and are not edges. Comments are ignored.
Exit status 1 when the graph between top-level modules has a cycle.
With `--inside MODULE` (e.g. `--inside usage`), the graph between that
module's children instead (`super::X` from a child file is an edge too).
"""
import os
import re
import sys


def top_module(path, src):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def names_in_group(body):
    """Top-level names inside `{a::x, b::{y, z}, c}` (depth one only)."""
    names, depth, current = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        if depth == 0 and ch not in "{}":
            current += ch
    names.append(current)
    return [n.strip().split("::")[0].strip() for n in names if n.strip()]


def targets(text):
    found = set()
    for match in re.finditer(r"crate::\{", text):
        start, depth = match.end(), 1
        end = start
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        found.update(names_in_group(text[start:end - 1]))
    for match in re.finditer(r"crate::([a-z_][a-z0-9_]*)", text):
        found.add(match.group(1))
    return found


def graph(src):
    modules = {top_module(os.path.join(src, f), src) for f in os.listdir(src)
               if f.endswith(".rs") or os.path.isdir(os.path.join(src, f))}
    modules -= {"lib", "main"}
    edges = {m: set() for m in modules}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            module = top_module(path, src)
            if module not in edges:
                continue
            with open(path, encoding="utf-8") as file:
                text = strip_comments(file.read())
            edges[module] |= {t for t in targets(text) if t in modules and t != module}
    return edges


def strongly_connected(edges):
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                result.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def inside_graph(src, module):
    """The graph between the children of src/MODULE."""
    base = os.path.join(src, module)
    children = {f[:-3] if f.endswith(".rs") else f for f in os.listdir(base)
                if f.endswith(".rs") or os.path.isdir(os.path.join(base, f))} - {"mod"}
    edges = {c: set() for c in children}
    for root, _, files in os.walk(base):
        for name in files:
            if not name.endswith(".rs") or os.path.join(root, name) == os.path.join(base, "mod.rs"):
                continue
            path = os.path.join(root, name)
            child = top_module(path, base)
            depth = len(os.path.relpath(path, base).split(os.sep)) - (1 if name == "mod.rs" else 0)
            sup = "::".join(["super"] * depth)
            with open(path, encoding="utf-8") as file:
                text = strip_comments(file.read())
            found = set(re.findall(r"crate::" + module + r"::([a-z_][a-z0-9_]*)", text))
            found |= set(re.findall(r"(?<![a-z_:])" + sup + r"::([a-z_][a-z0-9_]*)", text))
            for match in re.finditer(r"(?<![a-z_:])" + sup + r"::\{", text):
                start, level, end = match.end(), 1, match.end()
                while end < len(text) and level:
                    level += {"{": 1, "}": -1}.get(text[end], 0)
                    end += 1
                found.update(names_in_group(text[start:end - 1]))
            edges[child] |= {t for t in found if t in children and t != child}
    return edges


def main():
    argv = sys.argv[1:]
    inside = None
    if "--inside" in argv:
        at = argv.index("--inside")
        inside = argv[at + 1]
        del argv[at:at + 2]
    args = [a for a in argv if not a.startswith("--")]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    edges = inside_graph(src, inside) if inside else graph(src)
    if "--dot" in sys.argv:
        print("digraph modules {")
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    for a in sorted(edges):
        print(f"{a:10} -> {', '.join(sorted(edges[a])) or '(nothing)'}")
    cycles = strongly_connected(edges)
    for part in cycles:
        print(f"CYCLE: {' <-> '.join(part)}")
    if not cycles:
        print("no cycles between " + (f"the children of {inside}" if inside else "top-level modules"))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
