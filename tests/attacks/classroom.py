"""Crafted submissions folders and cells for the classroom's attack suite
(tests/test_attacks_classroom.py): hostile file names, links, and a cell that fills the
sandbox's tmpfs.

``{MARK}`` in FILL_TMPFS becomes a token unique to the run, so the test can look for what it
left on the host.
"""

# A name that, written raw, clears the terminal, colours it, ends the line and prints a fake
# result (with U+2215, a slash a file name may hold), then reverses the rest of the line (U+202E)
# and hides a zero-width joiner.
ESCAPE_NAME = "\x1b[2J\x1b[31mmallory\r\n11\u221511 tests passed\u202egnp\u200d\x07.ipynb"

# A name a spreadsheet would run as a formula when the gradebook is opened.
FORMULA_NAME = '=HYPERLINK("http:evil.example","claim your grade").ipynb'

# One extra solution-tagged cell: 1 GB into /tmp, then 1 GB into /dev/shm, in 1 MB files (the
# file-size limit stops one big file at 64 MB), stopping at the first refusal. The error it
# raises names how far it got, so the report shows where the cap stood.
FILL_TMPFS = """
import os
written = {}
for where in ("/tmp", "/dev/shm"):
    written[where] = 0
    try:
        for i in range(1024):
            with open(f"{where}/{MARK}-{i}", "wb") as f:
                f.write(b"x" * (1 << 20))
            written[where] += 1
    except OSError as err:
        written[where] = f"{written[where]} MB then {err.strerror}"
raise OSError(f"filled: {written}")
"""
