#!/usr/bin/env python3
"""Write the golden expectations (NNN.json beside NNN.eml) from a labels file.

The expected values come from the corpus labels (Sisimai's own expectations,
or the label recorded with each added sample), never from backscatter's
output. Where the project deliberately decides otherwise, the difference is
listed in overrides.tsv with the reason, and applied here.

usage: gen_expected.py LABELS.tsv ROOT [OVERRIDES.tsv]
  LABELS.tsv columns: path, label, and either original_message_id or
  (has_original_message_id, original_message_id); paths relative to ROOT.

The fields the golden test pins from the classifier's reviewed output
(recipients, and a bounce's action and status, written by running it with
BACKSCATTER_BLESS=1) are kept from the existing .json. Keys are sorted, as
the golden test writes them.
"""
import csv, json, os, sys

KIND = {"bounce": "bounce", "autoreply": "autoreply", "challenge": "challenge",
        "virus_notice": "virus_notice", "av_notice": "virus_notice",
        "feedback_report": "feedback_report"}

# Written by the golden test (BACKSCATTER_BLESS=1) after review; kept here.
PINNED = ("recipients", "action", "status")

def main():
    labels, root = sys.argv[1], sys.argv[2]
    overrides = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3], newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                overrides.setdefault(row["path"], []).append(row)
    n = 0
    with open(labels, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            label = row["label"].strip()
            kind = KIND.get(label)
            mid = (row.get("original_message_id") or "").strip() or None
            if row.get("has_original_message_id", "yes") != "yes":
                mid = None
            exp = {
                "verdict": "backscatter" if kind else "normal",
                "kind": kind,
                "original_message_id": mid if kind else None,
                "label": label,
            }
            for o in overrides.get(row["path"], []):
                v = o["value"]
                exp[o["field"]] = None if v == "null" else v
                exp.setdefault("overridden", []).append(f'{o["field"]}: {o["why"]}')
                if o["field"] == "verdict" and v == "normal":
                    exp["kind"] = None
                    exp["original_message_id"] = None
            path = os.path.join(root, row["path"])
            if not os.path.exists(path):
                sys.exit(f"missing {path}")
            jpath = path[:-4] + ".json"
            if os.path.exists(jpath):
                with open(jpath) as old:
                    prev = json.load(old)
                for k in PINNED:
                    if k in prev:
                        exp[k] = prev[k]
            with open(jpath, "w") as out:
                json.dump(exp, out, indent=1, ensure_ascii=False, sort_keys=True)
                out.write("\n")
            n += 1
    print(f"wrote {n} expectations under {root}")

main()
