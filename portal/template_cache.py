"""Templates compiled once per process, whatever the number of apps built in it.

Jinja compiles a template the first time an environment loads it, and each Flask app has
its own environment: a process that builds many apps (the test suite builds one per test)
would compile every template again for each. The compiled code depends only on the
template's source and on the environment's syntax, which every portal app shares, and
Jinja checks the source's checksum before reusing it, so an edited template is compiled
afresh."""

from __future__ import annotations

import threading

from jinja2.bccache import Bucket, BytecodeCache


class ProcessBytecodeCache(BytecodeCache):
    """Compiled templates kept in memory for the life of the process."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code

    def clear(self) -> None:
        with self._lock:
            self._code.clear()


#: Shared by every app of the process.
TEMPLATES = ProcessBytecodeCache()
