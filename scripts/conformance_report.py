"""Writes docs/CONFORMANCE.md from the JSON of `kpt conformance --json`: pass rates per folder
and every case that does not pass, with its reason."""
import collections
import json
import sys


def main(json_path, out_path):
    cases = json.load(open(json_path))["cases"]
    by_folder = collections.defaultdict(collections.Counter)
    for c in cases:
        by_folder[c["folder"]][c["status"]] += 1
    lines = [
        "# ONNX conformance",
        "",
        "Measured with `./build/kpt conformance ../shared/onnx-conformance -j2 --json build/conformance.json`",
        "then `/usr/bin/python3 scripts/conformance_report.py build/conformance.json docs/CONFORMANCE.md`.",
        "Scoring as the ONNX runner does it (same dtype and shape, floats within rtol 1e-3, atol 1e-7;",
        "every data set of a case must pass). Cases expected to pass are in",
        "`tests/conformance/expected_pass.txt` and checked by CTest.",
        "",
        "| folder | passed | failed | unsupported | total | pass rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for folder in sorted(by_folder):
        c = by_folder[folder]
        total = sum(c.values())
        lines.append(f"| {folder} | {c['passed']} | {c['failed']} | {c['unsupported']} | {total} | "
                     f"{100.0 * c['passed'] / total:.1f}% |")
    lines += ["", "## Cases that do not pass", "",
              "`unsupported`: an op, dtype or mode this build does not implement yet.",
              "`failed`: ran but gave a wrong answer, or failed with an error.", ""]
    for folder in sorted(by_folder):
        bad = [c for c in cases if c["folder"] == folder and c["status"] != "passed"]
        if not bad:
            continue
        lines += [f"### {folder} ({len(bad)})", "", "| case | status | reason |", "| --- | --- | --- |"]
        for c in sorted(bad, key=lambda c: c["name"]):
            reason = " ".join(c["reason"].split())[:220].replace("|", "\\|")
            lines.append(f"| {c['name']} | {c['status']} | {reason} |")
        lines.append("")
    open(out_path, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
