#!/usr/bin/python3
"""The reference client of the accessibility bench: a pyatspi (Debian python3-pyatspi, libatspi) walk of
every application on the accessibility bus, reading per object what deskd's snapshot reads: role name,
name, description, state set, children, screen extents, action names, and the text of editable objects
or the current value of range widgets. One D-Bus call per attribute, as libatspi does it.

--pruned (default) leaves out what deskd leaves out (objects below the windows that are not on screen,
and their subtrees; windows that are not showing are not descended into), so both read the same objects;
--full walks everything.

Prints one JSON line: {"ms": walk time (after connecting), "cpuMs": CPU time of this process during the walk, "nodes": objects read}.
"""
import json
import sys
import time

import pyatspi

FULL = '--full' in sys.argv
TEXT_ROLES = {pyatspi.ROLE_TEXT, pyatspi.ROLE_ENTRY}
VALUE_ROLES = {pyatspi.ROLE_PROGRESS_BAR, pyatspi.ROLE_SLIDER, pyatspi.ROLE_SPIN_BUTTON, pyatspi.ROLE_SCROLL_BAR}


def on_screen(states, parent_showing, depth):
    if states.contains(pyatspi.STATE_SHOWING):
        return True
    if not states.contains(pyatspi.STATE_VISIBLE):
        return False
    return depth <= 2 or not parent_showing


def read(obj):
    """What deskd reads of one object; returns (states, children count)."""
    obj.getRoleName()
    role = obj.getRole()
    obj.name
    obj.description
    states = obj.getState()
    try:
        obj.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
    except NotImplementedError:
        pass
    try:
        a = obj.queryAction()
        for i in range(a.nActions):
            a.getName(i)
    except NotImplementedError:
        pass
    if states.contains(pyatspi.STATE_EDITABLE) or role in TEXT_ROLES:
        try:
            obj.queryText().getText(0, -1)
        except NotImplementedError:
            pass
    elif role in VALUE_ROLES:
        try:
            obj.queryValue().currentValue
        except NotImplementedError:
            pass
    return states


def walk():
    desktop = pyatspi.Registry.getDesktop(0)
    count = 0
    level = [(app, 0, True) for app in desktop if app is not None]
    while level:
        nxt = []
        for obj, depth, parent_showing in level:
            try:
                states = read(obj)
            except Exception:
                continue
            showing = states.contains(pyatspi.STATE_SHOWING)
            if not FULL and depth >= 2 and not on_screen(states, parent_showing, depth):
                continue
            count += 1
            if not FULL and depth == 1 and not showing:
                continue
            try:
                for child in obj:
                    if child is not None:
                        nxt.append((child, depth + 1, showing))
            except Exception:
                pass
        level = nxt
    return count


if __name__ == '__main__':
    pyatspi.Registry.getDesktop(0).childCount  # connect before timing
    t0 = time.perf_counter()
    c0 = time.process_time()
    n = walk()
    ms = (time.perf_counter() - t0) * 1000
    cpu = (time.process_time() - c0) * 1000
    print(json.dumps({'ms': round(ms, 1), 'cpuMs': round(cpu, 1), 'nodes': n}))
