"""The files a page writer (``dse report``, ``dse compare``) owns in its output folder.

A folder used before may hold the files of an earlier page that this one no longer writes (a
front of a resource figure the new study lacks, a failures plot once there are no failures);
left there, they look like part of the new page. Each writer therefore lists what it wrote in
a small manifest (``.dse-report.json`` or ``.dse-compare.json``) and, before writing again,
deletes the files the manifest lists. Only names the writer itself can produce (``own``) are
ever deleted, so a user's file in the same folder stays. A folder without this writer's
manifest that holds a file named like its outputs (``own``: a ``report.html``, a
``front_a_vs_b.png`` of the user's) is refused before anything is written: those files are not
the writer's to overwrite or delete. Once the folder is cleared, the manifest says the writer is
writing there (``"incomplete": true``) until :meth:`OwnFiles.record` lists what it wrote, so a
run that stops half-way leaves a folder the next run clears (of every file named like its
outputs) instead of refusing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dse.exceptions import ConfigError

__all__ = ["OwnFiles", "REPORT_FILES", "COMPARE_FILES"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnFiles:
    """The outputs of one page writer.

    Attributes:
        manifest: name of the manifest file in the output folder.
        own: the names the writer can write (full match); nothing else is ever deleted.
        command: the command that writes them, for messages.
    """

    manifest: str
    own: re.Pattern[str]
    command: str

    def clear_previous(self, out: Path, subject: str | None = None) -> list[Path]:
        """Delete the files an earlier run of this writer left in ``out``; refuse a folder holding files of someone else's.

        The manifest then marks the folder as being written (see the module's docstring).

        Args:
            out: the output folder (it exists).
            subject: what this run writes about (``dse report``: ``study <name> in <storage>``), kept in the manifest;
                where an earlier run wrote about another, a warning names both (a report written into
                another study's report folder replaced it without a word).

        Returns:
            The files deleted.

        Raises:
            ConfigError: ``out`` has no manifest of this writer but holds files named like its
                outputs, which it would overwrite or delete; nothing is deleted.
        """
        manifest = out / self.manifest
        names: Iterable[str]
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                names = [p.name for p in out.iterdir()] if data.get("incomplete") else [str(n) for n in data.get("files", [])]
                earlier = data.get("subject")
                if subject and earlier and earlier != subject:
                    log.warning("%s: %s held the output of %s; it is replaced by that of %s (choose another --out to keep "
                                "both)", self.command, out, earlier, subject)
            except (ValueError, AttributeError, OSError) as e:  # unreadable: fall back to the own names
                log.warning("%s: manifest %s is unreadable (%s); clearing the files named like %s outputs",
                            self.command, manifest, e, self.command)
                names = [p.name for p in out.iterdir()]
        else:
            if clash := sorted(p.name for p in out.iterdir() if self.own.fullmatch(p.name) and (p.is_file() or p.is_symlink())):
                raise ConfigError(
                    f"output folder {out} holds {', '.join(clash)}, named like the files {self.command} writes or "
                    f"deletes there, but no {self.manifest} of an earlier {self.command} says it wrote them; choose "
                    "another folder with --out, or move or delete those files"
                )
            names = []
        removed = []
        for name in names:
            if Path(name).name != name or not self.own.fullmatch(name):
                continue  # only plain names the writer produces, never another path
            p = out / name
            if p.is_symlink() or p.is_file():
                p.unlink()
                removed.append(p)
        if removed:
            log.info("%s: removed %d file(s) of the earlier output in %s: %s", self.command, len(removed), out,
                     ", ".join(p.name for p in removed))
        manifest.write_text(json.dumps({"written_by": self.command, "files": [], "incomplete": True, "subject": subject},
                                       indent=1) + "\n",
                            encoding="utf-8")  # the folder is this writer's now, even if this run stops before record()
        return removed

    def record(self, out: Path, files: Iterable[Path], subject: str | None = None) -> Path:
        """Write the manifest of ``files`` (written to ``out`` by this run, about ``subject``); returns its path."""
        manifest = out / self.manifest
        names = sorted({Path(f).name for f in files})
        manifest.write_text(json.dumps({"written_by": self.command, "files": names, "subject": subject}, indent=1) + "\n",
                            encoding="utf-8")
        return manifest


#: ``dse report``: the page, its fixed PNGs and one front per resource figure.
REPORT_FILES = OwnFiles(
    ".dse-report.json",
    re.compile(r"report\.html|(failures|hypervolume|importances|parallel_coordinates|training_curves)\.png|front_.+_vs_.+\.png"),
    "dse report",
)

#: ``dse compare``: the page, its table and one overlay per resource figure.
COMPARE_FILES = OwnFiles(".dse-compare.json", re.compile(r"compare\.(html|csv)|compare_.+_vs_.+\.png"), "dse compare")
