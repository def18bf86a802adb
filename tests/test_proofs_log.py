"""Inclusion and consistency proofs served by a log: correct, offline-verifiable, tamper-evident.

Proofs are served from the stored tiles; the reference they are checked against is
``auditlog.merkle`` over every leaf read back from the segment files. Tampered proofs must fail
with ``ProofError`` or ``NoteError`` and nothing else, since verifiers are handed documents by
anyone.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from _integrity_helpers import SMALL_CONFIG
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checkpoints import CHAIN, cut_chain, records
from typer.testing import CliRunner, Result

from auditlog import AuditLog, merkle, note
from auditlog.cli import app
from auditlog.errors import ConfigurationError, IntegrityError, NoteError, ProofError
from auditlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    TrustedState,
    open_checkpoint,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from auditlog.segment.checkpoints import CheckpointStore
from auditlog.segment.recovery import leaf_blocks
from auditlog.segment.tiles import TileStore
from auditlog.testing import TEST_PASSPHRASE, TEST_SCRYPT_N

REPO = Path(__file__).resolve().parents[1]
MAX_RECORDS = 600
BIG = 600  # the chain most tests prove from: two tiles of level 8, 19 stored checkpoints
ENV = {"AUDITLOG_PASSPHRASE": TEST_PASSPHRASE}
REFUSED = (ProofError, NoteError)


@dataclass
class Chain:
    """A closed log whose chain ``CHAIN`` holds ``n`` records, opened read-only without keys."""

    path: Path
    log: AuditLog
    key: str
    origin: str
    leaves: list[bytes]
    sizes: list[int]


def build_log(path: Path, n: int) -> None:
    """Create a log at ``path`` with ``n`` records in ``CHAIN`` and a checkpoint of its head."""
    with AuditLog.create(
        path, passphrase=TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N, config=SMALL_CONFIG, fsync=False
    ) as log:
        log.append_many(records(MAX_RECORDS)[:n], chain=CHAIN)
        log.proofs.sign_checkpoints()


def segment_leaves(path: Path) -> list[bytes]:
    """Every leaf of ``CHAIN`` as stored in its segment files (not in its tiles)."""
    joined = b"".join(
        block for _, block in leaf_blocks(path / "chains" / CHAIN / "segments", CHAIN)
    )
    return [joined[i : i + 32] for i in range(0, len(joined), 32)]


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], Chain]]:
    """Logs of any size up to ``MAX_RECORDS``, each built once for the module."""
    built: dict[int, Chain] = {}

    def chain_of(n: int) -> Chain:
        if n not in built:
            path = tmp_path_factory.mktemp(f"chain-{n}") / "log"
            build_log(path, n)
            log = AuditLog.open(path, mode="read")
            store = CheckpointStore(path / "chains" / CHAIN / "checkpoints")
            built[n] = Chain(
                path=path,
                log=log,
                key=log.verifier_key,
                origin=log.chain_origin(CHAIN),
                leaves=segment_leaves(path),
                sizes=store.sizes(),
            )
        return built[n]

    yield chain_of
    for chain in built.values():
        chain.log.close()


def flip(data: bytes, bit: int) -> bytes:
    """``data`` with bit ``bit`` (counted from the first byte's lowest bit) inverted."""
    raw = bytearray(data)
    raw[bit // 8] ^= 1 << (bit % 8)
    return bytes(raw)


# -- inclusion proofs ---------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prove_gives_the_rfc_6962_proof_of_any_index(
    chains: Callable[[int], Chain], data: st.DataObject
) -> None:
    """For random chain sizes, checkpoints and indexes, ``prove`` equals the proof computed from
    all the leaves, and verifies offline with the public key."""
    chain = chains(data.draw(st.integers(1, MAX_RECORDS), label="records"))
    size = data.draw(st.sampled_from(chain.sizes), label="checkpoint size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = chain.log.proofs.prove_inclusion(CHAIN, index, size)
    assert (proof.origin, proof.index, proof.size) == (chain.origin, index, size)
    assert proof.leaf_hash == chain.leaves[index]
    assert list(proof.proof) == merkle.inclusion_proof(index, size, chain.leaves)
    checkpoint = verify_inclusion_proof(proof, chain.key)
    assert checkpoint.size == size
    assert checkpoint.root_hash == merkle.root(chain.leaves[:size])
    assert len(proof.proof) <= max(1, (size - 1).bit_length())


def test_prove_defaults_to_the_newest_checkpoint_and_refuses_what_it_cannot_prove(
    chains: Callable[[int], Chain],
) -> None:
    """Without a size the newest checkpoint is used; an index beyond it, or a size with no
    stored checkpoint, is a ConfigurationError rather than a wrong proof."""
    chain = chains(100)
    assert chain.log.proofs.prove_inclusion(CHAIN, 99).size == 100
    assert (
        chain.log.proofs.prove_inclusion(CHAIN, 3).checkpoint
        == chain.log.proofs.stored_checkpoints(CHAIN)[-1]
    )
    for index, size in [(100, None), (40, 32), (-1, None), (0, 50)]:
        with pytest.raises(ConfigurationError):
            chain.log.proofs.prove_inclusion(CHAIN, index, size)


# -- consistency proofs -------------------------------------------------------------------------


def test_consistency_between_every_pair_of_stored_checkpoints_verifies(
    chains: Callable[[int], Chain],
) -> None:
    """``prove_consistency`` between any two stored checkpoints verifies offline and equals the
    proof computed from all the leaves."""
    chain = chains(BIG)
    assert len(chain.sizes) >= 19
    for position, size1 in enumerate(chain.sizes):
        for size2 in chain.sizes[position:]:
            proof = chain.log.proofs.prove_consistency(CHAIN, size1, size2)
            assert list(proof.proof) == merkle.consistency_proof(size1, size2, chain.leaves)
            first, second = verify_consistency_proof(proof, chain.key)
            assert (first.size, second.size) == (size1, size2)
    assert chain.log.proofs.prove_consistency(CHAIN, 32).size2 == BIG
    for size1, size2 in [(0, 32), (64, 32), (50, 64), (32, 50)]:
        with pytest.raises(ConfigurationError):
            chain.log.proofs.prove_consistency(CHAIN, size1, size2)


# -- tampering ----------------------------------------------------------------------------------


def _split_note(signed: str) -> tuple[str, str, bytes]:
    """The text, the signer's name and the signature bytes of a note with one signature."""
    text, _, line = signed[:-1].rpartition("\n\n")
    name, encoded = line.removeprefix("— ").split(" ")
    return text + "\n", name, base64.b64decode(encoded)


def _join_note(text: str, name: str, signature: bytes) -> str:
    return f"{text}\n— {name} {base64.b64encode(signature).decode()}\n"


def _flipped_checkpoint(signed: str, part: str, bit_of: Callable[[int], int]) -> str:
    """The signed checkpoint with one bit of its text, root or signature inverted."""
    text, name, signature = _split_note(signed)
    if part == "signature":
        return _join_note(text, name, flip(signature, bit_of(len(signature) * 8)))
    if part == "root":
        checkpoint = note.Checkpoint.from_text(text)
        root = flip(checkpoint.root_hash, bit_of(256))
        changed = dataclasses.replace(checkpoint, root_hash=root).to_text()
        return _join_note(changed, name, signature)
    raw = text.encode("utf-8")
    # A flip may leave invalid UTF-8: carried as lone surrogates, which JSON can also carry.
    changed = flip(raw, bit_of(len(raw) * 8)).decode("utf-8", "surrogateescape")
    return _join_note(changed, name, signature)


INCLUSION_PARTS = ("leaf_hash", "proof", "text", "root", "signature")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_of_an_inclusion_proof_fails(
    chains: Callable[[int], Chain], data: st.DataObject
) -> None:
    """One inverted bit in the leaf hash, a proof hash, or the checkpoint's text, root or
    signature makes verification fail with ProofError or NoteError."""
    chain = chains(BIG)
    size = data.draw(st.sampled_from(chain.sizes))
    proof = chain.log.proofs.prove_inclusion(CHAIN, data.draw(st.integers(0, size - 1)), size)
    part = data.draw(st.sampled_from(INCLUSION_PARTS))

    def bit_of(bits: int) -> int:
        return data.draw(st.integers(0, bits - 1))

    if part == "leaf_hash":
        tampered = dataclasses.replace(proof, leaf_hash=flip(proof.leaf_hash, bit_of(256)))
    elif part == "proof":
        hashes = list(proof.proof)
        position = data.draw(st.integers(0, len(hashes) - 1))
        hashes[position] = flip(hashes[position], bit_of(256))
        tampered = dataclasses.replace(proof, proof=tuple(hashes))
    else:
        tampered = dataclasses.replace(
            proof, checkpoint=_flipped_checkpoint(proof.checkpoint, part, bit_of)
        )
    with pytest.raises(REFUSED):
        verify_inclusion_proof(tampered, chain.key)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_of_a_consistency_proof_fails(
    chains: Callable[[int], Chain], data: st.DataObject
) -> None:
    """One inverted bit in a proof hash or in either checkpoint fails with ProofError/NoteError."""
    chain = chains(BIG)
    size1 = data.draw(st.sampled_from(chain.sizes[:-1]))
    size2 = data.draw(st.sampled_from([s for s in chain.sizes if s > size1]))
    proof = chain.log.proofs.prove_consistency(CHAIN, size1, size2)
    part = data.draw(st.sampled_from(("proof", "checkpoint1", "checkpoint2")))

    def bit_of(bits: int) -> int:
        return data.draw(st.integers(0, bits - 1))

    if part == "proof":
        hashes = list(proof.proof)
        position = data.draw(st.integers(0, len(hashes) - 1))
        hashes[position] = flip(hashes[position], bit_of(256))
        tampered = dataclasses.replace(proof, proof=tuple(hashes))
    else:
        where = data.draw(st.sampled_from(("text", "root", "signature")))
        if part == "checkpoint1":
            signed = _flipped_checkpoint(proof.checkpoint1, where, bit_of)
            tampered = dataclasses.replace(proof, checkpoint1=signed)
        else:
            signed = _flipped_checkpoint(proof.checkpoint2, where, bit_of)
            tampered = dataclasses.replace(proof, checkpoint2=signed)
    with pytest.raises(REFUSED):
        verify_consistency_proof(tampered, chain.key)


def _statement(document: InclusionProof | ConsistencyProof, key: str) -> object:
    """What a verified document proves, independent of how its bytes encode it."""
    if isinstance(document, InclusionProof):
        checkpoint = verify_inclusion_proof(document, key)
        return (document.index, document.leaf_hash, checkpoint)
    return verify_consistency_proof(document, key)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_flipped_bit_anywhere_in_a_proof_document_is_refused_or_changes_nothing(
    chains: Callable[[int], Chain], data: st.DataObject
) -> None:
    """Any one-bit change to the JSON bytes of either document fails with ProofError or
    NoteError, or (base64 padding bits, a JSON escape) still proves exactly the same thing."""
    chain = chains(BIG)
    original: InclusionProof | ConsistencyProof
    if data.draw(st.booleans(), label="inclusion"):
        original = chain.log.proofs.prove_inclusion(CHAIN, data.draw(st.integers(0, BIG - 1)))
    else:
        original = chain.log.proofs.prove_consistency(
            CHAIN, data.draw(st.sampled_from(chain.sizes))
        )
    raw = original.to_json().encode("utf-8")
    tampered = flip(raw, data.draw(st.integers(0, len(raw) * 8 - 1)))
    try:
        statement = _statement(type(original).from_json(tampered), chain.key)
    except REFUSED:
        return
    assert statement == _statement(original, chain.key)


def test_a_proof_for_another_index_or_size_or_key_fails(chains: Callable[[int], Chain]) -> None:
    """The same hashes with another index, another tree size (with or without that size's own
    checkpoint), or checked with another key, never verify."""
    chain = chains(BIG)
    proof = chain.log.proofs.prove_inclusion(CHAIN, 300, 512)
    for index in range(512):
        if index != 300:
            with pytest.raises(ProofError):
                verify_inclusion_proof(dataclasses.replace(proof, index=index), chain.key)
    with pytest.raises(ProofError):
        verify_inclusion_proof(dataclasses.replace(proof, index=512), chain.key)
    for size in chain.sizes:
        if size != 512:
            with pytest.raises(ProofError):
                verify_inclusion_proof(dataclasses.replace(proof, size=size), chain.key)
            if size > 300:
                other = chain.log.proofs.prove_inclusion(CHAIN, 300, size).checkpoint
                with pytest.raises(ProofError):
                    verify_inclusion_proof(
                        dataclasses.replace(proof, size=size, checkpoint=other), chain.key
                    )
    _, same_name = note.generate_key(chain.log.origin)
    _, other_name = note.generate_key("another.example/log")
    for key in (same_name, other_name):
        with pytest.raises(NoteError):
            verify_inclusion_proof(proof, key)
        with pytest.raises(NoteError):
            verify_consistency_proof(chain.log.proofs.prove_consistency(CHAIN, 64, 512), key)
    with pytest.raises(NoteError):
        verify_inclusion_proof(dataclasses.replace(proof, origin=chain.origin + "x"), chain.key)


def test_a_consistency_proof_with_swapped_or_other_sizes_fails(
    chains: Callable[[int], Chain],
) -> None:
    """A consistency proof checked between other sizes, or with its checkpoints swapped, fails."""
    chain = chains(BIG)
    proof = chain.log.proofs.prove_consistency(CHAIN, 96, 416)
    swapped = dataclasses.replace(
        proof,
        size1=416,
        size2=96,
        checkpoint1=proof.checkpoint2,
        checkpoint2=proof.checkpoint1,
    )
    with pytest.raises(ProofError):
        verify_consistency_proof(swapped, chain.key)
    for size1 in (32, 64, 128, 160):
        other = chain.log.proofs.prove_consistency(CHAIN, size1, 416).checkpoint1
        with pytest.raises(ProofError):
            verify_consistency_proof(
                dataclasses.replace(proof, size1=size1, checkpoint1=other), chain.key
            )


# -- where proofs come from ---------------------------------------------------------------------


def test_proofs_are_served_without_the_segments_and_without_keys(tmp_path: Path) -> None:
    """With the segment files moved away and no passphrase, proofs still come from the tiles."""
    path = tmp_path / "log"
    build_log(path, 300)
    segments = path / "chains" / CHAIN / "segments"
    shutil.move(segments, tmp_path / "elsewhere")
    with AuditLog.open(path, mode="read") as log:
        key = log.verifier_key
        for index in (0, 1, 31, 32, 255, 256, 299):
            verify_inclusion_proof(log.proofs.prove_inclusion(CHAIN, index), key)
        for size1 in CheckpointStore(path / "chains" / CHAIN / "checkpoints").sizes():
            verify_consistency_proof(log.proofs.prove_consistency(CHAIN, size1), key)
    assert not segments.exists()


def _truncate(path: Path, length: int) -> None:
    os.truncate(path, length)


TILE_DAMAGE: dict[str, Callable[[Path], None]] = {
    "all-deleted": lambda tiles: shutil.rmtree(tiles),
    "leaves-short-by-one-hash": lambda tiles: _truncate(
        tiles / "level-00", (tiles / "level-00").stat().st_size - 32
    ),
    "leaves-cut-mid-hash": lambda tiles: _truncate(tiles / "level-00", 1000),
    "leaves-deleted": lambda tiles: (tiles / "level-00").unlink(),
    "level-8-deleted": lambda tiles: (tiles / "level-08").unlink(),
    "level-8-emptied": lambda tiles: _truncate(tiles / "level-08", 0),
}


@pytest.mark.parametrize("damage", TILE_DAMAGE)
def test_lost_tiles_are_rebuilt_on_the_next_write_open(tmp_path: Path, damage: str) -> None:
    """Tiles deleted or cut short are never served (prove fails), and opening the log for
    writing rebuilds them from the segments: the same proofs come back and verify."""
    path = tmp_path / "log"
    build_log(path, BIG)
    tiles = path / "chains" / CHAIN / "tiles"
    indexes = (0, 5, 255, 256, 300, 511, 599)
    with AuditLog.open(path, mode="read") as log:
        before = [log.proofs.prove_inclusion(CHAIN, i) for i in indexes]
        key = log.verifier_key
    TILE_DAMAGE[damage](tiles)
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError):
        log.proofs.prove_inclusion(CHAIN, BIG - 1)  # its proof needs every damaged level
    AuditLog.open(path, passphrase=TEST_PASSPHRASE).close()
    assert TileStore(tiles).matches(BIG)
    with AuditLog.open(path, mode="read") as log:
        after = [log.proofs.prove_inclusion(CHAIN, i) for i in indexes]
    assert after == before
    for proof in after:
        verify_inclusion_proof(proof, key)


def test_the_error_for_lost_tiles_names_a_remedy_that_exists(tmp_path: Path) -> None:
    """When tiles are missing, the error's advice names no command the CLI does not have."""
    path = tmp_path / "log"
    build_log(path, BIG)
    (path / "chains" / CHAIN / "tiles" / "level-08").unlink()
    with AuditLog.open(path, mode="read") as log, pytest.raises(IntegrityError) as info:
        log.proofs.prove_inclusion(CHAIN, 5)
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"prove", "verify", "checkpoint"} <= commands
    for named in re.findall(r"`auditlog ([a-z-]+)", str(info.value)):
        assert named in commands, f"the error advises `auditlog {named}`, which does not exist"


