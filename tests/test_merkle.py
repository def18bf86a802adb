"""Properties of auditlog.merkle: tree hashes, compact ranges, proofs and their verification."""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlog.errors import ProofError
from auditlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    NodeID,
    NodeSpec,
    consistency_proof,
    consistency_proof_nodes,
    decompose,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    range_nodes,
    rehash,
    root,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 2000
LEAVES = [leaf_hash(b"record %d" % i) for i in range(MAX_SIZE)]


def _perfect_nodes(leaves: Sequence[bytes]) -> dict[NodeID, bytes]:
    """Return the hash of every perfect subtree over ``leaves``, as a node store would hold."""
    nodes: dict[NodeID, bytes] = {(0, i): h for i, h in enumerate(leaves)}
    level, count = 0, len(leaves)
    while count > 1:
        for i in range(count // 2):
            nodes[level + 1, i] = node_hash(nodes[level, 2 * i], nodes[level, 2 * i + 1])
        level, count = level + 1, count // 2
    return nodes


NODES = _perfect_nodes(LEAVES)


@functools.cache
def tree_root(size: int) -> bytes:
    """Return the root of the tree of the first ``size`` test leaves."""
    return root(LEAVES[:size])


def naive_mth(leaves: Sequence[bytes]) -> bytes:
    """Return MTH exactly as RFC 9162 §2.1.1 defines it, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def flip_bit(value: bytes, bit: int) -> bytes:
    """Return ``value`` with one bit inverted."""
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def ceil_log2(n: int) -> int:
    """Return ceil(log2(n)) for n >= 1."""
    return (n - 1).bit_length()


sizes = st.integers(min_value=1, max_value=MAX_SIZE)
bits = st.integers(min_value=0, max_value=HASH_SIZE * 8 - 1)
FAST = settings(max_examples=150, deadline=None)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    """Draw a tree size and a leaf index inside it."""
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    """Draw tree sizes 0 < size1 <= size2, equal ones included."""
    size2 = draw(sizes)
    size1 = draw(st.one_of(st.just(size2), st.integers(min_value=1, max_value=size2)))
    return size1, size2


# Hashing and tree roots.


def test_leaf_and_node_hashes_are_domain_separated_sha256() -> None:
    """Leaf and node hashes are SHA-256 over 0x00 || data and 0x01 || left || right."""
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root([]) == EMPTY_ROOT


def test_root_matches_the_recursive_rfc_definition() -> None:
    """The iterative root equals RFC 9162's recursive MTH for every size up to 130."""
    for size in range(131):
        assert root(LEAVES[:size]) == naive_mth(LEAVES[:size]), size


# Compact ranges.


def test_decompose_matches_the_reference_example() -> None:
    """decompose((0b110, 0b11101)) gives subtree sizes 2, 8 on the left and 8, 4, 1 on the right."""
    assert decompose(0b110, 0b11101) == (0b1010, 0b1101)
    assert decompose(0, 13) == (0, 13)


def greedy_cover(begin: int, end: int) -> list[NodeID]:
    """Cover [begin, end) left to right, each time with the largest aligned subtree that fits."""
    nodes: list[NodeID] = []
    position = begin
    while position < end:
        level = 0
        while position % (2 << level) == 0 and position + (2 << level) <= end:
            level += 1
        nodes.append((level, position >> level))
        position += 1 << level
    return nodes


def test_range_nodes_are_the_fewest_perfect_subtrees_covering_the_range() -> None:
    """range_nodes is the greedy cover of [begin, end) by aligned subtrees, for all ends < 70."""
    for begin in range(70):
        for end in range(begin, 70):
            assert range_nodes(begin, end) == greedy_cover(begin, end), (begin, end)


@FAST
@given(
    size=st.integers(min_value=0, max_value=MAX_SIZE),
    cuts=st.lists(st.integers(min_value=0, max_value=MAX_SIZE), max_size=40),
)
def test_extend_in_any_chunking_gives_the_tree_root(size: int, cuts: list[int]) -> None:
    """Extending a range from 0 in random chunks yields root(leaves) and the stored node hashes."""
    bounds = sorted({0, size, *(cut for cut in cuts if cut < size)})
    compact = CompactRange()
    for start, stop in itertools.pairwise(bounds):
        if stop - start == 1:
            compact.append(LEAVES[start])
        else:
            compact.extend(iter(LEAVES[start:stop]))
    assert compact.end == size
    assert compact.root() == tree_root(size)
    assert list(compact.hashes) == [NODES[node] for node in range_nodes(0, size)]


@FAST
@given(data=st.data())
def test_ranges_not_starting_at_zero_hold_their_subtree_hashes(data: st.DataObject) -> None:
    """A range grown from any begin holds exactly the hashes of the nodes range_nodes names."""
    begin = data.draw(st.integers(min_value=0, max_value=MAX_SIZE))
    end = data.draw(st.integers(min_value=begin, max_value=MAX_SIZE))
    compact = CompactRange(begin, begin)
    compact.extend(LEAVES[begin:end])
    assert (compact.begin, compact.end) == (begin, end)
    assert list(compact.hashes) == [NODES[node] for node in range_nodes(begin, end)]
    assert CompactRange(begin, end, compact.hashes) == compact


@FAST
@given(data=st.data())
def test_merging_adjacent_ranges_equals_the_range_of_their_union(data: st.DataObject) -> None:
    """Merging [a, b) with [b, c) gives the same compact range as building [a, c) directly."""
    a, b, c = sorted(data.draw(st.integers(0, MAX_SIZE)) for _ in range(3))
    left = CompactRange(a, a)
    left.extend(LEAVES[a:b])
    right = CompactRange(b, b)
    right.extend(LEAVES[b:c])
    union = CompactRange(a, a)
    union.extend(LEAVES[a:c])
    left.merge(right)
    assert left == union
    if a == 0:
        assert left.root() == tree_root(c)


@FAST
@given(
    size=st.integers(min_value=0, max_value=MAX_SIZE),
    cuts=st.lists(st.integers(min_value=0, max_value=MAX_SIZE), max_size=12),
)
def test_extend_reports_each_completed_stride_node_once(size: int, cuts: list[int]) -> None:
    """The stride nodes (levels 8, 16, ...) that extend reports, over any chunking, are exactly
    the completed nodes of those levels, each once, with their hashes: what tiles store."""
    bounds = sorted({0, size, *(cut for cut in cuts if cut < size)})
    compact = CompactRange()
    reported: list[tuple[int, int, bytes]] = []
    for start, stop in itertools.pairwise(bounds):
        compact.extend(LEAVES[start:stop], reported)
    expected = [(8, index, NODES[8, index]) for index in range(size >> 8)]
    assert sorted(reported) == expected


def test_extend_reports_level_16_stride_nodes() -> None:
    """A chain of 70,000 leaves written in blocks of 4096 reports node (16, 0) with its hash."""
    leaves = [leaf_hash(b"big %d" % i) for i in range(70_000)]
    compact = CompactRange()
    reported: list[tuple[int, int, bytes]] = []
    for start in range(0, len(leaves), 4096):
        compact.extend(leaves[start : start + 4096], reported)
    level_16 = [node for node in reported if node[0] == 16]
    assert level_16 == [(16, 0, root(leaves[:65536]))]
    assert len(reported) == 1 + 70_000 // 256
    assert compact.root() == root(leaves)


@FAST
@given(
    size=st.integers(min_value=0, max_value=MAX_SIZE),
    cuts=st.lists(st.integers(min_value=0, max_value=MAX_SIZE), max_size=12),
)
def test_extend_joined_equals_extend(size: int, cuts: list[int]) -> None:
    """Leaf hashes laid end to end give the same range and stride nodes as the same list."""
    bounds = sorted({0, size, *(cut for cut in cuts if cut < size)})
    listed, joined = CompactRange(), CompactRange()
    listed_nodes: list[tuple[int, int, bytes]] = []
    joined_nodes: list[tuple[int, int, bytes]] = []
    for start, stop in itertools.pairwise(bounds):
        listed.extend(LEAVES[start:stop], listed_nodes)
        joined.extend_joined(b"".join(LEAVES[start:stop]), joined_nodes)
    assert joined == listed
    assert joined_nodes == listed_nodes


def test_extend_joined_refuses_partial_hashes() -> None:
    """A joined buffer that is not whole hashes, or not bytes, changes nothing."""
    compact = CompactRange()
    compact.extend(LEAVES[:3])
    before = compact.copy()
    with pytest.raises(ValueError, match="not a whole number"):
        compact.extend_joined(b"".join(LEAVES[3:5])[:-1])
    with pytest.raises(TypeError, match="must be bytes"):
        compact.extend_joined(bytearray(LEAVES[3]))  # type: ignore[arg-type]
    assert compact == before


def test_extend_is_all_or_nothing() -> None:
    """A bad leaf or a failing iterable raises and leaves the range exactly as it was."""
    compact = CompactRange()
    compact.extend(LEAVES[:7])
    before = compact.copy()

    def failing() -> Iterator[bytes]:
        yield from LEAVES[7:12]
        raise RuntimeError("a record failed to encode")

    with pytest.raises(RuntimeError, match="failed to encode"):
        compact.extend(failing())
    with pytest.raises(ValueError, match="leaf hash 9 has 31 bytes"):
        compact.extend([*LEAVES[7:9], LEAVES[9][:31]])
    with pytest.raises(TypeError, match="leaf hash 8 must be bytes"):
        compact.extend([LEAVES[7], LEAVES[8].hex()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="leaf hash 7 has 33 bytes"):
        compact.append(LEAVES[7] + b"\x00")
    with pytest.raises(TypeError, match="leaf hash 7 must be bytes"):
        compact.append(None)  # type: ignore[arg-type]
    assert compact == before
    compact.extend(LEAVES[7:12])
    assert compact.root() == tree_root(12)


def test_merge_refuses_ranges_that_are_not_adjacent() -> None:
    """Merging a range that does not start where this one ends raises ValueError."""
    left = CompactRange(0, 4, [NODES[2, 0]])
    with pytest.raises(ValueError, match="not adjacent"):
        left.merge(CompactRange(5, 6, [LEAVES[5]]))


@pytest.mark.parametrize(
    ("begin", "end", "hashes", "message"),
    [
        # [0, 3) is made of two subtrees, [0, 2) and [2, 3).
        (0, 3, [LEAVES[0]], "has 2 subtree hashes, got 1"),
        (0, 1, [LEAVES[0], LEAVES[1]], "has 1 subtree hashes, got 2"),
        (0, 0, [LEAVES[0]], "has 0 subtree hashes, got 1"),
        (4, 3, [], "invalid leaf range"),
        (-1, 0, [], "invalid leaf range"),
        (0, 1, [b"short"], "has 5 bytes"),
        (0, 1, [LEAVES[0] + b"x"], "has 33 bytes"),
    ],
)
def test_invalid_construction_raises_value_error(
    begin: int, end: int, hashes: list[bytes], message: str
) -> None:
    """A range whose hashes do not fit [begin, end), or an impossible range, is a ValueError."""
    with pytest.raises(ValueError, match=message):
        CompactRange(begin, end, hashes)


def test_construction_with_non_bytes_hashes_raises_type_error() -> None:
    """A subtree hash that is not bytes is a TypeError, not silently accepted."""
    with pytest.raises(TypeError, match="must be bytes"):
        CompactRange(0, 1, ["00" * 32])  # type: ignore[list-item]


def test_root_needs_a_range_from_zero_and_the_empty_range_has_the_empty_root() -> None:
    """root() raises ValueError unless begin is 0, and is EMPTY_ROOT for an empty range."""
    assert CompactRange().root() == EMPTY_ROOT
    with pytest.raises(ValueError, match="starts at leaf 0"):
        CompactRange(1, 2, [LEAVES[1]]).root()


def test_copy_is_independent_and_equality_compares_content() -> None:
    """A copy equals its original until one of them grows; a range is not hashable."""
    original = CompactRange()
    original.extend(LEAVES[:5])
    duplicate = original.copy()
    assert duplicate == original
    duplicate.append(LEAVES[5])
    assert duplicate != original
    assert original.end == 5
    assert original != "not a range"
    with pytest.raises(TypeError):
        hash(original)


# Inclusion proofs.


@FAST
@given(case=size_and_index())
def test_inclusion_proofs_verify_and_match_their_node_form(case: tuple[int, int]) -> None:
    """A generated inclusion proof verifies, and rehashing its nodes from a store gives it again."""
    size, index = case
    proof = inclusion_proof(index, size, LEAVES)
    verify_inclusion(LEAVES[index], index, size, proof, tree_root(size))
    assert root_from_inclusion_proof(LEAVES[index], index, size, proof) == tree_root(size)
    assert rehash(inclusion_proof_nodes(index, size), NODES) == proof


@settings(max_examples=300, deadline=None)
@given(case=size_and_index())
def test_inclusion_proofs_have_at_most_ceil_log2_n_hashes(case: tuple[int, int]) -> None:
    """An inclusion proof in a tree of n leaves holds at most ceil(log2 n) hashes."""
    size, index = case
    assert len(inclusion_proof_nodes(index, size)) <= ceil_log2(size)


@FAST
@given(case=size_and_index(), data=st.data(), bit=bits)
def test_inclusion_fails_on_any_flipped_bit(
    case: tuple[int, int], data: st.DataObject, bit: int
) -> None:
    """Flipping one bit of any proof hash, of the leaf hash or of the root fails verification."""
    size, index = case
    proof = inclusion_proof(index, size, LEAVES)
    leaf, expected = LEAVES[index], tree_root(size)
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1), label="target")
    if target == -2:
        leaf = flip_bit(leaf, bit)
    elif target == -1:
        expected = flip_bit(expected, bit)
    else:
        proof[target] = flip_bit(proof[target], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, expected)


