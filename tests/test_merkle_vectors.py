"""auditlog.merkle against the RFC 6962 proof vectors of transparency-dev/merkle (tests/vectors).

The vectors are that project's reference Go implementation's behaviour, kept as data: see
tests/vectors/README.md. Where they and this project's own wording differ, the vectors win.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from auditlog.errors import ProofError
from auditlog.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors"
CASES = sorted(VECTORS.glob("rfc6962/*/**/*.json"))
# The eight standard RFC 6962 test leaves the vector trees are built from (README.md).
STANDARD_LEAVES = [
    bytes.fromhex(data)
    for data in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
STANDARD_LEAF_HASHES = [leaf_hash(data) for data in STANDARD_LEAVES]


def _hash(case: dict[str, Any], field: str) -> bytes:
    """Decode a base64 hash field; a null or missing one is empty, as Go decodes it to nil."""
    return base64.b64decode(case.get(field) or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    """Decode the proof; a null or missing one is empty, as Go decodes it to a nil slice."""
    return [base64.b64decode(item) for item in case.get("proof") or []]


def _kind(path: Path) -> str:
    """Return "inclusion" or "consistency", the folder a vector file sits under."""
    return path.relative_to(VECTORS / "rfc6962").parts[0]


def _check(path: Path) -> None:
    """Run the verifier that the vector file at ``path`` is for."""
    case = json.loads(path.read_text())
    if _kind(path) == "inclusion":
        verify_inclusion(
            _hash(case, "leafHash"),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _hash(case, "root"),
        )
    else:
        verify_consistency(
            case["size1"], case["size2"], _proof(case), _hash(case, "root1"), _hash(case, "root2")
        )


def test_every_vector_file_is_collected() -> None:
    """All 122 vector files (65 inclusion, 57 consistency) are found, so none is skipped."""
    kinds = [_kind(path) for path in CASES]
    assert (kinds.count("inclusion"), kinds.count("consistency")) == (65, 57)


@pytest.mark.parametrize(
    "path", CASES, ids=[str(path.relative_to(VECTORS / "rfc6962")) for path in CASES]
)
def test_verifier_agrees_with_the_reference_implementation(path: Path) -> None:
    """The verifier accepts the wantErr: false cases and raises ProofError on every other one."""
    if json.loads(path.read_text())["wantErr"]:
        with pytest.raises(ProofError):
            _check(path)
    else:
        _check(path)


def test_roots_by_size_match_the_readme() -> None:
    """The roots of the standard trees of 1 to 8 leaves are the ones listed in the README."""
    listed = {
        int(size): bytes.fromhex(digest)
        for size, digest in re.findall(
            r"^\s+(\d+) ([0-9a-f]{64})$", (VECTORS / "README.md").read_text(), re.MULTILINE
        )
    }
    assert sorted(listed) == list(range(1, 9))
    for size, expected in listed.items():
        assert root(STANDARD_LEAF_HASHES[:size]) == expected, size


def test_generated_proofs_equal_the_reference_happy_path_proofs() -> None:
    """Proofs generated over the standard leaves equal the happy-path proofs of the vectors."""
    compared = 0
    for path in CASES:
        case = json.loads(path.read_text())
        if case["desc"] != "happy path":
            continue
        if _kind(path) == "inclusion":
            generated = inclusion_proof(case["leafIdx"], case["treeSize"], STANDARD_LEAF_HASHES)
        else:
            generated = consistency_proof(case["size1"], case["size2"], STANDARD_LEAF_HASHES)
        assert generated == _proof(case), path
        compared += 1
    assert compared == 6