def test_damaged_tiles_are_never_served_as_a_proof(tmp_path: Path) -> None:
    """A tile hash changed in place (same length) makes ``prove`` fail, not return a bad proof."""
    path = tmp_path / "log"
    build_log(path, BIG)
    tiles = path / "chains" / CHAIN / "tiles"
    # Node (8, 0) is in the proof of every index from 256 on; leaf 7 is in its own proof.
    for level, offset, index in [("level-08", 0, 300), ("level-00", 7 * 32, 7)]:
        original = (tiles / level).read_bytes()
        (tiles / level).write_bytes(flip(original, offset * 8 + 3))
        with AuditLog.open(path, mode="read") as log, pytest.raises((ProofError, IntegrityError)):
            log.proofs.prove_inclusion(CHAIN, index)
        (tiles / level).write_bytes(original)


# -- documents ----------------------------------------------------------------------------------


def test_proof_documents_round_trip_through_json(chains: Callable[[int], Chain]) -> None:
    """Both documents read back equal to what was written, and write back byte for byte."""
    chain = chains(BIG)
    documents: list[InclusionProof | ConsistencyProof] = [
        chain.log.proofs.prove_inclusion(CHAIN, 0, 32),
        chain.log.proofs.prove_inclusion(CHAIN, 599),
        chain.log.proofs.prove_consistency(CHAIN, 32, 600),
        chain.log.proofs.prove_consistency(CHAIN, 64, 64),
    ]
    for document in documents:
        text = document.to_json()
        again = type(document).from_json(text)
        assert again == document
        assert again.to_json() == text
        assert type(document).from_json(text.encode("utf-8")) == document
        doc = json.loads(text)
        assert list(doc)[:2] == ["format", "version"]
        assert doc["version"] == 1
    assert json.loads(documents[0].to_json())["format"] == "auditlog-inclusion-proof"
    assert json.loads(documents[2].to_json())["format"] == "auditlog-consistency-proof"
    with pytest.raises(ProofError):
        InclusionProof.from_json(documents[2].to_json())
    with pytest.raises(ProofError):
        ConsistencyProof.from_json(documents[0].to_json())