@FAST
@given(case=size_and_index(), data=st.data())
def test_inclusion_fails_for_a_wrong_index_or_size(
    case: tuple[int, int], data: st.DataObject
) -> None:
    """A proof checked at another index, or against another tree size and its root, fails."""
    size, index = case
    proof = inclusion_proof(index, size, LEAVES)
    other_index = data.draw(
        st.integers(min_value=0, max_value=MAX_SIZE).filter(lambda i: i != index)
    )
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], other_index, size, proof, tree_root(size))
    other_size = data.draw(sizes.filter(lambda s: s != size))
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, other_size, proof, tree_root(other_size))


# Consistency proofs.


@FAST
@given(case=two_sizes())
def test_consistency_proofs_verify_and_match_their_node_form(case: tuple[int, int]) -> None:
    """A generated consistency proof verifies, and rehashing its nodes gives it again."""
    size1, size2 = case
    proof = consistency_proof(size1, size2, LEAVES)
    verify_consistency(size1, size2, proof, tree_root(size1), tree_root(size2))
    assert root_from_consistency_proof(size1, size2, proof, tree_root(size1)) == tree_root(size2)
    assert rehash(consistency_proof_nodes(size1, size2), NODES) == proof


@settings(max_examples=300, deadline=None)
@given(case=two_sizes())
def test_consistency_proofs_have_at_most_ceil_log2_n_plus_one_hashes(
    case: tuple[int, int],
) -> None:
    """A consistency proof to a tree of n leaves holds at most ceil(log2 n) + 1 hashes."""
    size1, size2 = case
    assert len(consistency_proof_nodes(size1, size2)) <= ceil_log2(size2) + 1


