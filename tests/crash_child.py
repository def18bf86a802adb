"""The child process of test_crash.py: append deterministic records and flush until killed.

Usage: ``python crash_child.py LOG SEED``. The child opens LOG for writing (recovering it), then
appends ``record_for(chain, index)`` to two chains in random small batches, flushing after each.
It prints, one line each, flushed at once:

- ``ready`` once the log is open;
- ``flushing`` just before each flush (so the parent can kill it mid-flush);
- ``durable <chain> <size>`` for each chain after a flush returned;
- ``violation <text>`` if a receipt contradicts what was flushed.
"""

from __future__ import annotations

import random
import sys

from _integrity_helpers import TEST_PASSPHRASE, record_for

from auditlog import AuditLog, Receipt

CHAINS = ("chat", "network")
MAX_BATCH = 7  # below block_max_records, so only our explicit flushes make records durable
MAX_RECORDS = 20_000  # a safety stop if the parent never kills us


def main() -> int:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    with AuditLog.open(path, passphrase=TEST_PASSPHRASE) as log:
        stats = log.stats().chains
        counters = {chain: stats[chain].records if chain in stats else 0 for chain in CHAINS}
        print("ready", flush=True)
        written = 0
        while written < MAX_RECORDS:
            batch: list[Receipt] = []
            for _ in range(rng.randint(1, MAX_BATCH)):
                chain = rng.choice(CHAINS)
                index = counters[chain]
                receipt = log.append(record_for(chain, index), chain=chain)
                if receipt.index != index:
                    print(f"violation {chain} index {receipt.index} != {index}", flush=True)
                if receipt.durable:
                    print(f"violation {chain} {index} durable before flush", flush=True)
                counters[chain] += 1
                batch.append(receipt)
            print("flushing", flush=True)
            log.flush()
            for receipt in batch:
                if not receipt.durable:
                    print(f"violation {receipt.chain} {receipt.index} not durable", flush=True)
            for chain in CHAINS:
                print(f"durable {chain} {counters[chain]}", flush=True)
            written += len(batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
