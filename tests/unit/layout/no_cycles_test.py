#!/usr/bin/python3
"""tests/unit/layout/no_cycles_test.py: no two objects of libshoal.a call
each other, directly or round about (docs/extending.md: one module one job;
a cycle makes neither half testable or replaceable alone).

From `nm -A` over the archive's objects (given one by one, since the
archive holds two errors.c.o, node's and store's): an object that leaves a
symbol undefined depends on the object that defines it. Every strongly
connected set of more than one object is a cycle and is printed.

Usage: no_cycles_test.py OBJECT...   (CMake: $<TARGET_OBJECTS:shoal_static>)
  Every cycle fails the test.
"""
import re
import subprocess
import sys

LINE = re.compile(r"^(.*\.o):\s*(?:[0-9a-fA-F]+\s+)?(\S)\s+(\S+)$")


def short(path):
    """node/lib/ext/rate_limit.c.o from .../shoal_static.dir/ext/rate_limit.c.o."""
    marker = ".dir/"
    return path[path.index(marker) + len(marker):] if marker in path else path


def graph(objects):
    out = subprocess.run(["nm", "-A"] + objects, capture_output=True, text=True, check=True).stdout
    defined, undefined = {}, {}
    for line in out.splitlines():
        # object.o:[value] type name
        m = LINE.match(line)
        if m is None:
            continue
        obj, kind, name = short(m.group(1)), m.group(2), m.group(3)
        if kind == "U":
            undefined.setdefault(obj, set()).add(name)
        elif kind.isupper() or kind in "vw":
            defined.setdefault(name, obj)
        undefined.setdefault(obj, set())
    edges = {obj: set() for obj in undefined}
    for obj, names in undefined.items():
        for name in names:
            target = defined.get(name)
            if target is not None and target != obj:
                edges[obj].add(target)
    return edges


def cycles(edges):
    """Tarjan's strongly connected components, those of more than one."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        work = [(v, iter(sorted(edges[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    # CMake hands $<TARGET_OBJECTS:...> over as one ';'-separated list.
    objects = [o for arg in sys.argv[1:] for o in arg.split(";") if o]
    edges = graph(objects)
    if len(edges) < 10:
        print("only %d objects: not the library's?" % len(edges))
        return 1
    found = cycles(edges)
    for component in found:
        inner = {o: sorted(edges[o] & set(component)) for o in component}
        print("FAIL: cycle among %s" % ", ".join(component))
        for o in component:
            print("    %s -> %s" % (o, ", ".join(inner[o])))
    if not found:
        print("%d objects; no cycle" % len(edges))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
