# SPDX-License-Identifier: GPL-2.0-or-later
"""A stand-in for /usr/bin/ib40d under the Ansible role's test
(test_ansible_role.py), where the real one would change the host's links or
need a ConnectX card. It keeps the commands' exit codes and the way `try`
and `try --confirm` meet (a marker with the trial's pid while it runs), and
converges: a confirmed trial of FILE clears the plan's link actions, a
`porttype` run its card actions. `check` is the real one.

State in $IB40_FAKE_STATE: scenario.json (what the test asks for: the
plan's actions, an apply error, a slow start), calls.log (one line per call),
and the files it keeps as ib40d would."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["IB40_FAKE_STATE"])
REPO = Path(__file__).resolve().parents[2]


def load(name, default):
    path = STATE / name
    return json.loads(path.read_text()) if path.exists() else default


def save(name, value):
    (STATE / name).write_text(json.dumps(value))


def option(args, name):
    return args[args.index(name) + 1] if name in args else "/etc/ib40.conf"


def plan(args):
    scenario = load("scenario.json", {})
    actions = []
    if load("confirmed.json", None) != Path(option(args, "-c")).read_text():
        actions += scenario.get("link_actions", [])
    if not load("porttype-done.json", False):
        actions += scenario.get("card_actions", [])
    refused = scenario.get("refused", [])
    if "--json" in args:
        print(json.dumps({"actions": actions, "notes": [], "refused": refused}, indent=2))
    else:
        for a in actions:
            print("%s %s: %s" % (a["kind"], a["target"], ", ".join(
                "%s %s -> %s" % (c["attr"], c["old"], c["new"]) for c in a["changes"])))
        for r in refused:
            print("refused: " + r)
        if not actions and not refused:
            print("nothing to do: the machine matches the configuration")
    return 1 if actions or refused else 0


def trial(args):
    scenario = load("scenario.json", {})
    if "--confirm" in args:
        marker = load("trial.json", None)
        if marker is None or not Path("/proc/%d" % marker["pid"]).exists():
            print("no trial is running (`ib40d try` has ended, or was never started)", file=sys.stderr)
            return 1
        save("confirm.json", True)
        while not (STATE / "confirmed.json").exists():
            time.sleep(0.1)
        print("confirmed")
        return 0
    time.sleep(scenario.get("start_delay_s", 0))
    save("trial.json", {"pid": os.getpid()})
    try:
        if scenario.get("apply_error"):
            print(scenario["apply_error"])
            print("ib40d try: the apply failed; rolling back", file=sys.stderr)
            return 1
        deadline = time.monotonic() + float(option(args, "--timeout"))
        while not (STATE / "confirm.json").exists():
            if time.monotonic() > deadline:
                print("ib40d try: not confirmed; rolling back", file=sys.stderr)
                return 1
            time.sleep(0.1)
        text = Path(option(args, "-c")).read_text()
        Path("/etc/ib40.conf").write_text(text)
        (STATE / "confirm.json").unlink()
        save("confirmed.json", text)
        return 0
    finally:
        (STATE / "trial.json").unlink()


def main():
    args = sys.argv[1:]
    with open(STATE / "calls.log", "a") as log:
        log.write(" ".join(args) + "\n")
    command = args[0]
    if command == "check":
        return subprocess.run([sys.executable, "-m", "ib40d", *args], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO))).returncode
    if command == "plan":
        return plan(args)
    if command == "try":
        return trial(args)
    if command == "porttype":
        save("porttype-done.json", True)
        return 0
    if command == "status":
        scenario = load("scenario.json", {})
        print(json.dumps({"port_types": scenario.get("port_types_after", []) if load("porttype-done.json", False)
                          else []}))
        return 0
    if command == "doctor":
        print(json.dumps({"findings": []}))
        return 0
    print("fake ib40d: %s is not faked" % command, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