@FAST
@given(case=two_sizes(), data=st.data(), bit=bits)
def test_consistency_fails_on_any_flipped_bit(
    case: tuple[int, int], data: st.DataObject, bit: int
) -> None:
    """Flipping one bit of any proof hash or of either root makes verification fail."""
    size1, size2 = case
    proof = consistency_proof(size1, size2, LEAVES)
    root1, root2 = tree_root(size1), tree_root(size2)
    target = data.draw(st.integers(min_value=-2, max_value=len(proof) - 1), label="target")
    if target == -2:
        root1 = flip_bit(root1, bit)
    elif target == -1:
        root2 = flip_bit(root2, bit)
    else:
        proof[target] = flip_bit(proof[target], bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@FAST
@given(case=two_sizes(), data=st.data())
def test_consistency_fails_for_wrong_sizes(case: tuple[int, int], data: st.DataObject) -> None:
    """A proof checked for another size1 or size2, with that tree's root, fails."""
    size1, size2 = case
    proof = consistency_proof(size1, size2, LEAVES)
    other1 = data.draw(st.integers(min_value=0, max_value=MAX_SIZE).filter(lambda s: s != size1))
    with pytest.raises(ProofError):
        verify_consistency(other1, size2, proof, tree_root(other1), tree_root(size2))
    other2 = data.draw(st.integers(min_value=0, max_value=MAX_SIZE).filter(lambda s: s != size2))
    with pytest.raises(ProofError):
        verify_consistency(size1, other2, proof, tree_root(size1), tree_root(other2))


# Node form of proofs, against the proofs computed from all leaves.


def _indexes_to_check(size: int) -> list[int]:
    """Return every index below ``size`` for small trees, else those where the shape changes.

    All pairs up to 300 cost about 20 s of hashing, as the from-leaves proofs are O(n) each;
    beyond 100 the check keeps the edges, each power of two and its neighbours, and a sample.
    """
    if size <= 100:
        return list(range(size))
    picks = {0, 1, size // 2, size - 2, size - 1}
    power = 1
    while power < size:
        picks.update(i for i in (power - 1, power, power + 1) if i < size)
        power *= 2
    picks.update(random.Random(size).sample(range(size), 8))
    return sorted(picks)


def test_node_form_equals_proofs_from_leaves_for_all_sizes_up_to_300() -> None:
    """For every tree size up to 300, proofs rehashed from a node store equal those from leaves."""
    for size in range(1, 301):
        for index in _indexes_to_check(size):
            expected = inclusion_proof(index, size, LEAVES)
            assert rehash(inclusion_proof_nodes(index, size), NODES) == expected, (index, size)
        for size1 in _indexes_to_check(size):
            expected = consistency_proof(size1 + 1, size, LEAVES)
            nodes = consistency_proof_nodes(size1 + 1, size)
            assert rehash(nodes, NODES) == expected, (size1 + 1, size)


def test_node_specs_name_only_the_ragged_edge_as_ephemeral() -> None:
    """In a tree of 7, leaf 0's proof is leaf 1, node [2, 4) and the ephemeral node over [4, 7)."""
    assert inclusion_proof_nodes(0, 7) == [
        NodeSpec(((0, 1),)),
        NodeSpec(((1, 1),)),
        NodeSpec(((1, 2), (0, 6))),
    ]
    assert [spec.ephemeral for spec in inclusion_proof_nodes(0, 7)] == [False, False, True]
    assert inclusion_proof_nodes(0, 1) == []
    assert consistency_proof_nodes(4, 4) == []


def test_rehash_reports_a_missing_node() -> None:
    """rehash raises KeyError when the store lacks a node that a spec names."""
    with pytest.raises(KeyError):
        rehash(inclusion_proof_nodes(0, 7), {(0, 1): LEAVES[1]})


@pytest.mark.parametrize(
    ("index", "size", "available"),
    [(0, 0, 0), (3, 3, 3), (-1, 3, 3), (0, 4, 3)],
)
def test_inclusion_proof_generation_refuses_impossible_requests(
    index: int, size: int, available: int
) -> None:
    """Asking for an index outside the tree, or a tree beyond the leaves given, is a ValueError."""
    with pytest.raises(ValueError, match="no inclusion proof"):
        inclusion_proof(index, size, LEAVES[:available])
    if size <= available:
        with pytest.raises(ValueError, match="no inclusion proof"):
            inclusion_proof_nodes(index, size)


@pytest.mark.parametrize(
    ("size1", "size2", "available"), [(0, 0, 0), (0, 3, 3), (4, 3, 4), (2, 5, 4)]
)
def test_consistency_proof_generation_refuses_impossible_requests(
    size1: int, size2: int, available: int
) -> None:
    """A proof from size 0, from a larger tree, or beyond the leaves given is a ValueError."""
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(size1, size2, LEAVES[:available])
    if size2 <= available:
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof_nodes(size1, size2)


# Malformed input to the verifiers.

GOOD_PROOF = inclusion_proof(5, 8, LEAVES)
GOOD_CONSISTENCY = consistency_proof(3, 8, LEAVES)


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "expected"),
    [
        pytest.param(LEAVES[5], 5, 8, None, tree_root(8), id="proof-none"),
        pytest.param(LEAVES[5], 5, 8, iter(GOOD_PROOF), tree_root(8), id="proof-iterator"),
        pytest.param(LEAVES[5], 5, 8, b"".join(GOOD_PROOF), tree_root(8), id="proof-bytes"),
        pytest.param(LEAVES[5], 5, 8, 42, tree_root(8), id="proof-int"),
        pytest.param(LEAVES[5], 5, 8, [*GOOD_PROOF[:2], None], tree_root(8), id="item-none"),
        pytest.param(LEAVES[5], 5, 8, [*GOOD_PROOF[:2], "x" * 32], tree_root(8), id="item-str"),
        pytest.param(LEAVES[5], 5, 8, [*GOOD_PROOF[:2], b"x" * 31], tree_root(8), id="item-short"),
        pytest.param(LEAVES[5], 5, 8, GOOD_PROOF[:2], tree_root(8), id="missing-hash"),
        pytest.param(LEAVES[5], 5, 8, [*GOOD_PROOF, LEAVES[0]], tree_root(8), id="extra-hash"),
        pytest.param(LEAVES[5], -1, 8, GOOD_PROOF, tree_root(8), id="index-negative"),
        pytest.param(LEAVES[5], 8, 8, GOOD_PROOF, tree_root(8), id="index-at-size"),
        pytest.param(LEAVES[5], 2**64 - 1, 8, GOOD_PROOF, tree_root(8), id="index-huge"),
        pytest.param(LEAVES[5], 5.0, 8, GOOD_PROOF, tree_root(8), id="index-float"),
        pytest.param(LEAVES[5], True, 8, GOOD_PROOF, tree_root(8), id="index-bool"),
        pytest.param(LEAVES[5], "5", 8, GOOD_PROOF, tree_root(8), id="index-str"),
        pytest.param(LEAVES[5], 5, None, GOOD_PROOF, tree_root(8), id="size-none"),
        pytest.param(LEAVES[5], 5, -8, GOOD_PROOF, tree_root(8), id="size-negative"),
        pytest.param(LEAVES[5], 5, 2**70, GOOD_PROOF, tree_root(8), id="size-huge"),
        pytest.param(LEAVES[5][:31], 5, 8, GOOD_PROOF, tree_root(8), id="leaf-short"),
        pytest.param(bytearray(LEAVES[5]), 5, 8, GOOD_PROOF, tree_root(8), id="leaf-bytearray"),
        pytest.param(None, 5, 8, GOOD_PROOF, tree_root(8), id="leaf-none"),
        pytest.param(LEAVES[5], 5, 8, GOOD_PROOF, tree_root(8)[:31], id="root-short"),
        pytest.param(LEAVES[5], 5, 8, GOOD_PROOF, None, id="root-none"),
        pytest.param(LEAVES[5], 5, 8, GOOD_PROOF, tree_root(8).hex(), id="root-hex-str"),
    ],
)
def test_verify_inclusion_raises_proof_error_on_malformed_input(
    leaf: object, index: object, size: object, proof: object, expected: object
) -> None:
    """Malformed inclusion input raises ProofError, never another exception or a return value."""
    verify_inclusion(LEAVES[5], 5, 8, GOOD_PROOF, tree_root(8))  # The unaltered case holds.
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size1", "size2", "proof", "root1", "root2"),
    [
        pytest.param(3, 8, None, tree_root(3), tree_root(8), id="proof-none"),
        pytest.param(3, 8, iter(GOOD_CONSISTENCY), tree_root(3), tree_root(8), id="proof-iter"),
        pytest.param(3, 8, "abc", tree_root(3), tree_root(8), id="proof-str"),
        pytest.param(3, 8, [*GOOD_CONSISTENCY[:1], 7], tree_root(3), tree_root(8), id="item-int"),
        pytest.param(3, 8, GOOD_CONSISTENCY[:-1], tree_root(3), tree_root(8), id="missing-hash"),
        pytest.param(
            3, 8, [*GOOD_CONSISTENCY, LEAVES[0]], tree_root(3), tree_root(8), id="extra-hash"
        ),
        pytest.param(-3, 8, GOOD_CONSISTENCY, tree_root(3), tree_root(8), id="size1-negative"),
        pytest.param(3, 8.0, GOOD_CONSISTENCY, tree_root(3), tree_root(8), id="size2-float"),
        pytest.param(8, 3, GOOD_CONSISTENCY, tree_root(8), tree_root(3), id="sizes-swapped"),
        pytest.param(0, 8, [], EMPTY_ROOT, tree_root(8), id="size1-zero"),
        pytest.param(0, 0, [], EMPTY_ROOT, EMPTY_ROOT, id="both-zero"),
        pytest.param(8, 8, [LEAVES[0]], tree_root(8), tree_root(8), id="equal-with-proof"),
        pytest.param(8, 8, [], tree_root(8), None, id="equal-root2-none"),
        pytest.param(8, 8, [], None, tree_root(8), id="equal-root1-none"),
        pytest.param(3, 8, GOOD_CONSISTENCY, tree_root(3)[:16], tree_root(8), id="root1-short"),
        pytest.param(3, 8, GOOD_CONSISTENCY, tree_root(3), tree_root(8)[:16], id="root2-short"),
        pytest.param(3, 8, GOOD_CONSISTENCY, tree_root(3), [1, 2], id="root2-list"),
    ],
)
def test_verify_consistency_raises_proof_error_on_malformed_input(
    size1: object, size2: object, proof: object, root1: object, root2: object
) -> None:
    """Malformed consistency input raises ProofError, never another exception or a return value."""
    verify_consistency(3, 8, GOOD_CONSISTENCY, tree_root(3), tree_root(8))  # The unaltered case.
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)  # type: ignore[arg-type]


def test_proof_errors_say_what_failed_without_hash_values() -> None:
    """Error messages name the sizes and index that failed and contain no hash."""
    with pytest.raises(ProofError, match=r"index 5 in a tree of size 8 is too short") as short:
        verify_inclusion(LEAVES[5], 5, 8, GOOD_PROOF[:2], tree_root(8))
    with pytest.raises(ProofError, match="does not lead to the root") as wrong:
        verify_inclusion(LEAVES[4], 5, 8, GOOD_PROOF, tree_root(8))
    with pytest.raises(ProofError, match="from size 3 to size 8 does not lead to root1") as bad:
        verify_consistency(3, 8, GOOD_CONSISTENCY, tree_root(4), tree_root(8))
    for error in (short.value, wrong.value, bad.value):
        message = str(error)
        for value in (*GOOD_PROOF, *GOOD_CONSISTENCY, LEAVES[4], LEAVES[5], tree_root(8)):
            assert value.hex() not in message
            assert repr(value) not in message
