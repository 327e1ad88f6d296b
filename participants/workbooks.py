"""Safety checks on an uploaded .xlsx before openpyxl opens it; both spreadsheet imports (enrollment lists and
campaign targets) use them, each saying the reason in its own words.

An .xlsx is a zip archive. Everything here reads only the archive's directory (names, declared sizes, flags): a zip
bomb is refused on the sizes it declares before anything is decompressed, and zipfile never inflates an entry beyond
its declared size, so the declaration is a real bound.
"""

import io
import zipfile

MAX_ENTRIES = 200
MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 200


class UnsafeWorkbook(Exception):
    """Why a workbook was refused: one of the REASONS below."""

    DAMAGED = "damaged"  # not a zip archive at all
    BOMB = "bomb"  # too many parts, too large unpacked, or an extreme compression ratio
    ENCRYPTED = "encrypted"  # password-protected parts
    UNSAFE_NAMES = "unsafe_names"  # repeated names, or names that climb out of the archive
    LINKS_OR_MACROS = "links_or_macros"  # external links to other files, or a VBA project
    NOT_XLSX = "not_xlsx"  # a zip archive, but not a workbook

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def workbook_check(data: bytes, *, max_entries: int = MAX_ENTRIES, max_uncompressed: int = MAX_UNCOMPRESSED) -> None:
    """Raises UnsafeWorkbook unless `data` is a plain .xlsx archive that is safe to hand to openpyxl."""
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeWorkbook(UnsafeWorkbook.DAMAGED) from exc
    if len(entries) > max_entries or sum(e.file_size for e in entries) > max_uncompressed:
        raise UnsafeWorkbook(UnsafeWorkbook.BOMB)
    if any(e.compress_size and e.file_size / e.compress_size > MAX_RATIO for e in entries):
        raise UnsafeWorkbook(UnsafeWorkbook.BOMB)
    if any(e.flag_bits & 0x1 for e in entries):
        raise UnsafeWorkbook(UnsafeWorkbook.ENCRYPTED)
    names = [e.filename for e in entries]
    if len(set(names)) != len(names) or any(
        name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/") or "\x00" in name for name in names
    ):
        # Two parts with one name, or names that climb out of the archive: no spreadsheet program writes these.
        raise UnsafeWorkbook(UnsafeWorkbook.UNSAFE_NAMES)
    if any(name.startswith("xl/externalLinks/") or name == "xl/vbaProject.bin" for name in names):
        raise UnsafeWorkbook(UnsafeWorkbook.LINKS_OR_MACROS)
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise UnsafeWorkbook(UnsafeWorkbook.NOT_XLSX)
