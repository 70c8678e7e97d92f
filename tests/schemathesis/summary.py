"""Totals of a schemathesis run from its NDJSON reports: test cases, and how
often each check ran and failed. Usage: summary.py REPORT.ndjson..."""

import collections
import json
import sys


def main(paths):
    checks = collections.defaultdict(collections.Counter)
    cases = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                finished = json.loads(line).get("ScenarioFinished")
                if not finished:
                    continue
                recorded = finished.get("recorder", {}).get("checks") or {}
                cases += len(recorded)
                for results in recorded.values():
                    for result in results:
                        checks[result["name"]][result["status"]] += 1
    print(f"checked test cases: {cases}")
    for name in sorted(checks):
        counts = checks[name]
        print(f"  {name:30} {sum(counts.values()):6} runs, {counts['failure']:4} failed")


if __name__ == "__main__":
    main(sys.argv[1:])
