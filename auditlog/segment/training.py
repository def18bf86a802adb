"""Which dictionary a period's blocks use, and the training of new ones off the flush path.

A chain keeps the first ``dictionary_samples`` canonical records of each period in memory.
The moment it has them (while they are appended), a background thread starts training the
period's zstd dictionary (10-20 ms, zstd releasing the GIL) and stores it (encrypted under the
period's key, then announced to the head). A small flush meanwhile (a request's records) does
not wait: its block goes out without a dictionary (id 0). A flush of a large block (of at
least ``dictionary_samples`` records or half of ``block_max_records``, as a bulk write makes)
waits for the training (and trains in its own thread a period whose job another period's
held back, as a bulk write over many periods makes): those few milliseconds are small next to
the block's own work, and the block keeps its compression (bytes a record). Before issue 12 the
training ran inside the first flush that had the samples, stalling it whatever its size.

``background=False`` trains inline in that flush instead (the blocks a log gets are then the
same on every run, which some tests compare).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zstandard

from auditlog.codec import train_dictionary
from auditlog.crypto.keys import PeriodKeys
from auditlog.segment.frames import DictionaryStore

__all__ = ["DictionaryTrainer"]


class DictionaryTrainer:
    """The dictionaries of one chain's periods: samples, training, and the id to use."""

    def __init__(
        self,
        store: DictionaryStore,
        samples: int,
        size: int,
        install: Callable[[PeriodKeys, bytes], int],
        *,
        background: bool = True,
    ) -> None:
        """``install`` stores a trained dictionary (and tells the head) and returns its id."""
        self._store = store
        self._wanted = samples
        self._size = size
        self._install = install
        self._background = background
        self._samples: dict[int, list[bytes]] = {}
        self._ids: dict[int, int] = {}
        self._lock = threading.Lock()  # the running job and its outcome
        self._train_lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._job_period = -1
        self._cancelled: set[int] = set()
        self._error: BaseException | None = None

    def sample(self, keys: PeriodKeys, canonical: list[bytes], start: int, end: int) -> None:
        """Keep the first records of a period to train its dictionary (in memory only); with
        enough of them, start training in the background."""
        period = keys.period
        if period in self._ids:
            return
        samples = self._samples.setdefault(period, [])
        wanted = self._wanted - len(samples)
        if wanted > 0:
            samples.extend(canonical[start : min(end, start + wanted)])
            if self._background and len(samples) >= self._wanted:
                self._start(keys, samples)

    def _start(self, keys: PeriodKeys, samples: list[bytes]) -> None:
        """Start the period's training job, unless one runs or its dictionary is stored."""
        period = keys.period
        if self._job is not None or period in self._cancelled:
            return
        stored = self._store.stored_id(period)
        if stored is not None:
            self._ids[period] = stored
            self._samples.pop(period, None)
            return
        with self._lock:
            if self._job is None:
                self._job_period = period
                self._job = threading.Thread(
                    target=self._run,
                    args=(keys, samples),
                    name="auditlog-dictionary-training",
                    daemon=True,
                )
                self._job.start()

    def dictionary_for(self, keys: PeriodKeys, *, wait: bool = False) -> int:
        """The id of the dictionary the period's next block uses (0: none, yet or ever).

        With ``wait`` (a large block), waits for a running job and trains the period's
        dictionary in this thread if that job was not it; raises what a background job failed
        with (the flush then fails, and the chain
        with it, as an inline failure would).
        """
        period = keys.period
        dict_id = self._ids.get(period)
        if dict_id is not None:
            return dict_id
        self._raise_error()
        stored = self._store.stored_id(period)
        if stored is not None:
            self._ids[period] = stored
            self._samples.pop(period, None)
            return stored
        samples = self._samples.get(period, [])
        if len(samples) < self._wanted:
            return 0
        if not self._background:
            self._train(keys, samples)
            return self._ids.get(period, 0)
        if wait:
            # A large block: let a running job finish (this period's or another's), then
            # train this period's dictionary here if that job was not it.
            self.wait()
            if period not in self._ids:
                self._train(keys, samples)
            return self._ids.get(period, 0)
        self._start(keys, samples)  # if another period's job held it back
        return 0

    def _run(self, keys: PeriodKeys, samples: list[bytes]) -> None:
        try:
            self._train(keys, samples)
        except BaseException as exc:  # noqa: BLE001 - raised by the next flush
            self._error = exc
        finally:
            with self._lock:
                self._job = None

    def _train(self, keys: PeriodKeys, samples: list[bytes]) -> None:
        period = keys.period
        # One training at a time: a period's dictionary is stored once, never replaced by a
        # second one trained beside it (blocks name the first by its id).
        with self._train_lock:
            if period in self._ids or period in self._cancelled:
                return
            try:
                dictionary = train_dictionary(samples, self._size)
            except zstandard.ZstdError:  # zstd refuses degenerate samples: go on without one
                dictionary = None
            # ``install`` checks ``cancelled`` under the log's state lock, and stores nothing
            # for a period forgotten meanwhile.
            dict_id = 0 if dictionary is None else self._install(keys, dictionary)
            if period not in self._cancelled:
                self._ids[period] = dict_id
            self._samples.pop(period, None)

    def cancelled(self, period: int) -> bool:
        """Whether the period was forgotten (shredded): no dictionary is to be stored for it."""
        return period in self._cancelled

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            raise error

    def wait(self) -> None:
        """Wait for a running training job to finish (before the chain is closed)."""
        job = self._job
        if job is not None:
            job.join()
        self._raise_error()

    def due(self) -> list[int]:
        """The periods that have their samples and no dictionary yet (none being trained)."""
        return [
            period
            for period, samples in self._samples.items()
            if len(samples) >= self._wanted and period not in self._ids
        ]

    def train_now(self, keys: PeriodKeys) -> None:
        """Train and store the period's dictionary in this thread (see ``settle``)."""
        self._train(keys, self._samples.get(keys.period, []))

    def forget(self, period: int) -> None:
        """Drop what is held of a shredded period; a job training for it stores nothing from
        now on (``install`` checks ``cancelled`` under the log's state lock, which the caller
        holds while it destroys the period's dictionary file)."""
        self._cancelled.add(period)
        self._samples.pop(period, None)
        self._ids.pop(period, None)
        self._store.forget(period)