# -- the command line ---------------------------------------------------------------------------


def _ok(result: Result) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_checkpoint_prove_and_verify_proof(tmp_path: Path) -> None:
    """``checkpoint``, ``prove`` and ``prove-consistency`` print documents that ``verify-proof``
    accepts with the public key (exit 0) and refuses once tampered or with another key (exit 1)."""
    runner = CliRunner()
    path = tmp_path / "log"
    build_log(path, 100)
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as log:
        log.append_many(records(MAX_RECORDS)[100:120], chain=CHAIN)
        key = log.verifier_key
    printed = _ok(runner.invoke(app, ["checkpoint", str(path)], env=ENV))
    assert f"verifier key: {key}" in printed
    stored = CheckpointStore(path / "chains" / CHAIN / "checkpoints")
    assert stored.sizes()[-1] == 120
    assert stored.get(120) in printed

    inclusion = _ok(runner.invoke(app, ["prove", str(path), "--chain", CHAIN, "--index", "7"]))
    assert InclusionProof.from_json(inclusion).size == 120
    consistency = _ok(
        runner.invoke(
            app, ["prove-consistency", str(path), "--chain", CHAIN, "--from", "32", "--to", "120"]
        )
    )
    assert ConsistencyProof.from_json(consistency).size1 == 32
    older = _ok(
        runner.invoke(app, ["prove", str(path), "--chain", CHAIN, "--index", "7", "--size", "100"])
    )
    assert InclusionProof.from_json(older).size == 100

    _, other_key = note.generate_key(AuditLog.open(path, mode="read").origin)
    for name, text in [("inclusion", inclusion), ("consistency", consistency)]:
        good = tmp_path / f"{name}.json"
        good.write_text(text, "utf-8")
        assert _ok(runner.invoke(app, ["verify-proof", str(good), "--key", key]))
        doc = json.loads(text)
        first = base64.b64decode(doc["proof"][0])
        doc["proof"][0] = base64.b64encode(flip(first, 0)).decode()
        bad = tmp_path / f"{name}-tampered.json"
        bad.write_text(json.dumps(doc), "utf-8")
        assert runner.invoke(app, ["verify-proof", str(bad), "--key", key]).exit_code == 1
        assert runner.invoke(app, ["verify-proof", str(good), "--key", other_key]).exit_code == 1
    stdin = runner.invoke(app, ["verify-proof", "-", "--key", key], input=inclusion)
    assert stdin.exit_code == 0, stdin.output


