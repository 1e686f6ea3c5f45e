"""Dataset errors that say what was expected, where, and how to get it."""

from __future__ import annotations

from pathlib import Path

from assoc_lightning.errors import AssocError


class DatasetNotFoundError(AssocError, FileNotFoundError):
    """A dataset (or a file it needs) is not where it was expected.

    Args:
        name: the dataset's name.
        root: the directory that was searched.
        expected: the expected on-disk layout, one path pattern per line.
        how_to_get: how to obtain the data (a URL, ``download: true``, a licence note).
        missing: the first missing path, when one is known.
    """

    def __init__(
        self,
        name: str,
        root: str | Path,
        expected: str,
        how_to_get: str,
        missing: str | Path | None = None,
    ) -> None:
        self.name, self.root, self.missing = name, Path(root), missing
        lines = [f"dataset not found: {name} in {root}"]
        if missing is not None:
            lines.append(f"missing: {missing}")
        lines.append("expected layout:")
        lines += [f"  {line}" for line in expected.strip().splitlines()]
        lines.append(f"how to get it: {how_to_get}")
        lines.append("set the location with `--data.init_args.data_dir PATH` or $ASSOC_DATA_DIR.")
        super().__init__("\n".join(lines))


class DatasetCorruptError(AssocError):
    """A file exists but does not hold what it should (truncated, bad header, wrong size)."""

    def __init__(self, path: str | Path, expected: str, found: str, fix: str = "") -> None:
        self.path = Path(path)
        msg = f"corrupt file: {path}\nexpected: {expected}\nfound: {found}"
        if fix:
            msg += f"\nhow to fix: {fix}"
        super().__init__(msg)
