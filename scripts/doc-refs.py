#!/usr/bin/env python3
"""Documentation references: every file a comment or document names must be in the repository.

Scans Markdown whole and the comments of Rust, Python (with docstrings), shell, YAML, TOML,
SQL, Lua, the Dockerfile and the CI script for file paths (`docs/clinical-spec.md`,
`src/clinical/json.rs`, `../shared/…`, `*.md`) and reports
  - references to files outside the repository (`../shared/…`, the clinical specification's
    original files, seed documents by file name, design notes), and
  - references to repository files that do not exist, and
  - catalogue sections ("§4.1") that docs/clinical-spec.md does not have.
A path is looked up relative to the repository root, to the citing file's directory, and to
`src/` (module paths such as `clinical/json.rs`). The test data that tests read at run time
from beside the checkout (`../shared/realdata/`, and the seed documents the card-text check
compares against, `../shared/seeds`) is allowed: it is input, not a citation.

    python3 scripts/doc-refs.py        # report; exit 1 on any finding
"""
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Files outside the repository by name: the specification's original files, the seeds by
# file name (NNN_hash.txt), design notes.
OUTSIDE = re.compile(
    r"(?<![\w/.-])(?:\.\./)+shared/[\w./{}-]*|(?<![\w-])shared/(?:clinical|seeds|design|evidence|fhir|hooks)\b[\w./-]*"
    r"|(?<![\w/-])rps-knowledge(?:\.md)?\b|(?<![\w/-])input-profile\.md\b|\bseeds?/\d{3}\w*|\b\d{3}_[0-9a-f]{16}\.txt\b"
    r"|\bdesign[- ]notes?\b|\bnotes/[\w./-]+"
)
# Run-time inputs beside the checkout that tests read (see the module doc).
ALLOWED_OUTSIDE = re.compile(r"^(?:\.\./)?shared/(?:realdata|seeds)\b|^(?:\.\./)+shared/(?:realdata|seeds)\b")

SPEC = "docs/clinical-spec.md"
SECTION = re.compile(r"§ ?(\d+(?:\.\d+)*)")

# The line of docs/clinical-spec.md and docs/input-profile.md that names the file each copies.
PROVENANCE = "Copied from the specification's"

EXTENSIONS = "md|rs|json|py|toml|sql|sh|yml|yaml|txt|csv|html"
PATH = re.compile(
    r"(?<![\w/.:{}$-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w*-]+\.(?:" + EXTENSIONS + r"))(?![\w/])"
    r"|(?<![\w/.:{}$-])((?:src|tests|docs|knowledge|scripts|benches|examples|deploy|migrations|schemas|\.ci)/[\w./-]*[\w/])"
)
# Names that look like paths but are not files of this repository.
NOT_FILES = re.compile(
    r"^(?:Cargo\.toml|Cargo\.lock)$|^[\w-]+\.(?:json|toml|yml|yaml|txt|csv|html|sql)$"
    r"|^README\.md$|(?:^|/)mod\.rs$|^(?:lib|main)\.rs$"
)

HASH_COMMENT = re.compile(r"#.*$")
COMMENT = {
    ".rs": re.compile(r"//.*$"),
    ".sql": re.compile(r"--.*$"),
    ".lua": re.compile(r"--.*$"),
    **{ext: HASH_COMMENT for ext in (".py", ".sh", ".yaml", ".yml", ".toml")},
}
# Files without a telling extension whose `#` comments count.
HASH_FILES = ("run", "Dockerfile", ".dockerignore", ".gitignore")


def texts(path: Path):
    """(line number, text) of what counts as documentation in the file: Markdown and TOML
    whole, the comments of Rust and shell, the comments and docstrings of Python (not its
    string data: generated knowledge files are data, like the card texts)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        return
    pattern = HASH_COMMENT if path.name in HASH_FILES else COMMENT.get(path.suffix)
    in_docstring = False
    for n, line in enumerate(lines, 1):
        if path.suffix == ".md":
            yield n, line
            continue
        if path.suffix == ".py":
            quotes = line.count('"""')
            if in_docstring or line.lstrip().startswith('"""'):
                yield n, line
                if quotes % 2 == 1:
                    in_docstring = not in_docstring
                continue
        if pattern is not None:
            m = pattern.search(line)
            if m:
                yield n, m.group(0)


def exists(ref: str, citing: Path, tracked: set) -> bool:
    ref = ref.rstrip("/.")
    if "/" not in ref:
        # A bare file name: some file of that name in the repository.
        return any(fnmatch.fnmatch(t.rsplit("/", 1)[-1], ref) for t in tracked)
    for base in (ROOT, citing.parent, ROOT / "src", ROOT / "tests"):
        if "*" in ref:
            if any(base.glob(ref)):
                return True
        elif (base / ref).exists():
            return True
    return False


def main() -> int:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    tracked = set(files)
    # "§4.1" cites a section of the catalogue: it must be one of its headings.
    sections = set(
        re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", (ROOT / SPEC).read_text(encoding="utf-8"), re.M)
    )
    findings = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (*COMMENT, ".md") and path.name not in HASH_FILES:
            continue
        if path == Path(__file__).resolve():
            continue  # this file names the patterns it looks for
        for n, text in texts(path):
            if PROVENANCE in text:
                continue
            for m in SECTION.finditer(text):
                if m.group(1) not in sections:
                    findings.append(f"{name}:{n}: no such section of {SPEC}: §{m.group(1)}")
            spans = []
            for m in OUTSIDE.finditer(text):
                ref = m.group(0)
                spans.append(m.span())
                if ALLOWED_OUTSIDE.match(ref):
                    continue
                # A relative link between the copies in docs/ is inside the repository.
                if ref.endswith(".md") and (path.parent / ref).exists():
                    continue
                findings.append(f"{name}:{n}: outside the repository: {ref}")
            for m in PATH.finditer(text):
                if any(a < m.end() and m.start() < b for a, b in spans):
                    continue
                ref = m.group(1) or m.group(2)
                # Templates, paths beside the checkout, and document-relative `./` references
                # (JSON Schema `$ref`s) are not repository paths.
                if "{" in ref or ref.startswith(("../", "./")) or "shared/" in ref:
                    continue
                if "/" not in ref and NOT_FILES.match(ref):
                    continue
                if not exists(ref, path, tracked):
                    findings.append(f"{name}:{n}: no such file: {ref}")
    for f in findings:
        print(f)
    print(f"{len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