def test_cli_verify_with_a_state_file_catches_a_cut(tmp_path: Path) -> None:
    """``verify --state`` passes and records the head, then exits 1 once a block is cut off;
    ``--key`` with another key exits 1."""
    runner = CliRunner()
    path = tmp_path / "log"
    build_log(path, 100)
    state = tmp_path / "trusted.json"
    with AuditLog.open(path, mode="read") as log:
        origin, key = log.chain_origin(CHAIN), log.verifier_key
    _ok(runner.invoke(app, ["verify", str(path), "--state", str(state), "--key", key], env=ENV))
    _ok(runner.invoke(app, ["verify", str(path), "--keyless", "--state", str(state)]))
    trusted = TrustedState(state).trusted(origin, key)
    assert trusted is not None
    assert trusted.size == 100
    _, other_key = note.generate_key("attacker.example")
    assert runner.invoke(app, ["verify", str(path), "--keyless", "--key", other_key]).exit_code == 1
    cut_chain(path, CHAIN, 96)
    for checkpoint in (path / "chains" / CHAIN / "checkpoints").glob("*100.note"):
        checkpoint.unlink()
    unpinned = runner.invoke(app, ["verify", str(path), "--keyless"])
    assert unpinned.exit_code == 1  # the log's signed head counts the deleted checkpoint
    assert "checkpoints were deleted" in " ".join(unpinned.output.split())
    cut = runner.invoke(app, ["verify", str(path), "--keyless", "--state", str(state)])
    assert cut.exit_code == 1
    assert "96" in cut.output


