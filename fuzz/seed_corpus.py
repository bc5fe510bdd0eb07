"""Writes the fuzz seed corpus (fuzz/corpus/document/) from the test fixtures and the example flags.

Run from the repository root: `python3 fuzz/seed_corpus.py`. The files are named by content hash, as
libFuzzer names the inputs it adds, so rerunning it is idempotent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus" / "document"


def seeds() -> list[bytes]:
    cases = json.loads((ROOT / "tests" / "fixtures" / "eval_cases.json").read_text())
    out = [(ROOT / "examples" / "flags.json").read_bytes()]
    for entry in cases["documents"]:
        document = entry["document"]
        out.append(json.dumps(document, ensure_ascii=False).encode())
        flags = document["flags"] if isinstance(document, dict) else document
        # Each flag on its own too: small inputs that the fuzzer mutates fastest.
        out.extend(json.dumps([flag], ensure_ascii=False).encode() for flag in flags[:12])
    out.extend(entry["text"].encode("utf-8", "surrogatepass") for entry in cases["invalid_documents"])
    out.extend(hostile())
    return out


def hostile() -> list[bytes]:
    """Shapes that once exhausted time or memory (docs/spec.md §6, "Limits"), small enough for the fuzzer's
    4 KiB inputs: run.sh's per-input timeout and RSS limit turn a regression into a crash."""

    def matches(pattern: str) -> dict[str, object]:
        return {"attribute": "ua", "operator": "matches", "values": [pattern]}

    def flag(*conditions: dict[str, object]) -> dict[str, object]:
        return {"key": "f", "enabled": True, "rules": [{"conditions": [c]} for c in conditions]}

    tower = [
        {
            "key": f"s{i}",
            "rules": [
                {"conditions": [{"operator": "in_segment", "values": [f"s{i + 1}"]}, {"attribute": "a", "values": [x]}]}
                for x in "xy"
            ],
        }
        for i in range(18)
    ]
    documents = [
        {"format": 2, "segments": tower, "flags": [flag({"operator": "in_segment", "values": ["s0"]})]},
        {"format": 2, "flags": [flag(*(matches(rf"\w{{16}}{i}") for i in range(40)))]},
        {"format": 2, "flags": [flag(matches("1[01]{1000}[^01]"), matches("1[01]{5000}[^01]"), matches(r"\w{64}"))]},
        {"format": 2, "flags": [flag(matches("(a|aa)*b"), matches("((a+)+)+c"), matches("(" * 240 + ")" * 240))]},
    ]
    return [json.dumps(d, separators=(",", ":")).encode() for d in documents]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for data in seeds():
        (OUT / hashlib.sha1(data).hexdigest()).write_bytes(data)  # a name, not security
    files = list(OUT.iterdir())
    print(f"{len(files)} files, {sum(f.stat().st_size for f in files)} bytes in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
