#!/usr/bin/env python3
"""scripts/check_deps.py — carrel's include direction, checked.

The engine's folders stand in layers; a file may include its own folder, a
folder on a lower layer, a peer on its own layer (one way only) and the
public headers (include/carrel/). Everything outside engine/ (tools/, bench/,
fuzz/, tests/, examples/) stands above the engine and may include any of it.

    layer 0  base
    layer 1  store
    layer 2  sql kv alarm history commit
    layer 3  loop
    layer 4  transfer (export/import) conn

Rules, each printed with the offending file:line when broken:
  (1) down only: a folder includes no folder on a higher layer;
  (2) no circle: two folders never include each other, directly or through
      others (this is what keeps peers on one layer one-way);
  (3) the public headers (include/carrel/) include nothing of engine/;
  (4) every engine folder has a layer: a new one is added to LAYERS below.

ALLOWED lists the includes that break a rule today, each with the change that
removes it; an include not listed there fails. An entry that no longer
matches fails too, so the list only shrinks to what is still true.

Usage: scripts/check_deps.py [--allow FILE:HEADER]... [ROOT]
  (exit 0: the direction holds; 1: not; 2: bad arguments.) --allow adds an
  entry to ALLOWED for this run (tests/check_deps_test.py uses it).
"""
import os
import re
import sys

LAYERS = {
    "base": 0,
    "store": 1,
    "sql": 2, "kv": 2, "alarm": 2, "history": 2, "commit": 2,
    "loop": 3,
    "transfer": 4, "conn": 4,
}

# (including file, included header): known violations, until their owners
# move the code.
ALLOWED = set()

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCE = (".h", ".hh", ".hpp", ".cc", ".cpp", ".c")


def folder_of(path):
    """'engine/loop/turn.h' -> 'loop'; None outside engine/."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "engine":
        return parts[1]
    return None


def includes(root, top):
    """Yields (file, line number, included path) for every quoted include."""
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(SOURCE):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, encoding="utf-8", errors="replace") as f:
                for number, text in enumerate(f, 1):
                    m = INCLUDE.match(text)
                    if m:
                        yield rel, number, m.group(1)


def reaches(edges, start, goal):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo.extend(edges.get(node, ()))
    return False


def parse_args(argv):
    """(root, allowed) from the command line; raises ValueError on a bad one."""
    allowed, rest = set(ALLOWED), []
    args = iter(argv)
    for arg in args:
        if arg == "--allow":
            entry = next(args, "")
            src, sep, header = entry.partition(":")
            if not sep or not src or not header:
                raise ValueError(f"--allow takes FILE:HEADER, not '{entry}'")
            allowed.add((src, header))
        else:
            rest.append(arg)
    if len(rest) > 1:
        raise ValueError(f"one ROOT at most, not {len(rest)}: {' '.join(rest)}")
    root = rest[0] if rest else os.path.join(os.path.dirname(__file__), "..")
    return os.path.abspath(root), allowed


def main():
    try:
        root, allowed = parse_args(sys.argv[1:])
    except ValueError as e:
        print(f"check_deps: {e}", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.join(root, "engine")):
        print(f"check_deps: {root} has no engine/ folder; pass the repository root", file=sys.stderr)
        return 2

    errors, used = [], set()
    edges, sites = {}, {}
    for rel, number, target in includes(root, "engine"):
        src, dst = folder_of(rel), folder_of(target)
        for part in (src, dst):
            if part is not None and part not in LAYERS:
                errors.append(f"{rel}:{number}: rule (4): engine/{part}/ has no layer; "
                              "add it to LAYERS in scripts/check_deps.py")
        if dst is None or src == dst or src not in LAYERS or dst not in LAYERS:
            continue
        if (rel, target) in allowed:
            used.add((rel, target))
            continue
        if LAYERS[dst] > LAYERS[src]:
            errors.append(f"{rel}:{number}: rule (1) down only: engine/{src}/ (layer {LAYERS[src]}) "
                          f"includes {target} (layer {LAYERS[dst]}); move the code or invert the "
                          "dependency (the lower folder owns the interface, the upper implements it)")
            continue
        # Only downward and peer includes form the graph rule (2) walks, so
        # one include that reaches up is reported once, by rule (1).
        edges.setdefault(src, set()).add(dst)
        sites.setdefault((src, dst), []).append(f"{rel}:{number}")

    for (src, dst), where in sorted(sites.items()):
        if reaches(edges, dst, src):
            for site in where:
                errors.append(f"{site}: rule (2) no circle: engine/{src}/ includes engine/{dst}/, "
                              f"and engine/{dst}/ reaches engine/{src}/ back; keep one direction")

    for rel, number, target in includes(root, "include"):
        if folder_of(target) is not None:
            errors.append(f"{rel}:{number}: rule (3): the public header includes {target}; "
                          "public headers include only include/carrel/ and system headers")

    for rel, target in sorted(allowed - used):
        errors.append(f"{rel}: stale exception: it no longer includes {target} across folders; "
                      "delete its ALLOWED entry in scripts/check_deps.py")
    for line in errors:
        print(line)
    if errors:
        print(f"check_deps: {len(errors)} include(s) break the direction (rules at the top of "
              "scripts/check_deps.py)", file=sys.stderr)
        return 1
    print(f"check_deps: ok ({sum(len(v) for v in sites.values())} cross-folder includes "
          f"point down or one way; {len(used)} known exceptions allowed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