# -- docs/proofs.md -----------------------------------------------------------------------------


def _doc_block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in docs/proofs.md."""
    text = (REPO / "docs" / "proofs.md").read_text("utf-8")
    match = re.search(rf"<!-- {marker} -->\s*```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/proofs.md has no code block marked {marker}"
    return match.group(1)


def test_the_verifier_pasted_from_the_docs_checks_a_real_proof(
    chains: Callable[[int], Chain], tmp_path: Path
) -> None:
    """The stand-alone verifier of docs/proofs.md accepts a real proof with the log's key and
    refuses a tampered proof, a proof of another leaf, and another key."""
    script = tmp_path / "verify_inclusion.py"
    script.write_text(_doc_block("verify-inclusion"), "utf-8")
    assert "import auditlog" not in script.read_text("utf-8")
    assert "from auditlog" not in script.read_text("utf-8")
    chain = chains(BIG)

    def run(document: str, key: str) -> subprocess.CompletedProcess[str]:
        proof_file = tmp_path / "proof.json"
        proof_file.write_text(document, "utf-8")
        return subprocess.run(
            [sys.executable, "-I", str(script), str(proof_file), key],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    for index, size in [(0, 32), (5, BIG), (299, 512), (BIG - 1, BIG), (0, 1)]:
        if size not in chain.sizes:
            continue
        proof = chain.log.proofs.prove_inclusion(CHAIN, index, size)
        result = run(proof.to_json(), chain.key)
        assert result.returncode == 0, result.stderr
        assert f"index {index}" in result.stdout
        assert f"size {size}" in result.stdout
    proof = chain.log.proofs.prove_inclusion(CHAIN, 5)
    tampered = dataclasses.replace(proof, leaf_hash=flip(proof.leaf_hash, 9))
    other_leaf = dataclasses.replace(proof, leaf_hash=chain.leaves[6])
    wrong_index = dataclasses.replace(proof, index=4)
    for bad in (tampered, other_leaf, wrong_index):
        assert run(bad.to_json(), chain.key).returncode != 0
    _, same_name = note.generate_key(chain.log.origin)
    assert run(proof.to_json(), same_name).returncode != 0
    checkpoint = open_checkpoint(proof.checkpoint, chain.key, chain.origin)
    assert checkpoint.size == BIG


def test_the_example_proof_in_the_docs_verifies(tmp_path: Path) -> None:
    """The example document of docs/proofs.md verifies with its published key, by the library
    and by the pasted verifier, so the example cannot drift from the format."""
    text = (REPO / "docs" / "proofs.md").read_text("utf-8")
    match = re.search(r"verifies with the key\s+`([^`]+)`", text)
    assert match
    key = match.group(1)
    document = _doc_block("example-inclusion-proof")
    checkpoint = verify_inclusion_proof(InclusionProof.from_json(document), key)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/audit/chat", 6)
    assert InclusionProof.from_json(document).checkpoint in text  # the note shown in the docs
    script = tmp_path / "verify_inclusion.py"
    script.write_text(_doc_block("verify-inclusion"), "utf-8")
    (tmp_path / "proof.json").write_text(document, "utf-8")
    result = subprocess.run(
        [sys.executable, "-I", str(script), "proof.json", key],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in text
