"""The ``version_N`` folders a CSV logger makes under ``<save_dir>/<name>``: the one way the
package and its scripts find a logger folder's newest run."""

from __future__ import annotations

import re
from pathlib import Path

VERSION = re.compile(r"^version_(\d+)$")


def newest_version(root: str | Path, holding: str | None = None) -> Path | None:
    """The highest-numbered ``version_N`` folder under ``root`` (that holds the file at the
    relative path ``holding``, e.g. ``"checkpoints/last.ckpt"``, when given); ``None`` when
    there is none."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = [
        (int(m.group(1)), d)
        for d in root.iterdir()
        if d.is_dir()
        and (m := VERSION.match(d.name))
        and (holding is None or (d / holding).is_file())
    ]
    return max(found)[1] if found else None
