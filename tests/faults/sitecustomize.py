"""Test-only fault injection at the decoder boundary (on PYTHONPATH only in tests/test_isolation.py).

``VIDREC_TEST_FAULTS="segv:name_a,hang:name_b,abort:name_c"``: in every process of the run, ``av.open`` for reading of a file
whose name contains ``name_a`` kills its process with SIGSEGV, of ``name_b`` sleeps forever, of ``name_c`` aborts.
"""

import os

_FAULTS = [item.split(":", 1) for item in os.environ.get("VIDREC_TEST_FAULTS", "").split(",") if ":" in item]

if _FAULTS:
    import signal
    import time

    import av

    _open = av.open

    def _faulty_open(file, *args, **kwargs):
        reading = (args[0] if args else kwargs.get("mode", "r")) in ("r", None)
        for kind, name in _FAULTS:
            if reading and name in os.path.basename(str(file)):
                if kind == "segv":
                    os.kill(os.getpid(), signal.SIGSEGV)
                elif kind == "abort":
                    os.abort()
                elif kind == "hang":
                    while True:
                        time.sleep(3600)
        return _open(file, *args, **kwargs)

    av.open = _faulty_open
